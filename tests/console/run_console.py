#!/usr/bin/env python3
"""The operator's console (/console, docs/console.md) in a real browser:
puppeteer-core (pinned in package-lock.json, installed with `npm ci` into the
build tree like tests/upstream_fake; fails, never skips, when npm or
chromium is missing) drives Debian's chromium against the real daemon.

    python3 run_console.py --work <build>/tests/console            # the checks
    python3 run_console.py --work DIR --screenshots docs/console   # the docs' PNGs

Two daemons: one with API keys (an admin key and a user's key) and one with
`auth: none` on loopback; both on SQLite with the echo provider. The seeded
sessions (a tool loop, an image attachment, a message carrying markup) go to
the node script as SWH_SEEDED.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
sys.path.insert(0, os.path.join(HERE, "..", "upstream_fake"))
sys.path.insert(0, os.path.join(HERE, "..", "auth"))
import swh_harness as h  # noqa: E402
import run_check  # noqa: E402  (npm ci of a pinned package.json)
import auth_fixture  # noqa: E402  (fresh keys, the auth: section)

NODE_DEADLINE_S = 240
XSS = '<script>window.__swh_xss = 1</script><img src=x onerror="window.__swh_xss = 2"> & "quotes"'
# A 1x1 PNG: an attachment the console shows inline (data: URLs only).
PIXEL = ("data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk"
         "+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==")
WEATHER_TOOL = {"type": "function", "name": "get_weather", "description": "Current weather of a city",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                               "required": ["city"]}}


def call(client, key, method, path, body=None, expect=(200, 201)):
    resp = client.request(method, path, body=body, headers=key.bearer())
    if resp.status not in expect:
        run_check.die("seeding: %s %s answered %s: %r" % (method, path, resp.status, resp.raw[:300]))
    return resp.json


def seed(client, admin):
    """Sessions the checks (and the screenshots) look at."""
    def session(user, **extra):
        return call(client, admin, "POST", "/v1/sessions", dict(user_id=user, **extra))["id"]

    def send(sid, content, **extra):
        return call(client, admin, "POST", "/v1/sessions/%s/messages" % sid, dict(content=content, **extra))

    seeded = {}
    sid = seeded["tools"] = session("ann", metadata={"title": "Weather in Lisbon", "team": "support"})
    send(sid, "Hello! Can you help me plan a trip?")
    reply = send(sid, "What is the weather like? Use get_weather for Lisbon.",
                 params={"tools": [WEATHER_TOOL]})
    calls = reply["assistant_message"].get("tool_calls") or []
    if not calls:
        run_check.die("seeding: echo made no tool call: %r" % reply)
    seeded["tool_call_id"] = calls[0]["id"]
    send(sid, '{"city": "Lisbon", "temperature_c": 21, "sky": "clear"}', role="tool",
         tool_call_id=calls[0]["id"])
    sid = seeded["image"] = session("bob", metadata={"title": "Screenshot triage"})
    send(sid, "What is in this picture?", parts=[{"type": "text", "text": "What is in this picture?"},
                                                  {"type": "image", "url": PIXEL, "detail": "low"}])
    sid = seeded["xss"] = session("mallory", metadata={"title": XSS})
    send(sid, XSS)
    for user, title in (("ann", "Refund policy"), ("carol", "Onboarding questions"), ("dave", "SQL help")):
        sid = session(user, metadata={"title": title})
        send(sid, "Hi, a quick question about %s." % title.lower())
    seeded["backup"] = session("carol", provider="backup", metadata={"title": "On the backup provider"})
    send(seeded["backup"], "Which provider answers this?")
    seeded["collaborative"] = session("dave", type="collaborative", metadata={"title": "Team review"})
    archived = session("erin", metadata={"title": "Old thread"})
    send(archived, "This one is done.")
    call(client, admin, "POST", "/v1/sessions/%s/archive" % archived)
    seeded["archived"] = archived
    seeded["stream"] = session("ann", metadata={"title": "Streaming check"})
    return seeded


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--work", required=True)
    parser.add_argument("--screenshots", help="write the docs' screenshots into this folder instead")
    args = parser.parse_args()
    os.makedirs(args.work, exist_ok=True)
    target = run_check.install(os.path.abspath(args.work), HERE, "puppeteer-core")
    chromium = shutil.which("chromium")
    if not chromium:
        run_check.die("chromium not found on PATH: install Debian's `chromium` (tools/install-deps.sh); "
                      "this test does not skip")
    admin = auth_fixture.Key("ops-admin", "ops", role="admin")
    user = auth_fixture.Key("ann-key", "ann")
    # A second provider: the echo plugin again, under another name and prefix.
    backup = "  - name: backup\n    plugin: echo\n    config:\n      prefix: backup\n      chunk_words: 2\n"
    backup += "session_types:\n  - plugin: collaborative\n"
    keyed = h.Daemon(extra_providers=backup + auth_fixture.auth_section([admin, user]))
    open_daemon = h.Daemon()
    try:
        keyed.start()
        open_daemon.start()
        seeded = seed(keyed.client, admin)
        env = dict(os.environ, NODE_PATH=os.path.join(target, "node_modules"), CHROMIUM=chromium,
                   SWH_BASE_URL="http://127.0.0.1:%d" % keyed.port,
                   SWH_OPEN_URL="http://127.0.0.1:%d" % open_daemon.port,
                   SWH_ADMIN_KEY=admin.text, SWH_USER_KEY=user.text, SWH_MANIFEST=keyed.manifest_path,
                   SWH_SEEDED=json.dumps(seeded))
        script = "check_console.cjs"
        if args.screenshots:
            script = "screenshots.cjs"
            env["SWH_SHOTS_DIR"] = os.path.abspath(args.screenshots)
        result = subprocess.run(["node", os.path.join(HERE, script)], env=env, timeout=NODE_DEADLINE_S)
        if result.returncode != 0:
            sys.stderr.write(keyed.log_tail())
        return result.returncode
    finally:
        for daemon in (keyed, open_daemon):
            daemon.stop()
            daemon.cleanup()


if __name__ == "__main__":
    sys.exit(main())
