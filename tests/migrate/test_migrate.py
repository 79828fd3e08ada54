"""swarmhost migrate against the real stores: SQLite files, redis-server,
PostgreSQL and the mongodb plugin on the CongoDB emulator, all started by
tests/tooling/swh_servers.py.

One chain carries the same data sqlite → postgres → redis → sqlite and
sqlite → mongodb; after each hop the target's export is byte-for-byte the
source's (every id, time, status, metadata, structured member, message
order). Copies are interrupted (SIGKILL at a known message through
SWARMHOST_TEST_KILL_AFTER_MESSAGES, and SIGKILL from outside) and resumed:
no duplicate, nothing missing. A target holding another session under a
copied id is refused, not overwritten.
"""

import json
import os
import pty
import select
import shutil
import signal
import subprocess
import unittest

import migrate_support as ms
import swh_harness
import swh_servers


class MigrateChain(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.tmp = swh_harness.make_tmpdir("swh-migrate-")
        cls.servers = [swh_servers.PostgresServer(), swh_servers.RedisServer(), swh_servers.MongoServer()]
        try:
            for server in cls.servers:
                server.start()
            cls.source = ms.seed(cls.tmp, os.path.join(cls.tmp, "source.db"))
            cls.source_export = ms.export(cls.source)
            pg, redis, mongo = cls.servers
            cls.postgres = ms.manifest_for(cls.tmp, "postgres.yaml", ms.server_block(pg))
            cls.redis = ms.manifest_for(cls.tmp, "redis.yaml", ms.server_block(redis))
            cls.mongodb = ms.manifest_for(cls.tmp, "mongodb.yaml", ms.server_block(mongo))
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def tearDownClass(cls):
        for server in cls.servers:
            server.cleanup()
        if not os.environ.get("SWH_KEEP_TMP"):
            shutil.rmtree(cls.tmp, ignore_errors=True)

    def sqlite(self, name):
        return ms.manifest_for(self.tmp, name + ".yaml", ms.sqlite_block(os.path.join(self.tmp, name + ".db")))

    def migrate(self, source, target, env_extra=None):
        return ms.run(["migrate", "--from", source, "--to", target], env_extra=env_extra)

    def assertMigrated(self, source, target):
        rc, out, err = self.migrate(source, target)
        self.assertEqual(rc, 0, err + out.decode())
        self.assertIn(b"verified:", out)
        self.assertEqual(ms.export(target), self.source_export, "target's export differs from the source's")
        return out.decode()

    def test_seed_has_what_the_chain_must_carry(self):
        # The comparison below is only as good as the data: check it has the corners.
        recs = ms.records(self.source_export)
        self.assertEqual(len(recs), 6 + 12)
        statuses = {r["session"]["status"] for r in recs}
        self.assertEqual(statuses, {"active", "archived"})
        messages = [m for r in recs for m in r["messages"]]
        self.assertGreater(len(messages), 270)
        self.assertTrue(any("tool_calls" in m["structured"] for m in messages))
        self.assertTrue(any(m["provider_metadata"] for m in messages))
        stamps = [(r["session"]["id"], m["timestamp"]) for r in recs for m in r["messages"]]
        self.assertLess(len(set(stamps)), len(stamps), "no two messages share a timestamp")
        long = [r for r in recs if r["session"]["id"].startswith("gen-0000")][0]
        self.assertEqual([m["id"] for m in long["messages"]], sorted(m["id"] for m in long["messages"]))
        self.assertTrue(any(r["session"]["metadata"].get("patched") for r in recs))

    def test_chain_sqlite_postgres_redis_sqlite_and_mongodb(self):
        out = self.assertMigrated(self.source, self.postgres)
        self.assertIn("18 sessions", out)
        self.assertMigrated(self.postgres, self.redis)
        back = self.sqlite("back")
        self.assertMigrated(self.redis, back)
        self.assertMigrated(back, self.mongodb)
        # Again on a complete target: nothing written, still verified.
        rc, out, err = self.migrate(self.source, self.postgres)
        self.assertEqual(rc, 0, err)
        self.assertIn(b"0 messages written now", out)
        self.assertEqual(ms.export(self.postgres), self.source_export)

    def test_killed_at_a_known_message_then_resumed(self):
        target = self.sqlite("killed")
        # 100 messages in: inside the 240-message session, copied first (sessions go
        # oldest first, and the generated ones are older than the daemon's).
        rc, out, err = self.migrate(self.source, target, {"SWARMHOST_TEST_KILL_AFTER_MESSAGES": "100"})
        self.assertEqual(rc, -signal.SIGKILL, err)
        partial = ms.records(ms.export(target))
        held = sum(len(r["messages"]) for r in partial)
        self.assertEqual(held, 100, "the copy did not stop where it was told")
        total = sum(len(r["messages"]) for r in ms.records(self.source_export))
        self.assertLess(held, total)
        # Resumed: the rest is written, the first 100 are not written twice.
        rc, out, err = self.migrate(self.source, target)
        self.assertEqual(rc, 0, err)
        self.assertIn(("%d messages written now, 100 written by an earlier run" % (total - 100)).encode(), out)
        self.assertEqual(ms.export(target), self.source_export)

    def test_killed_twice_into_redis_then_resumed(self):
        redis = swh_servers.RedisServer()
        redis.start()
        try:
            target = ms.manifest_for(self.tmp, "redis-kill.yaml", ms.server_block(redis))
            for kill_after in ("37", "250"):
                rc, _, err = self.migrate(self.source, target, {"SWARMHOST_TEST_KILL_AFTER_MESSAGES": kill_after})
                self.assertEqual(rc, -signal.SIGKILL, err)
            held = sum(len(r["messages"]) for r in ms.records(ms.export(target)))
            self.assertEqual(held, 37 + 250)
            rc, out, err = self.migrate(self.source, target)
            self.assertEqual(rc, 0, err)
            self.assertEqual(ms.export(target), self.source_export)
        finally:
            redis.cleanup()

    def test_sigkill_from_outside_mid_copy_then_resumed(self):
        target = self.sqlite("outside")
        proc = subprocess.Popen([swh_harness.binary_path(), "migrate", "--from", self.source, "--to", target],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            # Plain progress lines (stderr is a pipe): kill after the first one,
            # drawn once the first message is written.
            seen = []
            for _ in range(100):  # bounded: a log line or two may come first
                line = proc.stderr.readline()
                seen.append(line)
                if not line or line.startswith(b"migrate: "):
                    break
            self.assertTrue(seen[-1].startswith(b"migrate: sessions 0/18, messages 1/"), seen)
            proc.kill()
        finally:
            proc.communicate(timeout=60)
        rc, out, err = self.migrate(self.source, target)
        self.assertEqual(rc, 0, err)
        self.assertEqual(ms.export(target), self.source_export)

    def test_progress_is_a_bar_on_a_terminal(self):
        target = self.sqlite("tty")
        leader, follower = pty.openpty()
        try:
            proc = subprocess.Popen([swh_harness.binary_path(), "migrate", "--from", self.source, "--to", target],
                                    stdout=subprocess.PIPE, stderr=follower, stdin=subprocess.DEVNULL)
            os.close(follower)
            follower = None
            seen = b""
            while True:  # until the child closes the terminal (bounded by its exit)
                ready, _, _ = select.select([leader], [], [], ms.CLI_TIMEOUT_S)
                if not ready:
                    break
                try:
                    chunk = os.read(leader, 65536)
                except OSError:  # EIO: no writer left
                    break
                if not chunk:
                    break
                seen += chunk
            out, _ = proc.communicate(timeout=ms.CLI_TIMEOUT_S)
        finally:
            os.close(leader)
            if follower is not None:
                os.close(follower)
        self.assertEqual(proc.returncode, 0, seen)
        self.assertIn(b"\rmigrate: [", seen)  # redrawn in place, with a bar
        self.assertIn(b"sessions 18/18, messages 297/297", seen)
        self.assertNotIn(b"\nmigrate: sessions", seen)  # no plain lines
        self.assertIn(b"verified:", out)

    def test_target_holding_another_session_under_the_same_id_is_refused(self):
        target = self.sqlite("conflict")
        first = ms.records(self.source_export)[0]
        first["session"]["user_id"] = "someone-else"
        first["session"]["created_at"] += 1
        line = (json.dumps(first, ensure_ascii=False) + "\n").encode()
        rc, _, err = ms.run(["import", "-c", target, "--quiet"], stdin=line)
        self.assertEqual(rc, 0, err)
        before = ms.export(target)
        rc, out, err = self.migrate(self.source, target)
        self.assertEqual(rc, 1, err)
        self.assertIn("different session " + first["session"]["id"], err)
        self.assertIn("verification FAILED", err)
        # The other session is untouched; every other session was copied.
        after = ms.records(ms.export(target))
        self.assertEqual([r for r in after if r["session"]["id"] == first["session"]["id"]],
                         ms.records(before))
        self.assertEqual(len(after), len(ms.records(self.source_export)))

    def test_a_message_id_the_target_has_in_another_session_is_a_conflict(self):
        target = self.sqlite("message-conflict")
        source = ms.records(self.source_export)
        taken = source[1]["messages"][0]["id"]
        other = {"v": 1, "session": dict(source[1]["session"], id="someone-elses", message_count=1),
                 "messages": [dict(source[1]["messages"][0], content="not the source's")]}
        rc, _, err = ms.run(["import", "-c", target, "--quiet"],
                            stdin=(json.dumps(other) + "\n").encode())
        self.assertEqual(rc, 0, err)
        rc, out, err = self.migrate(self.source, target)
        self.assertEqual(rc, 1, err)
        self.assertIn("message %s of session %s already exists" % (taken, source[1]["session"]["id"]), err)
        # Reported, not retried forever: every other session was copied and verified.
        held = {r["session"]["id"]: r for r in ms.records(ms.export(target))}
        self.assertEqual(held["someone-elses"]["messages"][0]["content"], "not the source's")
        for r in source:
            if r["session"]["id"] != source[1]["session"]["id"]:
                self.assertEqual(held[r["session"]["id"]], r)

    def test_unreachable_target_fails_with_the_reason(self):
        port = swh_harness.free_port()
        block = "storage:\n  plugin: redis\n  config:\n    host: \"127.0.0.1\"\n    port: %d\n" \
                "    connect_timeout_ms: 300\n" % port
        target = ms.manifest_for(self.tmp, "nowhere.yaml", block)
        rc, out, err = self.migrate(self.source, target)
        self.assertEqual(rc, 1, err)
        self.assertIn("redis", err.lower())


if __name__ == "__main__":
    unittest.main()
