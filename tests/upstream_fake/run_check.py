#!/usr/bin/env python3
"""Proves tools/fake_upstream faithful: the vendors' official npm clients
(`openai`, `@anthropic-ai/sdk`, versions pinned in package-lock.json) are
pointed at the fake and must parse everything it sends.

    python3 run_check.py --work <build>/tests/upstream_fake [openai|anthropic ...]

Installs the clients with `npm ci` into <work>/npm (its own npm cache under
<work>, nothing global); reinstalls only when package-lock.json changes. A
failing install FAILS the test (exit 1) with npm's output: it never skips.
"""

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import threading

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(REPO, "tools", "fake_upstream"))
import server as fake  # noqa: E402


def die(message):
    sys.stderr.write("FAIL: %s\n" % message)
    sys.exit(1)


def install(work, source=HERE, what="the official clients"):
    """npm ci of `source`'s package.json + package-lock.json into <work>/npm
    (tests/console installs puppeteer-core the same way)."""
    npm = shutil.which("npm")
    node = shutil.which("node")
    if not npm or not node:
        die("node/npm not found on PATH: this test needs Node >= 20 and npm to install %s "
            "(it does not skip)" % what)
    target = os.path.join(work, "npm")
    os.makedirs(target, exist_ok=True)
    with open(os.path.join(source, "package-lock.json"), "rb") as f:
        lock = f.read()
    digest = hashlib.sha256(lock).hexdigest()
    stamp = os.path.join(target, ".installed-lock-sha256")
    if os.path.isdir(os.path.join(target, "node_modules")) and os.path.exists(stamp):
        with open(stamp) as f:
            if f.read().strip() == digest:
                return target
    for name in ("package.json", "package-lock.json"):
        shutil.copyfile(os.path.join(source, name), os.path.join(target, name))
    cmd = [npm, "ci", "--no-audit", "--no-fund", "--no-update-notifier", "--cache", os.path.join(work, "npm-cache")]
    print("installing %s: %s (in %s)" % (what, " ".join(cmd), target), flush=True)
    try:
        p = subprocess.run(cmd, cwd=target, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=300)
    except subprocess.TimeoutExpired:
        die("npm ci did not finish within 300 s (is the npm registry reachable?)")
    out = p.stdout.decode("utf-8", "replace")
    if p.returncode != 0:
        die("npm ci failed (exit %d): %s could not be installed.\n---- npm output ----\n%s"
            % (p.returncode, what, out))
    with open(stamp, "w") as f:
        f.write(digest + "\n")
    return target


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--work", required=True, help="scratch folder in the build tree")
    ap.add_argument("suites", nargs="*", default=["openai", "anthropic"])
    args = ap.parse_args()
    os.makedirs(args.work, exist_ok=True)
    target = install(os.path.abspath(args.work))

    srv = fake.make_server("127.0.0.1", 0)
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    thread.start()
    base = "http://127.0.0.1:%d" % srv.server_address[1]
    env = dict(os.environ, FAKE_BASE_URL=base, NODE_PATH=os.path.join(target, "node_modules"))
    failed = []
    try:
        for suite in args.suites:
            script = os.path.join(HERE, "check_%s.cjs" % suite)
            p = subprocess.run([shutil.which("node"), script], env=env, timeout=120)
            if p.returncode != 0:
                failed.append(suite)
    finally:
        srv.shutdown()
        srv.server_close()
    if failed:
        die("the official client(s) %s rejected what the fake sent (see above)" % ", ".join(failed))
    print("all official-client checks passed against %s" % base)


if __name__ == "__main__":
    main()
