"""Stream control through the real daemon and the openai plugin against the
fake upstream: SSE keep-alive comments while the upstream thinks, a client
that disconnects cancelling the upstream request (the fake records that the
daemon hung up on it), and the gateway-overhead figures leaving out the
upstream's own time (issue 7)."""

import json
import os
import socket
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(REPO, "tests", "integration"))

from swh_harness import FakeUpstreamTestCase, SSEStream, yaml_str  # noqa: E402

SLOW_MS = 1500  # the fake upstream's wait before its first byte in the overhead test


class StreamControlTests(FakeUpstreamTestCase):
    @classmethod
    def manifest_kw_for(cls, fake_base):
        providers = "\n".join([
            "  - name: slowai", "    plugin: openai", "    config:",
            "      base_url: %s" % yaml_str(fake_base + "/v1"), "      api_key_env: \"\"",
            "      retries: 0", "      timeout_ms: 20000", ""])
        return {"extra_providers": providers, "server_lines": ["sse_keepalive_seconds: 1"]}

    def session(self):
        r = self.client.post("/v1/sessions", {"user_id": "stream-control", "provider": "slowai"})
        self.assertEqual(r.status, 201, r)
        return r.json["id"]

    def test_keepalive_comments_while_waiting_for_the_first_token(self):
        sid = self.session()
        # the fake waits 2.5 s before its first byte; keep-alive is every 1 s
        st = self.client.stream("/v1/sessions/%s/messages" % sid,
                                {"content": "[fake:slow:2500] think first", "stream": True})
        events = st.read_all()
        names = [e.event for e in events]
        self.assertEqual(names[-2:], ["assistant_message", "done"], names)
        first_chunk = next(i for i, line in enumerate(st.raw_lines) if line.startswith("event: chunk"))
        comments = [line for line in st.raw_lines[:first_chunk] if line.startswith(": keep-alive")]
        self.assertGreaterEqual(len(comments), 1, st.raw_lines[:first_chunk])

    def test_client_disconnect_cancels_the_upstream_request(self):
        sid = self.session()
        body = b'{"content": "[fake:slowchunks:300] %s ' % sid.encode() + b"word " * 60 + b'", "stream": true}'
        sock = socket.create_connection(("127.0.0.1", self.daemon.port), timeout=10)
        sock.sendall(b"POST /v1/sessions/%s/messages HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"Content-Length: %d\r\n\r\n" % (sid.encode(), len(body)) + body)
        received = b""
        deadline = time.monotonic() + 10
        while b"event: chunk" not in received and time.monotonic() < deadline:
            received += sock.recv(4096)
        self.assertIn(b"event: chunk", received)
        sock.close()  # the client goes away mid-stream
        # The daemon notices on its next write and cancels the upstream call:
        # the fake sees its connection closed before the answer's end
        # ("client_closed"). A daemon that read on would let the fake finish
        # its ~19 s answer ("answered"); the poll's bound is past that, so
        # the outcome is always known when it ends.
        [req] = [r for r in self.fake_requests() if sid in r["body"]["messages"][-1]["content"]]
        outcome = self.wait_outcome(req, deadline_s=60)
        self.assertEqual(outcome, "client_closed", "the daemon did not hang up on the upstream: %s\n%s"
                         % (outcome, self.daemon.log_tail()))
        roles = [m["role"] for m in self.client.messages(sid)]
        self.assertEqual(roles, ["user"])

    # ---- helpers
    def fake_requests(self):
        with self.fake.state.lock:
            return [r for r in self.fake.state.requests if r["path"].endswith("/chat/completions")]

    def wait_outcome(self, req, deadline_s):
        deadline = time.monotonic() + deadline_s
        while time.monotonic() < deadline:
            with self.fake.state.lock:
                if req["outcome"] is not None:
                    return req["outcome"]
            time.sleep(0.05)
        return req["outcome"]

    def test_gateway_overhead_leaves_out_the_upstreams_time(self):
        # The fake waits SLOW_MS before its first byte, inside the provider
        # call. The daemon's own time (total minus upstream) must be positive
        # and fit, together with that wait, in the time the client measured
        # around the request: overhead + SLOW_MS <= client time. An overhead
        # that counted the upstream's wait would break that (it would be
        # >= SLOW_MS on its own, and the client time is about SLOW_MS).
        sid = self.session()
        prompt = "[fake:slow:%d] how long" % SLOW_MS

        def completion(stream):
            return {"model": "slowai", "stream": stream, "messages": [{"role": "user", "content": prompt}]}

        cases = {
            "POST messages": lambda: float(self.expect(
                self.client.send(sid, prompt), 201).headers["X-Swarmhost-Overhead-Ms"]),
            "POST messages, streamed": lambda: self.done_event(
                self.client.stream("/v1/sessions/%s/messages" % sid, {"content": prompt, "stream": True})
            )["gateway_overhead_ms"],
            "chat completion": lambda: float(self.expect(
                self.client.post("/v1/chat/completions", completion(False)), 200).headers["X-Swarmhost-Overhead-Ms"]),
            "chat completion, streamed": lambda: self.last_completion_chunk(
                self.client.stream("/v1/chat/completions", completion(True)))["swarmhost"]["gateway_overhead_ms"],
        }
        for where, call in cases.items():
            with self.subTest(where=where):
                t0 = time.monotonic()
                overhead = call()
                client_ms = (time.monotonic() - t0) * 1000.0
                self.assertIsInstance(overhead, (int, float))
                self.assertGreater(overhead, 0.0, "the daemon's own time cannot be nothing")
                self.assertLessEqual(overhead + SLOW_MS, client_ms,
                                     "overhead %.3f ms counts the upstream's %d ms wait (client saw %.1f ms)"
                                     % (overhead, SLOW_MS, client_ms))

    def expect(self, r, status):
        self.assertEqual(r.status, status, r)
        self.assertIn("X-Swarmhost-Overhead-Ms", r.headers, r)
        return r

    def done_event(self, st):
        self.assertIsInstance(st, SSEStream, st)
        events = st.read_all()
        self.assertEqual([e.event for e in events][-2:], ["assistant_message", "done"], st.raw_lines)
        self.assertEqual(list(events[-1].json), ["gateway_overhead_ms"], events[-1])
        return events[-1].json

    def last_completion_chunk(self, st):
        self.assertIsInstance(st, SSEStream, st)
        data = [e.data for e in st.read_all() if e.data]
        self.assertEqual(data[-1], "[DONE]", st.raw_lines)
        last = json.loads(data[-2])
        self.assertEqual(last["choices"][0]["finish_reason"], "stop", last)
        return last


if __name__ == "__main__":
    unittest.main()
