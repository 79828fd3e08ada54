"""The official `openai` client's tool loop (plain and streamed) through the
daemon's OpenAI door to BOTH vendor plugins, tools/fake_upstream behind them
(check_openai_tools_vendors.cjs drives the client); then the request bodies
the upstream received: the tool schema intact, the parameters present, and
Anthropic's shape for tools, tool_choice, tool_use and tool_result.

Run by hand from this folder:
  SWH_BINARY=<build>/host/swarmhost SWH_PLUGIN_DIR=<build>/plugins \\
    python3 -m unittest -v test_openai_client_vendors
"""

import os
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(REPO, "tests", "integration"))
sys.path.insert(0, os.path.join(REPO, "tests", "upstream_fake"))

import run_check  # noqa: E402  (npm ci of the pinned official clients; fails, never skips)
from swh_harness import FakeUpstreamTestCase  # noqa: E402
from test_cross_vendor import provider  # noqa: E402

SCHEMA = {"type": "object", "properties": {"text": {"type": "string"}}}


class OpenAIClientThroughVendorsTests(FakeUpstreamTestCase):

    @classmethod
    def manifest_kw_for(cls, fake_base):
        lines = provider("oa", "openai", fake_base + "/v1", ["model: gpt-4o-mini"])
        lines += provider("an", "anthropic", fake_base, ["model: claude-3-5-haiku-latest", "max_tokens: 300"])
        return {"extra_providers": "\n".join(lines) + "\n"}

    def bodies(self, suffix):
        with self.fake.state.lock:
            return [r["body"] for r in self.fake.state.requests if r["path"].endswith(suffix)]

    def test_tool_loop_through_both_vendor_plugins(self):
        # a fixed place, so a second run finds the clients installed
        work = os.path.join(os.environ.get("SWH_TEST_TMPDIR") or tempfile.gettempdir(), "npm-openai-vendors")
        target = run_check.install(work)
        env = dict(os.environ, SWH_BASE_URL="http://127.0.0.1:%d" % self.daemon.port, SWH_MODELS="oa,an",
                   NODE_PATH=os.path.join(target, "node_modules"))
        run = subprocess.run(["node", os.path.join(HERE, "check_openai_tools_vendors.cjs")], env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=120)
        out = run.stdout.decode("utf-8", "replace")
        self.assertEqual(run.returncode, 0, out + self.daemon.log_tail())
        self.assertEqual(out.count("ok   "), 4, out)

        openai = self.bodies("/chat/completions")
        self.assertEqual(len(openai), 4)  # two exchanges, plain and streamed
        self.assertEqual(openai[0]["tools"], [{"type": "function", "function": {
            "name": "get_weather", "description": "Weather of a city", "parameters": SCHEMA}}])
        self.assertEqual((openai[0]["tool_choice"], openai[0]["temperature"]), ("required", 0.2))
        call = openai[1]["messages"][1]["tool_calls"][0]
        self.assertEqual(openai[1]["messages"][2], {"role": "tool", "tool_call_id": call["id"], "content": "sunny"})

        anthropic = self.bodies("/v1/messages")
        self.assertEqual(len(anthropic), 4)
        self.assertEqual(anthropic[0]["tools"],
                         [{"name": "get_weather", "description": "Weather of a city", "input_schema": SCHEMA}])
        self.assertEqual((anthropic[0]["tool_choice"], anthropic[0]["temperature"]), ({"type": "any"}, 0.2))
        turn = anthropic[1]["messages"]
        use = [b for b in turn[1]["content"] if b["type"] == "tool_use"][0]
        self.assertEqual((use["name"], use["input"]), ("get_weather", {"text": "weather in Oslo"}))
        self.assertEqual(turn[2], {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": use["id"], "content": "sunny"}]})
        self.assertTrue(all(b["stream"] for b in anthropic[2:]), [b.get("stream") for b in anthropic])


if __name__ == "__main__":
    unittest.main()
