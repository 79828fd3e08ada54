#!/usr/bin/env python3
"""The daemon's front doors checked with the official npm clients (`openai`,
`@anthropic-ai/sdk`), unchanged. Installs the clients the same way the
fake-upstream check does (npm ci into the build tree; fails, never skips, if
that is impossible), starts the real daemon on a free port, runs the node
checks against it.

    python3 run_front_door.py --work <build>/tests/front_door [--check check_openai_tools.cjs] [--keys]
        [--with-upstream] [--deadlines MS] [--spent-key]

With --keys the daemon requires API keys: two users' keys go to the check as
SWH_KEY and SWH_OTHER_KEY (tenancy checks). --with-upstream also runs
tools/fake_upstream in this process and adds the providers `an` (the
anthropic plugin in front of it) and `oa` (the openai
plugin pointed at it); the check gets its address as FAKE_BASE_URL.

--deadlines MS sets server.deadlines request_ms and stream_idle_ms to MS
(the check gets it as SWH_DEADLINE_MS). --spent-key (with --keys) adds a
third user's key with a one-token budget (budgets:), SWH_SPENT_KEY: its
first answered request spends it, every later one is refused (429).
"""

import argparse
import os
import subprocess
import sys
import threading

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
sys.path.insert(0, os.path.join(HERE, "..", "upstream_fake"))
sys.path.insert(0, os.path.join(HERE, "..", "auth"))
import swh_harness as h  # noqa: E402
import run_check  # noqa: E402  (npm install of the pinned official clients)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--work", required=True)
    parser.add_argument("--check", default="check_openai_client.cjs", help="node script of this folder to run")
    parser.add_argument("--keys", action="store_true", help="API keys on: two users' keys for the check")
    parser.add_argument("--with-upstream", action="store_true", help="the fake upstream and provider `oa`")
    parser.add_argument("--deadlines", type=int, default=0, help="server.deadlines request_ms = stream_idle_ms")
    parser.add_argument("--spent-key", action="store_true", help="a key with a one-token budget (needs --keys)")
    args = parser.parse_args()
    os.makedirs(args.work, exist_ok=True)
    target = run_check.install(args.work)
    extra_env = {}
    extra, fake = "", None
    if args.with_upstream:
        fake = run_check.fake.make_server("127.0.0.1", 0)
        threading.Thread(target=fake.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True).start()
        extra_env["FAKE_BASE_URL"] = "http://127.0.0.1:%d" % fake.server_address[1]
        extra += ("  - name: oa\n    plugin: openai\n    config:\n      base_url: %s\n"
                  '      api_key_env: ""\n      retries: 0\n      model: gpt-4o-mini\n'
                  % h.yaml_str(extra_env["FAKE_BASE_URL"] + "/v1"))
        extra += ("  - name: an\n    plugin: anthropic\n    config:\n      base_url: %s\n"
                  '      api_key_env: ""\n      retries: 0\n      model: claude-sonnet-4-5\n'
                  % h.yaml_str(extra_env["FAKE_BASE_URL"]))
    if args.keys:
        import auth_fixture  # noqa: E402  (tests/auth: fresh keys, the auth: section)
        owner, other = auth_fixture.Key("owner-key", "ann"), auth_fixture.Key("other-key", "bob")
        keys = [owner, other]
        extra_env.update({"SWH_KEY": owner.text, "SWH_OTHER_KEY": other.text})
        if args.spent_key:
            spent = auth_fixture.Key("spent-key", "sue")
            keys.append(spent)
            extra_env["SWH_SPENT_KEY"] = spent.text
        extra += auth_fixture.auth_section(keys)
        if args.spent_key:
            extra += "budgets:\n  window: day\n  keys:\n    spent-key: { tokens: 1 }\n"
    elif args.spent_key:
        parser.error("--spent-key needs --keys")
    server_lines = []
    if args.deadlines:
        server_lines = ["deadlines:", "  request_ms: %d" % args.deadlines, "  stream_ms: 0",
                        "  stream_idle_ms: %d" % args.deadlines]
        extra_env["SWH_DEADLINE_MS"] = str(args.deadlines)
    daemon = h.Daemon(extra_providers=extra, server_lines=server_lines)
    try:
        daemon.start()
        env = dict(os.environ, SWH_BASE_URL="http://127.0.0.1:%d" % daemon.port,
                   NODE_PATH=os.path.join(target, "node_modules"), **extra_env)
        result = subprocess.run(["node", os.path.join(HERE, args.check)], env=env, timeout=300)
        if result.returncode != 0:
            sys.stderr.write(daemon.log_tail())
        return result.returncode
    finally:
        daemon.stop()
        daemon.cleanup()
        if fake is not None:
            fake.shutdown()
            fake.server_close()


if __name__ == "__main__":
    sys.exit(main())
