"""Streaming replies (`"stream": true` → text/event-stream) and provider
failures, streamed and not."""

import time
import unittest
import uuid

from swh_harness import FAIL_TOKEN, DaemonTestCase, Response, SSEStream


def uid(prefix="u"):
    return "%s-%s" % (prefix, uuid.uuid4().hex[:12])


class StreamingTests(DaemonTestCase):

    def open_stream(self, sid, content, **fields):
        body = {"content": content, "stream": True}
        body.update(fields)
        st = self.client.stream("/v1/sessions/%s/messages" % sid, body)
        self.assertIsInstance(st, SSEStream, "expected an SSE answer, got %r" % (st,))
        self.assertIn(st.status, (200, 201))
        self.assertTrue(st.content_type.startswith("text/event-stream"), st.content_type)
        return st

    def stream_ok(self, sid, content, **fields):
        """Run one successful stream; returns (user, chunks, assistant, events)."""
        t0 = time.monotonic()
        st = self.open_stream(sid, content, **fields)
        events = st.read_all()
        client_ms = (time.monotonic() - t0) * 1000.0
        names = [e.event for e in events]
        self.assertGreaterEqual(len(names), 4, names)
        self.assertEqual(names[0], "user_message", names)
        self.assertEqual(names[-2:], ["assistant_message", "done"], names)
        self.assertTrue(all(n == "chunk" for n in names[1:-2]), names)
        for e in events:
            self.assertIsNotNone(e.json, "event data is not JSON: %r" % e)
        self.assertEqual(list(events[-1].json), ["gateway_overhead_ms"])
        # The daemon's own time: some, and within what the client measured
        # (tests/providers/test_stream_control.py shows that an upstream's
        # wait is left out of it).
        overhead = events[-1].json["gateway_overhead_ms"]
        self.assertGreater(overhead, 0, events[-1])
        self.assertLess(overhead, client_ms, events[-1])
        chunks = [e.json["text"] for e in events[1:-2]]
        self.assertTrue(all(isinstance(c, str) for c in chunks), chunks)
        self.assertTrue(st.ended_cleanly, st.raw_lines[-5:])
        return events[0].json, chunks, events[-2].json, events

    def test_stream_events_and_storage(self):
        s = self.client.create_session(uid())
        sid = s["id"]
        text = "alpha beta gamma delta"
        user, chunks, assistant, _ = self.stream_ok(sid, text)
        self.assertMessage(user, sid, "user", text)
        self.assertMessage(assistant, sid, "assistant", "echo#1 " + text)
        self.assertGreater(len(chunks), 1, chunks)
        self.assertEqual("".join(chunks), assistant["content"])
        self.assertEqual(assistant["provider_message_id"], "echo-%s-1" % sid)
        self.assertEqual(assistant["provider_metadata"].get("finish_reason"), "stop", assistant)
        # both are stored, and identical to what was streamed
        msgs = self.client.messages(sid)
        self.assertEqual([m["id"] for m in msgs], [user["id"], assistant["id"]])
        self.assertEqual(msgs[0], user)
        self.assertEqual(msgs[1], assistant)
        self.assertEqual(self.client.get("/v1/sessions/%s" % sid).json["message_count"], 2)
        # the second streamed exchange counts on
        _, chunks2, assistant2, _ = self.stream_ok(sid, "one more time")
        self.assertEqual(assistant2["content"], "echo#2 one more time")
        self.assertEqual("".join(chunks2), assistant2["content"])

    def test_stream_same_content_as_non_stream(self):
        s1 = self.client.create_session(uid())
        s2 = self.client.create_session(uid())
        text = "the quick brown fox jumps over the lazy dog"
        r = self.client.send(s1["id"], text)
        self.assertEqual(r.status, 201, r)
        _, chunks, assistant, _ = self.stream_ok(s2["id"], text)
        self.assertEqual(assistant["content"], r.json["assistant_message"]["content"])
        self.assertEqual(len(chunks), len(("echo#1 " + text).split()), chunks)

    def test_stream_unicode(self):
        s = self.client.create_session(uid())
        text = "naïve café 日本語 🚀 ok"
        user, chunks, assistant, _ = self.stream_ok(s["id"], text, metadata={"k": "ü"})
        self.assertEqual(user["content"], text)
        self.assertEqual(user["metadata"], {"k": "ü"})
        self.assertEqual("".join(chunks), "echo#1 " + text)
        self.assertEqual(assistant["content"], "echo#1 " + text)
        self.assertEqual(self.client.messages(s["id"])[1]["content"], "echo#1 " + text)

    def test_stream_false_is_plain_json(self):
        s = self.client.create_session(uid())
        r = self.client.send(s["id"], "no stream", stream=False)
        self.assertEqual(r.status, 201, r)
        self.assertIn("application/json", r.content_type)
        self.assertEqual(r.json["assistant_message"]["content"], "echo#1 no stream")

    # -------------------------------------------------- errors before stream
    def test_stream_unknown_session_is_json_404(self):
        r = self.client.stream("/v1/sessions/%s/messages" % uuid.uuid4(), {"content": "x", "stream": True})
        self.assertIsInstance(r, Response, "expected a JSON error, got an SSE stream")
        self.assertError(r, 404, "not_found")

    def test_stream_bad_body_is_json_400(self):
        s = self.client.create_session(uid())
        r = self.client.stream("/v1/sessions/%s/messages" % s["id"], {"stream": True})
        self.assertIsInstance(r, Response, "expected a JSON error, got an SSE stream")
        self.assertError(r, 400, "invalid_request")
        self.assertEqual(self.client.messages(s["id"]), [])

    def test_stream_archived_is_json_409(self):
        s = self.client.create_session(uid())
        self.assertEqual(self.client.post("/v1/sessions/%s/archive" % s["id"]).status, 200)
        r = self.client.stream("/v1/sessions/%s/messages" % s["id"], {"content": "x", "stream": True})
        self.assertIsInstance(r, Response, "expected a JSON error, got an SSE stream")
        self.assertError(r, 409, "conflict")

    # -------------------------------------------------------- provider fails
    def test_stream_provider_fails_midway(self):
        s = self.client.create_session(uid())
        sid = s["id"]
        text = "one two three %s four five six" % FAIL_TOKEN
        st = self.open_stream(sid, text)
        events = st.read_all()
        names = [e.event for e in events]
        self.assertEqual(names[0], "user_message", names)
        self.assertEqual(names[-1], "error", names)
        self.assertNotIn("assistant_message", names)
        self.assertNotIn("done", names)
        self.assertTrue(all(n == "chunk" for n in names[1:-1]), names)
        self.assertGreaterEqual(names.count("chunk"), 1, "the echo provider fails midway: %r" % names)
        err = events[-1].json
        self.assertIsInstance(err, dict, events[-1])
        self.assertEqual(err["error"]["code"], "upstream_error", err)
        self.assertIsInstance(err["error"]["message"], str)
        self.assertTrue(err["error"]["message"])
        user = events[0].json
        self.assertMessage(user, sid, "user", text)
        # the user message stays stored; no assistant message is stored
        msgs = self.client.messages(sid)
        self.assertEqual([m["id"] for m in msgs], [user["id"]])
        self.assertEqual(self.client.get("/v1/sessions/%s" % sid).json["message_count"], 1)
        # the session still works afterwards
        _, _, assistant, _ = self.stream_ok(sid, "recovered fine")
        self.assertEqual(assistant["content"], "echo#2 recovered fine")

    def test_non_stream_provider_fails(self):
        s = self.client.create_session(uid())
        sid = s["id"]
        text = "please %s now" % FAIL_TOKEN
        r = self.client.send(sid, text)
        self.assertError(r, 502, "upstream_error")
        msgs = self.client.messages(sid)
        self.assertEqual([(m["role"], m["content"]) for m in msgs], [("user", text)])
        self.assertEqual(self.client.get("/v1/sessions/%s" % sid).json["message_count"], 1)
        r = self.client.send(sid, "and now?")
        self.assertEqual(r.status, 201, r)
        self.assertEqual(r.json["assistant_message"]["content"], "echo#2 and now?")


if __name__ == "__main__":
    unittest.main()
