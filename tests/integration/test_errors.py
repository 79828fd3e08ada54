"""Error answers: status, code, JSON shape, and the daemon keeps serving."""

import socket
import unittest
import uuid

from swh_harness import DaemonTestCase

MAX_BODY = 4096


def uid(prefix="u"):
    return "%s-%s" % (prefix, uuid.uuid4().hex[:12])


class ErrorTests(DaemonTestCase):
    manifest_kw = {"max_body_bytes": MAX_BODY}

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.sid = cls.client.create_session(uid())["id"]

    def tearDown(self):
        super().tearDown()
        # after every error case the daemon still answers
        r = self.client.get("/healthz")
        self.assertEqual(r.status, 200, "daemon unhealthy after %s: %r" % (self.id(), r))

    def msgs_path(self):
        return "/v1/sessions/%s/messages" % self.sid

    # ------------------------------------------------------------- bad JSON
    def test_malformed_json(self):
        for path, method in (("/v1/sessions", "POST"), (self.msgs_path(), "POST"),
                             ("/v1/sessions/%s" % self.sid, "PATCH")):
            for raw in (b"{", b"{\"user_id\": }", b"not json at all", b"{\"a\":1}trailing", b"\xff\xfe"):
                with self.subTest(path=path, raw=raw):
                    r = self.client.request(method, path, raw=raw)
                    self.assertError(r, 400, "invalid_json")

    def test_empty_body(self):
        # an empty body is not JSON; either 400 code is defensible
        r = self.client.request("POST", self.msgs_path(), raw=b"")
        self.assertEqual(r.status, 400, r)
        self.assertIsInstance(r.json, dict, r)
        code = r.json.get("error", {}).get("code")
        self.assertIn(code, ("invalid_json", "invalid_request"), r)
        self.assertError(r, 400, code)

    def test_json_not_an_object(self):
        for raw in (b"[1,2]", b"\"hello\"", b"42", b"null"):
            with self.subTest(raw=raw):
                self.assertError(self.client.request("POST", self.msgs_path(), raw=raw), 400, "invalid_request")
                self.assertError(self.client.request("POST", "/v1/sessions", raw=raw), 400, "invalid_request")

    # ------------------------------------------------------ invalid request
    def test_chat_completion_bad_bodies(self):
        user = [{"role": "user", "content": "hi"}]
        cases = [
            ({"messages": user}, "'model'"),
            ({"model": "", "messages": user}, "'model'"),
            ({"model": "echo", "messages": []}, "'messages'"),
            ({"model": "echo", "messages": "hi"}, "'messages'"),
            ({"model": "echo", "messages": user, "n": 2}, "n = 1"),
            # 2^32 + 1 must not be read as 1 through a narrowing conversion
            ({"model": "echo", "messages": user, "n": 4294967297}, "n = 1"),
            ({"model": "echo", "messages": user, "stream": "yes"}, "'stream'"),
            ({"model": "echo", "messages": [{"content": "x"}]}, "messages[0]"),
            ({"model": "echo", "messages": [user[0], {"role": "tool", "content": "x"}]}, "messages[1]"),
            ({"model": "echo", "messages": [{"role": "user", "content": {"a": 1}}]}, "messages[0]"),
            ({"model": "echo", "messages": [{"role": "user", "content": [{"type": "image_url"}]}]}, "messages[0]"),
        ]
        for body, names in cases:
            with self.subTest(body=body):
                r = self.client.post("/v1/chat/completions", body)
                self.assertError(r, 400, "invalid_request")
                self.assertIn(names, r.json["error"]["message"])
        ok = self.client.post("/v1/chat/completions", {"model": "echo", "messages": user, "n": 1})
        self.assertEqual(ok.status, 200, ok)

    def test_message_missing_content(self):
        self.assertError(self.client.post(self.msgs_path(), {}), 400, "invalid_request")
        self.assertError(self.client.post(self.msgs_path(), {"metadata": {}}), 400, "invalid_request")

    def test_message_wrong_types(self):
        cases = [
            {"content": 5},
            {"content": None},
            {"content": ["a"]},
            {"content": "x", "metadata": "not an object"},
            {"content": "x", "stream": "yes"},
            {"content": "x", "role": 3},
        ]
        for body in cases:
            with self.subTest(body=body):
                self.assertError(self.client.post(self.msgs_path(), body), 400, "invalid_request")

    def test_message_unknown_field(self):
        self.assertError(self.client.post(self.msgs_path(), {"content": "x", "colour": "red"}),
                         400, "invalid_request")

    def test_message_bad_role(self):
        self.assertError(self.client.post(self.msgs_path(), {"content": "x", "role": "assistant"}),
                         400, "invalid_request")
        self.assertError(self.client.post(self.msgs_path(), {"content": "x", "role": "wizard"}),
                         400, "invalid_request")

    def test_rejected_messages_not_stored(self):
        s = self.client.create_session(uid())
        path = "/v1/sessions/%s/messages" % s["id"]
        self.client.post(path, {"content": 5})
        self.client.post(path, {"content": "x", "bogus": 1})
        self.client.request("POST", path, raw=b"{")
        self.assertEqual(self.client.messages(s["id"]), [])
        self.assertEqual(self.client.get("/v1/sessions/%s" % s["id"]).json["message_count"], 0)

    def test_session_create_invalid(self):
        cases = [
            {},
            {"user_id": 5},
            {"user_id": None},
            {"user_id": "u", "unknown_field": 1},
            {"user_id": "u", "metadata": [1]},
            {"user_id": "u", "context": "ctx"},
            {"user_id": "u", "model": 7},
        ]
        for body in cases:
            with self.subTest(body=body):
                self.assertError(self.client.post("/v1/sessions", body), 400, "invalid_request")

    def test_session_create_unknown_provider(self):
        user = uid()
        r = self.client.post("/v1/sessions", {"user_id": user, "provider": "no_such_provider"})
        self.assertError(r, 400, "invalid_request")
        self.assertEqual(self.client.get("/v1/sessions?user_id=%s" % user).json["sessions"], [])

    def test_patch_invalid(self):
        path = "/v1/sessions/%s" % self.sid
        for body in ({"model": 5}, {"metadata": "x"}, {"status": "bogus"}, {"user_id": "someone-else"},
                     {"unknown": 1}):
            with self.subTest(body=body):
                self.assertError(self.client.patch(path, body), 400, "invalid_request")
        g = self.client.get(path).json
        self.assertEqual(g["status"], "active")
        self.assertNotEqual(g["user_id"], "someone-else")

    # -------------------------------------------------------------- queries
    def test_bad_query_parameters(self):
        for q in ("?limit=abc", "?limit=-1", "?limit=1.5", "?since=yesterday", "?since=2026-13-45T99:99:99Z"):
            with self.subTest(q=q):
                self.assertError(self.client.get(self.msgs_path() + q), 400, "invalid_request")
        for q in ("?limit=abc", "?offset=x", "?limit=-3"):
            with self.subTest(q=q):
                self.assertError(self.client.get("/v1/sessions" + q), 400, "invalid_request")

    # ------------------------------------------------------------ not found
    def test_unknown_session(self):
        missing = str(uuid.uuid4())
        self.assertError(self.client.get("/v1/sessions/%s" % missing), 404, "not_found")
        self.assertError(self.client.get("/v1/sessions/%s/messages" % missing), 404, "not_found")
        self.assertError(self.client.post("/v1/sessions/%s/messages" % missing, {"content": "x"}), 404, "not_found")
        self.assertError(self.client.delete("/v1/sessions/%s" % missing), 404, "not_found")
        # one clean message, whoever noticed (the host or the store), never the plugin's own text
        for method, path, body in (("GET", "", None), ("GET", "/messages", None),
                                   ("POST", "/messages", {"content": "x"}), ("DELETE", "", None)):
            with self.subTest(method=method, path=path):
                r = self.client.request(method, "/v1/sessions/%s%s" % (missing, path), body=body)
                self.assertEqual(r.json["error"]["message"], "session '%s' not found" % missing, r)

    def test_unknown_route(self):
        for method, path in (("GET", "/nope"), ("GET", "/v1/nothing"), ("POST", "/v2/sessions"),
                             ("GET", "/v1/sessions/%s/nonsense" % self.sid), ("GET", "/")):
            with self.subTest(method=method, path=path):
                self.assertError(self.client.request(method, path), 404, "not_found")

    # ---------------------------------------------------------- bad method
    def test_wrong_method(self):
        cases = [
            ("PUT", "/v1/sessions", {"GET", "POST"}),
            ("DELETE", "/v1/sessions", {"GET", "POST"}),
            ("PUT", "/v1/sessions/%s" % self.sid, {"GET", "PATCH", "DELETE"}),
            ("POST", "/v1/sessions/%s" % self.sid, {"GET", "PATCH", "DELETE"}),
            ("GET", "/v1/sessions/%s/archive" % self.sid, {"POST"}),
            ("DELETE", "/v1/sessions/%s/messages" % self.sid, {"GET", "POST"}),
            ("POST", "/healthz", {"GET"}),
            ("DELETE", "/v1/plugins", {"GET"}),
        ]
        for method, path, allowed in cases:
            with self.subTest(method=method, path=path):
                r = self.client.request(method, path, raw=b"{}" if method in ("PUT", "POST") else None)
                self.assertError(r, 405, "method_not_allowed")
                allow = r.headers.get("Allow")
                self.assertIsNotNone(allow, "405 without an Allow header: %r" % r)
                got = {m.strip().upper() for m in allow.split(",") if m.strip()}
                self.assertTrue(allowed <= got, "Allow %r lacks some of %r" % (allow, allowed))
                self.assertNotIn(method, got)

    # ----------------------------------------------------------- body size
    def test_body_too_large(self):
        s = self.client.create_session(uid())
        path = "/v1/sessions/%s/messages" % s["id"]
        r = self.client.post(path, {"content": "x" * (MAX_BODY * 3)})
        self.assertError(r, 413, "payload_too_large")
        r = self.client.post("/v1/sessions", {"user_id": "u", "metadata": {"blob": "y" * (MAX_BODY + 10)}})
        self.assertError(r, 413, "payload_too_large")
        # a body just under the limit is fine, and nothing of the big one was stored
        r = self.client.post(path, {"content": "z" * (MAX_BODY - 200)})
        self.assertEqual(r.status, 201, r)
        msgs = self.client.messages(s["id"])
        self.assertEqual([m["content"][:1] for m in msgs], ["z", "e"])

    def test_body_too_large_by_declared_length(self):
        # a Content-Length over the limit is refused without reading the body
        with socket.create_connection(("127.0.0.1", self.daemon.port), timeout=15) as sock:
            sock.sendall(("POST /v1/sessions/%s/messages HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                          "Content-Type: application/json\r\nContent-Length: %d\r\n\r\n"
                          % (self.sid, 50 * 1024 * 1024)).encode())
            sock.sendall(b"{\"content\": \"")
            data = b""
            while b"\r\n\r\n" not in data:
                chunk = sock.recv(4096)
                if not chunk:
                    break
                data += chunk
        self.assertTrue(data.startswith(b"HTTP/1.1 413"), data[:200])

    # ------------------------------------------------------ garbage on wire
    def test_garbage_request_line(self):
        with socket.create_connection(("127.0.0.1", self.daemon.port), timeout=15) as sock:
            sock.sendall(b"THIS IS NOT HTTP\r\n\r\n")
            data = b""
            try:
                while True:
                    chunk = sock.recv(4096)
                    if not chunk:
                        break
                    data += chunk
            except (socket.timeout, ConnectionResetError):
                pass
        # either a 400 answer or a closed connection; never a hang or a crash
        self.assertTrue(data == b"" or data.startswith(b"HTTP/1.1 400"), data[:200])

    # --------------------------------------------------------------- alive
    def test_zz_still_healthy_and_working(self):
        r = self.client.get("/healthz")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json["status"], "healthy")
        s = self.client.create_session(uid())
        r = self.client.send(s["id"], "still here")
        self.assertEqual(r.status, 201, r)
        self.assertEqual(r.json["assistant_message"]["content"], "echo#1 still here")


if __name__ == "__main__":
    unittest.main()
