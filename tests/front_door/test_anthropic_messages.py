"""The Anthropic Messages door (POST /v1/messages) through the real daemon
(docs/http-api.md, "Anthropic Messages door"):

- to the echo provider: the reply's exact shape, streamed as Anthropic's
  event sequence, a tool_use round trip (echo calls a tool whose name is in
  the user's text: plugins/provider_echo/README.md), the neutral params that
  reached the provider (echo reports them as provider metadata "echo_params",
  kept with the stored reply of a session named by X-Swarmhost-Session), and
  Anthropic's error shapes for every refusal, the dispatcher's included;
- with API keys: x-api-key and Authorization: Bearer both accepted,
  anthropic-version accepted, 401 and another user's session (404) in
  Anthropic's shape;
- to the openai and anthropic provider plugins in front of
  tools/fake_upstream, which records what reached it: tools, tool results,
  stop sequences and sampling translated for each vendor, usage and stop
  reasons translated back, streamed and not.

Run by hand (from this folder):
  SWH_BINARY=<build>/host/swarmhost SWH_PLUGIN_DIR=<build>/plugins \\
    PYTHONPATH=../integration:../auth:../../tools/fake_upstream python3 -m unittest -v test_anthropic_messages
"""

import base64
import hashlib
import json
import os
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "auth"))

import swh_harness  # noqa: E402
from auth_fixture import AuthTestCase, Key, auth_section  # noqa: E402
from swh_harness import DaemonTestCase, FakeUpstreamTestCase, SSEStream, yaml_str  # noqa: E402

ASK = "what does get_weather say for Oslo"
WEATHER = {"name": "get_weather", "description": "weather of a city",
           "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}
# A 1x1 PNG (the same as tests/upstream_fake/common.cjs).
PNG_BASE64 = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="
MESSAGE_KEYS = {"id", "type", "role", "model", "content", "stop_reason", "stop_sequence", "stop_details",
                "container", "diagnostics", "usage"}


def user(content):
    return {"role": "user", "content": content}


def body(messages, model="echo", max_tokens=256, **fields):
    b = {"model": model, "max_tokens": max_tokens, "messages": messages}
    b.update(fields)
    return b


class AnthropicCase:
    """Helpers shared by the test classes (a mixin over DaemonTestCase)."""

    def create(self, b, headers=None, client=None):
        r = (client or self.client).post("/v1/messages", b, headers=headers)
        self.assertEqual(r.status, 200, r)
        self.assertIn("application/json", r.content_type, r)
        return r.json

    def events(self, b, headers=None, client=None):
        """The streamed events as (name, data) pairs, every data's type checked against its name."""
        st = (client or self.client).stream("/v1/messages", dict(b, stream=True), headers=headers)
        self.assertIsInstance(st, SSEStream, st)
        events = st.read_all()
        self.assertTrue(st.ended_cleanly, st.raw_lines[-10:])
        for e in events:
            self.assertIsNotNone(e.json, e)
            self.assertEqual(e.json.get("type"), e.event, e)
        return [(e.event, e.json) for e in events]

    def assertAnthropicError(self, resp, status, etype, message=None):
        """{"type":"error","error":{"type","message"}} with `status`, nothing else."""
        self.assertEqual(resp.status, status, resp)
        self.assertIn("application/json", resp.content_type, resp)
        self.assertEqual(set(resp.json), {"type", "error"}, resp)
        self.assertEqual(resp.json["type"], "error", resp)
        self.assertEqual(set(resp.json["error"]), {"type", "message"}, resp)
        self.assertEqual(resp.json["error"]["type"], etype, resp)
        if message is not None:
            self.assertEqual(resp.json["error"]["message"], message, resp)
        return resp.json["error"]["message"]

    def assertSequence(self, events):
        """Anthropic's order: message_start, (ping), blocks opened and closed in
        index order with deltas only on the open block, message_delta, message_stop."""
        names = [n for n, _ in events if n != "ping"]
        self.assertEqual(names[0], "message_start", names)
        self.assertEqual(names[-2:], ["message_delta", "message_stop"], names)
        start = events[0][1]["message"]
        self.assertEqual(start["content"], [], start)
        self.assertIsNone(start["stop_reason"], start)
        self.assertTrue(start["id"].startswith("msg_"), start)
        open_index, next_index = None, 0
        for name, data in events[1:-2]:
            if name == "content_block_start":
                self.assertIsNone(open_index, events)
                self.assertEqual(data["index"], next_index, events)
                open_index, next_index = data["index"], next_index + 1
            elif name == "content_block_delta":
                self.assertEqual(data["index"], open_index, events)
            elif name == "content_block_stop":
                self.assertEqual(data["index"], open_index, events)
                open_index = None
            else:
                self.assertEqual(name, "ping", events)
        self.assertIsNone(open_index, events)
        return start

    @staticmethod
    def blocks(events):
        """The content blocks the events build, as the official client accumulates them."""
        blocks = []
        for name, data in events:
            if name == "content_block_start":
                blocks.append(dict(data["content_block"], _json=""))
            elif name == "content_block_delta":
                b, d = blocks[data["index"]], data["delta"]
                if d["type"] == "text_delta":
                    b["text"] += d["text"]
                elif d["type"] == "input_json_delta":
                    b["_json"] += d["partial_json"]
                elif d["type"] == "thinking_delta":
                    b["thinking"] += d["thinking"]
                elif d["type"] == "signature_delta":
                    b["signature"] = d["signature"]
        for b in blocks:
            if b["type"] == "tool_use":
                b["input"] = json.loads(b["_json"]) if b["_json"] else {}
            del b["_json"]
        return blocks


class EchoTests(AnthropicCase, DaemonTestCase):
    """The door in front of the echo provider (no keys)."""

    def echo_params(self, b):
        """The neutral params echo received for request `b`."""
        sid = self.client.create_session("anthropic-door")["id"]
        self.create(b, headers={"X-Swarmhost-Session": sid})
        reply = [m for m in self.client.messages(sid) if m["role"] == "assistant"][-1]
        self.assertIn("echo_params", reply["provider_metadata"], reply)
        return reply["provider_metadata"]["echo_params"]

    def test_a_message_in_anthropic_shape(self):
        r = self.client.post("/v1/messages", body([user("hello there world")], system="be brief"))
        self.assertEqual(r.status, 200, r)
        self.assertIn("X-Swarmhost-Overhead-Ms", r.headers)
        m = r.json
        self.assertEqual(set(m), MESSAGE_KEYS, m)
        self.assertTrue(m["id"].startswith("msg_"), m)
        self.assertEqual((m["type"], m["role"], m["model"]), ("message", "assistant", "echo"), m)
        self.assertEqual(m["content"], [{"type": "text", "text": "echo#1 hello there world", "citations": None}])
        self.assertEqual((m["stop_reason"], m["stop_sequence"]), ("end_turn", None), m)
        u = m["usage"]
        self.assertEqual((u["input_tokens"], u["output_tokens"]), (3, 4), u)
        self.assertEqual((u["cache_creation_input_tokens"], u["cache_read_input_tokens"]), (0, 0), u)

    def test_max_tokens_cut_is_stop_reason_max_tokens(self):
        m = self.create(body([user("one two three four five")], max_tokens=2))
        self.assertEqual(m["content"][0]["text"], "echo#1 one", m)
        self.assertEqual(m["stop_reason"], "max_tokens", m)

    def test_the_stream_is_anthropics_event_sequence(self):
        events = self.events(body([user("stream these words please")]))
        start = self.assertSequence(events)
        self.assertEqual(start["model"], "echo")
        self.assertEqual(events[1][0], "ping", events[:3])
        self.assertEqual(self.blocks(events), [{"type": "text", "text": "echo#1 stream these words please",
                                                "citations": None}])
        self.assertGreater(len([n for n, _ in events if n == "content_block_delta"]), 1, events)
        delta = events[-2][1]
        self.assertEqual(delta["delta"]["stop_reason"], "end_turn", delta)
        self.assertIsNone(delta["delta"]["stop_sequence"], delta)
        self.assertEqual((delta["usage"]["input_tokens"], delta["usage"]["output_tokens"]), (4, 5), delta)
        self.assertIn("gateway_overhead_ms", delta["swarmhost"], delta)

    def test_tool_use_round_trip(self):
        first = self.create(body([user(ASK)], tools=[WEATHER]))
        self.assertEqual(first["stop_reason"], "tool_use", first)
        self.assertEqual(first["content"], [{"type": "tool_use", "id": "call_echo_1", "name": "get_weather",
                                             "input": {"city": ASK}, "caller": {"type": "direct"}}])
        messages = [user(ASK), {"role": "assistant", "content": first["content"]},
                    user([{"type": "tool_result", "tool_use_id": "call_echo_1", "content": "sunny, 21 C"}])]
        second = self.create(body(messages, tools=[WEATHER]))
        self.assertEqual(second["content"][0]["text"], "get_weather returned: sunny, 21 C", second)
        self.assertEqual(second["stop_reason"], "end_turn", second)
        # is_error reaches a provider without the flag (echo) in the text.
        messages[2] = user([{"type": "tool_result", "tool_use_id": "call_echo_1", "is_error": True,
                             "content": [{"type": "text", "text": "no network"}]}])
        third = self.create(body(messages, tools=[WEATHER]))
        self.assertEqual(third["content"][0]["text"], "get_weather returned: Error: no network", third)

    def test_tool_use_streamed(self):
        events = self.events(body([user(ASK)], tools=[WEATHER]))
        self.assertSequence(events)
        starts = [d["content_block"] for n, d in events if n == "content_block_start"]
        self.assertEqual(starts, [{"type": "tool_use", "id": "call_echo_1", "name": "get_weather", "input": {},
                                   "caller": {"type": "direct"}}])
        pieces = [d["delta"]["partial_json"] for n, d in events if n == "content_block_delta"]
        self.assertEqual(len(pieces), 2, pieces)  # echo streams the arguments in two fragments
        self.assertEqual(json.loads("".join(pieces)), {"city": ASK})
        self.assertEqual(events[-2][1]["delta"]["stop_reason"], "tool_use")

    def test_every_mapped_field_reaches_the_provider(self):
        b = body([user("hi")], max_tokens=4096, temperature=0.25, top_p=0.5, top_k=7,
                 stop_sequences=["ZZZ"], metadata={"user_id": "u-7"}, tools=[WEATHER],
                 tool_choice={"type": "any", "disable_parallel_tool_use": True},
                 thinking={"type": "enabled", "budget_tokens": 2048}, service_tier="auto")
        self.assertEqual(self.echo_params(b), {
            "max_output_tokens": 4096, "temperature": 0.25, "top_p": 0.5, "stop": ["ZZZ"], "user": "u-7",
            "tools": [{"type": "function", "name": "get_weather", "description": "weather of a city",
                       "parameters": WEATHER["input_schema"]}],
            "tool_choice": "required", "parallel_tool_calls": False, "reasoning_effort": "minimal",
            "extra": {"top_k": 7, "service_tier": "auto"}})

    def test_x_swarmhost_session_appends_the_exchange(self):
        sid = self.client.create_session("anthropic-door")["id"]
        self.create(body([user("first")]), headers={"X-Swarmhost-Session": sid})
        self.create(body([user("ignored earlier turn"), {"role": "assistant", "content": "ok"}, user("second")]),
                    headers={"X-Swarmhost-Session": sid})
        stored = [(m["role"], m["content"]) for m in self.client.messages(sid)]
        self.assertEqual(stored, [("user", "first"), ("assistant", "echo#1 first"),
                                  ("user", "second"), ("assistant", "echo#2 second")])
        # Streamed too.
        self.events(body([user("third")]), headers={"X-Swarmhost-Session": sid})
        self.assertEqual(self.client.messages(sid)[-1]["content"], "echo#1 third")

    def test_missing_max_tokens_is_refused_as_anthropic_refuses_it(self):
        b = body([user("hi")])
        del b["max_tokens"]
        r = self.client.post("/v1/messages", b)
        self.assertEqual(r.status, 400, r)
        self.assertEqual(r.json, {"type": "error", "error": {"type": "invalid_request_error",
                                                             "message": "max_tokens: Field required"}})
        # Streamed requests are refused before the stream starts, the same way.
        r = self.client.stream("/v1/messages", dict(b, stream=True))
        self.assertNotIsInstance(r, SSEStream)
        self.assertAnthropicError(r, 400, "invalid_request_error", "max_tokens: Field required")

    def test_refusals_name_the_field_in_anthropics_shape(self):
        cases = [
            (body([user("hi")], presence_penalty=1), "presence_penalty: Extra inputs are not permitted"),
            (body([user("hi")], thinking={"type": "adaptive"}), None),
            (body([user(ASK), {"role": "assistant", "content": [
                {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {}}]},
                user([{"type": "tool_result", "tool_use_id": "toolu_nobody", "content": "x"}])]),
             "messages.2.content.0: unexpected `tool_use_id` found in `tool_result` blocks: toolu_nobody. Each "
             "`tool_result` block must have a corresponding `tool_use` block in the previous message."),
        ]
        for b, message in cases:
            with self.subTest(body=b):
                self.assertAnthropicError(self.client.post("/v1/messages", b), 400, "invalid_request_error",
                                          message)
        r = self.client.post("/v1/messages", raw=b"{not json")
        self.assertAnthropicError(r, 400, "invalid_request_error")

    def test_the_dispatchers_errors_on_this_path_are_anthropic_shaped(self):
        r = self.client.get("/v1/messages")
        self.assertAnthropicError(r, 405, "invalid_request_error")
        self.assertEqual(r.headers.get("Allow"), "POST", r)
        self.assertAnthropicError(self.client.post("/v1/messages/count_tokens", {}), 404, "not_found_error")
        r = self.client.post("/v1/messages", body([user("hi")]), headers={"X-Swarmhost-Session": "no-such-session"})
        self.assertAnthropicError(r, 404, "not_found_error")
        # Other doors keep their own shape.
        r = self.client.post("/v1/chat/completions", {"messages": []})
        self.assertError(r, 400, "invalid_request")

    def test_a_failure_after_the_stream_began_is_an_error_event(self):
        events = self.events(body([user("one two three four %s" % swh_harness.FAIL_TOKEN)]))
        names = [n for n, _ in events]
        self.assertEqual(names[0], "message_start", names)
        self.assertEqual(names[-1], "error", names)
        self.assertNotIn("message_stop", names)
        err = events[-1][1]
        self.assertEqual(set(err), {"type", "error"}, err)
        self.assertEqual(err["error"]["type"], "api_error", err)
        self.assertIn("failed", err["error"]["message"], err)


class MiddlewareTests(AnthropicCase, DaemonTestCase):
    """The middleware chain on this door: the user's message before the
    provider, the reply after it, streamed too (stream guardrails)."""

    manifest_kw = {"extra_providers": (
        "middleware:\n"
        '  - {"name": "in_filter", "plugin": "content_filter", "priority": 100,'
        ' "config": {"blocked_words": ["password"], "stages": ["user"]}}\n'
        '  - {"name": "out_filter", "plugin": "content_filter", "priority": 90,'
        ' "config": {"blocked_words": ["parrot"], "replacement": "[bird]", "stages": ["assistant"]}}\n')}

    def test_filters_apply_streamed_and_not(self):
        m = self.create(body([user("my password is parrot")]))
        self.assertEqual(m["content"][0]["text"], "echo#1 my [FILTERED] is [bird]", m)
        events = self.events(body([user("my password is parrot")]))
        self.assertSequence(events)
        self.assertEqual(self.blocks(events)[0]["text"], "echo#1 my [FILTERED] is [bird]", events)


OWNER = Key("carol-laptop", "carol")
OTHER = Key("dave-phone", "dave")
LIMITED = Key("lima-ci", "lima", rate_per_second=0.01, burst=1)  # one request, then 100 s to refill


class KeyTests(AnthropicCase, AuthTestCase):
    """The door under API keys."""

    @classmethod
    def setUpClass(cls):
        cls.daemon = swh_harness.Daemon(extra_providers=auth_section([OWNER, OTHER, LIMITED]))
        cls.daemon.start_or_cleanup()
        cls.client = cls.daemon.client

    def test_x_api_key_and_bearer_are_both_the_daemons_key(self):
        for header in ("x-api-key", "bearer"):
            with self.subTest(header=header):
                m = self.create(body([user("hi")]), client=self.as_key(OWNER, header))
                self.assertEqual(m["content"][0]["text"], "echo#1 hi", m)

    def test_anthropic_version_is_accepted_whatever_its_value(self):
        for version in ("2023-06-01", "2026-10-21", "not-a-date"):
            with self.subTest(version=version):
                m = self.create(body([user("hi")]), client=self.as_key(OWNER, "x-api-key"),
                                headers={"anthropic-version": version})
                self.assertEqual(m["type"], "message")

    def test_no_key_or_a_wrong_one_is_an_authentication_error(self):
        for client in (self.anonymous(), self.as_key(Key("stranger", "mallory"), "x-api-key")):
            r = client.post("/v1/messages", body([user("hi")]))
            self.assertAnthropicError(r, 401, "authentication_error")
            self.assertEqual(r.headers.get("WWW-Authenticate"), "Bearer", r)

    def test_a_key_over_its_rate_is_a_rate_limit_error(self):
        limited = self.as_key(LIMITED, "x-api-key")
        self.create(body([user("hi")]), client=limited)
        r = limited.post("/v1/messages", body([user("hi")]))
        self.assertAnthropicError(r, 429, "rate_limit_error")
        self.assertTrue(r.headers.get("Retry-After", "").isdigit(), r)

    def test_another_users_session_is_not_found(self):
        sid = self.as_key(OWNER).create_session()["id"]
        r = self.as_key(OTHER, "x-api-key").post("/v1/messages", body([user("hi")]),
                                                 headers={"X-Swarmhost-Session": sid})
        message = self.assertAnthropicError(r, 404, "not_found_error")
        self.assertIn(sid, message)
        # Nothing was stored; the owner's own request appends.
        self.create(body([user("mine")]), client=self.as_key(OWNER, "x-api-key"), headers={"X-Swarmhost-Session": sid})
        r = self.as_key(OWNER).get("/v1/sessions/%s/messages" % sid)
        self.assertEqual([m["content"] for m in r.json["messages"]], ["mine", "echo#1 mine"], r)


OPENAI_MODEL = "gpt-4o-mini"
ANTHROPIC_MODEL = "claude-3-5-haiku-latest"


class UpstreamTests(AnthropicCase, FakeUpstreamTestCase):
    """Any door to any provider: the openai and anthropic plugins in front of the fake upstream."""

    @classmethod
    def manifest_kw_for(cls, fake_base):
        def provider(name, plugin, base_url, model, top=()):
            return (["  - name: %s" % name, "    plugin: %s" % plugin] + ["    %s" % line for line in top]
                    + ["    config:", "      base_url: %s" % yaml_str(base_url), '      api_key_env: ""',
                       "      retries: 0", "      timeout_ms: 20000", "      model: %s" % model])
        lines = provider("oa", "openai", fake_base + "/v1", OPENAI_MODEL)
        lines += provider("an", "anthropic", fake_base, ANTHROPIC_MODEL)
        # Nothing listens there: every call fails before the first token, and `an` takes over.
        dead_base = "http://127.0.0.1:%d/v1" % swh_harness.free_port()
        lines += provider("down", "openai", dead_base, OPENAI_MODEL, top=["fallback: [an]"])
        return {"extra_providers": "\n".join(lines) + "\n", "server_lines": ["sse_keepalive_seconds: 1"]}

    def upstream(self):
        reqs = self.fake.state.requests
        self.assertEqual(len(reqs), 1, reqs)
        return reqs[0]

    def tool_request(self, model, **fields):
        return body([user("Oslo")], model=model, max_tokens=300, system="be brief", temperature=0.5,
                    stop_sequences=["END"], tools=[WEATHER], tool_choice={"type": "any"}, **fields)

    def test_to_the_anthropic_plugin_tools_and_parameters_arrive_as_sent(self):
        m = self.create(self.tool_request("an", top_k=5))
        sent = self.upstream()["body"]
        self.assertEqual(sent["model"], ANTHROPIC_MODEL)
        self.assertEqual((sent["max_tokens"], sent["temperature"], sent["top_k"]), (300, 0.5, 5), sent)
        self.assertEqual(sent["stop_sequences"], ["END"])
        self.assertEqual(sent["system"], "be brief")
        self.assertEqual(sent["tools"], [WEATHER])
        self.assertEqual(sent["tool_choice"], {"type": "any"})
        # The fake answers a "Calling ..." text block, then the tool_use.
        self.assertEqual([b["type"] for b in m["content"]], ["text", "tool_use"], m)
        call = m["content"][1]
        self.assertEqual((call["name"], call["input"]), ("get_weather", {"text": "Oslo"}), m)
        self.assertEqual(m["stop_reason"], "tool_use", m)
        self.assertEqual(m["model"], "an")
        # The tool result goes back as a tool_result block of one user message.
        self.fake.state.reset()
        messages = [user("Oslo"), {"role": "assistant", "content": m["content"]},
                    user([{"type": "tool_result", "tool_use_id": call["id"], "content": "sunny"}])]
        m2 = self.create(body(messages, model="an", tools=[WEATHER]))
        sent = self.upstream()["body"]
        self.assertEqual(sent["messages"][2], {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": call["id"], "content": "sunny"}]})
        self.assertEqual(sent["messages"][1]["content"][1]["input"], {"text": "Oslo"})
        self.assertEqual(m2["content"][0]["text"], "Tool said: sunny", m2)
        self.assertEqual(m2["stop_reason"], "end_turn", m2)

    def test_to_the_openai_plugin_tools_and_parameters_are_translated(self):
        m = self.create(self.tool_request("oa", top_k=5, metadata={"user_id": "u-9"}))
        sent = self.upstream()["body"]
        self.assertEqual(self.upstream()["path"], "/v1/chat/completions")
        self.assertEqual(sent["model"], OPENAI_MODEL)
        self.assertEqual(sent["messages"], [{"role": "system", "content": "be brief"},
                                            {"role": "user", "content": "Oslo"}])
        self.assertEqual(sent["tools"], [{"type": "function", "function": {
            "name": "get_weather", "description": "weather of a city", "parameters": WEATHER["input_schema"]}}])
        self.assertEqual(sent["tool_choice"], "required")
        self.assertEqual((sent["temperature"], sent["stop"], sent["user"], sent["top_k"]),
                         (0.5, ["END"], "u-9", 5), sent)
        self.assertEqual(m["content"], [{"type": "tool_use", "id": m["content"][0]["id"], "name": "get_weather",
                                         "input": {"text": "Oslo"}, "caller": {"type": "direct"}}])
        self.assertEqual(m["stop_reason"], "tool_use", m)
        call = m["content"][0]
        self.fake.state.reset()
        messages = [user("Oslo"), {"role": "assistant", "content": m["content"]},
                    user([{"type": "tool_result", "tool_use_id": call["id"], "content": "rain"}])]
        m2 = self.create(body(messages, model="oa", tools=[WEATHER]))
        sent = self.upstream()["body"]
        self.assertEqual(sent["messages"][1]["tool_calls"][0]["id"], call["id"], sent)
        self.assertEqual(json.loads(sent["messages"][1]["tool_calls"][0]["function"]["arguments"]), {"text": "Oslo"})
        self.assertEqual(sent["messages"][2], {"role": "tool", "tool_call_id": call["id"], "content": "rain"})
        self.assertEqual(m2["content"][0]["text"], "Tool said: rain", m2)
        u = m2["usage"]
        self.assertGreater(u["input_tokens"], 0, u)
        self.assertGreater(u["output_tokens"], 0, u)

    def test_streamed_through_each_plugin(self):
        for model in ("oa", "an"):
            with self.subTest(model=model):
                self.fake.state.reset()
                events = self.events(self.tool_request(model))
                self.assertSequence(events)
                self.assertTrue(self.upstream()["body"]["stream"])
                blocks = [b for b in self.blocks(events) if b["type"] == "tool_use"]
                self.assertEqual([(b["name"], b["input"]) for b in blocks], [("get_weather", {"text": "Oslo"})])
                delta = events[-2][1]
                self.assertEqual(delta["delta"]["stop_reason"], "tool_use", delta)
                self.assertGreater(delta["usage"]["output_tokens"], 0, delta)

    def test_a_silent_upstream_gets_ping_events(self):
        # The fake waits 3.5 s before its first byte (model "fake-slow:3500"):
        # the keep-alive (every second here) is Anthropic's ping event.
        events = self.events(body([user("hi")], model="an/fake-slow:3500"))
        self.assertSequence(events)
        first_block = [n for n, _ in events].index("content_block_start")
        pings = [n for n, _ in events[:first_block] if n == "ping"]
        self.assertGreaterEqual(len(pings), 2, events[:first_block])  # the one after message_start, and more

    def test_image_and_document_blocks_reach_each_vendor_byte_for_byte(self):
        # The fake decodes what arrived and names it: "[saw <type> <n> bytes sha256=<12 hex>; ...]".
        png = base64.b64decode(PNG_BASE64)
        pdf = b"%PDF-1.4\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"
        saw = "; ".join("%s %d bytes sha256=%s" % (mime, len(data), hashlib.sha256(data).hexdigest()[:12])
                        for mime, data in (("image/png", png), ("application/pdf", pdf)))
        content = [{"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG_BASE64}},
                   {"type": "document", "source": {"type": "base64", "media_type": "application/pdf",
                                                   "data": base64.b64encode(pdf).decode()}},
                   {"type": "text", "text": "what is this"}]
        for model in ("oa", "an"):
            with self.subTest(model=model):
                m = self.create(body([user(content)], model=model))
                self.assertEqual(m["content"][0]["text"], "You said: what is this [saw %s]" % saw, m)

    def test_a_failing_provider_hands_over_to_its_fallback(self):
        m = self.create(body([user("fall back")], model="down"))
        self.assertEqual(m["content"][0]["text"], "You said: fall back", m)
        self.assertEqual(self.upstream()["path"], "/v1/messages")  # the anthropic plugin answered
        events = self.events(body([user("fall back streamed")], model="down"))
        self.assertSequence(events)
        self.assertEqual(self.blocks(events)[0]["text"], "You said: fall back streamed")

    def test_cached_prompt_usage_reads_as_anthropic_reports_it(self):
        # The fake reports the words of every message before the last as
        # read from the cache when the request asks for caching.
        messages = [user("alpha beta gamma"), {"role": "assistant", "content": "delta"}, user("epsilon")]
        m = self.create(body(messages, model="an", cache_control={"type": "ephemeral"}))
        self.assertEqual(self.upstream()["body"]["cache_control"], {"type": "ephemeral"})
        u = m["usage"]
        self.assertEqual(u["cache_read_input_tokens"], 4, u)
        self.assertEqual(u["input_tokens"], 1, u)  # Anthropic's input_tokens leaves the cache out

    def claude_code_request(self, model, **fields):
        """Shaped as Claude Code sends it: marked system blocks, a marked tool,
        a tool round whose result is marked, the last text block marked."""
        hour, mark = {"type": "ephemeral", "ttl": "1h"}, {"type": "ephemeral"}
        tool = dict(WEATHER, cache_control=hour)
        call = {"type": "tool_use", "id": "toolu_cc1", "name": "get_weather", "input": {"city": "Oslo"},
                "cache_control": mark}
        messages = [user("weather?"), {"role": "assistant", "content": [{"type": "text", "text": "Checking."}, call]},
                    user([{"type": "tool_result", "tool_use_id": "toolu_cc1", "content": "sunny", "cache_control": mark},
                          {"type": "text", "text": "and now?"},
                          {"type": "text", "text": "thanks", "cache_control": mark}])]
        system = [{"type": "text", "text": "You are a CLI.", "cache_control": hour},
                  {"type": "text", "text": " Be brief.", "cache_control": mark}]
        return body(messages, model=model, system=system, tools=[tool], metadata={"user_id": "user_cc"}, **fields)

    def test_cache_marks_reach_anthropic_where_they_were_sent(self):
        hour, mark = {"type": "ephemeral", "ttl": "1h"}, {"type": "ephemeral"}
        for stream in (False, True):
            with self.subTest(stream=stream):
                self.fake.state.reset()
                b = self.claude_code_request("an")
                if stream:
                    self.assertSequence(self.events(b))
                else:
                    self.assertEqual(self.create(b)["stop_reason"], "tool_use")  # the fake calls offered tools
                sent = self.upstream()["body"]
                # The system prompt is one string in the ABI: one block, marked.
                self.assertEqual(sent["system"], [{"type": "text", "text": "You are a CLI. Be brief.",
                                                   "cache_control": mark}])
                self.assertEqual(sent["tools"], [dict(WEATHER, cache_control=hour)])
                self.assertEqual(sent["messages"][1]["content"][1]["cache_control"], mark, sent)
                self.assertNotIn("cache_control", sent["messages"][1]["content"][0])
                self.assertEqual(sent["messages"][2], {"role": "user", "content": [
                    {"type": "tool_result", "tool_use_id": "toolu_cc1", "content": "sunny", "cache_control": mark}]})
                self.assertEqual(sent["messages"][3], {"role": "user", "content": [
                    {"type": "text", "text": "and now?"}, {"type": "text", "text": "thanks", "cache_control": mark}]})
                self.assertEqual(sent["metadata"], {"user_id": "user_cc"})
                self.assertNotIn("cache_control", sent)  # no top-level mark was asked for

    def test_cache_marks_are_dropped_on_the_openai_wire(self):
        m = self.create(self.claude_code_request("oa", cache_control={"type": "ephemeral"}))
        self.assertEqual(m["stop_reason"], "tool_use", m)
        sent = self.upstream()["body"]
        self.assertNotIn("cache_control", json.dumps(sent), sent)
        self.assertEqual(sent["messages"][0], {"role": "system", "content": "You are a CLI. Be brief."})
        self.assertEqual(sent["messages"][-1], {"role": "user", "content": [
            {"type": "text", "text": "and now?"}, {"type": "text", "text": "thanks"}]}, sent)
        self.assertEqual(sent["tools"][0]["function"]["name"], "get_weather")

    def test_the_chat_doors_cache_marks_reach_anthropic_too(self):
        # OpenAI-compatible clients of Anthropic models mark content parts and
        # tools the same way; the chat door carries them through the neutral form.
        mark = {"type": "ephemeral"}
        b = {"model": "an", "max_tokens": 100, "cache_control": mark,
             "tools": [{"type": "function", "function": {"name": "get_weather", "parameters": WEATHER["input_schema"]},
                        "cache_control": mark}],
             "messages": [{"role": "system", "content": [{"type": "text", "text": "be brief", "cache_control": mark}]},
                          {"role": "user", "content": [{"type": "text", "text": "hi", "cache_control": mark}]}]}
        r = self.client.post("/v1/chat/completions", b)
        self.assertEqual(r.status, 200, r)
        sent = self.upstream()["body"]
        self.assertEqual(sent["cache_control"], mark)
        self.assertEqual(sent["system"], [{"type": "text", "text": "be brief", "cache_control": mark}])
        self.assertEqual(sent["tools"][0]["cache_control"], mark)
        self.assertEqual(sent["messages"], [{"role": "user", "content": [
            {"type": "text", "text": "hi", "cache_control": mark}]}])

    def test_a_stop_sequence_hit_names_the_sequence(self):
        b = body([user("one two three")], model="an", stop_sequences=["absent", "two"])
        m = self.create(b)
        self.assertEqual((m["content"][0]["text"], m["stop_reason"], m["stop_sequence"]),
                         ("You said: one ", "stop_sequence", "two"), m)
        delta = self.events(b)[-2][1]["delta"]
        self.assertEqual((delta["stop_reason"], delta["stop_sequence"]), ("stop_sequence", "two"), delta)
        # No hit: the turn ended by itself.
        m = self.create(body([user("one")], model="an", stop_sequences=["absent"]))
        self.assertEqual((m["stop_reason"], m["stop_sequence"]), ("end_turn", None), m)
        # OpenAI's wire does not say which sequence matched (finish_reason "stop").
        m = self.create(dict(b, model="oa"))
        self.assertEqual(self.fake.state.requests[-1]["body"]["stop"], ["absent", "two"])
        self.assertEqual((m["content"][0]["text"], m["stop_reason"], m["stop_sequence"]),
                         ("You said: one ", "end_turn", None), m)

    def test_a_failed_tool_result_is_flagged_to_anthropic_and_said_in_the_text_to_openai(self):
        call = {"type": "tool_use", "id": "toolu_e1", "name": "get_weather", "input": {"city": "Oslo"}}
        messages = [user("weather?"), {"role": "assistant", "content": [call]},
                    user([{"type": "tool_result", "tool_use_id": "toolu_e1", "is_error": True,
                           "content": [{"type": "text", "text": "no network"}]}])]
        self.create(body(messages, model="an"))
        self.assertEqual(self.upstream()["body"]["messages"][2], {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "toolu_e1", "is_error": True, "content": "no network"}]})
        self.fake.state.reset()
        self.create(body(messages, model="oa"))
        self.assertEqual(self.upstream()["body"]["messages"][2],
                         {"role": "tool", "tool_call_id": "toolu_e1", "content": "Error: no network"})

    def test_models_answer_in_the_shape_of_the_client_that_asks(self):
        anthropic = {"anthropic-version": "2023-06-01"}
        r = self.client.get("/v1/models", headers=anthropic)
        self.assertEqual(r.status, 200, r)
        ids = [m["id"] for m in r.json["data"]]
        self.assertIn("an", ids)
        self.assertEqual(set(r.json), {"data", "has_more", "first_id", "last_id"}, r.json)
        self.assertEqual((r.json["has_more"], r.json["first_id"], r.json["last_id"]), (False, ids[0], ids[-1]))
        self.assertEqual(r.json["data"][ids.index("an")],
                         {"type": "model", "id": "an", "display_name": "an", "created_at": "1970-01-01T00:00:00Z"})
        r = self.client.get("/v1/models")  # OpenAI's clients send no anthropic-version
        self.assertEqual(r.json["object"], "list", r.json)
        self.assertEqual([m["id"] for m in r.json["data"]], ids)
        self.assertEqual(r.json["data"][ids.index("an")]["object"], "model")
        r = self.client.get("/v1/models/an", headers=anthropic)
        self.assertEqual((r.status, r.json["type"], r.json["id"]), (200, "model", "an"), r)
        r = self.client.get("/v1/models/an")
        self.assertEqual((r.status, r.json["object"], r.json["owned_by"]), (200, "model", "swarmhost:anthropic"), r)
        self.assertAnthropicError(self.client.get("/v1/models/nope", headers=anthropic), 404, "not_found_error")
        r = self.client.get("/v1/models/nope")
        self.assertEqual((r.status, r.json["error"]["code"]), (404, "not_found"), r)

    def test_thinking_is_relayed_as_a_signed_thinking_block(self):
        b = body([user("ponder")], model="an", max_tokens=2048, thinking={"type": "enabled", "budget_tokens": 1024})
        m = self.create(b)
        self.assertEqual(self.upstream()["body"]["thinking"], {"type": "enabled", "budget_tokens": 1024})
        self.assertEqual(m["content"][0]["type"], "thinking", m)
        self.assertEqual(m["content"][0]["thinking"], "Thinking about: ponder", m)
        self.assertTrue(m["content"][0]["signature"].startswith("sig_fake_"), m)
        self.fake.state.reset()
        events = self.events(b)
        self.assertSequence(events)
        blocks = self.blocks(events)
        self.assertEqual(blocks[0], m["content"][0])
        self.assertEqual(blocks[1]["text"], m["content"][1]["text"])


if __name__ == "__main__":
    unittest.main()
