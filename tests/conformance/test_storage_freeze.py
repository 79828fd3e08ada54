"""The storage server freezes (SIGSTOP of the server and all its processes)
under a running daemon, then thaws (SIGCONT).

A frozen server keeps its sockets: the kernel accepts connections and
acknowledges bytes, nothing answers, and no server-side timeout runs. What
the daemon promises (docs/reliability.md, "A storage that does not answer"):

1. the plugin's client-side deadline (postgres `call_timeout_ms`, redis
   `command_timeout_ms`, mongodb `socket_timeout_ms`) answers a storage-bound request with 503 JSON;
2. when the plugin does not return at all, the host's deadline
   (`server.storage_timeout_ms`) does, and then fails fast;
3. requests that need no storage (a stateless chat completion, /v1/plugins,
   /metrics) are answered while every worker waits on the store;

4. the limits and budgets shared through the store (`limits: { shared:
   storage }`, docs/fleet.md) pass the same host deadline: a request whose key
   check and budget check wait on the frozen store gets its 503 JSON (or,
   needing no storage, is served under the daemon's own limits) instead of
   hanging with the store;

and once the server thaws, the same daemon serves again and every message
it acknowledged is stored. No step measures time: each 503 is checked to
arrive while the server is still stopped (before the test sends SIGCONT), and
each "is answered" while the storage-bound requests are still waiting. The
timeouts below only keep a broken daemon from hanging the test.
"""

import os
import re
import sys
import threading
import time
import unittest
import uuid

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tooling"))
from storage_daemons import daemon_on, make_server  # noqa: E402
import swh_harness

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "auth"))
from auth_fixture import Key, auth_section  # noqa: E402

RATED = Key("rated", "rita", rate_per_second=100, burst=100)  # counted in the store: a store call per request
OPS = Key("ops", "olga", role="admin", rate_per_second=0)

CLIENT_TIMEOUT_S = 20.0  # no answer by then: the test fails instead of hanging
COMPLETION = {"model": "echo", "messages": [{"role": "user", "content": "needs no storage"}]}


class FreezeTests:
    kind = None  # "redis" | "postgres" | "mongodb"
    # The plugin's own client-side deadline, and the same switched off.
    plugin_deadline = None
    no_plugin_deadline = None

    @classmethod
    def setUpClass(cls):
        cls.server = make_server(cls.kind)
        try:
            cls.server.start()
        except Exception:
            cls.server.cleanup()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.server.cleanup()

    def start_daemon(self, storage_config, server_lines, extra_yaml=""):
        self.daemon = daemon_on(self.server, storage_config=storage_config, server_lines=server_lines,
                                extra_yaml=extra_yaml)
        self.addCleanup(self.daemon.cleanup)
        self.daemon.start()
        self.client = swh_harness.Client(self.daemon.port, timeout=CLIENT_TIMEOUT_S)
        self.addCleanup(self.server.thaw)  # runs before the daemon's cleanup

    def tearDown(self):
        outcome = getattr(self, "_outcome", None)
        result = getattr(outcome, "result", None)
        errors = getattr(result, "errors", []) + getattr(result, "failures", [])
        if any(test is self for test, _ in errors) and getattr(self, "daemon", None):
            print(self.daemon.log_tail(30))

    # ---- helpers

    def assertUnavailable(self, resp, pattern):
        self.assertEqual(resp.status, 503, resp)
        self.assertIn("application/json", resp.content_type, resp)
        self.assertEqual(resp.json["error"]["code"], "unavailable", resp)
        self.assertRegex(resp.json["error"]["message"], pattern, resp)

    def assertStillFrozen(self):
        self.assertTrue(self.server.frozen(), "the server was thawed before the answer came")

    def assertServedWithoutStorage(self):
        done = self.client.post("/v1/chat/completions", COMPLETION)
        self.assertEqual(done.status, 200, done)
        self.assertIn("needs no storage", done.json["choices"][0]["message"]["content"], done)
        self.assertEqual(self.client.get("/v1/plugins").status, 200)

    def acknowledged(self, sid, texts):
        for text in texts:
            self.assertEqual(self.client.send(sid, text).status, 201)

    def assertRecovered(self, sid, user_contents):
        """After the thaw: the daemon serves, and exactly the acknowledged messages are stored."""
        deadline = time.monotonic() + CLIENT_TIMEOUT_S
        while self.client.get("/healthz").status != 200:  # reconnecting is the plugins' job, not a restart
            self.assertLess(time.monotonic(), deadline, self.client.get("/healthz"))
            time.sleep(0.05)
        self.assertEqual(self.client.send(sid, "after").status, 201)
        expected = user_contents + ["after"]
        stored = [m["content"] for m in self.client.messages(sid, "?role=user")]
        self.assertEqual(stored, expected)
        session = self.client.get("/v1/sessions/%s" % sid)
        self.assertEqual(session.json["message_count"], 2 * len(expected), session)
        self.assertIsNone(self.daemon.proc.poll(), "daemon died")

    def metric(self, name, headers=None):
        text = self.client.get("/metrics", headers=headers).raw.decode()
        found = re.search(r"^%s ([0-9.]+)$" % name, text, re.M)
        self.assertIsNotNone(found, "%s missing from /metrics" % name)
        return float(found.group(1))

    # ---- tests

    def test_1_the_plugin_deadline_answers_503_while_the_server_is_frozen(self):
        # The host's deadline is far away: each 503 here is the plugin's own.
        self.start_daemon(self.plugin_deadline, ["storage_timeout_ms: 60000"])
        c = self.client
        user = "u-" + uuid.uuid4().hex[:12]
        sid = c.create_session(user)["id"]
        self.acknowledged(sid, ["before 1", "before 2"])

        self.server.freeze()
        self.assertUnavailable(c.get("/v1/sessions/%s" % sid), self.kind)
        self.assertUnavailable(c.send(sid, "during"), self.kind)
        self.assertUnavailable(c.get("/v1/sessions?user_id=%s" % user), self.kind)
        health = c.get("/healthz")
        self.assertEqual(health.status, 503, health)
        self.assertEqual(health.json["status"], "unhealthy", health)
        self.assertEqual(health.json["storage"]["status"], "unhealthy", health)
        self.assertTrue(health.json["storage"].get("error"), health)
        self.assertServedWithoutStorage()
        self.assertStillFrozen()

        self.server.thaw()
        self.assertRecovered(sid, ["before 1", "before 2"])

    def test_2_the_host_deadline_holds_when_the_plugin_does_not_return(self):
        # No client-side deadline in the plugin: only the host bounds the wait.
        self.start_daemon(self.no_plugin_deadline,
                          ["worker_threads: 2", "storage_threads: 2", "storage_timeout_ms: 1500"])
        c = self.client
        user = "u-" + uuid.uuid4().hex[:12]
        sid = c.create_session(user)["id"]
        self.acknowledged(sid, ["before"])

        self.server.freeze()
        # Two calls take the two storage threads and are abandoned at the deadline ...
        self.assertUnavailable(c.get("/v1/sessions/%s" % sid), "storage did not answer get_session")
        self.assertUnavailable(c.send(sid, "during"), "storage did not answer get_session")
        # ... then every storage thread is stuck: the next calls fail at once.
        self.assertUnavailable(c.get("/v1/sessions?user_id=%s" % user), "storage is not answering")
        self.assertUnavailable(c.post("/v1/sessions", {"user_id": user}), "storage is not answering")
        health = c.get("/healthz")
        self.assertEqual(health.status, 503, health)
        self.assertEqual(health.json["storage"]["status"], "unhealthy", health)
        self.assertIn("storage is not answering", health.json["storage"]["error"], health)
        self.assertEqual(self.metric("swarmhost_storage_calls_overdue"), 2)
        self.assertServedWithoutStorage()
        self.assertStillFrozen()

        self.server.thaw()
        self.assertRecovered(sid, ["before"])
        deadline = time.monotonic() + CLIENT_TIMEOUT_S
        while self.metric("swarmhost_storage_calls_overdue") != 0:  # the abandoned calls return
            self.assertLess(time.monotonic(), deadline, "abandoned storage calls never returned")
            time.sleep(0.05)

    def test_3_requests_without_storage_are_not_starved(self):
        # Every deadline is far away: storage-bound requests wait until the thaw.
        self.start_daemon(self.no_plugin_deadline,
                          ["worker_threads: 2", "storage_threads: 2", "storage_timeout_ms: 60000"])
        c = self.client
        user = "u-" + uuid.uuid4().hex[:12]
        sid = c.create_session(user)["id"]
        self.acknowledged(sid, ["before"])

        self.server.freeze()
        answers = {}

        def call(name, fn):
            answers[name] = fn(swh_harness.Client(self.daemon.port, timeout=60))

        waiting = [threading.Thread(target=call, args=args, daemon=True) for args in (
            ("get", lambda cl: cl.get("/v1/sessions/%s" % sid)),
            ("list", lambda cl: cl.get("/v1/sessions?user_id=%s" % user)),
            ("send", lambda cl: cl.send(sid, "sent while frozen")),
        )]
        for t in waiting:
            t.start()
        # Both workers are inside storage calls (the third request queues behind them).
        deadline = time.monotonic() + CLIENT_TIMEOUT_S
        while self.metric("swarmhost_storage_calls_waiting") < 2:
            self.assertLess(time.monotonic(), deadline, "storage-bound requests never reached the store")
            time.sleep(0.05)

        self.assertServedWithoutStorage()
        self.assertEqual(answers, {}, "a storage-bound request was answered while the server was frozen")
        self.assertStillFrozen()

        self.server.thaw()
        for t in waiting:
            t.join(CLIENT_TIMEOUT_S)
            self.assertFalse(t.is_alive(), "a storage-bound request never finished")
        self.assertEqual(answers["get"].status, 200, answers["get"])
        self.assertEqual(answers["list"].status, 200, answers["list"])
        self.assertEqual(answers["send"].status, 201, answers["send"])  # acknowledged, so it must be stored
        self.assertRecovered(sid, ["before", "sent while frozen"])


    def test_4_shared_limits_and_budgets_pass_the_host_deadline(self):
        if self.kind == "mongodb":
            self.skipTest("the mongodb plugin shares no limits (no ABI 1.5 counter_add): nothing to freeze under")
        extra = (auth_section([RATED, OPS]) + "limits:\n  shared: storage\n" +
                 "budgets:\n  keys:\n    rated: { tokens: 1000000 }\n  sessions:\n    default: { tokens: 1000000 }\n")
        self.start_daemon(self.no_plugin_deadline,
                          ["worker_threads: 2", "storage_threads: 2", "storage_timeout_ms: 1500"], extra)
        key = RATED.bearer()
        c = self.client
        r = c.post("/v1/sessions", {"user_id": "rita"}, headers=key)
        self.assertEqual(r.status, 201, r)
        sid = r.json["id"]
        self.assertEqual(c.post("/v1/sessions/%s/messages" % sid, {"content": "before"}, headers=key).status, 201)

        self.server.freeze()
        # The key's rate limit, the budgets and then the data wait on the store:
        # each shared call ends at the host's deadline, the data call with a 503.
        self.assertUnavailable(c.post("/v1/sessions/%s/messages" % sid, {"content": "during"}, headers=key),
                               "storage")
        self.assertUnavailable(c.get("/v1/sessions/%s" % sid, headers=key), "storage")
        # Needing no storage: served, under this daemon's own counts while the store is away.
        done = c.post("/v1/chat/completions", COMPLETION, headers=key)
        self.assertEqual(done.status, 200, done)
        self.assertGreater(self.metric("swarmhost_limits_store_errors_total", OPS.bearer()), 0)
        self.assertStillFrozen()

        self.server.thaw()
        deadline = time.monotonic() + CLIENT_TIMEOUT_S
        while c.get("/healthz", headers=key).status != 200:
            self.assertLess(time.monotonic(), deadline, "the daemon never served again")
            time.sleep(0.05)
        after = c.post("/v1/sessions/%s/messages" % sid, {"content": "after"}, headers=key)
        self.assertEqual(after.status, 201, after)
        stored = [m["content"] for m in c.get("/v1/sessions/%s/messages?role=user" % sid, headers=key).json["messages"]]
        self.assertEqual(stored, ["before", "after"])
        spent = c.get("/v1/sessions/%s/budget" % sid, headers=key)
        self.assertEqual(spent.status, 200, spent)
        self.assertGreater(spent.json["spent"]["tokens"], 0)


class RedisFreeze(FreezeTests, unittest.TestCase):
    kind = "redis"
    plugin_deadline = {"command_timeout_ms": 1000, "connect_timeout_ms": 1000}
    no_plugin_deadline = {"command_timeout_ms": 0}


class PostgresFreeze(FreezeTests, unittest.TestCase):
    kind = "postgres"
    plugin_deadline = {"call_timeout_ms": 1000, "statement_timeout_ms": 800}
    no_plugin_deadline = {"call_timeout_ms": 0}


class MongoFreeze(FreezeTests, unittest.TestCase):
    kind = "mongodb"  # the CongoDB emulator (one node process): frozen, it keeps its data
    plugin_deadline = {"socket_timeout_ms": 1000, "server_selection_timeout_ms": 1000,
                       "operation_timeout_ms": 800, "connect_timeout_ms": 1000}
    # No deadline of the driver's may end the wait: none on the socket, and
    # server selection (the monitor marks a silent server unknown) far away.
    no_plugin_deadline = {"socket_timeout_ms": 0, "server_selection_timeout_ms": 120000}


if __name__ == "__main__":
    unittest.main()
