"""The openai and anthropic provider plugins inside the real daemon, against
tools/fake_upstream (over loopback HTTP; Python standard library only).

Run by hand from this folder:
  SWH_BINARY=<build>/host/swarmhost SWH_PLUGIN_DIR=<build>/plugins python3 -m unittest -v test_daemon_providers
"""

import json
import os
import sys
import time
import unittest
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(REPO, "tests", "integration"))

from swh_harness import FakeUpstreamTestCase, Response, SSEStream, yaml_str  # noqa: E402

OPENAI_KEY = "sk-swhtest-openai-" + uuid.uuid4().hex
ANTHROPIC_KEY = "sk-ant-swhtest-" + uuid.uuid4().hex
RETRIES = 2


def uid(prefix="u"):
    return "%s-%s" % (prefix, uuid.uuid4().hex[:12])


def provider_yaml(name, plugin, base_url, key_env, extra):
    lines = ["  - name: %s" % name, "    plugin: %s" % plugin, "    config:",
             "      base_url: %s" % yaml_str(base_url),
             "      api_key_env: %s" % yaml_str(key_env),
             "      retries: %d" % RETRIES,
             "      retry_base_ms: 50",
             "      retry_max_ms: 3000",
             "      timeout_ms: 2000"]
    lines += ["      %s: %s" % (k, v) for k, v in extra]
    return "\n".join(lines) + "\n"


class ProviderDaemonBase(FakeUpstreamTestCase):
    """One fake upstream + one daemon with both plugins for the whole class."""

    @classmethod
    def manifest_kw_for(cls, base):
        os.environ["SWH_TEST_OPENAI_KEY"] = OPENAI_KEY
        os.environ["SWH_TEST_ANTHROPIC_KEY"] = ANTHROPIC_KEY
        extra = provider_yaml("openai", "openai", base + "/v1", "SWH_TEST_OPENAI_KEY",
                              [("custom_params", '{"top_p": 0.5, "user": "swh-test"}')])
        extra += provider_yaml("anthropic", "anthropic", base, "SWH_TEST_ANTHROPIC_KEY",
                               [("custom_params", '{"top_k": 7}'), ("max_tokens", "300")])
        return {"extra_providers": extra}

    # ---- helpers
    provider = None  # set by subclasses
    key = None

    def requests(self):
        with self.fake.state.lock:
            return [r for r in self.fake.state.requests if r["path"].endswith(("/chat/completions", "/messages"))]

    def session(self, **fields):
        return self.client.create_session(uid(), provider=self.provider, **fields)

    def open_stream(self, sid, content):
        st = self.client.stream("/v1/sessions/%s/messages" % sid, {"content": content, "stream": True})
        self.assertIsInstance(st, SSEStream, "expected an SSE answer, got %r" % (st,))
        return st

    def assertOnlyUserStored(self, sid, text):
        msgs = self.client.messages(sid)
        self.assertEqual([(m["role"], m["content"]) for m in msgs], [("user", text)], msgs)

    def assertNoKey(self, text, where):
        for key in (OPENAI_KEY, ANTHROPIC_KEY):
            self.assertNotIn(key, text, "the API key leaked into %s" % where)

    def vendor_body(self, req):
        self.assertIsInstance(req["body"], dict, req)
        return req["body"]

    def system_of(self, body):
        raise NotImplementedError

    def sent_key(self, req):
        raise NotImplementedError

    # ---- tests shared by both vendors
    def test_non_stream_reply_metadata_and_request(self):
        s = self.session()
        r = self.client.send(s["id"], "hello big world")
        self.assertEqual(r.status, 201, r)
        a = r.json["assistant_message"]
        self.assertEqual(a["content"], "You said: hello big world")
        self.assertTrue(a["provider_message_id"].startswith(self.id_prefix), a)
        meta = a["provider_metadata"]
        self.assertEqual(meta.get("finish_reason"), "stop", meta)
        # the plugin reports usage as a reply event (ABI 1.3): the host stores
        # it in the neutral form, replacing the vendor's usage object
        self.assertEqual(meta["usage"]["output_tokens"], 5, meta)
        self.assertEqual(meta["usage"]["input_tokens"], 3, meta)
        [req] = self.requests()
        body = self.vendor_body(req)
        self.assertEqual(body["stream"], False)
        self.assertEqual(self.sent_key(req), self.key)
        self.assertEqual(body["messages"][-1], {"role": "user", "content": "hello big world"})
        self.check_custom_params(body)
        msgs = self.client.messages(s["id"])
        self.assertEqual([m["role"] for m in msgs], ["user", "assistant"])
        self.assertEqual(msgs[1]["content"], a["content"])

    def test_stream_relays_chunks_and_stores_reply(self):
        s = self.session()
        st = self.open_stream(s["id"], "stream these words please")
        events = st.read_all()
        names = [e.event for e in events]
        self.assertEqual(names[0], "user_message", names)
        self.assertEqual(names[-2:], ["assistant_message", "done"], names)
        chunks = [e.json["text"] for e in events if e.event == "chunk"]
        self.assertGreater(len(chunks), 3, chunks)
        self.assertEqual("".join(chunks), "You said: stream these words please")
        a = events[-2].json
        self.assertEqual(a["content"], "".join(chunks))
        self.assertTrue(a["provider_message_id"].startswith(self.id_prefix), a)
        self.assertEqual(a["provider_metadata"].get("finish_reason"), "stop", a)
        self.assertIn("usage", a["provider_metadata"])
        [req] = self.requests()
        self.assertEqual(self.vendor_body(req)["stream"], True)
        msgs = self.client.messages(s["id"])
        self.assertEqual([m["content"] for m in msgs], ["stream these words please", a["content"]])

    def test_history_goes_upstream(self):
        s = self.session()
        self.assertEqual(self.client.send(s["id"], "first turn").status, 201)
        self.assertEqual(self.client.send(s["id"], "second turn").status, 201)
        body = self.vendor_body(self.requests()[-1])
        convo = [(m["role"], m["content"]) for m in body["messages"] if m["role"] != "system"]
        self.assertEqual(convo, [("user", "first turn"), ("assistant", "You said: first turn"),
                                 ("user", "second turn")])

    def test_system_prompt_from_session_config(self):
        s = self.session(config={"system_prompt": "You are terse."})
        r = self.client.send(s["id"], "hi")
        self.assertEqual(r.status, 201, r)
        self.assertEqual(self.system_of(self.vendor_body(self.requests()[0])), "You are terse.")

    def test_system_prompt_from_message_metadata(self):
        s = self.session()
        r = self.client.send(s["id"], "hi", metadata={"system_prompt": "Answer in French."})
        self.assertEqual(r.status, 201, r)
        self.assertEqual(self.system_of(self.vendor_body(self.requests()[0])), "Answer in French.")

    def test_429_retried_after_retry_after_then_succeeds(self):
        s = self.session()
        text = "[fake:429x1:1] try again"
        t0 = time.monotonic()
        r = self.client.send(s["id"], text)
        elapsed = time.monotonic() - t0
        self.assertEqual(r.status, 201, r)
        self.assertEqual(r.json["assistant_message"]["content"], "You said: " + text)
        self.assertEqual(len(self.requests()), 2)
        self.assertGreaterEqual(elapsed, 0.95, "Retry-After: 1 was not honoured")

    def test_429_retries_exhausted_gives_429_with_retry_after(self):
        s = self.session()
        text = "[fake:429:1] always limited"
        r = self.client.send(s["id"], text)
        self.assertEqual(len(self.requests()), RETRIES + 1, "expected %d attempts" % (RETRIES + 1))
        self.assertEqual(r.status, 429, r)
        self.assertEqual(r.headers.get("Retry-After"), "1", r)
        self.assertIsInstance(r.json, dict, r)
        self.assertIn("error", r.json)
        self.assertOnlyUserStored(s["id"], text)

    def test_503_retried_then_succeeds(self):
        s = self.session()
        text = "[fake:503x2:0] overloaded twice"
        r = self.client.send(s["id"], text)
        self.assertEqual(r.status, 201, r)
        self.assertEqual(len(self.requests()), 3)

    def test_garbage_is_502(self):
        for stream in (False, True):
            with self.subTest(stream=stream):
                s = self.session()
                text = "[fake:garbage] what is this"
                if stream:
                    st = self.open_stream(s["id"], text)
                    events = st.read_all()
                    names = [e.event for e in events]
                    self.assertEqual(names[-1], "error", names)
                    self.assertNotIn("assistant_message", names)
                    self.assertEqual(events[-1].json["error"]["code"], "upstream_error", events[-1])
                else:
                    r = self.client.send(s["id"], text)
                    self.assertError(r, 502, "upstream_error")
                    self.assertNoKey(r.raw.decode("utf-8", "replace"), "the error body")
                self.assertOnlyUserStored(s["id"], text)

    def test_timeout_is_504(self):
        s = self.session()
        # The fake says nothing for 6 s, then hangs up: without timeout_ms
        # (2000) that hang-up would be a 502; only the timeout gives 504.
        text = "[fake:timeout:6000] are you there"
        r = self.client.send(s["id"], text)
        self.assertEqual(r.status, 504, r)
        self.assertOnlyUserStored(s["id"], text)

    def test_midstream_disconnect_sends_error_event_and_stores_no_reply(self):
        s = self.session()
        text = "[fake:disconnect] one two three four five six seven"
        st = self.open_stream(s["id"], text)
        events = st.read_all()
        names = [e.event for e in events]
        self.assertEqual(names[0], "user_message", names)
        self.assertEqual(names[-1], "error", names)
        self.assertGreaterEqual(names.count("chunk"), 1, names)
        self.assertNotIn("assistant_message", names)
        self.assertNotIn("done", names)
        self.assertIn("error", events[-1].json)
        self.assertOnlyUserStored(s["id"], text)
        self.assertEqual(len(self.requests()), 1, "a stream that already sent text must not be retried")
        # the session still works afterwards
        r = self.client.send(s["id"], "after the cut")
        self.assertEqual(r.status, 201, r)

    def test_upstream_auth_error_never_shows_the_key(self):
        s = self.session()
        text = "[fake:401] who am i"
        r = self.client.send(s["id"], text)
        # The upstream refused the key: the provider failed (502), it is not
        # the client's fault (4xx) nor a bug of ours (500, docs/http-api.md).
        self.assertError(r, 502, "upstream_error")
        self.assertNoKey(r.raw.decode("utf-8", "replace"), "the error body")
        self.assertIn("***", r.json["error"]["message"], "the key in the upstream's message was not scrubbed")
        self.assertOnlyUserStored(s["id"], text)

    def test_key_not_in_plugins_providers_or_log(self):
        r = self.client.get("/v1/plugins")
        self.assertEqual(r.status, 200, r)
        self.assertNoKey(r.raw.decode("utf-8", "replace"), "/v1/plugins")
        for path in ("/v1/providers", "/v1/providers/%s" % self.provider):
            r = self.client.get(path)
            self.assertEqual(r.status, 200, r)
            text = r.raw.decode("utf-8", "replace")
            self.assertNoKey(text, path)
            self.assertIn(self.key_env, text)  # it names where the key comes from, not the key
        # provoke some failures (the 401 quotes the key), then read the log
        s = self.session()
        self.assertError(self.client.send(s["id"], "[fake:401] x"), 502, "upstream_error")
        self.assertError(self.client.send(s["id"], "[fake:garbage] x"), 502, "upstream_error")
        self.assertEqual(self.sent_key(self.requests()[0]), self.key)  # the key did go upstream
        self.assertNoKey(self.daemon.log(), "the daemon log")


class OpenAIProviderTests(ProviderDaemonBase):
    provider = "openai"
    key = OPENAI_KEY
    key_env = "SWH_TEST_OPENAI_KEY"
    id_prefix = "chatcmpl-"

    def system_of(self, body):
        first = body["messages"][0]
        self.assertEqual(first["role"], "system", body)
        return first["content"]

    def sent_key(self, req):
        auth = req["headers"].get("authorization", "")
        self.assertTrue(auth.startswith("Bearer "), req["headers"])
        return auth[len("Bearer "):]

    def check_custom_params(self, body):
        self.assertEqual(body.get("top_p"), 0.5, body)
        self.assertEqual(body.get("user"), "swh-test", body)


class AnthropicProviderTests(ProviderDaemonBase):
    provider = "anthropic"
    key = ANTHROPIC_KEY
    key_env = "SWH_TEST_ANTHROPIC_KEY"
    id_prefix = "msg_"

    def system_of(self, body):
        self.assertNotIn("system", [m["role"] for m in body["messages"]], body)
        return body.get("system")

    def sent_key(self, req):
        self.assertEqual(req["headers"].get("anthropic-version"), "2023-06-01", req["headers"])
        return req["headers"].get("x-api-key")

    def check_custom_params(self, body):
        self.assertEqual(body.get("top_k"), 7, body)
        self.assertEqual(body.get("max_tokens"), 300, body)


del ProviderDaemonBase  # only the concrete vendor classes run

if __name__ == "__main__":
    unittest.main()
