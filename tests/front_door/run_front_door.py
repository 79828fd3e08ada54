#!/usr/bin/env python3
"""The daemon's front doors checked with the official npm clients (`openai`,
`@anthropic-ai/sdk`), unchanged. Installs the clients the same way the
fake-upstream check does (npm ci into the build tree; fails, never skips, if
that is impossible), starts the real daemon on a free port, runs the node
checks against it.

    python3 run_front_door.py --work <build>/tests/front_door [--check check_openai_tools.cjs] [--keys]
        [--with-upstream]

With --keys the daemon requires API keys: two users' keys go to the check as
SWH_KEY and SWH_OTHER_KEY (tenancy checks). --with-upstream also runs
tools/fake_upstream in this process and adds the providers `an` (the
anthropic plugin in front of it) and `oa` (the openai
plugin pointed at it); the check gets its address as FAKE_BASE_URL.
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
        extra += auth_fixture.auth_section([owner, other])
        extra_env.update({"SWH_KEY": owner.text, "SWH_OTHER_KEY": other.text})
    daemon = h.Daemon(extra_providers=extra)
    try:
        daemon.start()
        env = dict(os.environ, SWH_BASE_URL="http://127.0.0.1:%d" % daemon.port,
                   NODE_PATH=os.path.join(target, "node_modules"), **extra_env)
        result = subprocess.run(["node", os.path.join(HERE, args.check)], env=env, timeout=120)
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
