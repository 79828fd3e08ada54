"""Stream control through the real daemon and the openai plugin against the
fake upstream: SSE keep-alive comments while the upstream thinks, and a
client that disconnects cancelling the upstream request (issue 7)."""

import os
import socket
import sys
import threading
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(REPO, "tests", "integration"))
sys.path.insert(0, os.path.join(REPO, "tools", "fake_upstream"))

import server as fake_upstream  # noqa: E402
from swh_harness import DaemonTestCase, yaml_str  # noqa: E402


class StreamControlTests(DaemonTestCase):
    @classmethod
    def setUpClass(cls):
        cls.fake = fake_upstream.make_server("127.0.0.1", 0)
        threading.Thread(target=cls.fake.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True).start()
        base = "http://127.0.0.1:%d/v1" % cls.fake.server_address[1]
        providers = "\n".join([
            "  - name: slowai", "    plugin: openai", "    config:",
            "      base_url: %s" % yaml_str(base), "      api_key_env: \"\"",
            "      retries: 0", "      timeout_ms: 20000", ""])
        cls.manifest_kw = {"extra_providers": providers, "server_lines": ["sse_keepalive_seconds: 1"]}
        try:
            super().setUpClass()
        except BaseException:
            cls.fake.shutdown()
            cls.fake.server_close()
            raise

    @classmethod
    def tearDownClass(cls):
        try:
            super().tearDownClass()
        finally:
            cls.fake.shutdown()
            cls.fake.server_close()

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
        body = b'{"content": "[fake:slowchunks:300] ' + b"word " * 60 + b'", "stream": true}'
        sock = socket.create_connection(("127.0.0.1", self.daemon.port), timeout=10)
        sock.sendall(b"POST /v1/sessions/%s/messages HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"Content-Length: %d\r\n\r\n" % (sid.encode(), len(body)) + body)
        received = b""
        deadline = time.monotonic() + 10
        while b"event: chunk" not in received and time.monotonic() < deadline:
            received += sock.recv(4096)
        self.assertIn(b"event: chunk", received)
        sock.close()  # the client goes away mid-stream
        # the daemon notices on its next write, cancels upstream, stores no reply
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and "cancel" not in self.daemon.log().lower():
            time.sleep(0.1)
        self.assertIn("cancel", self.daemon.log().lower(), self.daemon.log_tail())
        roles = [m["role"] for m in self.client.messages(sid)]
        self.assertEqual(roles, ["user"])


if __name__ == "__main__":
    unittest.main()
