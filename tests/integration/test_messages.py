"""Messages: send (echo provider), history queries, metadata/unicode round trip,
persistence across a daemon restart."""

import unittest
import urllib.parse
import uuid

from swh_harness import Daemon, DaemonTestCase, iso_to_us


def uid(prefix="u"):
    return "%s-%s" % (prefix, uuid.uuid4().hex[:12])


class MessageTests(DaemonTestCase):

    def send_ok(self, sid, content, **fields):
        r = self.client.send(sid, content, **fields)
        self.assertEqual(r.status, 201, r)
        self.assertIn("application/json", r.content_type)
        self.assertIn("user_message", r.json)
        self.assertIn("assistant_message", r.json)
        return r.json["user_message"], r.json["assistant_message"]

    def conversation(self):
        """A session with two exchanges; returns (session, [u1, a1, u2, a2])."""
        s = self.client.create_session(uid())
        u1, a1 = self.send_ok(s["id"], "hello world")
        u2, a2 = self.send_ok(s["id"], "second one")
        return s, [u1, a1, u2, a2]

    # ------------------------------------------------------------------ send
    def test_send_echo_exact(self):
        s = self.client.create_session(uid())
        sid = s["id"]
        u, a = self.send_ok(sid, "hello world")
        self.assertMessage(u, sid, "user", "hello world")
        self.assertMessage(a, sid, "assistant", "echo#1 hello world")
        self.assertEqual(u["metadata"], {})
        self.assertNotEqual(u["id"], a["id"])
        self.assertEqual(a["provider_message_id"], "echo-%s-1" % sid)
        pm = a["provider_metadata"]
        self.assertEqual(pm.get("finish_reason"), "stop", pm)
        self.assertIn("model", pm)
        self.assertIsInstance(pm.get("usage"), dict, pm)
        self.assertIsInstance(pm["usage"].get("prompt_tokens"), int, pm)
        self.assertIsInstance(pm["usage"].get("completion_tokens"), int, pm)
        self.assertGreater(pm["usage"]["completion_tokens"], 0, pm)
        self.assertLessEqual(iso_to_us(u["timestamp"]), iso_to_us(a["timestamp"]))

        u2, a2 = self.send_ok(sid, "how are you")
        self.assertEqual(a2["content"], "echo#2 how are you")
        self.assertEqual(a2["provider_message_id"], "echo-%s-2" % sid)
        self.assertLessEqual(iso_to_us(a["timestamp"]), iso_to_us(u2["timestamp"]))

        g = self.client.get("/v1/sessions/%s" % sid)
        self.assertEqual(g.status, 200, g)
        self.assertEqual(g.json["message_count"], 4)
        # storage sets last_activity to the timestamp of the last stored message
        self.assertEqual(iso_to_us(g.json["last_activity"]), iso_to_us(a2["timestamp"]))
        self.assertGreater(iso_to_us(g.json["last_activity"]), iso_to_us(s["last_activity"]))

    def test_counter_is_per_session(self):
        s1 = self.client.create_session(uid())
        s2 = self.client.create_session(uid())
        self.send_ok(s1["id"], "a")
        self.send_ok(s1["id"], "b")
        _, a = self.send_ok(s2["id"], "c")
        self.assertEqual(a["content"], "echo#1 c")

    def test_model_from_session(self):
        # the session's model reaches the provider (echo reports it back)
        s = self.client.create_session(uid(), model="echo-special")
        _, a = self.send_ok(s["id"], "which model")
        self.assertEqual(a["provider_metadata"].get("model"), "echo-special", a)

    # --------------------------------------------------------------- history
    def test_history_chronological(self):
        s, sent = self.conversation()
        msgs = self.client.messages(s["id"])
        self.assertEqual([m["id"] for m in msgs], [m["id"] for m in sent])
        self.assertEqual([m["role"] for m in msgs], ["user", "assistant", "user", "assistant"])
        self.assertEqual([m["content"] for m in msgs],
                         ["hello world", "echo#1 hello world", "second one", "echo#2 second one"])
        for got, want in zip(msgs, sent):
            self.assertEqual(got, want)
        stamps = [iso_to_us(m["timestamp"]) for m in msgs]
        self.assertEqual(stamps, sorted(stamps))

    def test_history_limit_returns_last_n(self):
        s, sent = self.conversation()
        msgs = self.client.messages(s["id"], "?limit=2")
        self.assertEqual([m["id"] for m in msgs], [sent[2]["id"], sent[3]["id"]])
        msgs = self.client.messages(s["id"], "?limit=1")
        self.assertEqual([m["content"] for m in msgs], ["echo#2 second one"])
        msgs = self.client.messages(s["id"], "?limit=100")
        self.assertEqual(len(msgs), 4)

    def test_history_role_filter(self):
        s, sent = self.conversation()
        msgs = self.client.messages(s["id"], "?role=assistant")
        self.assertEqual([m["id"] for m in msgs], [sent[1]["id"], sent[3]["id"]])
        self.assertTrue(all(m["role"] == "assistant" for m in msgs))
        msgs = self.client.messages(s["id"], "?role=user")
        self.assertEqual([m["content"] for m in msgs], ["hello world", "second one"])
        msgs = self.client.messages(s["id"], "?role=user&limit=1")
        self.assertEqual([m["content"] for m in msgs], ["second one"])

    def test_history_since_iso_and_microseconds(self):
        s, sent = self.conversation()
        t3 = sent[2]["timestamp"]
        self.assertLess(iso_to_us(sent[1]["timestamp"]), iso_to_us(t3))
        want = [sent[2]["id"], sent[3]["id"]]
        msgs = self.client.messages(s["id"], "?since=" + urllib.parse.quote(t3))
        self.assertEqual([m["id"] for m in msgs], want)
        msgs = self.client.messages(s["id"], "?since=%d" % iso_to_us(t3))
        self.assertEqual([m["id"] for m in msgs], want)
        # one microsecond later excludes the user message at t3
        msgs = self.client.messages(s["id"], "?since=%d" % (iso_to_us(t3) + 1))
        self.assertNotIn(sent[2]["id"], [m["id"] for m in msgs])
        self.assertIn(sent[3]["id"], [m["id"] for m in msgs])
        # far future: nothing; far past: everything
        self.assertEqual(self.client.messages(s["id"], "?since=2999-01-01T00:00:00.000000Z"), [])
        self.assertEqual(len(self.client.messages(s["id"], "?since=2000-01-01T00:00:00.000000Z")), 4)
        # combined with role
        msgs = self.client.messages(s["id"], "?role=assistant&since=%d" % iso_to_us(t3))
        self.assertEqual([m["id"] for m in msgs], [sent[3]["id"]])

    def test_history_empty_session(self):
        s = self.client.create_session(uid())
        self.assertEqual(self.client.messages(s["id"]), [])

    # ------------------------------------------------------------ round trip
    def test_metadata_round_trip(self):
        s = self.client.create_session(uid())
        meta = {"a": 1, "b": "two", "nested": {"list": [1, 2.5, "x", None, True]}, "empty": {}}
        u, a = self.send_ok(s["id"], "with metadata", metadata=meta)
        self.assertEqual(u["metadata"], meta)
        msgs = self.client.messages(s["id"])
        self.assertEqual(msgs[0]["id"], u["id"])
        self.assertEqual(msgs[0]["metadata"], meta)

    def test_unicode_round_trip(self):
        s = self.client.create_session(uid(), metadata={"name": "Zoë 🐝"})
        text = 'héllo wörld — 日本語 🚀 "quoted" back\\slash\ttab\nnew line \u2028 end'
        u, a = self.send_ok(s["id"], text, metadata={"emoji": "😀", "cjk": "漢字"})
        self.assertEqual(u["content"], text)
        self.assertEqual(a["content"], "echo#1 " + text)
        self.assertEqual(u["metadata"], {"emoji": "😀", "cjk": "漢字"})
        msgs = self.client.messages(s["id"])
        self.assertEqual([m["content"] for m in msgs], [text, "echo#1 " + text])
        self.assertEqual(msgs[0]["metadata"], {"emoji": "😀", "cjk": "漢字"})
        self.assertEqual(self.client.get("/v1/sessions/%s" % s["id"]).json["metadata"], {"name": "Zoë 🐝"})

    def test_system_role_message_stored(self):
        s = self.client.create_session(uid())
        r = self.client.send(s["id"], "you are terse", role="system")
        self.assertEqual(r.status, 201, r)
        self.assertEqual(r.json["user_message"]["role"], "system")
        self.assertEqual(r.json["user_message"]["content"], "you are terse")
        msgs = self.client.messages(s["id"], "?role=system")
        self.assertEqual([m["content"] for m in msgs], ["you are terse"])


class PersistenceTests(unittest.TestCase):
    """Send, stop the daemon, start it again on the same manifest and SQLite
    file: the history is intact and the conversation continues."""

    def test_history_survives_restart(self):
        d = Daemon()
        try:
            d.start()
            c = d.client
            s = c.create_session(uid(), model="m-persist", metadata={"keep": "me"},
                                 context={"user_context": {"a": 1}, "system_context": {"b": 2}})
            sid = s["id"]
            for text in ("first message", "second message"):
                r = c.send(sid, text, metadata={"t": text})
                self.assertEqual(r.status, 201, r)
            before_session = c.get("/v1/sessions/%s" % sid).json
            before = c.messages(sid)
            self.assertEqual(len(before), 4)
            rc = d.stop()
            self.assertEqual(rc, 0, "daemon exit code on SIGTERM\n" + d.log_tail())

            d.start()
            c = d.client
            after_session = c.get("/v1/sessions/%s" % sid)
            self.assertEqual(after_session.status, 200, after_session)
            self.assertEqual(after_session.json, before_session)
            self.assertEqual(after_session.json["message_count"], 4)
            after = c.messages(sid)
            self.assertEqual(after, before)
            self.assertEqual([m["content"] for m in after],
                             ["first message", "echo#1 first message", "second message", "echo#2 second message"])
            self.assertEqual(after[0]["metadata"], {"t": "first message"})
            # the conversation continues where it stopped
            r = c.send(sid, "third message")
            self.assertEqual(r.status, 201, r)
            self.assertEqual(r.json["assistant_message"]["content"], "echo#3 third message")
            listed = c.get("/v1/sessions?user_id=%s" % s["user_id"]).json["sessions"]
            self.assertEqual([x["id"] for x in listed], [sid])
            rc = d.stop()
            self.assertEqual(rc, 0, "daemon exit code on SIGTERM\n" + d.log_tail())
        except BaseException:
            print(d.log_tail())
            raise
        finally:
            d.cleanup()


if __name__ == "__main__":
    unittest.main()
