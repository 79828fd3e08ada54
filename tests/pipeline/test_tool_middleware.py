"""Middleware and hooks on tool calls (ABI 1.3 structured content), through
the real daemon with the echo provider's deterministic tools: a user message
naming an offered tool makes echo call it with the user's text as the string
arguments; a role "tool" message answers the call.

- content_filter: blocked words in a reply's tool-call arguments are redacted
  (inside the JSON string values: the arguments stay valid JSON) or refused;
  tool results are checked like user text; both can be switched off.
- analytics and the metrics hook count tool calls per tool and tool results.

Scenarios are kept apart with `when: {user_type: ...}`."""

import json
import unittest

from pipeline_support import PipelineTestCase, SSEStreamType, sample, uid


def tool(name):
    return {"type": "function", "name": name,
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}


def filter_entry(user_type, **config):
    return {"name": "cf_" + user_type, "plugin": "content_filter", "priority": 100, "fail": "closed",
            "when": {"user_type": user_type}, "config": dict({"blocked_words": ["secret"]}, **config)}


class ToolMiddlewareTests(PipelineTestCase):
    middleware = [
        filter_entry("args", stages=["assistant"], replacements={"secret": "[\"x\"]"}),
        filter_entry("args_off", stages=["assistant"], check_tool_arguments=False),
        filter_entry("args_reject", stages=["assistant"], action="reject", reject_reason="no secrets"),
        filter_entry("results", action="reject", reject_reason="bad tool output"),
        filter_entry("results_redact"),
        filter_entry("results_off", action="reject", check_tool_results=False),
        {"name": "an", "plugin": "analytics", "priority": 10, "when": {"user_type": "an"}},
    ]
    hooks = [{"name": "metrics", "plugin": "metrics"}]

    def tool_session(self, user_type, *tools):
        return self.session(user_type, config={"params": {"tools": [tool(t) for t in tools or ["get_weather"]]}})["id"]

    def call(self, sid, text):
        """Sends `text` (naming a tool); returns the reply, which must call it."""
        reply = self.send_ok(sid, text)["assistant_message"]
        self.assertEqual(len(reply.get("tool_calls", [])), 1, reply)
        return reply

    def send_result(self, sid, content, call_id="call_echo_1"):
        return self.client.send(sid, content, role="tool", tool_call_id=call_id)

    # ------------------------------------------------------ tool arguments
    def test_blocked_word_in_tool_arguments_is_redacted_inside_the_json(self):
        sid = self.tool_session("args")
        text = 'get_weather for the "secret" base'
        reply = self.call(sid, text)
        call = reply["tool_calls"][0]
        self.assertEqual((call["id"], call["name"]), ("call_echo_1", "get_weather"))
        # the replacement has quotes of its own: still valid JSON, same shape
        self.assertEqual(json.loads(call["arguments"]), {"city": 'get_weather for the "["x"]" base'})
        self.assertEqual(reply["metadata"]["content_filtered"], True)
        self.assertEqual(reply["metadata"]["content_filter_matches"], 1)
        self.assertEqual(reply["metadata"]["content_filter_tool_argument_matches"], 1)
        self.assertEqual(reply["provider_metadata"]["finish_reason"], "tool_calls")
        self.assertIn("tool arguments of 'get_weather'", self.daemon.log())
        history = self.client.messages(sid)
        self.assertEqual(history[0]["content"], text)  # the user stage is not filtered here
        self.assertEqual(history[1]["tool_calls"], reply["tool_calls"])  # stored redacted
        # the loop goes on with the redacted call
        r = self.send_result(sid, "cloudy")
        self.assertEqual(r.status, 201, r)
        self.assertEqual(r.json["assistant_message"]["content"], "get_weather returned: cloudy")
        clean = self.call(sid, "get_weather for Oslo")
        self.assertEqual(json.loads(clean["tool_calls"][0]["arguments"]), {"city": "get_weather for Oslo"})
        self.assertEqual(clean["metadata"]["content_filtered"], False)
        self.assertEqual(clean["metadata"]["content_filter_tool_argument_matches"], 0)

    def test_tool_arguments_pass_when_check_tool_arguments_is_off(self):
        sid = self.tool_session("args_off")
        reply = self.call(sid, "get_weather secret")
        self.assertEqual(json.loads(reply["tool_calls"][0]["arguments"]), {"city": "get_weather secret"})
        self.assertEqual(reply["metadata"]["content_filtered"], False)
        self.assertNotIn("content_filter_tool_argument_matches", reply["metadata"])

    def test_blocked_word_in_tool_arguments_refuses_the_reply(self):
        sid = self.tool_session("args_reject")
        r = self.client.send(sid, "get_weather at the secret base")
        self.assertError(r, 422, "rejected")
        self.assertIn("no secrets", r.json["error"]["message"])
        # the question stays stored, the reply with the call does not
        self.assertEqual([m["role"] for m in self.client.messages(sid)], ["user"])
        self.call(sid, "get_weather in Oslo")
        self.assertEqual([m["role"] for m in self.client.messages(sid)], ["user", "user", "assistant"])

    def test_streamed_tool_arguments_are_redacted_before_the_client_sees_them(self):
        # content_filter streams (a guardrail on the text): the host holds the
        # tool calls back until the finished reply has been judged
        sid = self.tool_session("args")
        st = self.client.stream("/v1/sessions/%s/messages" % sid,
                                {"content": "get_weather at the secret base", "stream": True})
        self.assertIsInstance(st, SSEStreamType, "expected an SSE answer, got %r" % (st,))
        events = st.read_all()
        pieces = [e.json for e in events if e.event == "tool_call"]
        self.assertEqual([(p["id"], p["name"], p["arguments"]) for p in pieces[:1]],
                         [("call_echo_1", "get_weather", "")])
        sent = "".join(p["arguments"] for p in pieces)
        self.assertEqual(json.loads(sent), {"city": 'get_weather at the ["x"] base'})
        names = [e.event for e in events]
        self.assertLess(max(i for i, n in enumerate(names) if n == "tool_call"), names.index("assistant_message"))
        stored = events[names.index("assistant_message")].json
        self.assertEqual(stored["tool_calls"][0]["arguments"], sent)
        self.assertEqual(stored["metadata"]["content_filter_tool_argument_matches"], 1)
        self.assertEqual(self.client.messages(sid)[1]["tool_calls"], stored["tool_calls"])

    # -------------------------------------------------------- tool results
    def test_blocked_word_in_tool_result_is_refused_and_nothing_stored(self):
        sid = self.tool_session("results")
        self.call(sid, "get_weather for Oslo")
        r = self.send_result(sid, "sunny, a secret 21C")
        self.assertError(r, 422, "rejected")
        self.assertIn("bad tool output", r.json["error"]["message"])
        self.assertEqual([m["role"] for m in self.client.messages(sid)], ["user", "assistant"])
        r = self.send_result(sid, "sunny, 21C")
        self.assertEqual(r.status, 201, r)
        self.assertEqual(r.json["assistant_message"]["content"], "get_weather returned: sunny, 21C")
        self.assertEqual(r.json["user_message"]["metadata"]["content_filtered"], False)
        self.assertEqual([m["role"] for m in self.client.messages(sid)], ["user", "assistant", "tool", "assistant"])

    def test_blocked_word_in_tool_result_is_redacted_before_the_provider_sees_it(self):
        sid = self.tool_session("results_redact")
        self.call(sid, "get_weather for Oslo")
        r = self.send_result(sid, "secret sunshine")
        self.assertEqual(r.status, 201, r)
        self.assertEqual(r.json["user_message"]["content"], "[FILTERED] sunshine")
        self.assertEqual(r.json["user_message"]["metadata"]["content_filtered"], True)
        self.assertEqual(r.json["user_message"]["tool_call_id"], "call_echo_1")  # the structure is kept
        self.assertEqual(r.json["assistant_message"]["content"], "get_weather returned: [FILTERED] sunshine")
        self.assertEqual(self.client.messages(sid)[2]["content"], "[FILTERED] sunshine")

    def test_tool_results_pass_when_check_tool_results_is_off(self):
        sid = self.tool_session("results_off")
        self.call(sid, "get_weather for Oslo")
        r = self.send_result(sid, "secret sunshine")
        self.assertEqual(r.status, 201, r)
        self.assertEqual(r.json["assistant_message"]["content"], "get_weather returned: secret sunshine")
        self.assertNotIn("content_filtered", r.json["user_message"]["metadata"])
        # user text is still checked
        self.assertError(self.client.send(sid, "a secret"), 422, "rejected")

    # ------------------------------------------------------------ counting
    def test_tool_calls_and_results_counted_per_tool(self):
        suffix = uid("t").replace("-", "_")
        name, other = "lookup_" + suffix, "fetch_" + suffix  # neither contains the other
        sid = self.tool_session("an", name, other)
        reply = self.call(sid, "please %s for Oslo" % name)
        self.assertEqual(reply["tool_calls"][0]["name"], name)
        self.assertEqual(reply["metadata"]["analytics"]["tool_calls"], [name])
        r = self.send_result(sid, "found it")
        self.assertEqual(r.status, 201, r)
        self.assertEqual(r.json["user_message"]["metadata"]["analytics"]["tool_result"], name)
        self.assertNotIn("tool_calls", r.json["assistant_message"]["metadata"]["analytics"])
        # a streamed call is counted too (analytics runs on the whole reply)
        st = self.client.stream("/v1/sessions/%s/messages" % sid, {"content": "now %s" % other, "stream": True})
        self.assertIsInstance(st, SSEStreamType, "expected an SSE answer, got %r" % (st,))
        events = st.read_all()
        names = [e.event for e in events]
        self.assertIn("tool_call", names)
        self.assertEqual(names[-2:], ["assistant_message", "done"], names)
        self.assertEqual(events[-2].json["metadata"]["analytics"]["tool_calls"], [other])
        m = self.metrics()
        self.assertEqual(sample(m, "swarmhost_analytics_tool_calls_total", tool=name), 1)
        self.assertEqual(sample(m, "swarmhost_analytics_tool_calls_total", tool=other), 1)
        self.assertEqual(sample(m, "swarmhost_analytics_tool_results_total", tool=name), 1)

        def hook_counted():
            now = self.metrics()
            values = (sample(now, "swarmhost_tool_calls_total", tool=name),
                      sample(now, "swarmhost_tool_calls_total", tool=other),
                      sample(now, "swarmhost_tool_results_total", tool=name))
            return now if values == (1, 1, 1) else None
        now = self.wait_for("the metrics hook to count the tool calls", hook_counted)
        self.assertEqual(now["types"]["swarmhost_tool_calls_total"], "counter")
        self.assertEqual(now["types"]["swarmhost_tool_results_total"], "counter")
        self.assertGreaterEqual(sample(now, "swarmhost_messages_total", role="tool"), 1)


if __name__ == "__main__":
    unittest.main()
