"""The `multimodal` session type (plugins/session_multimodal) through the real
daemon over loopback HTTP: uploads (multipart and base64 JSON), content
sniffing, limits, content-addressed storage, messages naming attachments,
and the openai / anthropic providers sending the files to tools/fake_upstream
in their vendor's format.

Run by hand (from this folder):
  SWH_BINARY=<build>/host/swarmhost SWH_PLUGIN_DIR=<build>/plugins \\
    python3 -m unittest -v test_multimodal
"""

import base64
import hashlib
import json
import os
import sys
import threading
import unittest
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.environ.get("SWH_REPO_ROOT") or os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(REPO, "tests", "integration"))
sys.path.insert(0, os.path.join(REPO, "tools", "fake_upstream"))

import server as fake_upstream  # noqa: E402
from swh_harness import DaemonTestCase, SSEStream, yaml_str  # noqa: E402

# A real 1x1 PNG, a minimal PDF and a GIF header: small files of known types.
PNG = base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==")
PDF = b"%PDF-1.4\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"
GIF = b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff!\xf9\x04\x01\x00\x00\x00\x00,\x00\x00\x00\x00" \
      b"\x01\x00\x01\x00\x00\x02\x02D\x01\x00;"
MAX_BYTES = 2048
MAX_PER_MESSAGE = 2
OPENAI_KEY = "sk-swhtest-mm-" + uuid.uuid4().hex
ANTHROPIC_KEY = "sk-ant-swhtest-mm-" + uuid.uuid4().hex


def uid(prefix="u"):
    return "%s-%s" % (prefix, uuid.uuid4().hex[:12])


def sha(data):
    return hashlib.sha256(data).hexdigest()


def saw(mime, data):
    """How the fake upstream reports a decoded image/file part."""
    return "%s %d bytes sha256=%s" % (mime, len(data), sha(data)[:12])


def multipart(parts, boundary=None):
    """(content type, body) of a multipart/form-data request.
    parts: [(field name, filename or None, content type or None, bytes)]."""
    boundary = boundary or "swh-" + uuid.uuid4().hex
    body = b""
    for name, filename, ctype, data in parts:
        disposition = 'form-data; name="%s"' % name
        if filename is not None:
            disposition += '; filename="%s"' % filename
        body += b"--" + boundary.encode() + b"\r\n"
        body += b"Content-Disposition: " + disposition.encode() + b"\r\n"
        if ctype:
            body += b"Content-Type: " + ctype.encode() + b"\r\n"
        body += b"\r\n" + data + b"\r\n"
    body += b"--" + boundary.encode() + b"--\r\n"
    return "multipart/form-data; boundary=%s" % boundary, body


def providers_and_types(fake_base):
    """Raw YAML appended to the test manifest: two more providers pointed at
    the fake upstream, and the session type under test."""
    return "\n".join([
        "  - name: openai",
        "    plugin: openai",
        "    config: {base_url: %s, api_key_env: SWH_TEST_MM_OPENAI_KEY, retries: 0, timeout_ms: 5000}"
        % yaml_str(fake_base + "/v1"),
        "  - name: anthropic",
        "    plugin: anthropic",
        "    config: {base_url: %s, api_key_env: SWH_TEST_MM_ANTHROPIC_KEY, retries: 0, timeout_ms: 5000}"
        % yaml_str(fake_base),
        "session_types:",
        "  - plugin: multimodal",
        "    config:",
        "      attachments_dir: \"./attachments\"",  # relative: the daemon's working folder
        "      max_bytes: %d" % MAX_BYTES,
        "      allowed_types: [image/png, image/jpeg, application/pdf, text/plain]",
        "      max_attachments_per_message: %d" % MAX_PER_MESSAGE,
    ]) + "\n"


class MultimodalTests(DaemonTestCase):
    fake = None

    @classmethod
    def setUpClass(cls):
        cls.fake = fake_upstream.make_server("127.0.0.1", 0)
        threading.Thread(target=cls.fake.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True).start()
        os.environ["SWH_TEST_MM_OPENAI_KEY"] = OPENAI_KEY
        os.environ["SWH_TEST_MM_ANTHROPIC_KEY"] = ANTHROPIC_KEY
        cls.manifest_kw = {"extra_providers": providers_and_types("http://127.0.0.1:%d" % cls.fake.server_address[1])}
        try:
            super().setUpClass()
        except BaseException:
            cls.fake.shutdown()
            cls.fake.server_close()
            raise
        cls.attachments_dir = os.path.join(os.path.realpath(cls.daemon.workdir), "attachments")

    @classmethod
    def tearDownClass(cls):
        try:
            super().tearDownClass()
        finally:
            cls.fake.shutdown()
            cls.fake.server_close()

    def setUp(self):
        self.fake.state.reset()

    # ---- helpers
    def session(self, provider="echo", **fields):
        return self.client.create_session(uid(), provider=provider, type="multimodal", **fields)["id"]

    def upload_multipart(self, sid, data, filename="cat.png", ctype="image/png"):
        content_type, body = multipart([("file", filename, ctype, data)])
        return self.client.post("/v1/sessions/%s/attachments" % sid, raw=body, headers={"Content-Type": content_type})

    def upload_json(self, sid, data, name="cat.png", mime_type="image/png"):
        body = {"name": name, "data_base64": base64.b64encode(data).decode()}
        if mime_type is not None:
            body["mime_type"] = mime_type
        return self.client.post("/v1/sessions/%s/attachments" % sid, body)

    def listed(self, sid):
        r = self.client.get("/v1/sessions/%s/attachments" % sid)
        self.assertEqual(r.status, 200, r)
        return r.json["attachments"]

    def stored_files(self):
        return sorted(os.listdir(self.attachments_dir)) if os.path.isdir(self.attachments_dir) else []

    def vendor_requests(self):
        with self.fake.state.lock:
            return [r for r in self.fake.state.requests if r["path"].endswith(("/chat/completions", "/messages"))]

    # ---- uploads
    def test_multipart_upload_is_stored_listed_and_downloaded_exactly(self):
        sid = self.session()
        r = self.upload_multipart(sid, PNG)
        self.assertEqual(r.status, 201, r)
        self.assertEqual({k: r.json[k] for k in ("id", "name", "mime_type", "size")},
                         {"id": sha(PNG), "name": "cat.png", "mime_type": "image/png", "size": len(PNG)})
        with open(os.path.join(self.attachments_dir, sha(PNG)), "rb") as f:
            self.assertEqual(f.read(), PNG)
        self.assertEqual([a["id"] for a in self.listed(sid)], [sha(PNG)])
        got = self.client.get("/v1/sessions/%s/attachments/%s" % (sid, sha(PNG)))
        self.assertEqual(got.status, 200, got)
        self.assertEqual(got.content_type, "image/png")
        self.assertEqual(got.raw, PNG)
        # the record lives in the session's metadata
        meta = self.client.get("/v1/sessions/%s" % sid).json["metadata"]
        record = meta["multimodal"]["attachments"][sha(PNG)]
        self.assertEqual((record["name"], record["mime_type"], record["size"]), ("cat.png", "image/png", len(PNG)))

    def test_multipart_with_quoted_boundary_preamble_and_other_fields(self):
        sid = self.session()
        boundary = "b;" + uuid.uuid4().hex  # a ';' inside a quoted parameter
        data = ("multipart text " + uuid.uuid4().hex).encode()
        body = (b"preamble to ignore\r\n--" + boundary.encode() + b"\r\n"
                b'Content-Disposition: form-data; name="comment"\r\n\r\nnot the file\r\n'
                b"--" + boundary.encode() + b"\r\n"
                b'content-disposition: form-data; name="upload"; filename="notes; v2.txt"\r\n'
                b"content-type: Text/Plain; charset=utf-8\r\n\r\n" + data + b"\r\n"
                b"--" + boundary.encode() + b"--\r\nepilogue")
        r = self.client.post("/v1/sessions/%s/attachments" % sid, raw=body,
                             headers={"Content-Type": 'multipart/form-data; boundary="%s"' % boundary})
        self.assertEqual(r.status, 201, r)
        self.assertEqual((r.json["id"], r.json["name"], r.json["mime_type"], r.json["size"]),
                         (sha(data), "notes; v2.txt", "text/plain", len(data)))
        got = self.client.get("/v1/sessions/%s/attachments/%s" % (sid, sha(data)))
        self.assertEqual(got.raw, data)

    def test_base64_upload_and_the_same_bytes_twice_give_one_file(self):
        a, b = self.session(), self.session()
        first = self.upload_json(a, PNG, name="one.png")
        self.assertEqual(first.status, 201, first)
        again = self.upload_json(a, PNG, name="again.png")  # same session: nothing changes
        self.assertEqual(again.status, 200, again)
        self.assertEqual((again.json["id"], again.json["name"]), (sha(PNG), "one.png"))
        other = self.upload_multipart(b, PNG, filename="two.png")  # another session: its own record
        self.assertEqual(other.status, 201, other)
        self.assertEqual(first.json["id"], other.json["id"])
        self.assertEqual(self.stored_files().count(sha(PNG)), 1)
        self.assertFalse([f for f in self.stored_files() if f.startswith(".")], "a temp file was left behind")
        self.assertEqual([x["name"] for x in self.listed(a)], ["one.png"])
        self.assertEqual([x["name"] for x in self.listed(b)], ["two.png"])
        # an unlabelled upload is typed from its bytes
        pdf = self.upload_json(a, PDF, name="doc.pdf", mime_type=None)
        self.assertEqual((pdf.status, pdf.json["mime_type"]), (201, "application/pdf"), pdf)
        got = self.client.get("/v1/sessions/%s/attachments/%s" % (a, sha(PDF)))
        self.assertEqual((got.status, got.content_type, got.raw), (200, "application/pdf", PDF))

    def test_upload_publishes_attachment_added(self):
        sid = self.session()
        events = self.client.stream("/v1/sessions/%s/events" % sid, None, method="GET", deadline_s=20)
        self.assertIsInstance(events, SSEStream, events)
        try:
            it = iter(events)
            self.assertEqual(next(it).event, "ready")
            data = ("notes " + uuid.uuid4().hex).encode()
            r = self.upload_json(sid, data, name="n.txt", mime_type="text/plain; charset=utf-8")
            self.assertEqual(r.status, 201, r)
            ev = next(e for e in it if e.event == "attachment_added")
            self.assertEqual(ev.json["id"], sha(data))
            self.assertEqual((ev.json["session_id"], ev.json["mime_type"], ev.json["size"]),
                             (sid, "text/plain", len(data)))
        finally:
            events.close()

    def test_mislabelled_disallowed_and_unknown_types_are_415(self):
        sid = self.session()
        pdf = PDF + b"%" + uuid.uuid4().hex.encode() + b"\n"  # bytes no other test stores
        cases = [
            ("PDF bytes labelled image/png (multipart)", lambda: self.upload_multipart(sid, pdf, "x.png", "image/png"),
             ["image/png", "application/pdf"]),
            ("PDF bytes labelled image/png (json)", lambda: self.upload_json(sid, pdf, "x.png", "image/png"),
             ["image/png", "application/pdf"]),
            ("GIF is not in allowed_types", lambda: self.upload_json(sid, GIF, "x.gif", "image/gif"), ["image/gif"]),
            ("binary of no known type", lambda: self.upload_json(sid, b"\x00\x01\x02binary", "x.bin", None), []),
        ]
        for what, send, named in cases:
            with self.subTest(what):
                r = send()
                self.assertError(r, 415, "unsupported_media_type")
                for text in named:
                    self.assertIn(text, r.json["error"]["message"])
        self.assertEqual(self.listed(sid), [])
        self.assertNotIn(sha(pdf), self.stored_files())
        self.assertNotIn(sha(GIF), self.stored_files())
        r = self.client.post("/v1/sessions/%s/attachments" % sid, raw=PNG, headers={"Content-Type": "image/png"})
        self.assertError(r, 415, "unsupported_media_type")  # neither multipart nor JSON

    def test_oversized_is_413_and_broken_bodies_are_400(self):
        sid = self.session()
        big = b"a" * (MAX_BYTES + 1)
        for what, r in (("multipart", self.upload_multipart(sid, big, "big.txt", "text/plain")),
                        ("json", self.upload_json(sid, big, "big.txt", "text/plain"))):
            with self.subTest(what):
                self.assertError(r, 413, "payload_too_large")
                self.assertIn("max_bytes", r.json["error"]["message"])
        at_limit = self.upload_json(sid, b"b" * MAX_BYTES, "limit.txt", "text/plain")
        self.assertEqual(at_limit.status, 201, at_limit)
        content_type, body = multipart([("file", "cat.png", "image/png", PNG)])
        fields_only = multipart([("comment", None, None, b"just text")])
        broken = [
            ("bad base64", {"Content-Type": "application/json"},
             json.dumps({"name": "x", "data_base64": "not*base64!"}).encode()),
            ("no closing boundary", {"Content-Type": content_type}, body[:-len(b"--\r\n") - 20]),
            ("no boundary parameter", {"Content-Type": "multipart/form-data"}, body),
            ("boundary not in the body", {"Content-Type": content_type.replace("boundary=", "boundary=x")}, body),
            ("no file part", {"Content-Type": fields_only[0]}, fields_only[1]),
            ("unknown JSON field", {"Content-Type": "application/json"},
             json.dumps({"data_base64": "aGk=", "path": "/etc/passwd"}).encode()),
        ]
        for what, headers, raw in broken:
            with self.subTest(what):
                r = self.client.post("/v1/sessions/%s/attachments" % sid, raw=raw, headers=headers)
                self.assertError(r, 400, "invalid_request")
        two = multipart([("file", "a.png", "image/png", PNG), ("other", "b.pdf", "application/pdf", PDF)])
        r = self.client.post("/v1/sessions/%s/attachments" % sid, raw=two[1], headers={"Content-Type": two[0]})
        self.assertError(r, 400, "invalid_request")
        self.assertEqual([a["name"] for a in self.listed(sid)], ["limit.txt"])

    def test_download_of_an_attachment_of_another_session_is_404(self):
        a, b = self.session(), self.session()
        self.assertEqual(self.upload_json(a, PNG).status, 201)
        r = self.client.get("/v1/sessions/%s/attachments/%s" % (b, sha(PNG)))
        self.assertError(r, 404, "not_found")

    # ---- messages
    def test_message_with_attachment_ids_lists_them_and_echo_mentions_them(self):
        sid = self.session()
        self.assertEqual(self.upload_multipart(sid, PNG, "cat.png").status, 201)
        self.assertEqual(self.upload_json(sid, PDF, "doc.pdf", "application/pdf").status, 201)
        r = self.client.send(sid, "what are these?", metadata={"attachment_ids": [sha(PNG), sha(PDF)]})
        self.assertEqual(r.status, 201, r)
        self.assertEqual(r.json["assistant_message"]["content"],
                         "echo#1 what are these? [attachments: cat.png image/png %dB, doc.pdf application/pdf %dB]"
                         % (len(PNG), len(PDF)))
        stored = self.client.messages(sid)[0]
        self.assertEqual(stored["role"], "user")
        self.assertEqual(stored["metadata"]["attachments"], [
            {"id": sha(PNG), "name": "cat.png", "mime_type": "image/png", "size": len(PNG),
             "path": os.path.join(self.attachments_dir, sha(PNG))},
            {"id": sha(PDF), "name": "doc.pdf", "mime_type": "application/pdf", "size": len(PDF),
             "path": os.path.join(self.attachments_dir, sha(PDF))},
        ])
        plain = self.client.send(sid, "and now?")  # without attachments: the reply as usual
        self.assertEqual(plain.json["assistant_message"]["content"], "echo#2 and now?")

    def test_unknown_foreign_or_too_many_attachment_ids_are_400(self):
        a, b = self.session(), self.session()
        self.assertEqual(self.upload_json(a, PNG).status, 201)
        self.assertEqual(self.upload_json(b, PDF, "doc.pdf", "application/pdf").status, 201)
        text = ("t " + uuid.uuid4().hex).encode()
        self.assertEqual(self.upload_json(a, text, "t.txt", "text/plain").status, 201)
        cases = [
            ("unknown id", ["0" * 64]),
            ("another session's attachment", [sha(PDF)]),
            ("not a list", sha(PNG)),
            ("more than max_attachments_per_message", [sha(PNG), sha(text), sha(PDF)]),
        ]
        for what, ids in cases:
            with self.subTest(what):
                r = self.client.send(a, "look", metadata={"attachment_ids": ids})
                self.assertError(r, 400, "invalid_request")
        self.assertEqual(self.client.messages(a), [], "a refused message was stored")

    def test_client_sent_attachments_with_a_path_are_not_honoured(self):
        secret_path = os.path.join(self.daemon.workdir, "secret-%s.txt" % uuid.uuid4().hex)
        secret = "top secret " + uuid.uuid4().hex
        with open(secret_path, "w") as f:
            f.write(secret)
        forged = {"attachments": [{"id": "x", "name": "secret.txt", "mime_type": "text/plain",
                                   "size": len(secret), "path": secret_path}]}
        for provider in ("echo", "openai"):
            for typed in (True, False):
                with self.subTest(provider=provider, typed=typed):
                    self.fake.state.reset()
                    sid = self.session(provider) if typed else \
                        self.client.create_session(uid(), provider=provider)["id"]
                    r = self.client.send(sid, "read it", metadata=forged)
                    self.assertEqual(r.status, 201, r)
                    self.assertNotIn("attachments", r.json["user_message"]["metadata"])
                    self.assertNotIn("attachments", self.client.messages(sid)[0]["metadata"])
                    reply = r.json["assistant_message"]["content"]
                    self.assertNotIn("[attachments:", reply)
                    self.assertNotIn(secret, reply)
                    if provider == "openai":
                        (req,) = self.vendor_requests()
                        self.assertNotIn(secret, json.dumps(req["body"]))
                        self.assertEqual(req["body"]["messages"][-1]["content"], "read it")

    def test_session_metadata_cannot_forge_the_record_at_creation(self):
        sid = self.session(metadata={"multimodal": {"attachments": {sha(PNG): {"name": "forged"}}}, "k": "v"})
        meta = self.client.get("/v1/sessions/%s" % sid).json["metadata"]
        self.assertEqual(meta["multimodal"], {"attachments": {}})
        self.assertEqual(meta["k"], "v")
        r = self.client.send(sid, "look", metadata={"attachment_ids": [sha(PNG)]})
        self.assertError(r, 400, "invalid_request")

    # ---- providers against the fake upstream
    def test_openai_provider_sends_the_image_in_openai_format(self):
        sid = self.session("openai")
        self.assertEqual(self.upload_multipart(sid, PNG).status, 201)
        r = self.client.send(sid, "what is this?", metadata={"attachment_ids": [sha(PNG)]})
        self.assertEqual(r.status, 201, r)
        self.assertEqual(r.json["assistant_message"]["content"], "You said: what is this? [saw %s]" % saw("image/png", PNG))
        (req,) = self.vendor_requests()
        self.assertEqual(req["path"], "/v1/chat/completions")
        self.assertEqual(req["body"]["messages"][-1]["content"], [
            {"type": "text", "text": "what is this?"},
            {"type": "image_url", "image_url": {"url": "data:image/png;base64," + base64.b64encode(PNG).decode()}},
        ])
        # the next turn sends the history again, the image with it
        self.fake.state.reset()
        r = self.client.send(sid, "and again?")
        self.assertEqual(r.json["assistant_message"]["content"], "You said: and again? [saw %s]" % saw("image/png", PNG))

    def test_anthropic_provider_sends_image_and_pdf_in_anthropic_format(self):
        sid = self.session("anthropic")
        self.assertEqual(self.upload_json(sid, PNG).status, 201)
        self.assertEqual(self.upload_json(sid, PDF, "doc.pdf", "application/pdf").status, 201)
        r = self.client.send(sid, "compare them", metadata={"attachment_ids": [sha(PNG), sha(PDF)]})
        self.assertEqual(r.status, 201, r)
        self.assertEqual(r.json["assistant_message"]["content"],
                         "You said: compare them [saw %s; %s]" % (saw("image/png", PNG), saw("application/pdf", PDF)))
        (req,) = self.vendor_requests()
        self.assertEqual(req["path"], "/v1/messages")
        self.assertEqual(req["body"]["messages"][-1]["content"], [
            {"type": "image", "source": {"type": "base64", "media_type": "image/png",
                                         "data": base64.b64encode(PNG).decode()}},
            {"type": "document", "source": {"type": "base64", "media_type": "application/pdf",
                                            "data": base64.b64encode(PDF).decode()}},
            {"type": "text", "text": "compare them"},
        ])

    def test_a_file_gone_before_the_provider_call_fails_it_naming_the_file(self):
        sid = self.session("openai")
        data = ("unique " + uuid.uuid4().hex).encode()
        self.assertEqual(self.upload_json(sid, data, "gone.txt", "text/plain").status, 201)
        first = self.client.send(sid, "keep this", metadata={"attachment_ids": [sha(data)]})
        self.assertEqual(first.status, 201, first)
        os.remove(os.path.join(self.attachments_dir, sha(data)))
        self.fake.state.reset()
        r = self.client.send(sid, "still there?")
        self.assertEqual(r.status, 400, r)
        self.assertIn("gone.txt", r.json["error"]["message"])
        self.assertEqual(self.vendor_requests(), [], "the call went upstream without the file")


if __name__ == "__main__":
    unittest.main()
