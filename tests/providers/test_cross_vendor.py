"""A tool loop that begins on one vendor and continues on the other inside the
real daemon: the session API stores the reply's tool calls in the neutral form,
then the primary provider fails and the manifest fallback (the other vendor)
answers the tool result from that stored form (tools/fake_upstream behind both).

Run by hand from this folder:
  SWH_BINARY=<build>/host/swarmhost SWH_PLUGIN_DIR=<build>/plugins python3 -m unittest -v test_cross_vendor
"""

import json
import os
import sys
import unittest
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(REPO, "tests", "integration"))

from swh_harness import FakeUpstreamTestCase, yaml_str  # noqa: E402

WEATHER = {"type": "function", "name": "get_weather", "description": "Weather of a city",
           "parameters": {"type": "object", "properties": {"text": {"type": "string"}}}}


def provider(name, plugin, base_url, config=(), top=()):
    return (["  - name: %s" % name, "    plugin: %s" % plugin] + ["    %s" % line for line in top]
            + ["    config:", "      base_url: %s" % yaml_str(base_url), '      api_key_env: ""',
               "      retries: 0", "      timeout_ms: 20000"] + ["      %s" % line for line in config])


class CrossVendorToolLoopTests(FakeUpstreamTestCase):

    @classmethod
    def manifest_kw_for(cls, fake_base):
        lines = []
        # each primary has the other vendor as its fallback
        lines += provider("oa", "openai", fake_base + "/v1", ["model: gpt-4o-mini"], ["fallback: [an]"])
        lines += provider("an", "anthropic", fake_base, ["model: claude-3-5-haiku-latest", "max_tokens: 300"],
                          ["fallback: [oa]"])
        return {"extra_providers": "\n".join(lines) + "\n"}

    def vendor_requests(self):
        with self.fake.state.lock:
            return [r for r in self.fake.state.requests if r["path"].endswith(("/chat/completions", "/messages"))]

    def loop(self, first, stream):
        """Turn 1 on `first`; then its upstream fails (the session's model
        becomes fake-500) and the fallback answers the tool result."""
        s = self.client.create_session("u-" + uuid.uuid4().hex[:8], provider=first)
        params = {"tools": [WEATHER], "tool_choice": "required"}
        r = self.client.send(s["id"], "weather in Oslo", params=params)
        self.assertEqual(r.status, 201, r)
        calls = r.json["assistant_message"].get("tool_calls")
        self.assertEqual(len(calls or []), 1, r.json)
        self.assertEqual(calls[0]["name"], "get_weather")
        self.assertEqual(json.loads(calls[0]["arguments"]), {"text": "weather in Oslo"})

        # the daemon checks a tool result against the stored history
        self.assertEqual(self.client.messages(s["id"])[-1]["tool_calls"], calls)
        r = self.client.patch("/v1/sessions/%s" % s["id"], {"model": "fake-500"})
        self.assertEqual(r.status, 200, r)
        self.fake.state.reset()
        body = {"role": "tool", "tool_call_id": calls[0]["id"], "content": "sunny", "params": params}
        if stream:
            body["stream"] = True
            events = self.client.stream("/v1/sessions/%s/messages" % s["id"], body).read_all()
            reply = [e.json for e in events if e.event == "assistant_message"][0]
        else:
            r = self.client.post("/v1/sessions/%s/messages" % s["id"], body)
            self.assertEqual(r.status, 201, r)
            reply = r.json["assistant_message"]
        self.assertEqual(reply["content"], "Tool said: sunny")
        reqs = self.vendor_requests()
        self.assertEqual(len(reqs), 2, [q["path"] for q in reqs])  # the failed primary, then the fallback
        history = [m["role"] for m in self.client.messages(s["id"])]
        self.assertEqual(history, ["user", "assistant", "tool", "assistant"])
        return calls, reqs[1]

    def test_openai_loop_continues_on_anthropic(self):
        for stream in (False, True):
            with self.subTest(stream=stream):
                calls, req = self.loop("oa", stream)
                self.assertEqual(req["path"], "/v1/messages")
                msgs = req["body"]["messages"]
                self.assertEqual(msgs[1], {"role": "assistant", "content": [
                    {"type": "tool_use", "id": calls[0]["id"], "name": "get_weather",
                     "input": {"text": "weather in Oslo"}}]})
                self.assertEqual(msgs[2], {"role": "user", "content": [
                    {"type": "tool_result", "tool_use_id": calls[0]["id"], "content": "sunny"}]})
                self.assertEqual(req["body"]["tool_choice"], {"type": "any"})

    def test_anthropic_loop_continues_on_openai(self):
        for stream in (False, True):
            with self.subTest(stream=stream):
                calls, req = self.loop("an", stream)
                self.assertEqual(req["path"], "/v1/chat/completions")
                msgs = req["body"]["messages"]
                self.assertEqual(msgs[1]["content"], "Calling get_weather.")
                self.assertEqual(msgs[1]["tool_calls"][0]["id"], calls[0]["id"])
                self.assertEqual(msgs[2], {"role": "tool", "tool_call_id": calls[0]["id"], "content": "sunny"})
                self.assertEqual(req["body"]["tool_choice"], "required")


if __name__ == "__main__":
    unittest.main()
