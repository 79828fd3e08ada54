"""The three middleware plugins of issue 5 through the real daemon:
content_filter (redact / reject, user and assistant stage, streamed replies
with a blocked phrase split across upstream chunks), personalization and
analytics. Scenarios are kept apart with `when: {user_type: ...}`."""

import json
import os
import unittest

from pipeline_support import PipelineTestCase, SSEStreamType, sample, uid


PROFILE_FORMAL = {"experience_level": "expert", "communication_style": "formal", "interests": ["rust", "c++"]}
STYLES = {"formal": {"prefix": "Dear user, ", "suffix": " Kind regards."}, "casual": {"prefix": "Hey! "}}


class BuiltinMiddlewareTests(PipelineTestCase):
    # chunk_words 1: the echo provider streams one word per chunk, so "foo bar"
    # arrives as "foo " + "bar ": a blocked phrase split across two chunks.
    echo_config = {"chunk_words": 1}
    middleware = [
        {"name": "cf_in", "plugin": "content_filter", "priority": 100, "when": {"user_type": "in"},
         "config": {"blocked_words": ["darn"], "regexes": ["\\b\\d{3}-\\d{4}\\b"], "case_insensitive": True}},
        {"name": "cf_out", "plugin": "content_filter", "priority": 100, "when": {"user_type": "out"},
         "config": {"blocked_words": ["foo bar"], "regexes": ["sec\\s+ret"], "replacement": "[X]",
                    "stages": ["assistant"], "max_match_length": 16}},
        {"name": "cf_strict", "plugin": "content_filter", "priority": 100, "when": {"user_type": "strict"},
         "fail": "closed", "config": {"blocked_words": ["forbidden"], "action": "reject",
                                      "reject_reason": "not here", "stages": ["user", "assistant"]}},
        {"name": "cf_strict_out", "plugin": "content_filter", "priority": 100,
         "when": {"user_type": "strict_out"}, "fail": "closed",
         "config": {"blocked_words": ["forbidden"], "action": "reject", "stages": ["assistant"]}},
        {"name": "pz", "plugin": "personalization", "priority": 50, "when": {"user_type": "pz"},
         "config": {"styles": STYLES}},
        {"name": "an", "plugin": "analytics", "priority": 10, "when": {"user_type": "an"},
         "config": {"output_file": "{workdir}/analytics/messages.jsonl", "publish_events": True}},
        # the guide's chain: filter first, personalization after it, analytics last
        {"name": "combo_filter", "plugin": "content_filter", "priority": 100, "when": {"user_type": "combo"},
         "config": {"blocked_words": ["spam"], "stages": ["user", "assistant"]}},
        {"name": "combo_pz", "plugin": "personalization", "priority": 50, "after": ["combo_filter"],
         "when": {"user_type": "combo"}, "config": {"styles": STYLES}},
        {"name": "combo_an", "plugin": "analytics", "priority": 10, "when": {"user_type": "combo"}},
    ]

    def stream(self, sid, content):
        st = self.client.stream("/v1/sessions/%s/messages" % sid, {"content": content, "stream": True})
        self.assertIsInstance(st, SSEStreamType, "expected an SSE answer, got %r" % (st,))
        events = st.read_all()
        names = [e.event for e in events]
        return events, names

    def stream_ok(self, sid, content):
        events, names = self.stream(sid, content)
        self.assertEqual(names[0], "user_message", names)
        self.assertEqual(names[-2:], ["assistant_message", "done"], names)
        chunks = [e.json["text"] for e in events if e.event == "chunk"]
        return events[0].json, chunks, events[-2].json

    # ------------------------------------------------------ content_filter
    def test_filter_redacts_user_message_before_storing_and_upstream(self):
        sid = self.session("in")["id"]
        body = self.send_ok(sid, "Darn it, call DARN 555-1234 now")
        expected = "[FILTERED] it, call [FILTERED] [FILTERED] now"
        self.assertEqual(body["user_message"]["content"], expected)
        self.assertEqual(body["assistant_message"]["content"], "echo#1 " + expected)  # upstream saw it filtered
        user = self.client.messages(sid)[0]
        self.assertEqual(user["content"], expected)
        self.assertIs(user["metadata"]["content_filtered"], True)
        self.assertEqual(user["metadata"]["content_filter_matches"], 3)
        self.assertEqual(user["metadata"]["processed_middleware"], ["cf_in"])
        # a clean message is marked as such
        self.send_ok(sid, "all clean 5551234")
        clean = self.client.messages(sid)[2]
        self.assertEqual(clean["content"], "all clean 5551234")
        self.assertIs(clean["metadata"]["content_filtered"], False)
        # the log says what matched, never the content
        self.assertIn("content filtered in session %s" % sid, self.daemon.log())

    def test_stream_redacts_phrase_split_across_chunks(self):
        sid = self.session("out")["id"]
        text = "say foo bar and sec   ret now"
        user, chunks, assistant = self.stream_ok(sid, text)
        expected = "echo#1 say [X] and [X] now"
        self.assertEqual(user["content"], text)  # user stage not filtered by cf_out
        self.assertEqual("".join(chunks), expected, chunks)
        self.assertGreater(len(chunks), 1, "the reply was not streamed in pieces: %r" % chunks)
        for chunk in chunks:
            for leaked in ("foo", "bar", "sec", "ret"):
                self.assertNotIn(leaked, chunk.replace("[X]", ""), chunks)
        self.assertEqual(assistant["content"], expected)
        stored = self.client.messages(sid)[1]
        self.assertEqual(stored["content"], expected)
        self.assertIs(stored["metadata"]["content_filtered"], True)
        self.assertEqual(stored["metadata"]["content_filter_matches"], 2)
        self.assertIn("cf_out", stored["metadata"]["processed_middleware"])
        self.assertIs(stored["metadata"]["streaming"], True)

    def test_non_streamed_reply_is_redacted_too(self):
        sid = self.session("out")["id"]
        body = self.send_ok(sid, "foo bar")
        self.assertEqual(body["assistant_message"]["content"], "echo#1 [X]")
        self.assertEqual(self.client.messages(sid)[1]["content"], "echo#1 [X]")

    def test_reject_action_refuses_user_message(self):
        sid = self.session("strict")["id"]
        r = self.client.send(sid, "this is Forbidden? no: forbidden")
        self.assertError(r, 422, "rejected")
        self.assertIn("not here", r.json["error"]["message"])
        self.assertEqual(self.client.messages(sid), [])
        r = self.client.stream("/v1/sessions/%s/messages" % sid, {"content": "forbidden", "stream": True})
        self.assertError(r, 422, "rejected")
        self.assertEqual(self.client.messages(sid), [])
        self.send_ok(sid, "allowed")
        self.assertEqual([m["content"] for m in self.client.messages(sid)], ["allowed", "echo#1 allowed"])

    def test_reject_action_on_streamed_reply(self):
        # the client has seen (redacted) pieces; the reply is then refused and not stored
        sid = self.session("strict_out")["id"]
        events, names = self.stream(sid, "forbidden fruit")
        self.assertEqual(names[0], "user_message", names)
        self.assertEqual(names[-1], "error", names)
        self.assertNotIn("assistant_message", names)
        self.assertEqual(events[-1].json["error"]["code"], "rejected", events[-1])
        seen = "".join(e.json["text"] for e in events if e.event == "chunk")
        self.assertNotIn("forbidden", seen)
        self.assertEqual([m["role"] for m in self.client.messages(sid)], ["user"])
        # not streamed: a 422 after the question was stored, no reply stored
        r = self.client.send(sid, "more forbidden")
        self.assertError(r, 422, "rejected")
        self.assertEqual([m["role"] for m in self.client.messages(sid)], ["user", "user"])

    # ----------------------------------------------------- personalization
    def test_personalization_profile_fields_and_style(self):
        sid = self.session("pz", context={"user_context": {"profile": PROFILE_FORMAL}})["id"]
        body = self.send_ok(sid, "hello")
        meta = body["user_message"]["metadata"]
        self.assertEqual(meta["user_experience_level"], "expert")
        self.assertEqual(meta["preferred_style"], "formal")
        self.assertEqual(meta["interests"], ["rust", "c++"])
        self.assertEqual(body["assistant_message"]["content"], "Dear user, echo#1 hello Kind regards.")
        self.assertIs(body["assistant_message"]["metadata"]["personalized"], True)
        self.assertEqual(body["assistant_message"]["metadata"]["personalization_style"], "formal")
        # streamed: the prefix goes out first, the suffix last; stored = streamed
        _, chunks, assistant = self.stream_ok(sid, "again")
        self.assertEqual("".join(chunks), "Dear user, echo#2 again Kind regards.")
        self.assertEqual(assistant["content"], "Dear user, echo#2 again Kind regards.")
        self.assertEqual(self.client.messages(sid)[-1]["content"], assistant["content"])

    def test_personalization_other_and_missing_profiles(self):
        sid = self.session("pz", context={"user_context": {"profile": {"communication_style": "casual"}}})["id"]
        body = self.send_ok(sid, "yo")
        self.assertEqual(body["assistant_message"]["content"], "Hey! echo#1 yo")
        self.assertNotIn("user_experience_level", body["user_message"]["metadata"])
        sid = self.session("pz")["id"]
        body = self.send_ok(sid, "plain")
        self.assertEqual(body["assistant_message"]["content"], "echo#1 plain")
        self.assertIs(body["assistant_message"]["metadata"]["personalized"], False)

    # ----------------------------------------------------------- analytics
    def test_analytics_records_file_metadata_and_counters(self):
        user_id = uid("analyst")
        sid = self.session("an", user_id=user_id)["id"]
        b1 = self.send_ok(sid, "Why is this broken?")
        b2 = self.send_ok(sid, "Thanks, this is great")
        a = b1["user_message"]["metadata"]["analytics"]
        self.assertEqual((a["intent"], a["sentiment"], a["word_count"]), ("question", "negative", 4))
        self.assertAlmostEqual(a["complexity"], 4 / 50.0)
        a2 = b2["user_message"]["metadata"]["analytics"]
        self.assertEqual((a2["intent"], a2["sentiment"]), ("gratitude", "positive"))
        path = os.path.join(self.workdir, "analytics", "messages.jsonl")

        def written():  # the plugin writes its lines in batches, after the call (README)
            if not os.path.exists(path):
                return None
            with open(path, encoding="utf-8") as f:
                found = [json.loads(line) for line in f if line.endswith("\n") and sid in line]
            return found if len(found) >= 4 else None

        records = self.wait_for("the analytics lines of both sends", written)
        self.assertEqual([(r["role"], r["stage"]) for r in records],
                         [("user", "user"), ("assistant", "assistant")] * 2, records)
        first = records[0]
        self.assertEqual(first["message_id"], b1["user_message"]["id"])
        self.assertEqual(first["user_id"], user_id)
        self.assertEqual(first["provider"], "echo")
        self.assertEqual(first["user_type"], "an")
        self.assertEqual(first["content_length"], len("Why is this broken?"))
        m = self.metrics()
        self.assertGreaterEqual(sample(m, "swarmhost_analytics_messages_total", role="user", intent="question",
                                       sentiment="negative"), 1)
        self.assertGreaterEqual(sample(m, "swarmhost_analytics_content_bytes_total", role="user"),
                                len("Why is this broken?") + len("Thanks, this is great"))

    def test_guide_chain_filter_personalization_analytics(self):
        sid = self.session("combo", context={"user_context": {"profile": PROFILE_FORMAL}})["id"]
        body = self.send_ok(sid, "no spam please")
        user = body["user_message"]
        self.assertEqual(user["content"], "no [FILTERED] please")
        self.assertEqual(user["metadata"]["processed_middleware"], ["combo_filter", "combo_pz", "combo_an"])
        self.assertEqual(user["metadata"]["preferred_style"], "formal")
        self.assertEqual(user["metadata"]["analytics"]["intent"], "statement")
        reply = body["assistant_message"]
        self.assertEqual(reply["content"], "Dear user, echo#1 no [FILTERED] please Kind regards.")
        self.assertEqual(reply["metadata"]["processed_middleware"], ["combo_filter", "combo_pz", "combo_an"])
        # streamed: filter and personalization stream, analytics runs on the whole reply
        _, chunks, assistant = self.stream_ok(sid, "more spam")
        self.assertEqual("".join(chunks), "Dear user, echo#2 more [FILTERED] Kind regards.")
        self.assertEqual(assistant["content"], "Dear user, echo#2 more [FILTERED] Kind regards.")
        self.assertEqual(assistant["metadata"]["processed_middleware"], ["combo_filter", "combo_pz", "combo_an"])
        self.assertEqual(assistant["metadata"]["analytics"]["word_count"], 8)


if __name__ == "__main__":
    unittest.main()
