"""`isolation: process` for a STORAGE plugin, through the real daemon
(docs/reliability.md, "Isolation"). The store is the real SQLite plugin
(swh_storage_sqlite.so) in a swarmhost-plugin-host child, with the echo
provider; no fixture plugin. The child is made to fail from outside:

- the ordinary API (sessions, plain and streamed sends, history queries,
  list filters, PATCH, archive, delete, /healthz, /v1/plugins, `swarmhost
  plugins`) works through the isolated store;
- SIGSEGV of the child: the daemon lives, the next requests get a 503 JSON
  error (never 500, never a hang), the child is restarted, and every message
  acknowledged before the crash is in the SQLite file exactly once;
- SIGSTOP of the child: the next request gets 503/504 once
  `isolation_timeout_ms` is over, the stopped child is killed and reaped,
  a new child serves later requests;
- SIGKILL during concurrent sends with Idempotency-Key: retried sends store
  each key exactly once, in order, with one reply each;
- /healthz answers 503 with the reason while the store's child is down;
- after all that, one live child and no zombie.
No assertion depends on how long anything took."""

import json
import os
import shutil
import signal
import sqlite3
import threading
import time
import unittest

from pipeline_support import POLL_DEADLINE_S, PipelineTestCase, uid
from swh_harness import FAIL_TOKEN, Client, Daemon, SSEStream, free_port, make_tmpdir, plugin_dir, run_cli, yaml_str
from test_isolation import children

STORE_PLUGIN = "swh_storage_sqlite.so"
# Generous: a normal call (an fsync'd commit, a restart's dlopen + create)
# must never reach it, even under ASan on a loaded 2-core machine; only the
# stopped child does.
TIMEOUT_MS = 3000


def storage_manifest(port, workdir):
    """sqlite store with `isolation: process`, the echo provider."""
    lines = ["server:", "  listen: %s" % yaml_str("127.0.0.1:%d" % port), "  shutdown_grace_seconds: 5",
             "plugin_dirs:", "  - %s" % yaml_str(os.path.abspath(plugin_dir())),
             "storage:", "  name: store", "  plugin: sqlite", "  isolation: process",
             "  isolation_timeout_ms: %d" % TIMEOUT_MS, "  config:",
             "    path: %s" % yaml_str(os.path.join(workdir, "swarmhost.db")),
             "providers:", "  - %s" % json.dumps({"name": "echo", "plugin": "echo",
                                                 "config": {"fail_on": FAIL_TOKEN}})]
    return "\n".join(lines) + "\n"


class StorageIsolation(PipelineTestCase):
    """One daemon for the class; each test starts by waiting until the store
    answers, since an earlier test may have crashed its child."""

    @classmethod
    def setUpClass(cls):
        cls.workdir = make_tmpdir("swh-storage-isolation-")
        port = free_port()
        cls.daemon = Daemon(workdir=cls.workdir, port=port, manifest=storage_manifest(port, cls.workdir))
        cls.daemon.owns_workdir = True
        cls.daemon.start_or_cleanup()
        cls.client = cls.daemon.client
        cls.db_path = os.path.join(cls.workdir, "swarmhost.db")

    def setUp(self):
        self.wait_store_answers()

    # ---- helpers
    def store_children(self):
        return [c for c in children(self.daemon.proc.pid) if "swarmhost-plugin-host" in c[2]
                and STORE_PLUGIN in c[2]]

    def store_pid(self):
        kids = [c for c in self.store_children() if c[1] != "Z"]
        self.assertEqual(len(kids), 1, children(self.daemon.proc.pid))
        return kids[0][0]

    def wait_store_answers(self):
        """Until a session can be created (503 while the child restarts)."""
        def attempt():
            r = self.client.post("/v1/sessions", {"user_id": uid("probe")})
            if r.status == 201:
                return r
            self.assertError(r, 503, "unavailable")
            return None
        return self.wait_for("the isolated store to answer", attempt)

    def wait_dead(self, pid):
        """Until `pid` has ended (zombie or gone): a signal is asynchronous."""
        def dead():
            try:
                with open("/proc/%d/stat" % pid) as f:
                    stat = f.read()
            except OSError:
                return True
            return stat[stat.rindex(")") + 2:].split()[0] == "Z"
        self.wait_for("child %d to end" % pid, dead)

    def wait_reaped(self, pid):
        self.wait_for("child %d to be reaped" % pid,
                      lambda: pid not in [c[0] for c in children(self.daemon.proc.pid)])

    def daemon_alive(self):
        self.assertIsNone(self.daemon.proc.poll(), "the daemon exited\n%s" % self.daemon.log_tail(30))

    def assertUnavailable(self, r, *words):
        """A clear error: 503 JSON `unavailable` naming the store instance."""
        self.assertError(r, 503, "unavailable")
        message = r.json["error"]["message"]
        self.assertIn("store", message, r)
        for word in words:
            self.assertIn(word, message, r)

    def db_contents(self, sid):
        """(role, content) of the session's rows, read from the SQLite file itself."""
        db = sqlite3.connect("file:%s?mode=ro" % self.db_path, uri=True, timeout=30)
        try:
            return db.execute("SELECT role, content FROM messages WHERE session_id = ? ORDER BY seq",
                              (sid,)).fetchall()
        finally:
            db.close()

    def assertNoZombies(self):
        kids = children(self.daemon.proc.pid)
        self.assertEqual([k for k in kids if k[1] == "Z"], [], kids)
        self.assertEqual(len(self.store_children()), 1, kids)
        self.assertEqual(len(kids), 1, kids)

    # ---- a. the ordinary API through the isolated store
    def test_1_the_api_works_through_the_isolated_store(self):
        self.store_pid()  # exactly one child, running the sqlite plugin
        user = uid("alice")
        context = {"user_context": {"lang": "fr"}, "system_context": {"tier": 2}}
        s = self.client.create_session(user, metadata={"project": "x", "n": [1, 2]}, context=context)
        sid = s["id"]
        got = self.client.get("/v1/sessions/%s" % sid)
        self.assertEqual(got.status, 200, got)
        self.assertEqual(got.json["metadata"], {"project": "x", "n": [1, 2]})
        self.assertEqual(got.json["context"]["user_context"], {"lang": "fr"})
        self.assertEqual(got.json["created_at"], s["created_at"])

        plain = self.send_ok(sid, "hello world", metadata={"client": "t"})
        self.assertEqual(plain["user_message"]["metadata"].get("client"), "t")
        self.assertEqual(plain["assistant_message"]["role"], "assistant")
        self.assertIn("hello world", plain["assistant_message"]["content"])
        stream = self.client.stream("/v1/sessions/%s/messages" % sid, {"content": "stream this", "stream": True})
        self.assertIsInstance(stream, SSEStream, stream)
        events = [e.event for e in stream.read_all()]
        self.assertIn("assistant_message", events)
        self.assertEqual(events[0], "user_message")
        self.assertEqual(events[-1], "done")
        self.send_ok(sid, "third")

        history = self.client.messages(sid)
        self.assertEqual([m["role"] for m in history], ["user", "assistant"] * 3)
        self.assertEqual([m["content"] for m in history[0::2]], ["hello world", "stream this", "third"])
        self.assertEqual(history[0]["metadata"].get("client"), "t")
        last_two = self.client.messages(sid, "?limit=2")
        self.assertEqual([m["id"] for m in last_two], [m["id"] for m in history[-2:]])
        replies = self.client.messages(sid, "?role=assistant&limit=2")
        self.assertEqual([m["id"] for m in replies], [m["id"] for m in history[3::2]])
        since = self.client.messages(sid, "?since=%s" % history[2]["timestamp"])
        self.assertEqual([m["id"] for m in since], [m["id"] for m in history[2:]])
        self.assertEqual(self.client.get("/v1/sessions/%s" % sid).json["message_count"], 6)

        other = self.client.create_session(user)["id"]
        self.client.create_session(uid("bob"))
        listed = self.client.get("/v1/sessions?user_id=%s" % user)
        self.assertEqual(listed.status, 200, listed)
        self.assertEqual(sorted(x["id"] for x in listed.json["sessions"]), sorted([sid, other]))
        page = self.client.get("/v1/sessions?user_id=%s&limit=1&offset=1" % user).json["sessions"]
        self.assertEqual(len(page), 1, page)

        patched = self.client.patch("/v1/sessions/%s" % sid, {"metadata": {"project": "y"}, "model": "m2"})
        self.assertEqual(patched.status, 200, patched)
        again = self.client.get("/v1/sessions/%s" % sid).json
        self.assertEqual((again["metadata"]["project"], again["model"]), ("y", "m2"))
        archived = self.client.post("/v1/sessions/%s/archive" % sid)
        self.assertEqual(archived.status, 200, archived)
        only = self.client.get("/v1/sessions?user_id=%s&status=archived" % user).json["sessions"]
        self.assertEqual([x["id"] for x in only], [sid])
        self.assertEqual(self.client.delete("/v1/sessions/%s" % other).status, 204)
        gone = self.client.get("/v1/sessions/%s" % other)
        self.assertError(gone, 404, "not_found")  # NOT_FOUND crosses the wire as itself

        health = self.client.get("/healthz")
        self.assertEqual(health.status, 200, health)
        self.assertEqual(health.json["storage"]["status"], "healthy", health)
        plugins = self.client.get("/v1/plugins")
        self.assertEqual(plugins.status, 200, plugins)
        self.assertIn({"name": "store", "plugin": "sqlite", "kind": "storage"}, plugins.json["instances"])
        rc, out = run_cli(["plugins", "-c", self.daemon.manifest_path])
        self.assertEqual(rc, 0, out)
        self.assertRegex(out, r"sqlite\s+storage")

    # ---- b. a segfault of the store's child
    def test_2_segfault_gets_503_then_the_store_comes_back_with_every_message(self):
        sid = self.session()["id"]
        acknowledged = []
        for i in range(5):
            self.send_ok(sid, "before %d" % i)
            acknowledged.append("before %d" % i)
        pid = self.store_pid()
        os.kill(pid, signal.SIGSEGV)
        self.wait_dead(pid)

        r = self.client.send(sid, "during the crash")
        self.assertUnavailable(r, "SIGSEGV")
        self.daemon_alive()
        self.wait_reaped(pid)

        # During the backoff: 503 at once; then the new child answers.
        def attempt():
            r = self.client.get("/v1/sessions/%s" % sid)
            if r.status == 200:
                return r
            self.assertUnavailable(r)
            return None
        self.wait_for("the restarted store", attempt)
        self.assertNotEqual(self.store_pid(), pid, "the child should have been replaced")
        self.send_ok(sid, "after")
        acknowledged.append("after")

        users = [m["content"] for m in self.client.messages(sid) if m["role"] == "user"]
        self.assertEqual(users, acknowledged)
        rows = [content for role, content in self.db_contents(sid) if role == "user"]
        self.assertEqual(rows, acknowledged)  # in the file, once each; the 503'd send is not there

    # ---- c. a hang of the store's child
    def test_3_hang_gets_503_or_504_and_the_stopped_child_is_reaped(self):
        sid = self.session()["id"]
        self.send_ok(sid, "before the hang")
        pid = self.store_pid()
        os.kill(pid, signal.SIGSTOP)
        reaped = False
        try:
            r = self.client.get("/v1/sessions/%s" % sid)
            self.assertIn(r.status, (503, 504), r)
            self.assertIn("did not answer", r.json["error"]["message"], r)
            self.assertIn("store", r.json["error"]["message"], r)
            self.daemon_alive()
            self.wait_reaped(pid)  # killed while stopped, and waited for: no zombie
            reaped = True
        finally:
            if not reaped:  # the test failed early: do not leave a stopped process behind
                os.kill(pid, signal.SIGCONT)
        self.wait_store_answers()
        self.assertNotEqual(self.store_pid(), pid)
        self.send_ok(sid, "after the hang")
        users = [m["content"] for m in self.client.messages(sid) if m["role"] == "user"]
        self.assertEqual(users, ["before the hang", "after the hang"])

    # ---- d. SIGKILL during concurrent sends with Idempotency-Key
    def test_4_idempotent_retries_store_each_key_once_across_a_kill(self):
        threads_n, per_thread, max_attempts = 3, 12, 200
        sessions = [self.session()["id"] for _ in range(threads_n)]
        killed = threading.Event()
        lock = threading.Lock()
        done = [0]
        failures = []    # (thread, key, status) of every failed attempt
        unexpected = []  # answers that are neither 201 nor a retryable error

        def sender(t):
            client = Client(self.daemon.port)
            for i in range(per_thread):
                if i == per_thread - 1:
                    # Every thread sends at least once after the kill.
                    killed.wait(POLL_DEADLINE_S)
                key = "k%d-%02d" % (t, i)
                for _ in range(max_attempts):
                    try:
                        r = client.post("/v1/sessions/%s/messages" % sessions[t],
                                        {"content": "t%d m%02d" % (t, i)}, headers={"Idempotency-Key": key})
                    except OSError as e:
                        with lock:
                            unexpected.append((key, repr(e)))
                        return
                    if r.status == 201:
                        with lock:
                            done[0] += 1
                        break
                    with lock:
                        failures.append((t, key, r.status))
                    if r.status not in (503, 504, 409):
                        with lock:
                            unexpected.append((key, r))
                        return
                    time.sleep(0.05)  # retry pacing, not synchronisation
                else:
                    with lock:
                        unexpected.append((key, "no 201 after %d attempts" % max_attempts))
                    return

        workers = [threading.Thread(target=sender, args=(t,)) for t in range(threads_n)]
        for w in workers:
            w.start()
        try:
            self.wait_for("some sends to be acknowledged", lambda: done[0] >= 5)
            pid = self.store_pid()
            os.kill(pid, signal.SIGKILL)
        finally:
            killed.set()
            for w in workers:
                w.join(POLL_DEADLINE_S * 4)
        self.assertFalse(any(w.is_alive() for w in workers), "a sender did not finish")
        self.assertEqual(unexpected, [])
        self.assertTrue(failures, "the kill should have failed at least one send")
        self.daemon_alive()
        self.wait_reaped(pid)

        for t, sid in enumerate(sessions):
            history = self.client.messages(sid)
            users = [m for m in history if m["role"] == "user"]
            self.assertEqual([m["metadata"].get("idempotency_key") for m in users],
                             ["k%d-%02d" % (t, i) for i in range(per_thread)])
            replies = [m["metadata"].get("reply_to") for m in history if m["role"] == "assistant"]
            self.assertEqual(sorted(replies), sorted(m["id"] for m in users), history)
            rows = self.db_contents(sid)
            self.assertEqual([c for role, c in rows if role == "user"],
                             ["t%d m%02d" % (t, i) for i in range(per_thread)])

    # ---- e. no leftovers
    def test_5_one_live_child_and_no_zombies_after_restarts(self):
        sid = self.session()["id"]
        for sig in (signal.SIGSEGV, signal.SIGKILL, signal.SIGSEGV):
            pid = self.store_pid()
            os.kill(pid, sig)
            self.wait_dead(pid)
            if sig == signal.SIGKILL:
                # /healthz is the call that finds the dead child: 503 with the reason.
                r = self.client.get("/healthz")
                self.assertEqual(r.status, 503, r)
                self.assertEqual(r.json["storage"]["status"], "unhealthy", r)
                self.assertIn("plugin process for 'store' crashed (SIGKILL)", r.json["storage"]["error"], r)
            else:
                self.assertUnavailable(self.client.send(sid, "probe"), "SIGSEGV")
            self.wait_reaped(pid)
            self.wait_store_answers()
        self.send_ok(sid, "last")
        self.assertNoZombies()


class StorageIsolationRefusedKinds(unittest.TestCase):
    """No kind is refused any more: a provider (tests/isolation/test_provider_isolation.py)
    and a session type (test_session_type_isolation.py) with `isolation: process`
    pass `check`, like the store."""

    def test_isolation_on_a_provider_and_on_a_session_type_is_accepted(self):
        workdir = make_tmpdir("swh-storage-isolation-")
        try:
            path = os.path.join(workdir, "manifest.yaml")
            text = storage_manifest(free_port(), workdir).replace(
                '"plugin": "echo"', '"plugin": "echo", "isolation": "process"')
            self.assertIn('"isolation": "process"', text)
            text += "session_types:\n  - %s\n" % json.dumps({"plugin": "collaborative", "isolation": "process"})
            with open(path, "w") as f:
                f.write(text)
            rc, out = run_cli(["check", path])
            self.assertEqual(rc, 0, out)
            self.assertNotIn("isolation: process is supported", out)
        finally:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    unittest.main()
