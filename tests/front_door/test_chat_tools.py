"""Tools and parameters through POST /v1/chat/completions, driven by the echo
provider's deterministic tool calling (plugins/provider_echo/README.md): a
tool whose name is in the user's text (or the one tool_choice names, or with
"required" the first) is called with id "call_echo_<messages in the
request>", its string properties set to the user's text, streamed as a first
piece with id and name and then the arguments in two fragments; tool results
are answered "<tool> returned: <content>". Echo reports the neutral params it
received as provider metadata "echo_params", which a session named by
X-Swarmhost-Session keeps with the stored reply, so the test reads what
reached the provider.

Run by hand (from this folder):
  SWH_BINARY=<build>/host/swarmhost SWH_PLUGIN_DIR=<build>/plugins \\
    PYTHONPATH=../integration python3 -m unittest -v test_chat_tools
"""

import json
import unittest

from swh_harness import DaemonTestCase, SSEStream

WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "weather of a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}, "days": {"type": "integer"}}}}}
TIME = {"type": "function", "function": {"name": "get_time", "parameters": {"type": "object"}}}
ASK = "what does get_weather say for Oslo"


def user(text):
    return {"role": "user", "content": text}


def body(messages, **fields):
    b = {"model": "echo", "messages": messages}
    b.update(fields)
    return b


class ChatToolsTests(DaemonTestCase):

    def completion(self, b, headers=None):
        r = self.client.post("/v1/chat/completions", b, headers=headers)
        self.assertEqual(r.status, 200, r)
        return r.json

    def echo_params(self, b):
        """The neutral params echo received for request `b`."""
        sid = self.client.create_session("chat-tools")["id"]
        self.completion(b, headers={"X-Swarmhost-Session": sid})
        reply = [m for m in self.client.messages(sid) if m["role"] == "assistant"][-1]
        self.assertIn("echo_params", reply["provider_metadata"], reply)
        return reply["provider_metadata"]["echo_params"]

    def chunks(self, b):
        st = self.client.stream("/v1/chat/completions", b)
        self.assertIsInstance(st, SSEStream, st)
        data = [e.data for e in st.read_all() if e.data]
        self.assertEqual(data[-1], "[DONE]", st.raw_lines)
        return [json.loads(d) for d in data[:-1]]

    # ---- parameters reach the provider in the neutral form

    def test_every_mapped_field_reaches_the_provider(self):
        b = body([user("hi")], temperature=0.2, top_p=0.9, max_completion_tokens=50, stop="ZZZ", seed=7,
                 presence_penalty=0.5, frequency_penalty=-0.5, user="u1", tools=[WEATHER], tool_choice="none",
                 parallel_tool_calls=False, reasoning_effort="low",
                 response_format={"type": "json_schema",
                                  "json_schema": {"name": "w", "schema": {"type": "object"}, "strict": True}},
                 logit_bias={"50256": -100}, metadata={"k": "v"}, store=False, service_tier="auto",
                 prediction={"type": "content", "content": "hi"}, prompt_cache_key="pk",
                 prompt_cache_options={"mode": "implicit"}, prompt_cache_retention="24h", safety_identifier="sid",
                 verbosity="low", web_search_options={"search_context_size": "low"},
                 moderation={"model": "omni-moderation-latest"})
        params = self.echo_params(b)
        self.assertEqual(params, {
            "temperature": 0.2, "top_p": 0.9, "max_output_tokens": 50, "stop": ["ZZZ"], "seed": 7,
            "presence_penalty": 0.5, "frequency_penalty": -0.5, "user": "u1",
            "tools": [{"type": "function", "name": "get_weather", "description": "weather of a city",
                       "parameters": WEATHER["function"]["parameters"]}],
            "tool_choice": "none", "parallel_tool_calls": False, "reasoning_effort": "low",
            "response_format": {"type": "json_schema", "name": "w", "schema": {"type": "object"}, "strict": True},
            "extra": {"logit_bias": {"50256": -100}, "metadata": {"k": "v"}, "store": False,
                      "service_tier": "auto", "prediction": {"type": "content", "content": "hi"},
                      "prompt_cache_key": "pk", "prompt_cache_options": {"mode": "implicit"},
                      "prompt_cache_retention": "24h", "safety_identifier": "sid", "verbosity": "low",
                      "web_search_options": {"search_context_size": "low"},
                      "moderation": {"model": "omni-moderation-latest"}}})
        self.assertEqual(self.echo_params(body([user("hi")], max_tokens=3,
                                               tool_choice={"type": "function", "function": {"name": "get_time"}},
                                               tools=[TIME])),
                         {"max_output_tokens": 3, "tool_choice": {"type": "function", "name": "get_time"},
                          "tools": [{"type": "function", "name": "get_time", "parameters": {"type": "object"}}]})

    def test_max_tokens_and_stop_shape_the_reply(self):
        r = self.completion(body([user("one two three four five")], max_tokens=2))
        self.assertEqual(r["choices"][0]["finish_reason"], "length")
        self.assertEqual(len(r["choices"][0]["message"]["content"].split()), 2, r)
        r = self.completion(body([user("alpha beta STOP gamma")], stop=["STOP"]))
        self.assertNotIn("STOP", r["choices"][0]["message"]["content"])
        self.assertNotIn("gamma", r["choices"][0]["message"]["content"])

    # ---- tool calls out, tool results in

    def test_a_tool_call_and_its_result(self):
        r = self.completion(body([user(ASK)], tools=[TIME, WEATHER]))
        choice = r["choices"][0]
        self.assertEqual(choice["finish_reason"], "tool_calls")
        arguments = choice["message"]["tool_calls"][0]["function"]["arguments"]
        self.assertEqual(json.loads(arguments), {"city": ASK})  # the integer property is left out
        self.assertEqual(choice["message"], {
            "role": "assistant", "content": None, "refusal": None,
            "tool_calls": [{"id": "call_echo_1", "type": "function",
                            "function": {"name": "get_weather", "arguments": arguments}}]})
        messages = [user(ASK), choice["message"],
                    {"role": "tool", "tool_call_id": "call_echo_1", "content": "sunny"}]
        r = self.completion(body(messages, tools=[TIME, WEATHER]))
        self.assertEqual(r["choices"][0]["message"], {"role": "assistant", "content": "get_weather returned: sunny",
                                                      "refusal": None})
        self.assertEqual(r["choices"][0]["finish_reason"], "stop")

    def test_tool_choice_picks_the_tool(self):
        named = self.completion(body([user("hello")], tools=[WEATHER, TIME],
                                     tool_choice={"type": "function", "function": {"name": "get_time"}}))
        call = named["choices"][0]["message"]["tool_calls"][0]
        self.assertEqual((call["function"]["name"], call["function"]["arguments"]), ("get_time", "{}"))
        required = self.completion(body([user("hello")], tools=[WEATHER, TIME], tool_choice="required"))
        self.assertEqual(required["choices"][0]["message"]["tool_calls"][0]["function"]["name"], "get_weather")
        none = self.completion(body([user(ASK)], tools=[WEATHER], tool_choice="none"))
        self.assertNotIn("tool_calls", none["choices"][0]["message"])

    def test_tool_calls_stream_in_openais_chunk_shape(self):
        chunks = self.chunks(body([user(ASK)], tools=[WEATHER], stream=True,
                                  stream_options={"include_usage": True}))
        deltas = [c["choices"][0]["delta"] for c in chunks if c["choices"]]
        self.assertEqual(deltas[0], {"role": "assistant", "content": "", "refusal": None})
        calls = [d["tool_calls"] for d in deltas if "tool_calls" in d]
        self.assertEqual(calls[0], [{"index": 0, "id": "call_echo_1", "type": "function",
                                     "function": {"name": "get_weather", "arguments": ""}}])
        self.assertGreaterEqual(len(calls), 3, calls)  # the opening piece, then two fragments
        for piece in calls[1:]:
            self.assertEqual(len(piece), 1)
            self.assertEqual(set(piece[0]), {"index", "function"}, piece)
            self.assertEqual(set(piece[0]["function"]), {"arguments"}, piece)
        self.assertEqual(json.loads("".join(p[0]["function"]["arguments"] for p in calls)), {"city": ASK})
        self.assertFalse(any(d.get("content") for d in deltas), deltas)
        self.assertEqual(chunks[-2]["choices"][0]["finish_reason"], "tool_calls")
        self.assertEqual(chunks[-1]["choices"], [])
        self.assertGreater(chunks[-1]["usage"]["prompt_tokens"], 0, chunks[-1])

    def test_a_result_for_no_earlier_call_is_refused(self):
        messages = [{"role": "system", "content": "s"}, user(ASK),
                    {"role": "assistant", "content": None, "tool_calls": [
                        {"id": "call_echo_1", "type": "function",
                         "function": {"name": "get_weather", "arguments": "{}"}}]},
                    {"role": "tool", "tool_call_id": "call_other", "content": "sunny"}]
        r = self.client.post("/v1/chat/completions", body(messages, tools=[WEATHER]))
        self.assertError(r, 400, "invalid_request")
        self.assertTrue(r.json["error"]["message"].startswith("field 'messages[3].tool_call_id' "), r)


if __name__ == "__main__":
    unittest.main()
