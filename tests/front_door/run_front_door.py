#!/usr/bin/env python3
"""The daemon's OpenAI-compatible front door checked with the official
`openai` npm client, unchanged. Installs the client the same way the
fake-upstream check does (npm ci into the build tree; fails, never skips, if
that is impossible), starts the real daemon on a free port, runs the node
checks against it.

    python3 run_front_door.py --work <build>/tests/front_door [--check check_openai_tools.cjs] [--keys]

With --keys the daemon requires API keys: two users' keys go to the check as
SWH_KEY and SWH_OTHER_KEY (tenancy checks).
"""

import argparse
import os
import subprocess
import sys

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
    args = parser.parse_args()
    os.makedirs(args.work, exist_ok=True)
    target = run_check.install(args.work)
    key_env = {}
    manifest_kw = {}
    if args.keys:
        import auth_fixture  # noqa: E402  (tests/auth: fresh keys, the auth: section)
        owner, other = auth_fixture.Key("owner-key", "ann"), auth_fixture.Key("other-key", "bob")
        manifest_kw["extra_providers"] = auth_fixture.auth_section([owner, other])
        key_env = {"SWH_KEY": owner.text, "SWH_OTHER_KEY": other.text}
    daemon = h.Daemon(**manifest_kw)
    try:
        daemon.start()
        env = dict(os.environ, SWH_BASE_URL="http://127.0.0.1:%d" % daemon.port,
                   NODE_PATH=os.path.join(target, "node_modules"), **key_env)
        result = subprocess.run(["node", os.path.join(HERE, args.check)], env=env, timeout=120)
        if result.returncode != 0:
            sys.stderr.write(daemon.log_tail())
        return result.returncode
    finally:
        daemon.stop()
        daemon.cleanup()


if __name__ == "__main__":
    sys.exit(main())
