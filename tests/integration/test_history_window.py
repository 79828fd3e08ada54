"""What the provider is sent of a session's history (issue 17): at most
`max_history_messages` messages and about `max_history_tokens` tokens, the
newest first, the new message always, and an assistant message with tool
calls never separated from its tool results. The echo provider tells what it
got: its reply counts the user messages it saw ("echo#N"), its usage the
words."""

import unittest
import uuid

from swh_harness import DaemonTestCase

WEATHER = {"type": "function", "name": "get_weather", "description": "Weather for a city",
           "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}


def uid():
    return "window-" + uuid.uuid4().hex[:12]


class HistoryWindowTests(DaemonTestCase):

    def send(self, sid, content, **fields):
        r = self.client.send(sid, content, **fields)
        self.assertEqual(r.status, 201, r)
        return r.json["assistant_message"]

    def prompt_words(self, reply):
        return reply["provider_metadata"]["usage"]["prompt_tokens"]

    def test_message_window(self):
        sid = self.client.create_session(uid(), config={"max_history_messages": 3})["id"]
        for i in range(3):
            self.send(sid, "q%d" % i)
        # Stored: q0 a0 q1 a1 q2 a2; sent: q2 a2 q3.
        self.assertEqual(self.send(sid, "q3")["content"], "echo#2 q3")
        self.assertEqual(len(self.client.messages(sid)), 8)  # everything is still stored

    def test_window_follows_a_patch(self):
        sid = self.client.create_session(uid(), config={"max_history_messages": 2})["id"]
        for i in range(3):
            self.send(sid, "q%d" % i)
        self.assertEqual(self.send(sid, "q3")["content"], "echo#1 q3")
        r = self.client.patch("/v1/sessions/%s" % sid, {"config": {"max_history_messages": 50}})
        self.assertEqual(r.status, 200, r)
        self.assertEqual(self.send(sid, "q4")["content"], "echo#5 q4")
        r = self.client.patch("/v1/sessions/%s" % sid, {"config": {"max_history_messages": 3}})
        self.assertEqual(r.status, 200, r)
        self.assertEqual(self.send(sid, "q5")["content"], "echo#2 q5")

    def test_default_window_is_bounded(self):
        sid = self.client.create_session(uid())["id"]
        reply = self.send(sid, "one")
        self.assertEqual(reply["content"], "echo#1 one")

    def test_token_window_keeps_the_newest(self):
        word = "x" * 396  # one word, about 100 tokens a message
        sid = self.client.create_session(uid(), config={"max_history_tokens": 250})["id"]
        for _ in range(3):
            self.send(sid, word)
        # The new message (~100) and the reply before it (~100) fit; one more would not.
        self.assertEqual(self.send(sid, word)["content"], "echo#1 " + word)

    def test_new_message_is_kept_over_the_budget(self):
        sid = self.client.create_session(uid(), config={"max_history_tokens": 1})["id"]
        self.send(sid, "first")
        self.assertEqual(self.send(sid, "second message")["content"], "echo#1 second message")

    def test_tool_call_and_result_travel_together(self):
        # A window of one message still sends the call with its result: the
        # echo provider names the tool only when it sees the call.
        sid = self.client.create_session(uid(), config={"max_history_messages": 1,
                                                        "params": {"tools": [WEATHER]}})["id"]
        call = self.send(sid, "get_weather for Oslo")
        call_id = call["tool_calls"][0]["id"]
        answer = self.send(sid, "sunny", role="tool", tool_call_id=call_id)
        self.assertEqual(answer["content"], "get_weather returned: sunny")

    def test_tool_call_and_result_leave_together(self):
        sid = self.client.create_session(uid(), config={"max_history_messages": 3,
                                                        "params": {"tools": [WEATHER]}})["id"]
        call = self.send(sid, "get_weather for Oslo")
        answer = self.send(sid, "sunny", role="tool", tool_call_id=call["tool_calls"][0]["id"])
        self.assertEqual(answer["content"], "get_weather returned: sunny")
        # Stored: user, call, result, answer. The next send fits answer + new
        # message; call + result would make four, so both stay out (the
        # result alone would be a tool result without its call).
        reply = self.send(sid, "thanks")
        self.assertEqual(reply["content"], "echo#1 thanks")
        self.assertEqual(self.prompt_words(reply), len("get_weather returned: sunny thanks".split()))

    def cache_counters(self):
        r = self.client.get("/metrics")
        self.assertEqual(r.status, 200, r)
        values = {}
        for line in r.raw.decode().splitlines():
            if line.startswith("swarmhost_history_cache_"):
                name, value = line.split()
                values[name] = float(value)
        return values

    def test_a_warm_session_is_served_from_the_cache(self):
        sid = self.client.create_session(uid())["id"]
        self.send(sid, "first")  # reads the store, fills the cache
        before = self.cache_counters()
        for i in range(3):
            self.assertEqual(self.send(sid, "q%d" % i)["content"], "echo#%d q%d" % (i + 2, i))
        after = self.cache_counters()
        self.assertEqual(after["swarmhost_history_cache_hits_total"] - before["swarmhost_history_cache_hits_total"], 3)
        self.assertEqual(after["swarmhost_history_cache_misses_total"], before["swarmhost_history_cache_misses_total"])
        self.assertGreaterEqual(after["swarmhost_history_cache_sessions"], 1)
        # Deleting the session forgets it.
        self.assertEqual(self.client.delete("/v1/sessions/%s" % sid).status, 204)


if __name__ == "__main__":
    unittest.main()
