"""Provider failover (issue 7): a provider that fails hands the reply to its
manifest fallback — before the first token and mid-stream, where the
fallback continues after the partial answer so the client's stream just goes
on. Also the gateway-overhead report and the provider admin routes."""

import json
import os
import signal
import socket
import time
import unittest

import swh_harness as h

# Both answer with the same deterministic text ("echo#N <content>"), so the
# fallback can continue exactly where the failed provider stopped.
PROVIDERS = """\
  - name: flaky
    plugin: echo
    fallback: [steady]
    config:
      fail_on: BOOM
  - name: steady
    plugin: echo
"""


def wait_stopped(pid):
    """Until every thread of `pid` is stopped: SIGSTOP takes effect thread by
    thread, and a busy machine can leave one running for a while."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        states = []
        for task in os.listdir("/proc/%d/task" % pid):
            try:
                with open("/proc/%d/task/%s/stat" % (pid, task)) as f:
                    states.append(f.read().rsplit(")", 1)[1].split()[0])
            except OSError:
                continue
        if states and all(state in ("T", "t") for state in states):
            return
        time.sleep(0.01)
    raise AssertionError("the daemon did not stop within 10 s")


class FailoverTests(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.daemon = h.Daemon(extra_providers=PROVIDERS)
        cls.daemon.start()
        cls.client = cls.daemon.client

    @classmethod
    def tearDownClass(cls):
        cls.daemon.stop()
        cls.daemon.cleanup()

    def flaky_session(self):
        r = self.client.post("/v1/sessions", {"user_id": "failover-user", "provider": "flaky"})
        self.assertEqual(r.status, 201, r)
        return r.json["id"]

    def test_fallback_answers_when_the_provider_fails(self):
        sid = self.flaky_session()
        text = "one two BOOM four five six"
        r = self.client.post("/v1/sessions/%s/messages" % sid, {"content": text})
        self.assertEqual(r.status, 201, r)
        reply = r.json["assistant_message"]
        self.assertEqual(reply["content"], "echo#1 " + text)
        self.assertEqual(reply["metadata"]["provider"], "steady")
        self.assertEqual(reply["metadata"]["providers"], ["flaky", "steady"])
        self.assertEqual(reply["metadata"]["failover"][0]["provider"], "flaky")
        self.assertIn("simulated upstream failure", reply["metadata"]["failover"][0]["error"])
        stored = self.client.messages(sid)
        self.assertEqual([m["role"] for m in stored], ["user", "assistant"])
        self.assertEqual(stored[1]["content"], "echo#1 " + text)

    def test_mid_stream_failover_continues_the_same_stream(self):
        sid = self.flaky_session()
        text = "alpha beta gamma BOOM delta epsilon zeta eta"
        st = self.client.stream("/v1/sessions/%s/messages" % sid, {"content": text, "stream": True})
        events = st.read_all()
        names = [e.event for e in events]
        self.assertNotIn("error", names)
        self.assertEqual(names[-2:], ["assistant_message", "done"], names)
        chunks = "".join(e.json["text"] for e in events if e.event == "chunk")
        # the client saw one uninterrupted answer, no repeated prefix
        self.assertEqual(chunks, "echo#1 " + text)
        final = events[-2].json
        self.assertEqual(final["content"], chunks)
        self.assertEqual(final["metadata"]["providers"], ["flaky", "steady"])
        self.assertGreater(events[-1].json["gateway_overhead_ms"], 0, events[-1])
        self.assertEqual(self.client.messages(sid)[-1]["content"], chunks)

    def test_overhead_header_on_every_proxied_reply(self):
        # Some time, within what the client measured around the request
        # (tests/providers/test_stream_control.py shows that an upstream's
        # wait is left out of it).
        sid = self.client.create_session("overhead")["id"]
        requests = {
            "messages": lambda: self.client.post("/v1/sessions/%s/messages" % sid, {"content": "hi"}),
            "chat completion": lambda: self.client.post(
                "/v1/chat/completions", {"model": "steady", "messages": [{"role": "user", "content": "hi"}]}),
        }
        for where, send in requests.items():
            with self.subTest(where=where):
                t0 = time.monotonic()
                r = send()
                client_ms = (time.monotonic() - t0) * 1000.0
                self.assertIn(r.status, (200, 201), r)
                overhead = float(r.headers["X-Swarmhost-Overhead-Ms"])
                self.assertGreater(overhead, 0.0, r)
                self.assertLess(overhead, client_ms, r)

    def test_overhead_counts_from_the_request_arrival(self):
        # A request that reached the kernel while the daemon could not read
        # it (stopped, as a busy loop would be) waited in the daemon: the
        # header counts from its arrival, not from when it was read (issue 17,
        # target 7). The first request on the connection makes sure it is
        # accepted (and stamped) before the daemon stops.
        body = json.dumps({"model": "steady", "messages": [{"role": "user", "content": "hi"}]}).encode()
        request = h.request_bytes("POST", "/v1/chat/completions", body,
                                  [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
        with socket.create_connection(("127.0.0.1", self.daemon.port), timeout=10) as sock:
            sock.sendall(request)
            first = h.read_response(sock)
            self.assertEqual(first[0], 200, first)
            self.assertLess(float(first[1]["x-swarmhost-overhead-ms"]), 200.0, first)
            os.kill(self.daemon.proc.pid, signal.SIGSTOP)
            try:
                wait_stopped(self.daemon.proc.pid)
                sock.sendall(request)
                time.sleep(0.3)
            finally:
                os.kill(self.daemon.proc.pid, signal.SIGCONT)
            second = h.read_response(sock)
        self.assertEqual(second[0], 200, second)
        self.assertGreaterEqual(float(second[1]["x-swarmhost-overhead-ms"]), 250.0, second)

    def test_provider_admin_routes(self):
        r = self.client.get("/v1/providers")
        self.assertEqual(r.status, 200, r)
        by_name = {p["name"]: p for p in r.json["providers"]}
        self.assertEqual(by_name["flaky"]["fallback"], ["steady"])
        self.assertEqual(by_name["echo"]["default"], True)
        r = self.client.get("/v1/providers/steady")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json["plugin"], "echo")
        self.assertEqual(r.json["metadata"]["prefix"], "echo")
        self.assertEqual(self.client.get("/v1/providers/nope").status, 404)
        self.assertEqual(self.client.request("DELETE", "/v1/providers/steady").status, 405)
        bad = self.client.patch("/v1/providers/steady", {"no_such_key": 1})
        self.assertEqual(bad.status, 400, bad)
        self.assertEqual(bad.json["error"]["code"], "invalid_request")

    def test_update_provider_config_at_run_time(self):
        r = self.client.patch("/v1/providers/echo", {"prefix": "bot"})
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json["metadata"]["prefix"], "bot")
        try:
            sid = self.client.create_session("patched")["id"]
            reply = self.client.post("/v1/sessions/%s/messages" % sid, {"content": "hello"}).json
            self.assertEqual(reply["assistant_message"]["content"], "bot#1 hello")
        finally:
            self.client.patch("/v1/providers/echo", {"prefix": "echo"})


if __name__ == "__main__":
    unittest.main()


GROUP = """\
  - name: east
    plugin: echo
    group: pool
  - name: west
    plugin: echo
    group: pool
  - name: north
    plugin: echo
    group: pool
"""


class GroupAffinityTests(unittest.TestCase):
    """A load-balanced group: every message of a session goes to the same
    member (upstream prompt caches stay warm); sessions spread over members."""

    @classmethod
    def setUpClass(cls):
        cls.daemon = h.Daemon(extra_providers=GROUP)
        cls.daemon.start()
        cls.client = cls.daemon.client

    @classmethod
    def tearDownClass(cls):
        cls.daemon.stop()
        cls.daemon.cleanup()

    def test_sessions_stick_to_one_member_and_spread(self):
        members_used = set()
        for i in range(12):
            r = self.client.post("/v1/sessions", {"user_id": "pool-user", "provider": "pool"})
            self.assertEqual(r.status, 201, r)
            sid = r.json["id"]
            answered = set()
            for n in range(3):
                reply = self.client.post("/v1/sessions/%s/messages" % sid, {"content": "m%d" % n}).json
                answered.add(reply["assistant_message"]["metadata"]["provider"])
            self.assertEqual(len(answered), 1, answered)  # affinity
            members_used |= answered
        self.assertTrue(members_used <= {"east", "west", "north"}, members_used)
        self.assertGreater(len(members_used), 1, members_used)  # 12 sessions do not all hash to one member

    def test_group_is_a_model_and_a_manifest_reference(self):
        ids = [m["id"] for m in self.client.get("/v1/models").json["data"]]
        self.assertIn("pool", ids)
        r = self.client.post("/v1/chat/completions", {"model": "pool", "messages": [{"role": "user", "content": "x"}]})
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json["choices"][0]["message"]["content"], "echo#1 x")
