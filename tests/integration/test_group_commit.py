"""The SQLite store's group commit under the send path: many concurrent sends
share commits, each acknowledged send is stored exactly once, and a write
that fails inside a shared commit (its session deleted under it) fails only
its own send. Real daemon, real SQLite file (synchronous=full), echo provider.
No timing is asserted: how many writes a commit carried is printed, not
checked."""

import os
import re
import threading
import unittest
import uuid

from swh_harness import Client, Daemon, DaemonTestCase, free_port, make_tmpdir, manifest_text

THREADS = 16
PER_THREAD = 12
SESSIONS = 8


def uid(prefix="u"):
    return "%s-%s" % (prefix, uuid.uuid4().hex[:12])


def manifest_with_storage(port, db_path, **config):
    """The harness manifest with sqlite config keys added (`config`: key -> YAML text)."""
    text = manifest_text(port, db_path)
    extra = "".join("    %s: %s\n" % (k, v) for k, v in config.items())
    text, n = re.subn(r"(  plugin: sqlite\n  config:\n    path: [^\n]*\n)", lambda m: m.group(1) + extra, text)
    if n != 1:
        raise AssertionError("unexpected harness manifest layout:\n" + text)
    return text


def metric(client, name):
    r = client.get("/metrics")
    if r.status != 200:
        raise AssertionError("GET /metrics -> %r" % r)
    m = re.search(r"^%s(?:\{[^}]*\})? ([0-9.e+]+)$" % re.escape(name), r.body.decode(), re.M)
    return float(m.group(1)) if m else 0.0


class GroupCommitSends(DaemonTestCase):
    storage_config = {"synchronous": '"full"'}

    @classmethod
    def setUpClass(cls):
        port, workdir = free_port(), make_tmpdir()
        text = manifest_with_storage(port, os.path.join(workdir, "swarmhost.db"), **cls.storage_config)
        d = Daemon(workdir=workdir, port=port, manifest=text)
        d.owns_workdir = True
        cls.daemon = d
        d.start_or_cleanup()
        cls.client = d.client

    def run_threads(self, target, n):
        errors = []

        def wrap(i):
            try:
                target(i)
            except BaseException as e:  # reported below, with the thread number
                errors.append("thread %d: %r" % (i, e))

        threads = [threading.Thread(target=wrap, args=(i,), daemon=True) for i in range(n)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
        self.assertFalse([t for t in threads if t.is_alive()], "threads still running after 120 s")
        self.assertEqual(errors, [])

    def stored(self, sid):
        return self.client.messages(sid, "?limit=10000")

    def test_concurrent_sends_each_stored_once(self):
        user = uid()
        sids = [self.client.create_session(user)["id"] for _ in range(SESSIONS)]
        acked = {}  # user message id -> (session, content, assistant message id)
        lock = threading.Lock()
        commits_before = metric(self.client, "swh_sqlite_commits_total")
        ops_before = metric(self.client, "swh_sqlite_committed_operations_total")

        def worker(i):
            c = Client(self.daemon.port, keep_alive=True)
            try:
                for j in range(PER_THREAD):
                    sid = sids[(i + j) % SESSIONS]
                    content = "t%d-m%d" % (i, j)
                    r = c.send(sid, content)
                    if r.status != 201:
                        raise AssertionError("%s -> %r" % (content, r))
                    with lock:
                        acked[r.json["user_message"]["id"]] = (sid, content, r.json["assistant_message"]["id"])
            finally:
                c.close()

        self.run_threads(worker, THREADS)
        self.assertEqual(len(acked), THREADS * PER_THREAD)
        total = 0
        for sid in sids:
            messages = self.stored(sid)
            ids = [m["id"] for m in messages]
            self.assertEqual(len(ids), len(set(ids)), "a message stored twice in %s" % sid)
            mine = {u: v for u, v in acked.items() if v[0] == sid}
            by_id = {m["id"]: m for m in messages}
            for user_id, (_, content, reply_id) in mine.items():
                self.assertIn(user_id, by_id, "acknowledged user message %s missing" % content)
                self.assertEqual(by_id[user_id]["content"], content)
                self.assertIn(reply_id, by_id, "acknowledged reply to %s missing" % content)
            self.assertEqual(len(messages), 2 * len(mine))
            session = self.client.get("/v1/sessions/%s" % sid).json
            self.assertEqual(session["message_count"], 2 * len(mine))
            total += len(messages)
        self.assertEqual(total, 2 * THREADS * PER_THREAD)
        commits = metric(self.client, "swh_sqlite_commits_total") - commits_before
        ops = metric(self.client, "swh_sqlite_committed_operations_total") - ops_before
        self.assertGreaterEqual(ops, 2 * THREADS * PER_THREAD)
        print("\n%d writes in %d commits (%.2f a commit)" % (ops, commits, ops / max(commits, 1)))

    def test_a_failing_write_fails_only_its_own_send(self):
        # Sends run against sessions that are deleted while they run: a send
        # whose write finds its session gone fails (404, or 409 when the
        # session was already gone at the start), and nothing else; every
        # send to a session that stays is answered 201 and stored once, also
        # when its write shared a commit with a failing one.
        user = uid()
        keep = [self.client.create_session(user)["id"] for _ in range(4)]
        doomed = [self.client.create_session(user)["id"] for _ in range(4)]
        results = {}  # (thread, j) -> (sid, status, body)
        lock = threading.Lock()

        def sender(i):
            c = Client(self.daemon.port, keep_alive=True)
            try:
                for j in range(PER_THREAD):
                    sid = (keep if (i + j) % 2 == 0 else doomed)[(i + j) % 4]
                    r = c.send(sid, "t%d-m%d" % (i, j))
                    with lock:
                        results[(i, j)] = (sid, r.status, r.json)
            finally:
                c.close()

        def deleter(_):
            c = Client(self.daemon.port, keep_alive=True)
            try:
                for sid in doomed:
                    r = c.delete("/v1/sessions/%s" % sid)
                    if r.status not in (200, 204):
                        raise AssertionError("DELETE %s -> %r" % (sid, r))
            finally:
                c.close()

        def work(i):
            (deleter if i == THREADS else sender)(i)

        self.run_threads(work, THREADS + 1)
        self.assertEqual(len(results), THREADS * PER_THREAD)
        acked = {}
        for (i, j), (sid, status, body) in results.items():
            if sid in keep:
                self.assertEqual(status, 201, "send %d/%d to a kept session: %r" % (i, j, body))
                acked[body["user_message"]["id"]] = (sid, body["assistant_message"]["id"])
            else:
                self.assertIn(status, (201, 404, 409), "send %d/%d to a deleted session: %r" % (i, j, body))
        for sid in keep:
            messages = self.stored(sid)
            ids = [m["id"] for m in messages]
            self.assertEqual(len(ids), len(set(ids)))
            mine = {u: a for u, (s, a) in acked.items() if s == sid}
            for user_id, reply_id in mine.items():
                self.assertIn(user_id, ids)
                self.assertIn(reply_id, ids)
            self.assertEqual(len(messages), 2 * len(mine))
            self.assertEqual(self.client.get("/v1/sessions/%s" % sid).json["message_count"], 2 * len(mine))
        for sid in doomed:
            self.assertEqual(self.client.get("/v1/sessions/%s" % sid).status, 404)
        failed = sum(1 for sid, status, _ in results.values() if sid in doomed and status != 201)
        print("\n%d of %d sends to deleted sessions failed" % (failed, len(results) - len(acked)))


class OneCommitPerWrite(GroupCommitSends):
    """The same with group commit off: one transaction and fsync per write."""

    storage_config = {"synchronous": '"full"', "group_commit": "false"}


class SmallBatches(GroupCommitSends):
    """The same with commits of at most 2 writes."""

    storage_config = {"synchronous": '"full"', "group_commit_max_batch": "2"}


if __name__ == "__main__":
    unittest.main()
