"""What the OpenAI-compatible front door (POST /v1/chat/completions) does with
a request, proved at the upstream: the real daemon with the openai and
anthropic plugins pointed at tools/fake_upstream, which records every request
body. The echo provider answers the same text however a request is routed, so
these checks look at what reached which upstream instead (docs/http-api.md,
"OpenAI-compatible front door"):

- `model` routing: `"<provider>"` (its configured model), `"<provider>/<model>"`,
  and any other name = the default provider with that name as the model;
- `system` / `developer` turns become the provider's system prompt (OpenAI: a
  leading system message; Anthropic: the top-level `system`), not turns;
- the middleware chain runs (a content filter on the user message and one on
  the reply, streamed or not);
- a provider's fallbacks apply (a provider that cannot be reached hands the
  request to its fallback).

Run by hand (from this folder):
  SWH_BINARY=<build>/host/swarmhost SWH_PLUGIN_DIR=<build>/plugins \\
    PYTHONPATH=../integration:../../tools/fake_upstream python3 -m unittest -v test_routing
"""

import json
import unittest

import swh_harness
from swh_harness import FakeUpstreamTestCase, SSEStream, yaml_str

OPENAI_MODEL = "gpt-4o-mini"            # the openai provider's configured model
ANTHROPIC_MODEL = "claude-3-5-haiku-latest"  # the anthropic provider's


def providers_and_middleware(fake_base, dead_base):
    def provider(name, plugin, base_url, config=(), top=()):
        return (["  - name: %s" % name, "    plugin: %s" % plugin] + ["    %s" % line for line in top]
                + ["    config:", "      base_url: %s" % yaml_str(base_url), '      api_key_env: ""',
                   "      retries: 0", "      timeout_ms: 20000"] + ["      %s" % line for line in config])

    lines = []
    lines += provider("oa", "openai", fake_base + "/v1", ["model: %s" % OPENAI_MODEL])
    lines += provider("an", "anthropic", fake_base, ["model: %s" % ANTHROPIC_MODEL, "max_tokens: 300"])
    # Nothing listens at dead_base: every call fails before the first token.
    lines += provider("down", "openai", dead_base + "/v1", ["connect_timeout_ms: 2000"], ["fallback: [an]"])
    lines += [
        "default_provider: oa",
        "middleware:",
        # The user's message, before it goes upstream: "password" is redacted.
        '  - {"name": "in_filter", "plugin": "content_filter", "priority": 100,'
        ' "config": {"blocked_words": ["password"], "stages": ["user"]}}',
        # The reply, streamed too: "parrot" becomes "[bird]".
        '  - {"name": "out_filter", "plugin": "content_filter", "priority": 90,'
        ' "config": {"blocked_words": ["parrot"], "replacement": "[bird]", "stages": ["assistant"]}}',
    ]
    return "\n".join(lines) + "\n"


class FrontDoorRoutingTests(FakeUpstreamTestCase):

    @classmethod
    def manifest_kw_for(cls, fake_base):
        dead_base = "http://127.0.0.1:%d" % swh_harness.free_port()
        return {"extra_providers": providers_and_middleware(fake_base, dead_base)}

    # ---- helpers
    def upstream_requests(self):
        with self.fake.state.lock:
            return [dict(r) for r in self.fake.state.requests
                    if r["method"] == "POST" and r["path"] in ("/v1/chat/completions", "/v1/messages")]

    def only_upstream_request(self):
        reqs = self.upstream_requests()
        self.assertEqual(len(reqs), 1, [(r["path"], r["body"]) for r in reqs])
        return reqs[0]

    def complete(self, model, messages, stream=False):
        """(reply text, the request that reached the fake upstream or None)."""
        body = {"model": model, "messages": messages, "stream": stream}
        if not stream:
            r = self.client.post("/v1/chat/completions", body)
            self.assertEqual(r.status, 200, r)
            self.assertEqual(r.json["object"], "chat.completion", r)
            self.assertEqual(r.json["model"], model, r)  # what the client asked for, echoed
            text = r.json["choices"][0]["message"]["content"]
        else:
            st = self.client.stream("/v1/chat/completions", body)
            self.assertIsInstance(st, SSEStream, st)
            data = [e.data for e in st.read_all() if e.data]
            self.assertEqual(data[-1], "[DONE]", st.raw_lines)
            chunks = [json.loads(d) for d in data[:-1]]
            self.assertTrue(all(c["object"] == "chat.completion.chunk" for c in chunks), chunks)
            self.assertEqual(chunks[-1]["choices"][0]["finish_reason"], "stop", chunks[-1])
            text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks)
        reqs = self.upstream_requests()
        self.assertLessEqual(len(reqs), 1, reqs)
        return text, (reqs[0] if reqs else None)

    def user(self, text):
        return [{"role": "user", "content": text}]

    # ---- model routing
    def test_model_names_route_to_provider_and_model(self):
        # model -> (upstream path, model the upstream was asked for)
        cases = [
            ("oa", "/v1/chat/completions", OPENAI_MODEL),
            ("oa/gpt-4o", "/v1/chat/completions", "gpt-4o"),
            ("an", "/v1/messages", ANTHROPIC_MODEL),
            ("an/claude-sonnet-4-5", "/v1/messages", "claude-sonnet-4-5"),
            # not a provider: the default provider (oa) with that model name
            ("mystery-model-7", "/v1/chat/completions", "mystery-model-7"),
            ("nosuchprovider/x-1", "/v1/chat/completions", "nosuchprovider/x-1"),
        ]
        for stream in (False, True):
            for model, path, upstream_model in cases:
                with self.subTest(model=model, stream=stream):
                    self.fake.state.reset()
                    prompt = "route %s please" % model
                    text, req = self.complete(model, self.user(prompt), stream)
                    self.assertEqual(text, "You said: " + prompt)
                    self.assertIsNotNone(req, "nothing reached the fake upstream")
                    self.assertEqual(req["path"], path, req)
                    self.assertEqual(req["body"]["model"], upstream_model, req["body"])
                    self.assertEqual(req["body"]["stream"], stream, req["body"])
                    self.assertEqual(req["body"]["messages"][-1]["content"], prompt, req["body"])

    def test_echo_by_name_never_reaches_the_upstream(self):
        for stream in (False, True):
            with self.subTest(stream=stream):
                self.fake.state.reset()
                text, req = self.complete("echo", self.user("local only"), stream)
                self.assertEqual(text, "echo#1 local only")
                self.assertIsNone(req, "the echo provider's request went to the default upstream")

    # ---- system / developer turns
    def test_system_and_developer_turns_become_the_system_prompt(self):
        messages = [{"role": "system", "content": "Be brief."},
                    {"role": "user", "content": "first"},
                    {"role": "assistant", "content": "You said: first"},
                    {"role": "developer", "content": [{"type": "text", "text": "Answer in French."}]},
                    {"role": "user", "content": "second"}]
        convo = [("user", "first"), ("assistant", "You said: first"), ("user", "second")]
        for stream in (False, True):
            with self.subTest(vendor="openai", stream=stream):
                self.fake.state.reset()
                text, req = self.complete("oa", messages, stream)
                self.assertEqual(text, "You said: second")
                sent = req["body"]["messages"]
                self.assertEqual(sent[0], {"role": "system", "content": "Be brief.\nAnswer in French."}, sent)
                self.assertEqual([(m["role"], m["content"]) for m in sent[1:]], convo, sent)
            with self.subTest(vendor="anthropic", stream=stream):
                self.fake.state.reset()
                text, req = self.complete("an", messages, stream)
                self.assertEqual(text, "You said: second")
                body = req["body"]
                self.assertEqual(body.get("system"), "Be brief.\nAnswer in French.", body)
                self.assertEqual([(m["role"], m["content"]) for m in body["messages"]], convo, body)

    def test_no_system_turn_sends_no_system_prompt(self):
        text, req = self.complete("oa", self.user("plain"))
        self.assertEqual(text, "You said: plain")
        self.assertEqual([m["role"] for m in req["body"]["messages"]], ["user"], req["body"])
        self.fake.state.reset()
        text, req = self.complete("an", self.user("plain"))
        self.assertEqual(text, "You said: plain")
        self.assertNotIn("system", req["body"], req["body"])

    # ---- middleware
    def test_middleware_runs_on_the_user_message_and_the_reply(self):
        for stream in (False, True):
            with self.subTest(stream=stream):
                self.fake.state.reset()
                text, req = self.complete("oa", self.user("my password is parrot"), stream)
                # the user-stage filter ran before the request went upstream
                self.assertEqual(req["body"]["messages"][-1]["content"], "my [FILTERED] is parrot", req["body"])
                # the assistant-stage filter ran on the upstream's reply
                self.assertEqual(text, "You said: my [FILTERED] is [bird]")

    # ---- fallbacks
    def test_fallback_answers_when_the_provider_cannot_be_reached(self):
        for stream in (False, True):
            with self.subTest(stream=stream):
                self.fake.state.reset()
                text, req = self.complete("down", self.user("anyone there"), stream)
                self.assertEqual(text, "You said: anyone there")
                self.assertIsNotNone(req, "the fallback did not reach the fake upstream")
                # the fallback is the anthropic provider, with its own model
                self.assertEqual(req["path"], "/v1/messages", req)
                self.assertEqual(req["body"]["model"], ANTHROPIC_MODEL, req["body"])

    def test_a_failing_provider_without_fallbacks_is_an_error(self):
        # The counterpart of the above: "oa" has no fallback, so its upstream's
        # failure reaches the client (and the one attempt reached the fake).
        r = self.client.post("/v1/chat/completions",
                             {"model": "oa", "messages": self.user("[fake:500] broken upstream")})
        self.assertError(r, 502, "upstream_error")
        self.assertEqual(len(self.upstream_requests()), 1)

if __name__ == "__main__":
    unittest.main()
