"""Disk full and failing fsync inside the real daemon, with libfiu
(Python 3 standard library only).

The daemon runs under `fiu-run -x` (Debian fiu-utils: libfiu's POSIX
wrappers preloaded, remote control on), and the test turns faults on and off
in the running process with `fiu-ctrl`: write/pwrite failing with ENOSPC
(disk full) and fsync/fdatasync failing with EIO. Nothing is mocked: the
SQLite store, the backup hook and the multimodal attachment store meet the
errors from their own system calls.

What must hold (docs/reliability.md, "Disk full and failing writes"):
  - a write that fails is answered with a JSON error (503) naming the cause,
    never with a 2xx: a failed fsync is never reported as success;
  - reads keep working during the fault;
  - when the fault clears, writes resume without a restart;
  - nothing acknowledged is lost, nothing refused is stored, and the
    database passes PRAGMA integrity_check afterwards;
  - the backup hook counts a failed snapshot and writes the next one whole;
    an upload that fails leaves no file behind and works once the disk does.

Run by hand (from this folder):
  SWH_BINARY=<build>/host/swarmhost SWH_PLUGIN_DIR=<build>/plugins \\
    python3 -m unittest -v test_disk_faults
"""

import base64
import glob
import hashlib
import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))

import swh_harness  # noqa: E402

ENOSPC, EIO = 28, 5
DISK_FULL = ["posix/io/rw/write", "posix/io/rw/pwrite", "posix/io/rw/writev", "posix/io/rw/pwritev"]
FSYNC = ["posix/io/sync/fsync", "posix/io/sync/fdatasync"]
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


class FiuDaemon(swh_harness.Daemon):
    """The daemon under fiu-run, with its faults switched by fiu-ctrl."""

    def ctrl_prefix(self):
        return os.path.join(self.workdir, "fiu-ctrl")

    def command(self):
        return ["fiu-run", "-x", "-f", self.ctrl_prefix()] + super().command()

    enabled = set()

    def faults(self, action, points, errno=None):
        if action == "disable":  # (libfiu logs an error for a point that is not on)
            points = [p for p in points if p in self.enabled]
            if not points:
                return
        self.enabled = (self.enabled | set(points)) if action == "enable" else (self.enabled - set(points))
        argv = ["fiu-ctrl", "-f", self.ctrl_prefix()]
        for point in points:
            argv += ["-c", "%s name=%s%s" % (action, point, ",failinfo=%d" % errno if errno else "")]
        subprocess.run(argv + [str(self.proc.pid)], check=True, timeout=10, capture_output=True)


def manifest(daemon_dir, port, db_path, backup_dir):
    text = swh_harness.manifest_text(port, db_path)
    text += ("hooks:\n  - name: backup\n    plugin: backup\n    config:\n"
             "      dir: %s\n      triggers: [every_2_messages]\n" % swh_harness.yaml_str(backup_dir))
    text += ("session_types:\n  - plugin: multimodal\n    config:\n"
             "      attachments_dir: %s\n" % swh_harness.yaml_str(os.path.join(daemon_dir, "attachments")))
    return text


@unittest.skipUnless(shutil.which("fiu-run") and shutil.which("fiu-ctrl"),
                     "fiu-run/fiu-ctrl not installed (Debian fiu-utils; tools/install-deps.sh --test installs it)")
class DiskFaults(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        workdir = swh_harness.make_tmpdir("swh-diskfault-")
        cls.backup_dir = os.path.join(workdir, "backups")
        port = swh_harness.free_port()
        db_path = os.path.join(workdir, "swarmhost.db")
        cls.daemon = FiuDaemon(workdir=workdir, port=port, db_path=db_path,
                               manifest=manifest(workdir, port, db_path, cls.backup_dir))
        cls.daemon.owns_workdir = True
        cls.daemon.start_or_cleanup()
        cls.client = cls.daemon.client
        cls.acked, cls.refused = {}, set()  # content -> session id; contents answered with an error

    @classmethod
    def tearDownClass(cls):
        cls.daemon.cleanup()

    def tearDown(self):
        self.daemon.faults("disable", DISK_FULL + FSYNC)

    # ---- helpers
    def send(self, sid, content):
        r = self.client.send(sid, content)
        if r.status == 201:
            self.acked[content] = sid
        else:
            self.refused.add(content)
        return r

    def assert_json_error(self, r, status, pattern, what):
        self.assertEqual(r.status, status, "%s: %r\n%s" % (what, r, self.daemon.log_tail()))
        self.assertTrue(r.content_type.startswith("application/json"), r)
        self.assertRegex(r.json["error"]["message"], pattern, what)

    def metric(self, name, labels):
        text = self.client.get("/metrics").raw.decode("utf-8", "replace")
        m = re.search(r"^%s\{[^}]*%s[^}]*\} (\S+)$" % (re.escape(name), re.escape(labels)), text, re.M)
        return float(m.group(1)) if m else 0.0

    def wait_for(self, predicate, what, deadline_s=15.0):
        deadline = time.monotonic() + deadline_s
        while time.monotonic() < deadline:
            if predicate():
                return
            time.sleep(0.05)
        self.fail("timed out waiting for %s\n%s" % (what, self.daemon.log_tail()))

    def upload(self, sid, data):
        return self.client.post("/v1/sessions/%s/attachments" % sid,
                                {"name": "cat.png", "data_base64": base64.b64encode(data).decode()})

    # ---- tests (run in name order on one daemon)
    def test_1_sqlite_disk_full_then_recovers_without_restart(self):
        sid = self.client.create_session("disk", type="multimodal")["id"]
        self.assertEqual(self.send(sid, "before-full").status, 201)
        self.daemon.faults("enable", DISK_FULL, ENOSPC)
        for i in range(3):
            self.assert_json_error(self.send(sid, "while-full-%d" % i), 503, "disk is full", "send while full")
        got = self.client.get("/v1/sessions/%s/messages" % sid)
        self.assertEqual(got.status, 200, "reads go on while the disk is full: %r" % got)
        self.assertEqual([m["content"] for m in got.json["messages"] if m["role"] == "user"], ["before-full"])
        self.daemon.faults("disable", DISK_FULL)
        self.assertEqual(self.send(sid, "after-full").status, 201, self.daemon.log_tail())

    def test_2_sqlite_failed_fsync_is_never_success(self):
        sid = self.client.create_session("disk", type="multimodal")["id"]
        self.assertEqual(self.send(sid, "before-eio").status, 201)
        self.daemon.faults("enable", FSYNC, EIO)
        for i in range(3):
            self.assert_json_error(self.send(sid, "while-eio-%d" % i), 503, "I/O error", "send while fsync fails")
        self.daemon.faults("disable", FSYNC)
        self.assertEqual(self.send(sid, "after-eio").status, 201, self.daemon.log_tail())

    def test_3_backup_hook_counts_the_failure_and_writes_the_next_snapshot_whole(self):
        sid = self.client.create_session("disk", type="multimodal")["id"]
        failed_before = self.metric("swarmhost_hook_events_failed_total", 'hook="backup"')
        # Only write(2) fails: SQLite writes with pwrite, so the message is
        # stored; the hook's snapshot (write + fsync of a temp file) is not.
        self.daemon.faults("enable", ["posix/io/rw/write"], ENOSPC)
        self.assertEqual(self.send(sid, "backup-1").status, 201)  # 2 messages: a snapshot is due
        self.wait_for(lambda: self.metric("swarmhost_hook_events_failed_total", 'hook="backup"') > failed_before,
                      "the failed snapshot to be counted")
        self.daemon.faults("disable", ["posix/io/rw/write"])
        self.assertEqual(glob.glob(os.path.join(self.backup_dir, ".*tmp*")), [], "a temp file was left behind")
        self.assertEqual(self.send(sid, "backup-2").status, 201)
        target = os.path.join(self.backup_dir, "%s.json" % sid)

        def whole_snapshot():
            try:
                with open(target, encoding="utf-8") as f:
                    snapshot = json.load(f)
            except (OSError, ValueError):
                return False
            return [m["content"] for m in snapshot["messages"] if m["role"] == "user"] == ["backup-1", "backup-2"]

        self.wait_for(whole_snapshot, "the next snapshot with every message")

    def test_4_upload_on_a_full_disk_fails_clean_and_works_after(self):
        sid = self.client.create_session("disk", type="multimodal")["id"]
        attachments = os.path.join(self.daemon.workdir, "attachments")
        self.daemon.faults("enable", ["posix/io/rw/write"], ENOSPC)
        self.assert_json_error(self.upload(sid, PNG), 503, "No space left on device", "upload while full")
        self.daemon.faults("disable", ["posix/io/rw/write"])
        self.assertEqual(os.listdir(attachments) if os.path.isdir(attachments) else [], [],
                         "a failed upload left a file behind")
        self.daemon.faults("enable", FSYNC, EIO)
        self.assert_json_error(self.upload(sid, PNG), 503, "Input/output error", "upload while fsync fails")
        self.daemon.faults("disable", FSYNC)
        self.assertFalse(any(n.startswith(".") for n in os.listdir(attachments)), "a temp file was left behind")
        ok = self.upload(sid, PNG)
        self.assertEqual(ok.status, 201, ok)
        with open(os.path.join(attachments, hashlib.sha256(PNG).hexdigest()), "rb") as f:
            self.assertEqual(f.read(), PNG)

    def test_5_nothing_acknowledged_lost_nothing_refused_stored_database_intact(self):
        # The last write before the stop fails its fsync: nothing written
        # after it could cover its frames, so a transaction SQLite rolled
        # back would show here if it came back when the file is opened again.
        last = self.client.create_session("disk", type="multimodal")["id"]
        self.daemon.faults("enable", FSYNC, EIO)
        self.assert_json_error(self.send(last, "eio-last"), 503, "I/O error", "the last send")
        self.daemon.faults("disable", FSYNC)
        rc = self.daemon.stop()
        self.assertEqual(rc, 0, self.daemon.log_tail())
        db = sqlite3.connect(self.daemon.db_path)
        try:
            self.assertEqual(db.execute("PRAGMA integrity_check").fetchall(), [("ok",)])
            stored = {}
            for content, session_id in db.execute("SELECT content, session_id FROM messages WHERE role = 'user'"):
                stored.setdefault(content, []).append(session_id)
            counts = db.execute("SELECT s.message_count, (SELECT count(*) FROM messages m WHERE m.session_id = s.id) "
                                "FROM sessions s").fetchall()
        finally:
            db.close()
        self.assertTrue(self.acked, "no send was acknowledged: the earlier tests did not run")
        for content, acked_in in self.acked.items():
            self.assertEqual(stored.get(content), [acked_in], "acknowledged %r not stored exactly once" % content)
        self.assertEqual([c for c in self.refused if c in stored], [], "a refused send was stored")
        self.assertEqual([c for c in counts if c[0] != c[1]], [], "message_count differs from the rows")
        self.daemon.start()
        self.assertEqual(self.client.get("/healthz").status, 200)
        self.assertEqual(self.client.messages(last), [], "the refused send came back after a restart")


if __name__ == "__main__":
    unittest.main()
