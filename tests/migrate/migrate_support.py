"""Shared by the migrate/export/import tests: manifests for each store, the
CLI run with stdout and stderr apart, and the data the tests copy around.

The data is made two ways, both through the real binary: a daemon over HTTP
(sessions, echo replies, an archived session, patched metadata: what a store
really holds), and an import of generated lines with the corners a copy can
get wrong (equal timestamps, tool calls, unicode, a long session, types).
"""

import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tooling"))

import storage_daemons  # noqa: E402
import swh_harness  # noqa: E402

CLI_TIMEOUT_S = 240


def manifest_for(workdir, name, storage_block):
    """A manifest file in `workdir` whose storage is `storage_block` (YAML)."""
    text = swh_harness.manifest_text(swh_harness.free_port(), os.path.join(workdir, "unused.db"))
    head, sep, _ = text.partition("storage:\n")
    tail = text[text.index("providers:\n"):]
    path = os.path.join(workdir, name)
    with open(path, "w", encoding="utf-8") as f:
        f.write(head + storage_block + tail)
    return path


def sqlite_block(path):
    return "storage:\n  plugin: sqlite\n  config:\n    path: %s\n" % swh_harness.yaml_str(path)


def server_block(server):
    return storage_daemons.storage_block(server)


def run(args, stdin=None, env_extra=None, timeout=CLI_TIMEOUT_S):
    """swarmhost `args` -> (exit code, stdout bytes, stderr text)."""
    env = dict(os.environ)
    env.update(env_extra or {})
    p = subprocess.run([swh_harness.binary_path()] + list(args), input=stdin, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, env=env, timeout=timeout)
    return p.returncode, p.stdout, p.stderr.decode("utf-8", "replace")


def export(manifest):
    """The store's export (bytes); fails the caller when export fails."""
    rc, out, err = run(["export", "-c", manifest, "--quiet"])
    if rc != 0:
        raise AssertionError("export -c %s -> %d\n%s" % (manifest, rc, err))
    return out


def records(export_bytes):
    return [json.loads(line) for line in export_bytes.decode("utf-8").splitlines()]


def seed_with_daemon(db_path, workdir, sessions=6, turns=3):
    """Sessions made by a real daemon over HTTP in the SQLite file `db_path`."""
    d = swh_harness.Daemon(workdir=workdir, db_path=db_path)
    d.start()
    try:
        c = d.client
        for i in range(sessions):
            s = c.create_session("user-%d" % (i % 3), metadata={"n": i, "tags": ["seed", "ü"]})
            for t in range(turns):
                r = c.send(s["id"], "turn %d of session %d: ok ✓" % (t, i), metadata={"turn": t})
                if r.status not in (200, 201):
                    raise AssertionError("send -> %r" % (r,))
            if i % 3 == 0:
                r = c.post("/v1/sessions/%s/archive" % s["id"])
                if r.status not in (200, 201):
                    raise AssertionError("archive -> %r" % (r,))
            if i % 3 == 1:
                r = c.patch("/v1/sessions/%s" % s["id"], {"metadata": {"patched": True, "ratio": 0.25}})
                if r.status not in (200, 201):
                    raise AssertionError("patch -> %r" % (r,))
    finally:
        if d.stop() != 0:
            print(d.log_tail(30))
        d.cleanup()


def generated_lines(sessions=12, long_session_messages=240):
    """Export lines with the corners of a copy; session 0 is long."""
    lines = []
    base = 1_700_000_000_000_000
    for i in range(sessions):
        sid = "gen-%04d-%s" % (i, "x" * (i % 3))
        created = base + i * 1_000_000
        count = long_session_messages if i == 0 else i % 5
        messages = []
        for j in range(count):
            m = {"id": "%s-m%04d" % (sid, j), "role": ("user", "assistant", "tool")[j % 3],
                 "content": "message %d of %s\nline two \"quoted\" \\ 日本語 😀" % (j, sid),
                 # pairs of messages share a timestamp: the order must come from insertion
                 "timestamp": created + 1000 + (j // 2) * 10,
                 "metadata": {"j": j, "nested": {"list": [1, 2.5, None, True, "s"]}} if j % 4 == 0 else {},
                 "provider_message_id": "prov-%d" % j if j % 3 == 1 else "",
                 "provider_metadata": {"usage": {"input_tokens": j}} if j % 3 == 1 else {},
                 "structured": {}}
            if j % 3 == 1 and j % 2 == 1:
                m["structured"] = {"tool_calls": [{"id": "call_%d" % j, "name": "get_weather",
                                                   "arguments": "{\"city\": \"Zürich\"}"}]}
            if j % 3 == 2:
                m["structured"] = {"tool_call_id": "call_%d" % (j - 1)}
            messages.append(m)
        last = messages[-1]["timestamp"] + 5 if messages else created
        session = {"id": sid, "user_id": "gen-user-%d" % (i % 4), "provider": "echo", "model": "m-%d" % i,
                   "status": "archived" if i % 4 == 3 else "active", "type": "",
                   "created_at": created, "last_activity": last, "message_count": count,
                   "config": {"temperature": 0.5} if i % 2 else {},
                   "context": {"user_context": {"lang": "de"}, "system_context": {}},
                   "metadata": {"i": i, "title": "Sitzung Nr. %d — ½" % i}}
        lines.append(json.dumps({"v": 1, "session": session, "messages": messages}, ensure_ascii=False))
    return ("\n".join(lines) + "\n").encode("utf-8")


def seed(workdir, db_path):
    """Both kinds of data in a SQLite store; returns its manifest."""
    manifest = manifest_for(workdir, "source.yaml", sqlite_block(db_path))
    seed_with_daemon(db_path, workdir)
    rc, _, err = run(["import", "-c", manifest, "--quiet"], stdin=generated_lines())
    if rc != 0:
        raise AssertionError("seeding import -> %d\n%s" % (rc, err))
    return manifest
