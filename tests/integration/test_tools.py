"""Tools through the session API (issue 15, item 6), on the real daemon with
the echo provider's deterministic tool behaviour (plugins/provider_echo):
default tools in a session's config, per-message parameters, tool results
sent back, tool calls and results in history, tool calls streamed as events,
and the bad inputs refused by name with nothing stored."""

import json
import unittest
import uuid

from swh_harness import DaemonTestCase

WEATHER = {"type": "function", "name": "get_weather", "description": "Weather for a city",
           "parameters": {"type": "object", "properties": {"city": {"type": "string"},
                                                           "days": {"type": "integer"}}}}


def uid():
    return "tools-" + uuid.uuid4().hex[:12]


class ToolLoopTests(DaemonTestCase):

    def session_with_tools(self, **params):
        params.setdefault("tools", [WEATHER])
        return self.client.create_session(uid(), config={"params": params})["id"]

    def send(self, sid, content, **fields):
        r = self.client.send(sid, content, **fields)
        self.assertEqual(r.status, 201, r)
        return r.json["user_message"], r.json["assistant_message"]

    def test_full_loop_stores_calls_and_results(self):
        sid = self.session_with_tools()
        _, call = self.send(sid, "get_weather for Oslo")
        self.assertEqual(call["content"], "")
        self.assertEqual(call["tool_calls"], [{"id": "call_echo_1", "name": "get_weather",
                                               "arguments": json.dumps({"city": "get_weather for Oslo"},
                                                                       separators=(",", ":"))}])
        self.assertEqual(call["provider_metadata"]["finish_reason"], "tool_calls")
        # The session's default tools reached the provider, unchanged.
        self.assertEqual(call["provider_metadata"]["echo_params"], {"tools": [WEATHER]})

        result, answer = self.send(sid, "sunny, 21C", role="tool", tool_call_id="call_echo_1")
        self.assertEqual(result["role"], "tool")
        self.assertEqual(result["tool_call_id"], "call_echo_1")
        self.assertEqual(answer["content"], "get_weather returned: sunny, 21C")

        history = self.client.messages(sid)
        self.assertEqual([m["role"] for m in history], ["user", "assistant", "tool", "assistant"])
        self.assertEqual(history[1]["tool_calls"], call["tool_calls"])
        self.assertEqual(history[2]["tool_call_id"], "call_echo_1")
        self.assertNotIn("tool_calls", history[0])

    def test_per_message_params_override_the_session_defaults(self):
        sid = self.session_with_tools(temperature=0.7)
        _, reply = self.send(sid, "get_weather now", params={"tool_choice": "none", "temperature": 0.1,
                                                              "max_output_tokens": 2})
        self.assertEqual(reply["content"], "echo#1 get_weather")
        self.assertEqual(reply["provider_metadata"]["finish_reason"], "length")
        self.assertEqual(reply["provider_metadata"]["echo_params"],
                         {"tools": [WEATHER], "tool_choice": "none", "temperature": 0.1, "max_output_tokens": 2})

    def test_tool_call_streams_as_events(self):
        sid = self.session_with_tools()
        events = self.client.stream("/v1/sessions/%s/messages" % sid,
                                    {"content": "get_weather in Rome", "stream": True}).read_all()
        names = [e.event for e in events]
        self.assertEqual(names[0], "user_message")
        self.assertEqual(names[-2:], ["assistant_message", "done"])
        pieces = [json.loads(e.data) for e in events if e.event == "tool_call"]
        self.assertEqual(len(pieces), 3, names)
        self.assertEqual((pieces[0]["id"], pieces[0]["name"], pieces[0]["arguments"]),
                         ("call_echo_1", "get_weather", ""))
        self.assertTrue(all(p["index"] == 0 for p in pieces))
        self.assertEqual(json.loads("".join(p["arguments"] for p in pieces)), {"city": "get_weather in Rome"})
        stored = json.loads(events[-2].data)
        self.assertEqual(stored["tool_calls"][0]["arguments"], "".join(p["arguments"] for p in pieces))

    def test_bad_inputs_are_refused_by_name_and_nothing_is_stored(self):
        sid = self.session_with_tools()
        cases = [
            ({"content": "x", "role": "tool", "tool_call_id": "call_nobody"}, "call_nobody"),
            ({"content": "x", "role": "tool"}, "tool_call_id"),
            ({"content": "x", "tool_call_id": "c1"}, "tool_call_id"),
            ({"content": "x", "params": {"tools": [{"name": "t", "parameters": "object"}]}},
             "params.tools[0].parameters"),
            ({"content": "x", "params": {"temprature": 1}}, "params.temprature"),
            ({"content": "x", "params": {"tool_choice": "sometimes"}}, "params.tool_choice"),
            ({"content": "x", "parts": [{"type": "image"}]}, "message.parts[0].url"),
        ]
        for body, named in cases:
            with self.subTest(body=body):
                r = self.client.post("/v1/sessions/%s/messages" % sid, body)
                self.assertEqual(r.status, 400, r)
                self.assertIn(named, r.json["error"]["message"])
        self.assertEqual(self.client.messages(sid), [])

    def test_session_config_params_are_checked_at_create_and_patch(self):
        r = self.client.post("/v1/sessions", {"user_id": uid(),
                                              "config": {"params": {"tools": [{"name": "t", "parameters": 3}]}}})
        self.assertEqual(r.status, 400, r)
        self.assertIn("config.params.tools[0].parameters", r.json["error"]["message"])
        sid = self.session_with_tools()
        r = self.client.patch("/v1/sessions/%s" % sid, {"config": {"params": {"seed": "x"}}})
        self.assertEqual(r.status, 400, r)
        self.assertIn("config.params.seed", r.json["error"]["message"])


class ProviderSwitchTests(DaemonTestCase):
    """PATCH a session's provider: the conversation, tool calls included, goes
    on on the other provider from its neutral stored form."""

    manifest_kw = {"extra_providers": "  - name: echo_b\n    plugin: echo\n    config:\n      prefix: bee\n"}

    def test_patched_provider_continues_the_tool_loop(self):
        sid = self.client.create_session(uid(), config={"params": {"tools": [WEATHER]}})["id"]
        call = self.client.send(sid, "get_weather for Oslo").json["assistant_message"]
        self.assertEqual(call["metadata"]["provider"], "echo")
        r = self.client.patch("/v1/sessions/%s" % sid, {"provider": "echo_b"})
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json["provider"], "echo_b")
        self.assertEqual(r.json["context"]["system_context"]["provider"], "echo_b")
        r = self.client.send(sid, "sunny", role="tool", tool_call_id=call["tool_calls"][0]["id"])
        self.assertEqual(r.status, 201, r)
        answer = r.json["assistant_message"]
        self.assertEqual(answer["metadata"]["provider"], "echo_b")
        self.assertEqual(answer["content"], "get_weather returned: sunny")
        r = self.client.patch("/v1/sessions/%s" % sid, {"provider": "nobody"})
        self.assertEqual(r.status, 400, r)
        self.assertIn("unknown provider 'nobody'", r.json["error"]["message"])


class ToolFailoverTests(DaemonTestCase):
    """A provider that fails after it reported a tool call: the fallback
    answers afresh (the failed attempt's call is dropped, not merged with the
    fallback's); on a stream that already showed the call, the send ends in
    an error instead (a tool call cannot be continued like text)."""

    manifest_kw = {"extra_providers": "  - name: flaky\n    plugin: echo\n    fallback: [echo]\n"
                                      "    config:\n      fail_on: BOOM\n"}

    def test_fallback_answers_afresh_and_a_seen_stream_call_ends_the_send(self):
        sid = self.client.create_session(uid(), provider="flaky", config={"params": {"tools": [WEATHER]}})["id"]
        r = self.client.send(sid, "get_weather BOOM")
        self.assertEqual(r.status, 201, r)
        reply = r.json["assistant_message"]
        self.assertEqual(reply["metadata"]["providers"], ["flaky", "echo"])
        self.assertEqual(len(reply["tool_calls"]), 1, reply)
        self.assertEqual(json.loads(reply["tool_calls"][0]["arguments"]), {"city": "get_weather BOOM"})

        events = self.client.stream("/v1/sessions/%s/messages" % sid,
                                    {"content": "get_weather BOOM again", "stream": True}).read_all()
        names = [e.event for e in events]
        self.assertIn("tool_call", names)
        self.assertEqual(names[-1], "error", names)
        self.assertNotIn("assistant_message", names)


if __name__ == "__main__":
    unittest.main()
