"""The OpenAI Responses door (POST /v1/responses, GET|DELETE
/v1/responses/{id}, GET /v1/responses/{id}/input_items) on the session store
(docs/conversation-state.md), against the real daemon and the echo provider,
whose reply "echo#<N> <last user text>" counts the user messages that reached
it, so every chain and branch shows what history the provider saw.

Run by hand (from this folder):
  SWH_BINARY=<build>/host/swarmhost SWH_PLUGIN_DIR=<build>/plugins \\
    PYTHONPATH=../integration python3 -m unittest -v test_responses
"""

import json
import unittest

from swh_harness import FAIL_TOKEN, DaemonTestCase, SSEStream

WEATHER = {"type": "function", "name": "get_weather", "description": "weather of a city",
           "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}
ASK = "what does get_weather say for Oslo"


def uuid_of(hex32):
    return "%s-%s-%s-%s-%s" % (hex32[:8], hex32[8:12], hex32[12:16], hex32[16:20], hex32[20:])


def session_of(response_id):
    """The session a resp_<session hex><message hex> id names."""
    return uuid_of(response_id[5:37])


def text_of(response):
    return "".join(part["text"] for item in response["output"] if item["type"] == "message"
                   for part in item["content"] if part["type"] == "output_text")


class ResponsesTestCase(DaemonTestCase):

    def create(self, status=200, **body):
        body.setdefault("model", "echo")
        r = self.client.post("/v1/responses", body)
        self.assertEqual(r.status, status, r)
        return r.json

    def assertOpenAIError(self, resp, status, param=None):
        """OpenAI's error shape: {"error":{"message","type","param","code"}}."""
        self.assertEqual(resp.status, status, resp)
        err = resp.json["error"]
        self.assertEqual(set(err), {"message", "type", "param", "code"}, resp)
        self.assertTrue(err["message"], resp)
        self.assertEqual(err["type"], "invalid_request_error" if status < 500 else "server_error", resp)
        if param is not None:
            self.assertEqual(err["param"], param, resp)

    def session_ids(self):
        r = self.client.get("/v1/sessions")
        self.assertEqual(r.status, 200, r)
        return {s["id"] for s in r.json["sessions"]}

    def stored(self, session_id):
        return [(m["role"], m["content"]) for m in self.client.messages(session_id)]

    def events(self, **body):
        body.setdefault("model", "echo")
        body["stream"] = True
        st = self.client.stream("/v1/responses", body)
        self.assertIsInstance(st, SSEStream, st)
        events = st.read_all()
        for e in events:
            self.assertEqual(e.event, e.json["type"], e)
        self.assertEqual([e.json["sequence_number"] for e in events], list(range(len(events))))
        return events


class ResponsesTests(ResponsesTestCase):

    def test_a_response_is_stored_as_a_session_and_retrievable(self):
        r = self.create(input="hello", metadata={"k": "v"}, instructions="be brief", temperature=0.5)
        self.assertRegex(r["id"], r"^resp_[0-9a-f]{64}$")
        self.assertEqual((r["object"], r["status"], r["model"]), ("response", "completed", "echo"))
        self.assertEqual(text_of(r), "echo#1 hello")
        self.assertEqual(r["output"][0]["id"], "msg_" + r["id"][37:])
        self.assertEqual((r["metadata"], r["instructions"], r["temperature"], r["store"]),
                         ({"k": "v"}, "be brief", 0.5, True))
        self.assertEqual(set(r["usage"]), {"input_tokens", "input_tokens_details", "output_tokens",
                                           "output_tokens_details", "total_tokens"})
        again = self.client.get("/v1/responses/" + r["id"])
        self.assertEqual(again.status, 200, again)
        self.assertEqual(again.json["output"], r["output"])
        self.assertEqual(again.json["created_at"], r["created_at"])
        sid = session_of(r["id"])
        self.assertIn(sid, self.session_ids())
        self.assertEqual(self.stored(sid), [("user", "hello"), ("assistant", "echo#1 hello")])
        session = self.client.get("/v1/sessions/" + sid).json
        self.assertEqual(session["metadata"]["openai"]["kind"], "responses")

    def test_previous_response_id_continues_the_chain_in_the_same_session(self):
        one = self.create(input="one")
        two = self.create(input="two", previous_response_id=one["id"])
        three = self.create(input="three", previous_response_id=two["id"])
        self.assertEqual([text_of(r) for r in (one, two, three)], ["echo#1 one", "echo#2 two", "echo#3 three"])
        self.assertEqual({session_of(r["id"]) for r in (one, two, three)}, {session_of(one["id"])})
        self.assertEqual(three["previous_response_id"], two["id"])
        self.assertEqual(len(self.stored(session_of(one["id"]))), 6)

    def test_an_earlier_previous_response_id_branches_and_leaves_the_chain_alone(self):
        one = self.create(input="one")
        two = self.create(input="two", previous_response_id=one["id"])
        chain = self.stored(session_of(one["id"]))
        branch = self.create(input="other", previous_response_id=one["id"])
        self.assertEqual(text_of(branch), "echo#2 other")
        self.assertNotEqual(session_of(branch["id"]), session_of(one["id"]))
        self.assertEqual(self.stored(session_of(one["id"])), chain)
        self.assertEqual(self.stored(session_of(branch["id"])),
                         [("user", "one"), ("assistant", "echo#1 one"), ("user", "other"),
                          ("assistant", "echo#2 other")])
        # Both lines go on: the chain from its last response, the branch from its own.
        self.assertEqual(text_of(self.create(input="more", previous_response_id=two["id"])), "echo#3 more")
        self.assertEqual(text_of(self.create(input="more", previous_response_id=branch["id"])), "echo#3 more")
        # The branch's first response is readable and lists only its own input.
        items = self.client.get("/v1/responses/%s/input_items" % branch["id"]).json["data"]
        self.assertEqual([i["content"][0]["text"] for i in items], ["other"])

    def test_store_false_stores_nothing_and_is_not_retrievable(self):
        before = self.session_ids()
        r = self.create(input="ephemeral", store=False)
        self.assertEqual(text_of(r), "echo#1 ephemeral")
        self.assertFalse(r["store"])
        self.assertOpenAIError(self.client.get("/v1/responses/" + r["id"]), 404)
        one = self.create(input="one")
        chain = self.stored(session_of(one["id"]))
        cont = self.create(input="two", previous_response_id=one["id"], store=False)
        self.assertEqual(text_of(cont), "echo#2 two")  # the stored history was used
        self.assertEqual(self.stored(session_of(one["id"])), chain)  # and nothing was added
        self.assertEqual(self.session_ids() - before, {session_of(one["id"])})

    def test_input_items_lists_the_request_turns_with_paging(self):
        one = self.create(input="one")
        two = self.create(previous_response_id=one["id"], input=[
            {"role": "user", "content": "a"},
            {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "b"}]}])
        self.assertEqual(text_of(two), "echo#3 b")
        path = "/v1/responses/%s/input_items" % two["id"]
        desc = self.client.get(path).json
        self.assertEqual([i["content"][0]["text"] for i in desc["data"]], ["b", "a"])
        self.assertEqual((desc["object"], desc["has_more"]), ("list", False))
        self.assertEqual((desc["first_id"], desc["last_id"]), (desc["data"][0]["id"], desc["data"][1]["id"]))
        asc = self.client.get(path + "?order=asc&limit=1").json
        self.assertEqual(([i["content"][0]["text"] for i in asc["data"]], asc["has_more"]), (["a"], True))
        rest = self.client.get(path + "?order=asc&after=" + asc["last_id"]).json
        self.assertEqual(([i["content"][0]["text"] for i in rest["data"]], rest["has_more"]), (["b"], False))
        self.assertOpenAIError(self.client.get(path + "?limit=0"), 400, "limit")

    def test_delete(self):
        lone = self.create(input="lone")
        r = self.client.delete("/v1/responses/" + lone["id"])
        self.assertEqual((r.status, r.json["deleted"]), (200, True), r)
        self.assertOpenAIError(self.client.get("/v1/responses/" + lone["id"]), 404)
        self.assertNotIn(session_of(lone["id"]), self.session_ids())  # a chain with no response left goes
        one = self.create(input="one")
        two = self.create(input="two", previous_response_id=one["id"])
        self.assertEqual(self.client.delete("/v1/responses/" + one["id"]).status, 200)
        self.assertOpenAIError(self.client.get("/v1/responses/" + one["id"]), 404)
        self.assertOpenAIError(self.client.delete("/v1/responses/" + one["id"]), 404)
        self.assertEqual(self.client.get("/v1/responses/" + two["id"]).status, 200)
        self.assertEqual(text_of(self.create(input="three", previous_response_id=two["id"])), "echo#3 three")

    def test_a_function_call_round_trip(self):
        first = self.create(input=ASK, tools=[WEATHER])
        self.assertEqual(len(first["output"]), 1, first)
        call = first["output"][0]
        self.assertEqual((call["type"], call["name"], call["call_id"]), ("function_call", "get_weather", "call_echo_1"))
        self.assertEqual(call["id"], "fc_%s_0" % first["id"][37:])
        self.assertEqual(json.loads(call["arguments"]), {"city": ASK})
        self.assertEqual(first["tools"], [WEATHER])
        second = self.create(previous_response_id=first["id"], tools=[WEATHER], input=[
            {"type": "function_call_output", "call_id": call["call_id"], "output": "sunny"}])
        self.assertEqual(text_of(second), "get_weather returned: sunny")
        stored = self.client.messages(session_of(first["id"]))
        self.assertEqual([m["role"] for m in stored], ["user", "assistant", "tool", "assistant"])
        self.assertEqual(stored[2]["tool_call_id"], "call_echo_1")
        # The client may also replay the whole exchange statelessly.
        replay = self.create(store=False, tools=[WEATHER], input=[
            {"role": "user", "content": ASK}, call,
            {"type": "function_call_output", "call_id": call["call_id"], "output": "rain"}])
        self.assertEqual(text_of(replay), "get_weather returned: rain")

    def test_refused_requests_store_nothing(self):
        one = self.create(input="one")
        before, chain = self.session_ids(), self.stored(session_of(one["id"]))
        cases = [
            ({"input": "x", "previous_response_id": "resp_" + "0" * 64}, 404, None),
            ({"input": "x", "previous_response_id": "nonsense"}, 404, None),
            ({"input": "x", "conversation": "conv_" + "1" * 32}, 404, None),
            ({"input": [{"type": "function_call_output", "call_id": "call_nope", "output": "x"}],
              "previous_response_id": one["id"]}, 400, "input[0].call_id"),
            ({"input": [{"type": "function_call_output", "call_id": "call_nope", "output": "x"}]},
             400, "input[0].call_id"),
            ({"input": "x", "previous_response_id": one["id"], "conversation": "conv_" + "1" * 32},
             400, "previous_response_id"),
            ({"input": "x", "tools": [{"type": "web_search"}]}, 400, "tools[0].type"),
            ({"input": "x", "frobnicate": 1}, 400, "frobnicate"),
            ({"input": "x", "background": True}, 400, "background"),
            ({"input": "x", "truncation": "auto"}, 400, "truncation"),
            ({"input": [{"role": "user", "content": [{"type": "input_file", "file_id": "f"}]}]},
             400, "input[0].content[0].type"),
            ({"input": [{"role": "assistant", "content": "only me"}]}, 400, "input"),
        ]
        for body, status, param in cases:
            with self.subTest(body=body):
                body["model"] = "echo"
                self.assertOpenAIError(self.client.post("/v1/responses", body), status, param)
        self.assertEqual(self.session_ids(), before)
        self.assertEqual(self.stored(session_of(one["id"])), chain)

    def test_every_mapped_field_reaches_the_provider(self):
        r = self.create(input="hi", temperature=0.2, top_p=0.9, max_output_tokens=50, tools=[WEATHER],
                        tool_choice={"type": "function", "name": "get_weather"}, parallel_tool_calls=False,
                        text={"format": {"type": "json_schema", "name": "w", "schema": {"type": "object"}}},
                        reasoning={"effort": "low"}, user="u1", safety_identifier="s1")
        reply = self.client.messages(session_of(r["id"]))[-1]
        self.assertEqual(reply["provider_metadata"]["echo_params"], {
            "temperature": 0.2, "top_p": 0.9, "max_output_tokens": 50, "tools": [WEATHER],
            "tool_choice": {"type": "function", "name": "get_weather"}, "parallel_tool_calls": False,
            "response_format": {"type": "json_schema", "name": "w", "schema": {"type": "object"}},
            "reasoning_effort": "low", "user": "u1", "extra": {"safety_identifier": "s1"}})

    def test_streamed_text(self):
        events = self.events(input="stream me please")
        types = [e.event for e in events]
        self.assertEqual(types[:4], ["response.created", "response.in_progress", "response.output_item.added",
                                     "response.content_part.added"])
        self.assertEqual(types[-4:], ["response.output_text.done", "response.content_part.done",
                                      "response.output_item.done", "response.completed"])
        deltas = [e.json["delta"] for e in events if e.event == "response.output_text.delta"]
        self.assertGreater(len(deltas), 1)
        final = events[-1].json["response"]
        self.assertEqual("".join(deltas), "echo#1 stream me please")
        self.assertEqual(text_of(final), "echo#1 stream me please")
        self.assertEqual(events[0].json["response"]["id"], final["id"])
        self.assertEqual(events[0].json["response"]["status"], "in_progress")
        stored = self.client.get("/v1/responses/" + final["id"])
        self.assertEqual(stored.json["output"], final["output"])
        cont = self.create(input="next", previous_response_id=final["id"])
        self.assertEqual(text_of(cont), "echo#2 next")

    def test_streamed_function_call(self):
        events = self.events(input=ASK, tools=[WEATHER])
        types = [e.event for e in events]
        self.assertIn("response.function_call_arguments.delta", types)
        done = [e.json for e in events if e.event == "response.function_call_arguments.done"]
        self.assertEqual(len(done), 1)
        self.assertEqual(json.loads(done[0]["arguments"]), {"city": ASK})
        added = [e.json["item"] for e in events if e.event == "response.output_item.added"]
        self.assertEqual([(i["type"], i["call_id"], i["name"]) for i in added],
                         [("function_call", "call_echo_1", "get_weather")])
        final = events[-1].json["response"]
        self.assertEqual(final["output"][0]["arguments"], done[0]["arguments"])

    def test_a_provider_failure_mid_stream_is_response_failed(self):
        events = self.events(input="please " + FAIL_TOKEN + " now and then more words")
        self.assertEqual(events[-1].event, "response.failed")
        failed = events[-1].json["response"]
        self.assertEqual(failed["status"], "failed")
        self.assertTrue(failed["error"]["message"])


class ConversationsTests(ResponsesTestCase):

    def conversation(self, **body):
        r = self.client.post("/v1/conversations", body)
        self.assertEqual(r.status, 200, r)
        return r.json

    def items(self, cid, query=""):
        r = self.client.get("/v1/conversations/%s/items%s" % (cid, query))
        self.assertEqual(r.status, 200, r)
        return r.json

    def test_create_retrieve_update_delete(self):
        conv = self.conversation(metadata={"topic": "demo"}, items=[{"role": "user", "content": "hi"}])
        self.assertRegex(conv["id"], r"^conv_[0-9a-f]{32}$")
        self.assertEqual((conv["object"], conv["metadata"]), ("conversation", {"topic": "demo"}))
        self.assertEqual(self.client.get("/v1/conversations/" + conv["id"]).json, conv)
        r = self.client.post("/v1/conversations/" + conv["id"], {"metadata": {"topic": "other"}})
        self.assertEqual((r.status, r.json["metadata"]), (200, {"topic": "other"}), r)
        self.assertEqual(self.client.get("/v1/conversations/" + conv["id"]).json["metadata"], {"topic": "other"})
        sid = uuid_of(conv["id"][5:])
        self.assertEqual(self.stored(sid), [("user", "hi")])
        r = self.client.delete("/v1/conversations/" + conv["id"])
        self.assertEqual(r.json, {"id": conv["id"], "object": "conversation.deleted", "deleted": True})
        self.assertOpenAIError(self.client.get("/v1/conversations/" + conv["id"]), 404)
        self.assertNotIn(sid, self.session_ids())

    def test_items_paging_create_retrieve_delete(self):
        conv = self.conversation(items=[{"role": "user", "content": "u%d" % i} for i in range(5)])
        cid = conv["id"]
        desc = self.items(cid, "?limit=2")
        self.assertEqual([i["content"][0]["text"] for i in desc["data"]], ["u4", "u3"])
        self.assertTrue(desc["has_more"])
        more = self.items(cid, "?limit=2&after=" + desc["last_id"])
        self.assertEqual([i["content"][0]["text"] for i in more["data"]], ["u2", "u1"])
        asc = self.items(cid, "?order=asc")
        self.assertEqual([i["content"][0]["text"] for i in asc["data"]], ["u0", "u1", "u2", "u3", "u4"])
        self.assertFalse(asc["has_more"])
        added = self.client.post("/v1/conversations/%s/items" % cid,
                                 {"items": [{"role": "assistant", "content": "a5"}, {"role": "user", "content": "u6"}]})
        self.assertEqual(added.status, 200, added)
        self.assertEqual([i["role"] for i in added.json["data"]], ["assistant", "user"])
        one = self.client.get("/v1/conversations/%s/items/%s" % (cid, asc["data"][1]["id"]))
        self.assertEqual(one.json, asc["data"][1])
        gone = self.client.delete("/v1/conversations/%s/items/%s" % (cid, asc["data"][1]["id"]))
        self.assertEqual((gone.status, gone.json["id"]), (200, cid), gone)
        self.assertOpenAIError(self.client.get("/v1/conversations/%s/items/%s" % (cid, asc["data"][1]["id"])), 404)
        texts = [i["content"][0]["text"] for i in self.items(cid, "?order=asc")["data"]]
        self.assertEqual(texts, ["u0", "u2", "u3", "u4", "a5", "u6"])
        # The removed item is gone from the history too: 5 user items + the new one reach echo.
        r = self.create(input="q", conversation=cid)
        self.assertEqual(text_of(r), "echo#6 q")
        self.assertEqual(r["conversation"], {"id": cid})

    def test_responses_append_to_a_conversation(self):
        conv = self.conversation(items=[{"role": "user", "content": "first"}])
        one = self.create(input="second", conversation=conv["id"])
        self.assertEqual(text_of(one), "echo#2 second")
        self.assertEqual(session_of(one["id"]), uuid_of(conv["id"][5:]))
        two = self.create(input="third", conversation={"id": conv["id"]})
        self.assertEqual(text_of(two), "echo#3 third")
        texts = [i["content"][0]["text"] for i in self.items(conv["id"], "?order=asc")["data"]]
        self.assertEqual(texts, ["first", "second", "echo#2 second", "third", "echo#3 third"])
        self.assertEqual(self.client.get("/v1/responses/" + two["id"]).json["conversation"], {"id": conv["id"]})

    def test_bad_items_store_nothing(self):
        before = self.session_ids()
        for body, param in [
            ({"items": [{"type": "function_call_output", "call_id": "nope", "output": "x"}]}, "items[0].call_id"),
            ({"items": [{"role": "user", "content": [{"type": "bogus"}]}]}, "items[0].content[0].type"),
            ({"metadata": {"k": 1}}, "metadata.k"),
        ]:
            with self.subTest(body=body):
                self.assertOpenAIError(self.client.post("/v1/conversations", body), 400, param)
        self.assertEqual(self.session_ids(), before)
        self.assertOpenAIError(self.client.get("/v1/conversations/conv_" + "2" * 32), 404)
        self.assertOpenAIError(self.client.get("/v1/conversations/nonsense/items"), 404)


if __name__ == "__main__":
    unittest.main()
