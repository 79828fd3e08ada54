"""kill -9 durability through the real daemon (Python 3 standard library only).

Several threads POST messages over HTTP to a few sessions while the daemon is
SIGKILLed at a seeded random moment; it is restarted on the same store and
the next round begins. At the end (and after every restart) every message
whose 201 reached a client must be stored exactly once - the user message and
the assistant reply the 201 carried, under the ids it carried - and no
content may be stored twice even when its answer was lost. Every send carries
an Idempotency-Key; after each restart the sends whose answer was lost are
retried with their key, and each must then be stored exactly once. The session's
message_count must equal the rows stored (counter and rows are one atomic
step). Run for SQLite (default `synchronous: full`), PostgreSQL
(`synchronous_commit = on`) and Redis (`appendfsync always`); the servers come
from tests/tooling/swh_servers.py. Only the daemon is killed: this proves
the acknowledge-after-commit promise, not the server's own crash safety.

Environment: SWH_DURABILITY_SEED (default 9), SWH_DURABILITY_ROUNDS
(default 4), plus the harness's SWH_BINARY / SWH_PLUGIN_DIR.
"""

import http.client
import json
import os
import random
import shutil
import sys
import threading
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
sys.path.insert(0, os.path.join(HERE, "..", "tooling"))

import swh_harness  # noqa: E402
import swh_servers  # noqa: E402

SEED = int(os.environ.get("SWH_DURABILITY_SEED", "9"))
ROUNDS = int(os.environ.get("SWH_DURABILITY_ROUNDS", "4"))
THREADS = 6
SESSIONS = 3
KILL_AFTER_S = (0.25, 1.2)  # the kill lands somewhere in this window after writers start
REQUEST_TIMEOUT_S = 10.0


class Ledger:
    """What clients saw: acknowledged sends (with the ids of the 201) and
    sends whose outcome is unknown (error, reset, no answer)."""

    def __init__(self):
        self.lock = threading.Lock()
        self.acked = {}    # content -> (session_id, user_message_id, assistant_message_id)
        self.unknown = {}  # content -> (session_id, what happened)
        self.rejected = []  # non-201 answers that are not crash-related (should stay empty)

    def ack(self, content, sid, body):
        with self.lock:
            self.acked[content] = (sid, body["user_message"]["id"], body["assistant_message"]["id"])

    def lost(self, content, sid, what):
        with self.lock:
            self.unknown[content] = (sid, what)


def writer(port, sessions, tag, ledger, stop):
    i = 0
    while not stop.is_set():
        sid = sessions[i % len(sessions)]
        content = "%s-%d" % (tag, i)
        i += 1
        payload = json.dumps({"content": content}).encode()
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=REQUEST_TIMEOUT_S)
        try:
            conn.request("POST", "/v1/sessions/%s/messages" % sid, body=payload,
                         headers={"Content-Type": "application/json", "Idempotency-Key": content})
            resp = conn.getresponse()
            raw = resp.read()
        except (OSError, http.client.HTTPException) as e:
            # The daemon died with the request in flight: it may or may not be stored.
            ledger.lost(content, sid, repr(e))
            return
        finally:
            conn.close()
        if resp.status == 201:
            ledger.ack(content, sid, json.loads(raw))
        elif resp.status == 503:
            ledger.lost(content, sid, "503 %r" % raw[:200])  # shutting down / store unavailable
        else:
            ledger.rejected.append((content, resp.status, raw[:300]))
            return


class DurabilityMixin:
    """One store. Subclasses provide make_daemon() and cleanup_store()."""

    store = "?"

    def make_daemon(self):
        raise NotImplementedError

    def check_store(self, daemon, sessions, ledger, label):
        client = daemon.client
        stored = {}  # content -> list of (sid, user message id)
        replies = {}  # assistant message id -> count
        for sid in sessions:
            session = client.get("/v1/sessions/%s" % sid)
            self.assertEqual(session.status, 200, session)
            msgs = client.messages(sid)
            self.assertEqual(session.json["message_count"], len(msgs),
                             "%s %s: message_count %d but %d messages stored"
                             % (label, sid, session.json["message_count"], len(msgs)))
            for m in msgs:
                if m["role"] == "user":
                    stored.setdefault(m["content"], []).append((sid, m["id"]))
                else:
                    replies[m["id"]] = replies.get(m["id"], 0) + 1
        dup = {c: v for c, v in stored.items() if len(v) != 1}
        self.assertEqual(dup, {}, "%s: contents stored more than once" % label)
        missing, wrong = [], []
        for content, (sid, uid, aid) in ledger.acked.items():
            got = stored.get(content)
            if not got:
                missing.append(content)
                continue
            if got[0] != (sid, uid) or replies.get(aid) != 1:
                wrong.append((content, got, (sid, uid, aid), replies.get(aid)))
        self.assertEqual(missing, [], "%s: %d acknowledged messages lost after kill -9 (of %d acked)"
                         % (label, len(missing), len(ledger.acked)))
        self.assertEqual(wrong, [], "%s: acknowledged messages stored under other ids" % label)
        unknown_stored = sum(1 for c in ledger.unknown if c in stored)
        return len(stored), unknown_stored

    def retry_lost_sends(self, daemon, ledger):
        """A client's retry after a lost answer: same content, same key. Each
        must be answered (201) and, checked by check_store, stored once."""
        client = daemon.client
        was_stored = 0
        for content, (sid, _what) in sorted(ledger.unknown.items()):
            before = [m for m in client.messages(sid) if m["role"] == "user" and m["content"] == content]
            r = client.post("/v1/sessions/%s/messages" % sid, {"content": content},
                            headers={"Idempotency-Key": content})
            self.assertEqual(r.status, 201, "retry of %s: %r" % (content, r))
            if before:
                was_stored += 1
                self.assertEqual(r.json["user_message"]["id"], before[0]["id"],
                                 "the retry of %s must answer the stored question" % content)
            ledger.ack(content, sid, r.json)
        retried = len(ledger.unknown)
        ledger.unknown.clear()
        return retried, was_stored

    def test_kill9_keeps_every_acknowledged_message_once(self):
        rng = random.Random("%s-%d" % (self.store, SEED))
        daemon = self.make_daemon()
        self.addCleanup(daemon.cleanup)
        daemon.start()
        sessions = [daemon.client.create_session("durability-%d" % k)["id"] for k in range(SESSIONS)]
        ledger = Ledger()
        report = []
        for rnd in range(ROUNDS):
            stop = threading.Event()
            threads = [threading.Thread(target=writer, args=(daemon.port, sessions, "r%d-t%d" % (rnd, t), ledger, stop),
                                        daemon=True) for t in range(THREADS)]
            before = len(ledger.acked)
            for t in threads:
                t.start()
            delay = rng.uniform(*KILL_AFTER_S)
            time.sleep(delay)
            daemon.kill()  # SIGKILL: no shutdown path runs
            stop.set()
            for t in threads:
                t.join(timeout=REQUEST_TIMEOUT_S + 5)
            self.assertFalse(any(t.is_alive() for t in threads), "writers hung after the kill")
            self.assertEqual(ledger.rejected, [], "requests refused for reasons other than the crash")
            daemon.start()  # same manifest, same store
            total, unknown_stored = self.check_store(daemon, sessions, ledger, "%s round %d" % (self.store, rnd))
            unanswered = len(ledger.unknown)
            retried, was_stored = self.retry_lost_sends(daemon, ledger)
            self.check_store(daemon, sessions, ledger, "%s round %d after retries" % (self.store, rnd))
            report.append("round %d: kill after %.2f s, %d acked this round, %d stored in all, "
                          "%d of %d unanswered sends were stored; %d retried with their key (%d answered "
                          "from the stored question), each stored once"
                          % (rnd, delay, len(ledger.acked) - before - retried, total, unknown_stored, unanswered,
                             retried, was_stored))
        sys.stderr.write("\n%s (seed %d):\n  %s\n" % (self.store, SEED, "\n  ".join(report)))
        self.assertGreater(len(ledger.acked), ROUNDS, "too few acknowledged writes to prove anything")
        self.assertEqual(daemon.stop(), 0, daemon.log_tail())


class SQLiteDurability(DurabilityMixin, unittest.TestCase):
    store = "sqlite"

    def make_daemon(self):
        return swh_harness.Daemon()


class ServerDurability(DurabilityMixin):
    """A store on a real server started by tests/tooling/swh_servers.py."""

    @classmethod
    def setUpClass(cls):
        if not os.path.exists(os.path.join(swh_harness.plugin_dir(), "swh_storage_%s.so" % cls.store)):
            raise unittest.SkipTest("swh_storage_%s.so not built" % cls.store)
        if cls.store == "postgres" and not os.path.exists(os.path.join(swh_servers.PG_BIN, "postgres")):
            raise unittest.SkipTest("PostgreSQL not installed (%s)" % swh_servers.PG_BIN)
        if cls.store == "redis" and not shutil.which(swh_servers.REDIS_SERVER):
            raise unittest.SkipTest("redis-server not installed")
        base = os.environ.get("SWH_TEST_TMPDIR") or None
        if base:
            os.makedirs(base, exist_ok=True)
        cls.server = swh_servers.SERVERS[cls.store](base)
        try:
            cls.server.start()
        except BaseException:
            cls.server.cleanup()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.server.cleanup()

    def make_daemon(self):
        from storage_daemons import daemon_on
        return daemon_on(self.server)


class PostgresDurability(ServerDurability, unittest.TestCase):
    store = "postgres"  # synchronous_commit = on (the server default)


class RedisDurability(ServerDurability, unittest.TestCase):
    store = "redis"  # appendonly yes + appendfsync always: the documented durable setting


class MongoDurability(ServerDurability, unittest.TestCase):
    # The CongoDB emulator: only the daemon is killed and the emulator lives
    # on, so this proves the daemon answers 201 only after the plugin's write
    # was acknowledged; the server's own durability is not tested (memory mode).
    store = "mongodb"
    # add_message is several writes (message, then its count): a kill between
    # them leaves a message uncounted until the next read of its session,
    # which counts it (the check below reads every session first).


if __name__ == "__main__":
    unittest.main()
