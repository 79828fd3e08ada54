"""The openai provider through the real daemon to an upstream that speaks
only HTTP/2 with prior knowledge (h2c, tests/providers/h2c_upstream.mjs on
Node's built-in http2), chosen by the provider's `http: { version:
"2-prior-knowledge" }` in the manifest: many concurrent streams multiplexed
on a few connections of the host's HTTP client, and a client that goes away
mid-stream cancelling its upstream stream (the upstream sees it cut)."""

import json
import os
import socket
import subprocess
import sys
import time
import unittest
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(REPO, "tests", "integration"))

from swh_harness import DaemonTestCase, Daemon, make_tmpdir, yaml_str  # noqa: E402

STREAMS = 64  # held open at once; the upstream answers none until all have arrived


def start_h2c_upstream(workdir):
    port_file = os.path.join(workdir, "h2c.ports")
    proc = subprocess.Popen(["node", os.path.join(HERE, "h2c_upstream.mjs"), port_file],
                            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    for _ in range(300):  # up to ~15 s
        if os.path.exists(port_file):
            with open(port_file, encoding="utf-8") as f:
                parts = f.read().split()
            if len(parts) == 2:
                return proc, int(parts[0]), int(parts[1])
        if proc.poll() is not None:
            raise AssertionError("the h2c upstream exited with %r" % proc.returncode)
        time.sleep(0.05)
    proc.kill()
    raise AssertionError("the h2c upstream did not start")


def stream_request(port, content):
    body = json.dumps({"model": "h2ai", "stream": True,
                       "messages": [{"role": "user", "content": content}]}).encode()
    s = socket.create_connection(("127.0.0.1", port), timeout=30)
    s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
              b"Connection: close\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
    return s


def read_to_close(s):
    data = b""
    while True:
        piece = s.recv(65536)
        if not piece:
            return data
        data += piece


class Http2UpstreamTests(DaemonTestCase):
    @classmethod
    def setUpClass(cls):
        cls.workdir = make_tmpdir()
        cls.upstream, h2_port, cls.stats_port = start_h2c_upstream(cls.workdir)
        providers = "\n".join([
            "  - name: h2ai", "    plugin: openai", "    config:",
            "      base_url: %s" % yaml_str("http://127.0.0.1:%d/v1" % h2_port),
            "      api_key_env: \"\"", "      retries: 0", "      timeout_ms: 60000",
            "    http: { version: \"2-prior-knowledge\" }", ""])
        cls.manifest_kw = {"extra_providers": providers}
        try:
            super().setUpClass()
        except BaseException:
            cls.upstream.kill()
            cls.upstream.wait()
            raise

    @classmethod
    def tearDownClass(cls):
        try:
            super().tearDownClass()
        finally:
            cls.upstream.terminate()
            cls.upstream.wait(timeout=10)

    def stats(self):
        with urllib.request.urlopen("http://127.0.0.1:%d/stats" % self.stats_port, timeout=10) as r:
            return json.loads(r.read())

    def test_concurrent_streams_share_http2_connections(self):
        before = self.stats()
        socks = [stream_request(self.daemon.port, "together:%d" % STREAMS) for _ in range(STREAMS)]
        answers = [read_to_close(s) for s in socks]
        for s in socks:
            s.close()
        for a in answers:
            self.assertIn(b" 200 ", a.split(b"\r\n", 1)[0], a[:300])
            text = a.decode("utf-8", "replace")
            self.assertIn("data: [DONE]", text)
            for word in ("one ", "two ", "three"):
                self.assertIn('"content":"%s"' % word, text)
        after = self.stats()
        self.assertTrue(after["together"], "the upstream never saw %d streams open at once: %r"
                        % (STREAMS, after))
        self.assertEqual(after["streams"] - before["streams"], STREAMS)
        self.assertEqual(set(after["versions"]), {"2.0"}, after)
        # Multiplexed: a few new connections (one per client thread at most), not one per stream.
        self.assertLessEqual(after["sessions"] - before["sessions"], os.cpu_count() or 1, (before, after))

    def test_client_disconnect_cancels_the_upstream_stream(self):
        before = self.stats()["drips_cut"]
        s = stream_request(self.daemon.port, "drip")
        received = b""
        deadline = time.monotonic() + 30
        while b'"content":"drop ' not in received and time.monotonic() < deadline:
            piece = s.recv(4096)
            if not piece:
                break
            received += piece
        self.assertIn(b'"content":"drop ', received)
        s.close()  # gone mid-stream: the daemon cancels, curl resets the HTTP/2 stream
        # The drip would run 60 s; the poll ends well before that either way.
        for _ in range(400):
            if self.stats()["drips_cut"] > before:
                break
            time.sleep(0.05)
        self.assertGreater(self.stats()["drips_cut"], before,
                           "the upstream stream was not cut\n%s" % self.daemon.log_tail())


if __name__ == "__main__":
    unittest.main()
