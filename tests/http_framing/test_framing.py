"""HTTP framing through the real daemon over raw sockets (issue #13).

- a Transfer-Encoding whose last coding is not `chunked` is answered 400 and
  the connection closed: its body bytes are never read as a next request
  (RFC 9112 6.3; a smuggled `GET /v1/plugins` was answered 200);
- chunk extensions and trailers count against the limits: one long extension
  or trailer section against server.max_header_bytes (431, refused before the
  rest is read), many extensions against server.max_body_bytes (413);
- trailer fields are refused (400, closed): Beast would merge them into the
  header, where they could name the caller after a proxy checked the header;
- a HEAD answer has headers and no body (the next answer on the connection
  starts right after the head);
- the path is split at '/' before percent-decoding: `%2F` never separates
  segments, so `/v1%2Fadmin%2Freload` does not reach the reload route;
- header values that end up in JSON and path segments must be UTF-8: 400
  naming the header or the segment, never 500, and the body is valid JSON.
"""

import json
import socket
import unittest

import swh_harness
from swh_harness import read_head, read_response, read_to_close, request_bytes

MAX_BODY = 4096
MAX_HEADER = 16 * 1024  # the default server.max_header_bytes
# More than the daemon should ever hold for one request here; sending stops
# as soon as the daemon has answered and closed.
FLOOD_BYTES = 64 * 1024 * 1024
PIECE = 64 * 1024


def connect(port, timeout=10.0):
    return socket.create_connection(("127.0.0.1", port), timeout=timeout)


def send_until_refused(s, head, pieces, tail=b""):
    """Send `head`, then the pieces, then `tail`; stop when the server has
    closed. Returns the number of piece bytes that went out."""
    s.sendall(head)
    sent = 0
    try:
        for piece in pieces:
            s.sendall(piece)
            sent += len(piece)
        s.sendall(tail)
    except (BrokenPipeError, ConnectionResetError):
        pass
    return sent


class FramingTests(swh_harness.DaemonTestCase):
    manifest_kw = {"max_body_bytes": MAX_BODY}

    def assertJsonError(self, answer, status, code):
        got, headers, body = answer
        self.assertEqual(got, status, answer)
        self.assertIn("application/json", headers.get("content-type", ""), answer)
        err = json.loads(body.decode("utf-8"))["error"]  # valid UTF-8 JSON, always
        self.assertEqual(err["code"], code, answer)
        self.assertTrue(err["message"], answer)
        return err

    def assertClosedAfter(self, s, answer):
        """The server closed the connection after `answer`: nothing more comes."""
        self.assertEqual(answer[1].get("connection", "").lower(), "close", answer)
        rest = read_to_close(s)
        self.assertEqual(rest, b"", "more after the answer (a smuggled request answered?): %r" % rest[:300])

    def assertServing(self):
        self.assertEqual(self.client.get("/v1/sessions").status, 200)

    # ---- item 3: request smuggling through Transfer-Encoding
    def test_transfer_encoding_not_ending_in_chunked_is_400_and_closes(self):
        smuggled = request_bytes("GET", "/v1/plugins")
        for coding in ("identity", "gzip", "chunked, identity", "xchunked"):
            with self.subTest(coding=coding), connect(self.daemon.port) as s:
                s.sendall(request_bytes("POST", "/v1/sessions", smuggled,
                                        [("Content-Type", "application/json"), ("Transfer-Encoding", coding)]))
                answer = read_response(s)
                err = self.assertJsonError(answer, 400, "invalid_request")
                self.assertIn("Transfer-Encoding", err["message"])
                self.assertClosedAfter(s, answer)
        self.assertServing()

    def test_transfer_encoding_with_content_length_is_400_and_closes(self):
        body = b'{"user_id":"te"}'
        with connect(self.daemon.port) as s:
            s.sendall(request_bytes("POST", "/v1/sessions", body + request_bytes("GET", "/v1/plugins"),
                                    [("Content-Type", "application/json"), ("Transfer-Encoding", "gzip"),
                                     ("Content-Length", str(len(body)))]))
            answer = read_response(s)
            self.assertJsonError(answer, 400, "invalid_request")
            self.assertClosedAfter(s, answer)

    def test_chunked_requests_still_work_and_keep_the_connection(self):
        body = b'{"user_id":"chunky"}'
        chunked = b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)
        with connect(self.daemon.port) as s:
            for _ in range(2):  # the second proves the connection stayed usable
                s.sendall(request_bytes("POST", "/v1/sessions", chunked,
                                        [("Content-Type", "application/json"), ("Transfer-Encoding", "chunked")]))
                status, headers, created = read_response(s)
                self.assertEqual(status, 201, created)
                self.assertEqual(json.loads(created)["user_id"], "chunky")

    # ---- item 4: chunk extensions and trailers against the limits
    def test_a_long_chunk_extension_is_refused_before_it_is_read(self):
        head = request_bytes("POST", "/v1/sessions", b"1;ext=",
                             [("Content-Type", "application/json"), ("Transfer-Encoding", "chunked")])
        with connect(self.daemon.port) as s:
            sent = send_until_refused(s, head, (b"a" * PIECE for _ in range(FLOOD_BYTES // PIECE)),
                                      b"\r\n{\r\n0\r\n\r\n")
            answer = read_response(s)
            err = self.assertJsonError(answer, 431, "invalid_request")
            self.assertIn("max_header_bytes", err["message"])
            # The daemon closed the connection instead of buffering the flood.
            self.assertLess(sent, FLOOD_BYTES, "the whole extension was accepted")
        self.assertServing()

    def test_chunk_extensions_count_against_the_body_limit(self):
        # Each extension fits the header limit; together they pass the body limit.
        ext = b";e=" + b"a" * 1000
        body = b"".join(b"1%s\r\n \r\n" % ext for _ in range(2 * MAX_BODY // len(ext)))
        body += b'%x\r\n{"user_id":"ext"}\r\n0\r\n\r\n' % len(b'{"user_id":"ext"}')
        with connect(self.daemon.port) as s:
            s.sendall(request_bytes("POST", "/v1/sessions", body,
                                    [("Content-Type", "application/json"), ("Transfer-Encoding", "chunked")]))
            answer = read_response(s)
            self.assertJsonError(answer, 413, "payload_too_large")
            self.assertClosedAfter(s, answer)

    def test_a_trailer_section_over_the_header_limit_is_431(self):
        body = b'{"user_id":"trailer"}'
        trailer = b"X-Padding: " + b"a" * (2 * MAX_HEADER) + b"\r\n"
        chunked = b"%x\r\n%s\r\n0\r\n%s\r\n" % (len(body), body, trailer)
        with connect(self.daemon.port) as s:
            send_until_refused(s, request_bytes("POST", "/v1/sessions", b"",
                                                [("Content-Type", "application/json"),
                                                 ("Transfer-Encoding", "chunked")]), [chunked])
            answer = read_response(s)
            self.assertJsonError(answer, 431, "invalid_request")
        self.assertServing()

    def test_trailer_fields_are_refused_and_never_read_as_headers(self):
        # Beast adds trailer fields to the header's: a trailer could name the
        # caller (X-Swarmhost-User here, Authorization / X-API-Key under keys)
        # after a proxy in front had checked the header.
        body = b'{"metadata":{"via":"trailer"}}'
        for trailer in (b"X-Swarmhost-User: mallory\r\n", b"X-Unrelated: 1\r\n"):
            chunked = b"%x\r\n%s\r\n0\r\n%s\r\n" % (len(body), body, trailer)
            with self.subTest(trailer=trailer), connect(self.daemon.port) as s:
                s.sendall(request_bytes("POST", "/v1/sessions", b"",
                                        [("Content-Type", "application/json"),
                                         ("Transfer-Encoding", "chunked")]) + chunked)
                answer = read_response(s)
                self.assertJsonError(answer, 400, "invalid_request")
                self.assertIn("trailer", json.loads(answer[2])["error"]["message"])
                self.assertClosedAfter(s, answer)
        self.assertEqual(self.client.get("/v1/sessions?user_id=mallory").json["sessions"], [])
        self.assertServing()

    # ---- item 8a: HEAD
    def test_head_answers_have_no_body(self):
        for path in ("/v1/sessions", "/healthz", "/nowhere"):
            with self.subTest(path=path), connect(self.daemon.port) as s:
                # Pipelined: the GET's answer must start right after the HEAD's head.
                s.sendall(request_bytes("HEAD", path) + request_bytes("GET", "/healthz"))
                status, headers, rest = read_head(s)
                self.assertGreater(int(headers.get("content-length", "0")), 0, headers)
                while len(rest) < len(b"HTTP/1.1 "):
                    chunk = s.recv(65536)
                    self.assertTrue(chunk, "closed after the HEAD answer")
                    rest += chunk
                self.assertTrue(rest.startswith(b"HTTP/1.1 "), "body bytes after a HEAD head: %r" % rest[:200])
                status, _, _ = read_head(s, rest)
                self.assertEqual(status, 200)

    # ---- item 8b: route on the raw path
    def test_an_encoded_slash_does_not_separate_segments(self):
        for method, path in (("POST", "/v1%2Fadmin%2Freload"), ("POST", "/v1/admin%2Freload"),
                             ("GET", "/v1%2Fsessions"), ("GET", "/v1/sessions%2Fx")):
            with self.subTest(path=path):
                r = self.client.request(method, path)
                self.assertError(r, 404, "not_found")
        # Other escapes are still decoded, segment by segment.
        self.assertEqual(self.client.get("/v1/session%73").status, 200)

    # ---- item 5: header values and path segments are UTF-8
    def test_invalid_utf8_in_json_bound_headers_is_400_naming_the_header(self):
        session = self.client.create_session("utf8")
        send = "/v1/sessions/%s/messages" % session["id"]
        cases = [("Idempotency-Key", "POST", send, b'{"content":"hi"}'),
                 ("X-Swarmhost-User", "POST", send, b'{"content":"hi"}'),
                 ("X-Swarmhost-Session", "POST", "/v1/chat/completions",
                  b'{"model":"echo","messages":[{"role":"user","content":"hi"}]}')]
        for header, method, path, body in cases:
            with self.subTest(header=header), connect(self.daemon.port) as s:
                s.sendall(request_bytes(method, path, body, [("Content-Type", "application/json"),
                                                             ("Content-Length", str(len(body))),
                                                             (header, b"k\xff\xfe")]))
                err = self.assertJsonError(read_response(s), 400, "invalid_request")
                self.assertIn(header, err["message"])
        self.assertEqual(self.client.messages(session["id"]), [], "a refused send stored a message")

    def test_invalid_utf8_in_a_path_segment_is_400_with_a_json_body(self):
        for path in ("/v1/sessions/%FF", "/v1/sessions/%C3%28/messages"):
            with self.subTest(path=path), connect(self.daemon.port) as s:
                s.sendall(request_bytes("GET", path))
                self.assertJsonError(read_response(s), 400, "invalid_request")


class PluginRouteTests(swh_harness.DaemonTestCase):
    """A session type's route never sees a segment that is not UTF-8 (the
    collaborative plugin echoed one into an error body that was not JSON)."""

    manifest_kw = {"extra_providers": "session_types:\n  - name: collaborative\n    plugin: collaborative\n"}

    def test_invalid_utf8_segment_on_a_plugin_route_is_400_json(self):
        session = self.client.create_session("owner", type="collaborative")
        with connect(self.daemon.port) as s:
            s.sendall(request_bytes("GET", "/v1/sessions/%s/participants/%%FF" % session["id"]))
            status, headers, body = read_response(s)
        self.assertEqual(status, 400, body)
        self.assertEqual(json.loads(body.decode("utf-8"))["error"]["code"], "invalid_request")


if __name__ == "__main__":
    unittest.main()
