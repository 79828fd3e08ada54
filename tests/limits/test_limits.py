"""Request limits through the real daemon (Python 3 standard library only).

- a body over server.max_body_bytes -> 413 JSON (`payload_too_large`), whether
  announced by Content-Length, sent chunked, or only claimed;
- request headers over 16 KiB (ServerLimits::max_header_bytes) -> 431 JSON;
- slow clients (slowloris: headers trickled byte by byte) do not hold up
  other clients, and do not hold up SIGTERM;
- a slow client is disconnected after the read timeout even while it keeps
  sending - with `server.read_timeout_seconds` set to 2 s;
- connections over server.max_connections get 503 JSON + Retry-After, and
  room comes back when one closes;
- after each of these the daemon keeps serving.
"""

import json
import re
import os
import socket
import sys
import threading
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))

import swh_harness  # noqa: E402

MAX_BODY = 4096
MAX_HEADER = 16 * 1024  # host/http/server.hpp ServerLimits::max_header_bytes
READ_TIMEOUT_KEY = "read_timeout_seconds"  # the server.* key these tests would like


# Raw-socket helpers shared with the framing tests (tests/http_framing).
raw_exchange = swh_harness.raw_exchange
read_response = swh_harness.read_response
request_bytes = swh_harness.request_bytes


class LimitTests(swh_harness.DaemonTestCase):
    manifest_kw = {"max_body_bytes": MAX_BODY}

    def assertJsonError(self, answer, status, code):
        got_status, headers, body = answer
        self.assertEqual(got_status, status, answer)
        self.assertIn("application/json", headers.get("content-type", ""), answer)
        err = json.loads(body.decode("utf-8"))["error"]
        self.assertEqual(err["code"], code, answer)
        self.assertTrue(err["message"], answer)
        return err

    def assertServing(self):
        r = self.client.create_session("still-serving")
        self.assertEqual(self.client.send(r["id"], "hi").status, 201)

    # ---- body size
    def test_body_at_the_limit_is_read(self):
        content = "x" * (MAX_BODY - len('{"user_id":""}'))
        body = json.dumps({"user_id": content}, separators=(",", ":")).encode()
        self.assertEqual(len(body), MAX_BODY)
        r = self.client.post("/v1/sessions", raw=body)
        self.assertEqual(r.status, 201, r)

    def test_body_over_the_limit_is_413_json(self):
        body = json.dumps({"user_id": "x" * MAX_BODY}).encode()
        r = self.client.post("/v1/sessions", raw=body)
        self.assertError(r, 413, "payload_too_large")
        self.assertIn("max_body_bytes", r.json["error"]["message"])
        self.assertServing()

    def test_chunked_body_over_the_limit_is_413_json(self):
        chunk = b"x" * 1024
        body = b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for _ in range(8)) + b"0\r\n\r\n"
        answer = raw_exchange(self.daemon.port, request_bytes(
            "POST", "/v1/sessions", body, [("Content-Type", "application/json"), ("Transfer-Encoding", "chunked")]))
        self.assertJsonError(answer, 413, "payload_too_large")
        self.assertServing()

    def test_a_claimed_huge_body_is_refused_before_it_is_sent(self):
        # Content-Length of 10 GB, no body: the answer must come from the
        # header alone, not after waiting for (or buffering) the body - the
        # body never comes, so a server waiting for it would answer nothing.
        answer = raw_exchange(self.daemon.port, request_bytes(
            "POST", "/v1/sessions/abc/messages", b"", [("Content-Type", "application/json"),
                                                       ("Content-Length", str(10 ** 10))]))
        self.assertJsonError(answer, 413, "payload_too_large")
        self.assertServing()

    # ---- header size
    def test_headers_under_the_limit_are_read(self):
        answer = raw_exchange(self.daemon.port, request_bytes("GET", "/healthz", b"", [("X-Pad", "p" * 8000)]))
        self.assertEqual(answer[0], 200, answer)

    def test_one_oversized_header_is_431_json(self):
        answer = raw_exchange(self.daemon.port, request_bytes("GET", "/healthz", b"", [("X-Pad", "p" * (MAX_HEADER + 1))]))
        self.assertJsonError(answer, 431, "invalid_request")
        self.assertServing()

    def test_many_headers_over_the_limit_are_431_json(self):
        headers = [("X-Pad-%d" % i, "v" * 100) for i in range(MAX_HEADER // 100 + 10)]
        answer = raw_exchange(self.daemon.port, request_bytes("GET", "/healthz", b"", headers))
        self.assertJsonError(answer, 431, "invalid_request")
        self.assertServing()

    def test_an_oversized_request_line_is_refused(self):
        answer = raw_exchange(self.daemon.port, request_bytes("GET", "/v1/sessions?user_id=" + "u" * (MAX_HEADER + 10)))
        self.assertIn(answer[0], (400, 414, 431), answer)
        self.assertServing()

    # ---- slow clients
    def test_slowloris_does_not_hold_up_other_clients(self):
        """Twenty connections trickle their headers one byte every 0.2 s (a
        request that would take minutes to arrive); meanwhile ordinary
        requests are answered."""
        slow = []
        for _ in range(20):
            s = socket.create_connection(("127.0.0.1", self.daemon.port), timeout=5)
            slow.append(s)
        stop = threading.Event()
        trickle = b"POST /v1/sessions HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + b"a" * 1000

        def trickler():
            i = 0
            while not stop.is_set() and i < len(trickle):
                for s in slow:
                    try:
                        s.sendall(trickle[i:i + 1])
                    except OSError:
                        pass
                i += 1
                stop.wait(0.2)

        t = threading.Thread(target=trickler, daemon=True)
        t.start()
        try:
            # Ten exchanges while every slow request is still arriving: a
            # server that gave each connection a thread (two I/O threads) or
            # served them in turn would not answer these before the slow ones
            # finished or timed out.
            sid = self.client.create_session("beside-slowloris")["id"]
            for i in range(10):
                r = self.client.send(sid, "fast client %d" % i)
                self.assertEqual(r.status, 201, r)
                self.assertEqual(self.client.get("/healthz").status, 200)
            # ...and they were still arriving: the trickle runs on, and the
            # server has neither answered nor closed a slow connection.
            self.assertTrue(t.is_alive(), "the slow requests ended before the fast ones were answered")
            for s in slow:
                s.setblocking(False)
                try:
                    got = s.recv(1)
                    self.fail("a slow connection got %r before its request was complete" % got)
                except BlockingIOError:
                    pass
        finally:
            stop.set()
            t.join(timeout=5)
            for s in slow:
                s.close()
        self.assertServing()

    def test_slow_client_is_disconnected_after_the_read_timeout(self):
        code, out = swh_harness.run_cli(["check", self._manifest_with_read_timeout(2)])
        self.assertEqual(code, 0, "the manifest must accept server.%s: %s" % (READ_TIMEOUT_KEY, out))
        d = swh_harness.Daemon(manifest=open(self._manifest_with_read_timeout(2)).read())
        self.addCleanup(d.cleanup)
        d.start()
        with socket.create_connection(("127.0.0.1", d.port), timeout=10) as s:
            start = time.monotonic()
            closed_after = None
            # Keep sending a byte every 0.5 s: the timeout is a deadline for the
            # whole request, not an idle timer that each byte resets.
            for b in b"GET /healthz HTTP/1.1\r\nX-Slow: " + b"a" * 40:
                try:
                    s.sendall(bytes([b]))
                    s.settimeout(0.5)
                    if s.recv(1024) == b"":
                        closed_after = time.monotonic() - start
                        break
                except socket.timeout:
                    continue
                except OSError:
                    closed_after = time.monotonic() - start
                    break
            # The loop sends for ~20 s: still connected at its end would mean
            # each byte reset the 2 s timer.
            self.assertIsNotNone(closed_after, "slow client still connected after %.1f s"
                                 % (time.monotonic() - start))
        self.assertEqual(d.client.get("/healthz").status, 200)

    def test_the_read_timeout_counts_per_request_on_a_kept_alive_connection(self):
        # One timer per connection is moved on by each request (server.cpp,
        # arm_read_timer): requests 0.5 s apart for 3 s all get answers (the
        # first request's 2 s deadline does not end the connection), and the
        # connection left idle is closed.
        d = swh_harness.Daemon(manifest=open(self._manifest_with_read_timeout(2)).read())
        self.addCleanup(d.cleanup)
        d.start()
        with socket.create_connection(("127.0.0.1", d.port), timeout=10) as s:
            for i in range(7):
                s.sendall(swh_harness.request_bytes("GET", "/healthz"))
                status, _, _ = swh_harness.read_response(s)
                self.assertEqual(status, 200, "request %d on the kept-alive connection" % i)
                time.sleep(0.5)
            s.settimeout(10)
            self.assertEqual(s.recv(1), b"", "an idle connection is closed after the read timeout")

    def _manifest_with_read_timeout(self, seconds):
        path = os.path.join(self.daemon.workdir, "read-timeout.yaml")
        port = swh_harness.free_port()
        text = swh_harness.manifest_text(port, os.path.join(self.daemon.workdir, "rt.db"))
        text = text.replace("server:\n", "server:\n  %s: %d\n" % (READ_TIMEOUT_KEY, seconds), 1)
        with open(path, "w") as f:
            f.write(text)
        return path


class ConnectionLimit(unittest.TestCase):
    """server.max_connections: a connection over it gets 503 JSON with
    Retry-After and is closed; the open ones are served; when one closes, a
    new connection is served again."""

    def test_connections_over_the_limit_get_503_and_room_comes_back(self):
        d = swh_harness.Daemon(server_lines=("max_connections: 4",))
        self.addCleanup(d.cleanup)
        d.start()
        d.client.close()  # its kept-alive connection would count
        healthz = request_bytes("GET", "/healthz")
        metrics = request_bytes("GET", "/metrics")

        def open_connections(s):
            """GET /metrics on the kept-alive socket `s`: the open-connection gauge."""
            s.sendall(metrics)
            status, _, body = read_response(s)
            self.assertEqual(status, 200, body)
            return int(re.search(rb"swarmhost_http_connections_open (\d+)", body).group(1))

        # The first held connection asks until it is the only one open: the
        # server notices closed connections (the harness's probes) a moment
        # later, and a stale one would still count.
        held = [socket.create_connection(("127.0.0.1", d.port), timeout=10)]
        try:
            deadline = time.monotonic() + 30
            while open_connections(held[0]) != 1:
                self.assertLess(time.monotonic(), deadline, "stale connections never went\n" + d.log_tail())
                time.sleep(0.05)
            held += [socket.create_connection(("127.0.0.1", d.port), timeout=10) for _ in range(3)]
            # Accepted in order on one strand: the four are counted before the fifth.
            status, headers, body = raw_exchange(d.port, healthz)
            self.assertEqual(status, 503, (status, headers, body))
            self.assertIn("application/json", headers.get("content-type", ""))
            self.assertEqual(headers.get("retry-after"), "1")
            err = json.loads(body.decode("utf-8"))["error"]
            self.assertEqual(err["code"], "unavailable", err)
            self.assertIn("server.max_connections", err["message"])
            # The four within the limit are served.
            for s in held:
                s.sendall(healthz)
                self.assertEqual(read_response(s)[0], 200)
            held.pop().close()
            refused = 1
            # The server notices the close asynchronously: poll (bounded).
            deadline = time.monotonic() + 30
            while True:
                status = raw_exchange(d.port, healthz)[0]
                if status == 200 or time.monotonic() > deadline:
                    break
                self.assertEqual(status, 503)
                refused += 1
                time.sleep(0.05)
            self.assertEqual(status, 200, "no room after a connection closed\n" + d.log_tail())
            # /metrics (asked on a held connection, which is always served)
            # counts every refusal.
            held[0].sendall(metrics)
            text = read_response(held[0])[2].decode()
            self.assertIn("swarmhost_http_connections_refused_total %d\n" % refused, text)
        finally:
            for s in held:
                s.close()
        self.assertIsNone(d.proc.poll(), d.log_tail())


class SlowClientsAtShutdown(unittest.TestCase):
    def test_sigterm_is_not_held_up_by_slow_clients(self):
        # Grace and read timeout far beyond the stop deadline: a daemon that
        # waited for these requests (which never finish) would still be
        # running at the deadline and be SIGKILLed (stop() returns None).
        d = swh_harness.Daemon(shutdown_grace_seconds=600, server_lines=("read_timeout_seconds: 600",))
        self.addCleanup(d.cleanup)
        d.start()
        slow = [socket.create_connection(("127.0.0.1", d.port), timeout=5) for _ in range(10)]
        try:
            for s in slow:
                s.sendall(b"POST /v1/sessions HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"us")
            time.sleep(0.3)
            rc = d.stop(deadline_s=60)
        finally:
            for s in slow:
                s.close()
        self.assertEqual(rc, 0, "SIGTERM was held up by clients that never finish a request\n" + d.log_tail())


if __name__ == "__main__":
    unittest.main()
