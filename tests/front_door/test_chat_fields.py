"""POST /v1/chat/completions drops nothing (docs/openai-compat.md): every
request field of OpenAI's Chat Completions reference is mapped, passed on,
honoured by the door, or refused with a 400 naming it; messages carry their
structure (image and file parts, tool calls, tool results); the reply and the
stream have OpenAI's shapes (usage details, stream_options.include_usage).

Against the real daemon and the echo provider, no keys. What reached the
provider is read back where the door leaves a trace without the provider's
help: a session named by X-Swarmhost-Session stores the last message with its
structured content. test_chat_tools.py drives tools through echo itself.

Run by hand (from this folder):
  SWH_BINARY=<build>/host/swarmhost SWH_PLUGIN_DIR=<build>/plugins \\
    PYTHONPATH=../integration python3 -m unittest -v test_chat_fields
"""

import json
import unittest

from swh_harness import DaemonTestCase, SSEStream

USER = {"role": "user", "content": "hi"}
TOOL = {"type": "function", "function": {"name": "get_weather", "description": "weather of a city",
                                         "parameters": {"type": "object",
                                                        "properties": {"city": {"type": "string"}}}}}
CALL = {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Oslo\"}"}}


def body(**fields):
    b = {"model": "echo", "messages": [USER]}
    b.update(fields)
    return b


class ChatFieldsTests(DaemonTestCase):

    def completion(self, b, headers=None):
        return self.client.post("/v1/chat/completions", b, headers=headers)

    def assertRefused(self, b, field):
        r = self.completion(b)
        self.assertError(r, 400, "invalid_request")
        message = r.json["error"]["message"]
        self.assertTrue(message.startswith("field '%s' " % field), "error does not name %r first: %r" % (field, message))
        return message

    # ---- top-level fields

    def test_every_mapped_and_passed_field_is_accepted(self):
        b = body(temperature=0.2, top_p=0.9, max_tokens=5, max_completion_tokens=5, stop=["x", "y"], seed=7,
                 presence_penalty=0.1, frequency_penalty=-0.1, tools=[TOOL], tool_choice="none",
                 parallel_tool_calls=False, response_format={"type": "json_schema", "json_schema": {
                     "name": "w", "schema": {"type": "object"}, "strict": True}},
                 reasoning_effort="low", user="u1", logit_bias={"50256": -100}, logprobs=False,
                 metadata={"k": "v"}, store=False, service_tier="auto",
                 prediction={"type": "content", "content": "hi"}, modalities=["text"], prompt_cache_key="k",
                 prompt_cache_options={"mode": "implicit", "ttl": "30m"}, prompt_cache_retention="24h",
                 safety_identifier="s", verbosity="low",
                 web_search_options={"search_context_size": "low"},
                 moderation={"model": "omni-moderation-latest"}, n=1)
        r = self.completion(b)
        self.assertEqual(r.status, 200, r)
        for extra in (dict(stop="only"), dict(tool_choice={"type": "function", "function": {"name": "get_weather"}},
                                               tools=[TOOL]),
                      dict(reasoning_effort="xhigh"), dict(response_format={"type": "json_object"}),
                      dict(tool_choice="required", tools=[TOOL])):
            with self.subTest(fields=extra):
                self.assertEqual(self.completion(body(**extra)).status, 200)

    def test_null_means_absent(self):
        b = body(temperature=None, tools=None, tool_choice=None, n=None, stream=None, stream_options=None,
                 functions=None, function_call=None, audio=None, top_logprobs=None, stop=None)
        r = self.completion(b)
        self.assertEqual(r.status, 200, r)

    def test_refused_fields_name_themselves(self):
        cases = {
            "n": body(n=2),
            "functions": body(functions=[{"name": "f"}]),
            "function_call": body(function_call="auto"),
            "audio": body(audio={"voice": "alloy", "format": "wav"}),
            "top_logprobs": body(top_logprobs=2),
            "logprobs": body(logprobs=True),
            "modalities[1]": body(modalities=["text", "audio"]),
            "stream_options": body(stream_options={"include_usage": True}),
            "stream_options.include_usage": body(stream=True, stream_options={"include_usage": "yes"}),
            "stream_options.bogus": body(stream=True, stream_options={"bogus": True}),
            "temperature": body(temperature="hot"),
            "max_tokens": body(max_tokens=0),
            "seed": body(seed=1.5),
            "stop[1]": body(stop=["a", 3]),
            "reasoning_effort": body(reasoning_effort="extreme"),
            "tools[0].type": body(tools=[{"type": "custom", "custom": {"name": "c"}}]),
            "tools[0].function.name": body(tools=[{"type": "function", "function": {"description": "x"}}]),
            "tools[0].function.bogus": body(tools=[{"type": "function", "function": {"name": "f", "bogus": 1}}]),
            "tool_choice": body(tool_choice="sometimes"),
            "tool_choice.type": body(tool_choice={"type": "allowed_tools",
                                                  "allowed_tools": {"mode": "auto", "tools": []}}),
            "response_format.type": body(response_format={"type": "yaml"}),
            "response_format.json_schema.schema": body(response_format={"type": "json_schema",
                                                                        "json_schema": {"name": "n"}}),
            "bogus_field": body(bogus_field=1),
            "response_format.json_schema.description": body(response_format={"type": "json_schema", "json_schema": {
                "name": "n", "description": "d", "schema": {"type": "object"}}}),
        }
        for field, b in cases.items():
            with self.subTest(field=field):
                self.assertRefused(b, field)

    def test_two_different_output_bounds_are_refused(self):
        message = self.assertRefused(body(max_tokens=5, max_completion_tokens=6), "max_tokens")
        self.assertIn("max_completion_tokens", message)

    def test_n_above_one_is_refused_by_name(self):
        message = self.assertRefused(body(n=2), "n")
        self.assertIn("1", message)

    def test_a_tool_schema_that_is_not_an_object(self):
        bad = {"type": "function", "function": {"name": "f", "parameters": "object"}}
        self.assertRefused(body(tools=[bad]), "tools[0].function.parameters")

    # ---- messages

    def test_message_errors_name_the_field_and_index(self):
        system = {"role": "system", "content": "be brief"}
        assistant = {"role": "assistant", "content": None, "tool_calls": [CALL]}
        cases = {
            "messages[1].content[1]": [system, {"role": "user", "content": [
                {"type": "text", "text": "listen"},
                {"type": "input_audio", "input_audio": {"data": "AAAA", "format": "wav"}}]}],
            "messages[1].role": [system, {"role": "function", "name": "f", "content": "x"}],
            "messages[0].role": [{"role": "robot", "content": "x"}],
            "messages[0].name": [{"role": "user", "content": "x", "name": "alice"}],
            "messages[2].tool_call_id": [system, assistant, {"role": "tool", "tool_call_id": "call_9",
                                                             "content": "sunny"}],
            "messages[1].tool_call_id": [assistant, {"role": "tool", "content": "sunny"}],
            "messages[1].function_call": [USER, {"role": "assistant", "content": None,
                                                 "function_call": {"name": "f", "arguments": "{}"}}, USER],
            "messages[1].tool_calls[0].function.arguments": [USER, {"role": "assistant", "tool_calls": [
                {"id": "c", "type": "function", "function": {"name": "f", "arguments": {"a": 1}}}]}, USER],
            "messages[0].content[0].type": [{"role": "system", "content": [{"type": "image_url",
                                                                           "image_url": {"url": "x"}}]}, USER],
            "messages[0].content[0].image_url.url": [{"role": "user", "content": [{"type": "image_url",
                                                                                  "image_url": {}}]}],
            "messages[0].content[0].file": [{"role": "user", "content": [{"type": "file", "file": {}}]}],
            "messages[0].bogus": [{"role": "user", "content": "x", "bogus": 1}],
            "messages[0].content[0].prompt_cache_breakpoint": [{"role": "user", "content": [
                {"type": "text", "text": "x", "prompt_cache_breakpoint": {"mode": "explicit"}}]}],
        }
        for field, messages in cases.items():
            with self.subTest(field=field):
                self.assertRefused(body(messages=messages), field)

    def test_a_tool_loop_conversation_is_accepted(self):
        # What the openai client sends back after a tool call: the assistant
        # message as we returned it (content null, refusal null, and the
        # client's own `parsed` / `parsed_arguments`), then the result.
        assistant = {"role": "assistant", "content": None, "refusal": None, "parsed": None,
                     "tool_calls": [dict(CALL, function=dict(CALL["function"], parsed_arguments=None))]}
        messages = [{"role": "developer", "content": "use tools"}, USER, assistant,
                    {"role": "tool", "tool_call_id": "call_1", "content": [{"type": "text", "text": "sunny"}]}]
        r = self.completion(body(messages=messages, tools=[TOOL]))
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json["choices"][0]["message"]["role"], "assistant")

    def test_structured_content_reaches_the_stored_session(self):
        # X-Swarmhost-Session stores the last message as the provider got it:
        # image and file parts, a tool result's call id.
        sid = self.client.create_session("chat-fields")["id"]
        header = {"X-Swarmhost-Session": sid}
        content = [{"type": "text", "text": "what is "},
                   {"type": "image_url", "image_url": {"url": "https://example.com/cat.png", "detail": "low"}},
                   {"type": "text", "text": "this?"},
                   {"type": "file", "file": {"file_data": "data:application/pdf;base64,JVBERi0=",
                                             "filename": "a.pdf"}},
                   {"type": "file", "file": {"file_id": "file-123"}}]
        r = self.completion(body(messages=[{"role": "user", "content": content}]), headers=header)
        self.assertEqual(r.status, 200, r)
        r = self.completion(body(messages=[USER, {"role": "assistant", "content": None, "tool_calls": [CALL]},
                                           {"role": "tool", "tool_call_id": "call_1", "content": "sunny"}]),
                            headers=header)
        self.assertEqual(r.status, 200, r)
        stored = [m for m in self.client.messages(sid) if m["role"] != "assistant"]
        self.assertEqual(stored[0]["content"], "what is this?")
        self.assertEqual(stored[0]["parts"], [
            {"type": "text", "text": "what is "},
            {"type": "image", "url": "https://example.com/cat.png", "detail": "low"},
            {"type": "text", "text": "this?"},
            {"type": "file", "media_type": "application/pdf", "data": "JVBERi0=", "filename": "a.pdf"},
            {"type": "file", "file_id": "file-123"}])
        self.assertEqual((stored[1]["role"], stored[1]["content"], stored[1]["tool_call_id"]),
                         ("tool", "sunny", "call_1"))

    # ---- the reply

    def test_reply_shape_and_usage_details(self):
        r = self.completion(body())
        self.assertEqual(r.status, 200, r)
        choice = r.json["choices"][0]
        self.assertEqual(choice["message"], {"role": "assistant", "content": "echo#1 hi", "refusal": None})
        self.assertEqual(choice["finish_reason"], "stop")
        usage = r.json["usage"]
        self.assertEqual(usage["total_tokens"], usage["prompt_tokens"] + usage["completion_tokens"])
        self.assertEqual(usage["completion_tokens"], 2)
        self.assertEqual(usage["prompt_tokens_details"], {"cached_tokens": 0})
        self.assertEqual(usage["completion_tokens_details"], {"reasoning_tokens": 0})

    def chunks(self, b):
        st = self.client.stream("/v1/chat/completions", b)
        self.assertIsInstance(st, SSEStream, st)
        data = [e.data for e in st.read_all() if e.data]
        self.assertEqual(data[-1], "[DONE]", st.raw_lines)
        return [json.loads(d) for d in data[:-1]]

    def test_stream_without_include_usage_has_no_usage(self):
        chunks = self.chunks(body(stream=True))
        self.assertEqual(chunks[0]["choices"][0]["delta"], {"role": "assistant", "content": "", "refusal": None})
        for c in chunks:
            self.assertNotIn("usage", c, c)
        self.assertEqual(chunks[-1]["choices"][0]["finish_reason"], "stop")
        self.assertIn("gateway_overhead_ms", chunks[-1]["swarmhost"])  # the daemon's own time, kept

    def test_stream_with_include_usage(self):
        chunks = self.chunks(body(stream=True, stream_options={"include_usage": True,
                                                               "include_obfuscation": False}))
        last = chunks[-1]
        self.assertEqual(last["choices"], [], last)
        self.assertEqual(last["usage"]["completion_tokens"], 2, last)
        self.assertEqual(last["usage"]["total_tokens"],
                         last["usage"]["prompt_tokens"] + last["usage"]["completion_tokens"])
        for c in chunks[:-1]:
            self.assertIn("usage", c, c)
            self.assertIsNone(c["usage"], c)
        self.assertEqual(chunks[-2]["choices"][0]["finish_reason"], "stop")
        text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks[:-1])
        self.assertEqual(text, "echo#1 hi")


if __name__ == "__main__":
    unittest.main()
