// Shared helpers of the fake-upstream checks (plain Node, no dependencies).
'use strict';
const assert = require('node:assert/strict');

const base = process.env.FAKE_BASE_URL;
if (!base) {
  console.error('FAKE_BASE_URL is not set (the fake upstream address, e.g. http://127.0.0.1:1234)');
  process.exit(2);
}

async function control(method, path) {
  const res = await fetch(base + path, { method });
  assert.equal(res.status, 200, `${method} ${path}`);
  return res.json();
}

// The requests the fake recorded since the last reset.
async function recorded() {
  return (await control('GET', '/__requests')).requests;
}

async function reset() {
  await control('DELETE', '/__requests');
}

// Runs named async checks in order; prints one line per check; exits 1 on the first failure.
async function run(suite, checks) {
  let passed = 0;
  for (const [name, fn] of checks) {
    const t0 = Date.now();
    try {
      await reset();
      await fn();
      passed++;
      console.log(`ok   ${suite}: ${name} (${Date.now() - t0} ms)`);
    } catch (e) {
      console.error(`FAIL ${suite}: ${name}\n${e && e.stack ? e.stack : e}`);
      process.exit(1);
    }
  }
  console.log(`${suite}: ${passed}/${checks.length} checks passed`);
}

// Expects `promise` to reject; returns the error (fails if it resolves).
async function rejects(promise, what) {
  try {
    await promise;
  } catch (e) {
    return e;
  }
  assert.fail(`${what}: expected an error, got a result`);
}

// Small real files for the image/document checks: a 1x1 PNG and a minimal PDF.
const PNG = Buffer.from(
  'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==', 'base64');
const PDF = Buffer.from('%PDF-1.4\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n');

// What the fake says it received: "<mime> <n> bytes sha256=<first 12 hex>".
function saw(mime, bytes) {
  const sha = require('node:crypto').createHash('sha256').update(bytes).digest('hex').slice(0, 12);
  return `${mime} ${bytes.length} bytes sha256=${sha}`;
}

module.exports = { assert, base, recorded, reset, run, rejects, PNG, PDF, saw };
