"""The middleware chain through the real daemon, with the fixture middleware
(tests/fixture_plugins/fixture_middleware.cpp appends " [<tag>]" to the
content, so the order shows in the stored text): priority, `when`
conditions, `after` dependencies, fail open / fail closed, garbage, rejection.

Each scenario has its own middleware, selected with `when: {user_type: ...}`,
so that one daemon serves all of them without interference."""

import unittest

from pipeline_support import PipelineTestCase, sample


def mw(name, scenario, priority=0, mode="ok", fail_on="", after=None, fail=None, when=None, stages=None):
    entry = {"name": name, "plugin": "fixture_mw", "priority": priority,
             "when": dict({"user_type": scenario}, **(when or {})),
             "config": {"tag": name, "mode": mode, "fail_on": fail_on}}
    if stages:
        entry["config"]["stages"] = stages
    if after:
        entry["after"] = after
    if fail:
        entry["fail"] = fail
    return entry


class ChainTests(PipelineTestCase):
    extra_providers = [{"name": "echo2", "plugin": "echo", "config": {"prefix": "second"}}]
    middleware = [
        # priority: listed out of order on purpose
        mw("o_low", "order", priority=1),
        mw("o_high", "order", priority=100),
        mw("o_mid", "order", priority=50),
        # after: a dependency runs first whatever the priorities say
        mw("d_dep", "after", priority=100, after=["d_base"]),
        mw("d_base", "after", priority=1),
        # a dependency skipped by its condition skips its dependent
        mw("k_base", "skip", priority=10, when={"model": "special"}),
        mw("k_dep", "skip", priority=5, after=["k_base"]),
        mw("k_free", "skip", priority=1),
        # a dependency that fails (fail open) skips its dependent
        mw("f_base", "depfail", priority=10, mode="fail", fail_on="boom"),
        mw("f_dep", "depfail", priority=5, after=["f_base"]),
        mw("f_free", "depfail", priority=1),
        # when: user_type, provider, model
        mw("w_type", "cond", priority=30),
        mw("w_provider", "cond", priority=20, when={"provider": "echo2"}),
        mw("w_model", "cond", priority=10, when={"model": "m-special"}),
        # fail open: failures and garbage are isolated, the chain goes on
        mw("fo_a", "failopen", priority=100),
        mw("fo_bad", "failopen", priority=50, mode="fail"),
        mw("fo_throw", "failopen", priority=40, mode="throw"),
        mw("fo_gs", "failopen", priority=30, mode="garbage_status"),
        mw("fo_gm", "failopen", priority=20, mode="garbage_metadata"),
        mw("fo_c", "failopen", priority=10),
        # fail closed: the failure rejects the message
        mw("fc_ok", "failclosed", priority=100),
        mw("fc_bad", "failclosed", priority=50, mode="fail", fail="closed"),
        mw("fc_after", "failclosed", priority=10),
        # a plain rejection
        mw("rj", "reject", priority=10, mode="reject", fail_on="forbidden"),
        # assistant stage
        mw("as_tag", "assistant", priority=10, stages=["assistant"]),
        mw("as_bad", "assistant", priority=5, stages=["assistant"], mode="fail", fail_on="bad reply",
           fail="closed"),
    ]

    def stored_user(self, sid):
        msgs = self.client.messages(sid)
        self.assertGreaterEqual(len(msgs), 1, msgs)
        self.assertEqual(msgs[0]["role"], "user", msgs)
        return msgs[0]

    def assertRan(self, message, names):
        self.assertEqual(message["metadata"].get("processed_middleware"), names, message)

    def assertRejected(self, resp, sid, status=422, code="rejected"):
        self.assertError(resp, status, code)
        self.assertEqual(self.client.messages(sid), [], "a rejected message must not be stored")
        self.assertEqual(self.client.get("/v1/sessions/%s" % sid).json["message_count"], 0)

    def test_priority_orders_the_chain(self):
        sid = self.session("order")["id"]
        body = self.send_ok(sid, "hello")
        user = self.stored_user(sid)
        self.assertEqual(user["content"], "hello [o_high] [o_mid] [o_low]")
        self.assertRan(user, ["o_high", "o_mid", "o_low"])
        self.assertEqual(body["user_message"]["content"], user["content"], body)
        # the provider saw the rewritten message
        self.assertEqual(body["assistant_message"]["content"], "echo#1 hello [o_high] [o_mid] [o_low]")

    def test_after_overrides_priority(self):
        sid = self.session("after")["id"]
        self.send_ok(sid, "x")
        user = self.stored_user(sid)
        self.assertEqual(user["content"], "x [d_base] [d_dep]")
        self.assertRan(user, ["d_base", "d_dep"])

    def test_dependency_skipped_by_condition_skips_dependent(self):
        sid = self.session("skip")["id"]
        self.send_ok(sid, "x")
        user = self.stored_user(sid)
        self.assertEqual(user["content"], "x [k_free]")
        self.assertRan(user, ["k_free"])
        # with the condition met, the dependency and its dependent both run
        sid2 = self.session("skip", model="special")["id"]
        self.send_ok(sid2, "x")
        user2 = self.stored_user(sid2)
        self.assertEqual(user2["content"], "x [k_base] [k_dep] [k_free]")
        self.assertRan(user2, ["k_base", "k_dep", "k_free"])

    def test_failed_dependency_skips_dependent(self):
        sid = self.session("depfail")["id"]
        self.send_ok(sid, "boom")
        user = self.stored_user(sid)
        self.assertEqual(user["content"], "boom [f_free]")
        self.assertRan(user, ["f_free"])
        sid2 = self.session("depfail")["id"]
        self.send_ok(sid2, "calm")
        self.assertRan(self.stored_user(sid2), ["f_base", "f_dep", "f_free"])

    def test_when_conditions(self):
        cases = [
            ({}, ["w_type"]),
            ({"provider": "echo2"}, ["w_type", "w_provider"]),
            ({"model": "m-special"}, ["w_type", "w_model"]),
            ({"provider": "echo2", "model": "m-special"}, ["w_type", "w_provider", "w_model"]),
        ]
        for fields, expected in cases:
            with self.subTest(fields=fields):
                sid = self.session("cond", **fields)["id"]
                self.send_ok(sid, "c")
                user = self.stored_user(sid)
                self.assertRan(user, expected)
                self.assertEqual(user["content"], "c" + "".join(" [%s]" % n for n in expected))
        # another user_type: none of them
        sid = self.session("someone-else")["id"]
        self.send_ok(sid, "c")
        user = self.stored_user(sid)
        self.assertEqual(user["content"], "c")
        self.assertRan(user, [])
        # no user_context.type at all: none of them either
        sid = self.client.create_session("plain-user")["id"]
        self.send_ok(sid, "c")
        self.assertEqual(self.stored_user(sid)["content"], "c")

    def test_fail_open_isolates_failures_and_garbage(self):
        sid = self.session("failopen")["id"]
        body = self.send_ok(sid, "hi")
        user = self.stored_user(sid)
        # the chain went on with the last good message: fo_gm's content change is dropped too
        self.assertEqual(user["content"], "hi [fo_a] [fo_c]")
        self.assertRan(user, ["fo_a", "fo_c"])
        self.assertNotIn("fixture_fo_gm", user["metadata"])
        self.assertEqual(body["assistant_message"]["content"], "echo#1 hi [fo_a] [fo_c]")
        # each failure was logged with the session id, and on_error was called
        log = self.daemon.log()
        for name in ("fo_bad", "fo_throw", "fo_gs", "fo_gm"):
            self.assertTrue(any(sid in line and "'%s'" % name in line and "failed" in line
                                for line in log.splitlines()),
                            "no log line for %s failing in session %s\n%s" % (name, sid, self.daemon.log_tail(30)))
        m = self.metrics()
        for name in ("fo_bad", "fo_throw", "fo_gs", "fo_gm"):
            self.assertEqual(sample(m, "swarmhost_fixture_on_error_total", tag=name), 1, name)
        self.assertIsNone(sample(m, "swarmhost_fixture_on_error_total", tag="fo_a"))

    def test_fail_closed_rejects(self):
        sid = self.session("failclosed")["id"]
        r = self.client.send(sid, "hi")
        # a fail-closed middleware that *failed* is the server's fault: 503, not the client's 422
        self.assertRejected(r, sid, 503, "unavailable")
        self.assertIn("fc_bad", r.json["error"]["message"])
        self.assertEqual(sample(self.metrics(), "swarmhost_fixture_on_error_total", tag="fc_bad"), 1)
        # streamed: the same refusal, before any stream starts
        r = self.client.stream("/v1/sessions/%s/messages" % sid, {"content": "hi", "stream": True})
        self.assertRejected(r, sid, 503, "unavailable")

    def test_rejecting_middleware(self):
        sid = self.session("reject")["id"]
        r = self.client.send(sid, "this is forbidden")
        self.assertRejected(r, sid)
        self.assertIn("says no", r.json["error"]["message"])
        # a message it accepts goes through
        self.send_ok(sid, "this is fine")
        self.assertEqual(self.stored_user(sid)["content"], "this is fine [rj]")

    def test_assistant_stage(self):
        sid = self.session("assistant")["id"]
        body = self.send_ok(sid, "hello")
        self.assertEqual(body["user_message"]["content"], "hello")
        self.assertRan(body["user_message"], [])
        msgs = self.client.messages(sid)
        self.assertEqual(msgs[1]["content"], "echo#1 hello [as_tag] [as_bad]")
        self.assertRan(msgs[1], ["as_tag", "as_bad"])
        self.assertEqual(body["assistant_message"], msgs[1])
        # streamed: the non-streaming middleware runs on the whole reply before it is stored
        st = self.client.stream("/v1/sessions/%s/messages" % sid, {"content": "again", "stream": True})
        events = st.read_all()
        self.assertEqual(events[-2].event, "assistant_message", events)
        self.assertEqual(events[-2].json["content"], "echo#2 again [as_tag] [as_bad]")
        self.assertEqual(self.client.messages(sid)[-1]["content"], "echo#2 again [as_tag] [as_bad]")
        # a fail-closed assistant-stage failure refuses the reply: the question stays, no answer is stored
        r = self.client.send(sid, "bad reply please")
        self.assertError(r, 503, "unavailable")
        msgs = self.client.messages(sid)
        self.assertEqual([m["role"] for m in msgs], ["user", "assistant", "user", "assistant", "user"])


if __name__ == "__main__":
    unittest.main()
