// Runs named async checks in order, one line each; the first failure prints
// its stack and ends the process with 1. Shared by the node checks here.
'use strict';

async function runChecks(checks, what) {
  for (const [name, fn] of checks) {
    try {
      await fn();
      console.log('ok   ' + name);
    } catch (e) {
      console.log('FAIL ' + name + ': ' + (e && e.stack || e));
      process.exit(1);
    }
  }
  console.log(`${what}: ${checks.length} passed, 0 failed`);
}

module.exports = { runChecks };
