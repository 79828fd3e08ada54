"""The Responses door in front of the OpenAI and Anthropic provider plugins,
proved at tools/fake_upstream, which records every request body: a chain's
stored history reaches each vendor translated into its own wire form (an
OpenAI chat `messages` list; Anthropic's `system` and content blocks), the
instructions of the request only (never the previous one's), a chain may
switch vendor in mid-course, and a function call round trip runs through
each vendor.

Run by hand (from this folder):
  SWH_BINARY=<build>/host/swarmhost SWH_PLUGIN_DIR=<build>/plugins \\
    PYTHONPATH=../integration:../../tools/fake_upstream python3 -m unittest -v test_responses_vendors
"""

import json
import unittest

from swh_harness import FakeUpstreamTestCase, yaml_str

WEATHER = {"type": "function", "name": "get_weather", "description": "weather of a city",
           "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}


def providers(fake_base):
    def provider(name, plugin, base_url, config):
        return (["  - name: %s" % name, "    plugin: %s" % plugin, "    config:",
                 "      base_url: %s" % yaml_str(base_url), '      api_key_env: ""', "      retries: 0",
                 "      timeout_ms: 20000"] + ["      %s" % line for line in config])

    lines = provider("oa", "openai", fake_base + "/v1", ["model: gpt-4o-mini"])
    lines += provider("an", "anthropic", fake_base, ["model: claude-3-5-haiku-latest", "max_tokens: 300"])
    return "\n".join(lines + ["default_provider: oa"]) + "\n"


def text_of(response):
    return "".join(p["text"] for item in response["output"] if item["type"] == "message"
                   for p in item["content"] if p["type"] == "output_text")


class ResponsesVendorTests(FakeUpstreamTestCase):

    @classmethod
    def manifest_kw_for(cls, fake_base):
        return {"extra_providers": providers(fake_base)}

    def create(self, **body):
        r = self.client.post("/v1/responses", body)
        self.assertEqual(r.status, 200, r)
        return r.json

    def last_upstream(self):
        with self.fake.state.lock:
            reqs = [dict(r) for r in self.fake.state.requests
                    if r["method"] == "POST" and r["path"] in ("/v1/chat/completions", "/v1/messages")]
        self.assertTrue(reqs)
        return reqs[-1]

    def test_a_chain_reaches_each_vendor_translated(self):
        one = self.create(model="oa", input="hello there", instructions="first rules")
        first_reply = text_of(one)
        self.assertTrue(first_reply)
        two = self.create(model="oa", input="and again", previous_response_id=one["id"],
                          instructions="second rules")
        body = self.last_upstream()["body"]
        self.assertEqual([(m["role"], m["content"]) for m in body["messages"]],
                         [("system", "second rules"), ("user", "hello there"), ("assistant", first_reply),
                          ("user", "and again")])
        # The same chain goes on at Anthropic: the history in its form, the
        # third request's instructions only.
        three = self.create(model="an", input="now claude", previous_response_id=two["id"])
        up = self.last_upstream()
        self.assertEqual(up["path"], "/v1/messages")
        self.assertNotIn("system", up["body"])  # no instructions this time, none carried over

        def text(content):
            return content if isinstance(content, str) else "".join(b.get("text", "") for b in content)
        self.assertEqual([(m["role"], text(m["content"])) for m in up["body"]["messages"]],
                         [("user", "hello there"), ("assistant", first_reply), ("user", "and again"),
                          ("assistant", text_of(two)), ("user", "now claude")])
        self.assertTrue(text_of(three))
        self.assertEqual(three["model"], "an")

    def test_a_function_call_round_trip_through_each_vendor(self):
        for model, path in (("oa", "/v1/chat/completions"), ("an", "/v1/messages")):
            with self.subTest(model=model):
                first = self.create(model=model, input="weather in Oslo?", tools=[WEATHER])
                calls = [i for i in first["output"] if i["type"] == "function_call"]
                self.assertEqual([c["name"] for c in calls], ["get_weather"], first)
                second = self.create(model=model, previous_response_id=first["id"], tools=[WEATHER], input=[
                    {"type": "function_call_output", "call_id": calls[0]["call_id"], "output": "sunny"}])
                up = self.last_upstream()
                self.assertEqual(up["path"], path)
                wire = json.dumps(up["body"]["messages"])
                self.assertIn(calls[0]["call_id"], wire)  # the stored call and its result, in the vendor's form
                self.assertIn("sunny", wire)
                self.assertEqual(second["status"], "completed", second)


if __name__ == "__main__":
    unittest.main()
