"""A tampered or damaged SQLite database never crashes the daemon
(Python 3 standard library only).

The daemon writes sessions, messages and a conversation, stops; the test
then damages rows behind its back with Python's sqlite3 (broken JSON, JSON of
the wrong shape, wrong types inside, invalid UTF-8), starts the daemon again
on the same file and drives every route that reads those rows: the session,
its messages, a send (which replays the history to the provider), a PATCH,
the session list and a conversation's items. Each answer must be a success
or a JSON error (status and an error object naming the problem), the daemon
must stay up, and sessions nobody touched must keep working - their
messages unchanged, new sends acknowledged.

Run by hand (from this folder):
  SWH_BINARY=<build>/host/swarmhost SWH_PLUGIN_DIR=<build>/plugins \\
    python3 -m unittest -v test_tampered_rows
"""

import json
import os
import sqlite3
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))

import swh_harness  # noqa: E402

# (what is damaged, table, column, value): one session per row of this table.
SESSION_DAMAGE = [
    ("config is broken JSON", "sessions", "config", '{"max_history_messages":'),
    ("metadata is not JSON", "sessions", "metadata", "not json at all"),
    ("context is an array", "sessions", "context", "[1,2,3]"),
    ("config values of the wrong type", "sessions", "config",
     '{"max_history_messages":"ten","max_history_tokens":-4,"params":7,"system_prompt":5}'),
    ("context members of the wrong type", "sessions", "context", '{"system_context":"x","user_context":5}'),
    ("message metadata is broken JSON", "messages", "metadata", "{"),
    ("message structured content of the wrong shape", "messages", "structured",
     '{"tool_calls":"x","parts":[{"type":"image","url":3},{"type":"file"}],"tool_call_id":5}'),
    ("message provider metadata is an array", "messages", "provider_metadata", "[]"),
    ("message content is invalid UTF-8", "messages", "content", b"caf\xc3\x28 \xff\xfe"),
    ("message role is unknown", "messages", "role", "wizard"),
]

OK_OR_ERROR = {200, 201, 400, 404, 409, 422, 500, 502, 503}


class TamperedRows(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.daemon = swh_harness.Daemon()
        cls.daemon.start_or_cleanup()
        client = cls.daemon.client
        cls.sessions = []
        for what, *_ in SESSION_DAMAGE + [("untouched", None, None, None)]:
            sid = client.create_session("tamper", metadata={"case": what})["id"]
            for i in range(3):
                sent = client.send(sid, "turn %d of %s" % (i, what))
                assert sent.status == 201, sent
            cls.sessions.append((what, sid))
        conv = client.post("/v1/conversations", {"items": [{"type": "message", "role": "user", "content": "hi"}]})
        assert conv.status == 200, conv
        cls.conversation = conv.json["id"]
        cls.untouched_before = client.messages(cls.sessions[-1][1])
        cls.daemon.stop()
        cls.damage(cls.daemon.db_path)
        cls.daemon.start_or_cleanup()
        cls.client = cls.daemon.client

    @classmethod
    def damage(cls, db_path):
        db = sqlite3.connect(db_path)
        try:
            for (what, table, column, value), (_, sid) in zip(SESSION_DAMAGE, cls.sessions):
                if table == "sessions":
                    db.execute("UPDATE sessions SET %s = ? WHERE id = ?" % column, (value, sid))
                else:
                    db.execute("UPDATE messages SET %s = ? WHERE seq = (SELECT min(seq) FROM messages "
                               "WHERE session_id = ?)" % column, (value, sid))
            # The conversation's stored item: structured content a client never sent.
            # (the conversation is the session created last).
            db.execute("UPDATE messages SET structured = '{\"parts\":\"zzz\",\"tool_calls\":[{}]}' "
                       "WHERE session_id = (SELECT id FROM sessions ORDER BY created_at DESC LIMIT 1)")
            db.commit()
        finally:
            db.close()

    @classmethod
    def tearDownClass(cls):
        cls.daemon.cleanup()

    def assert_answered(self, response, what):
        """A success, or a JSON error object that says something."""
        self.assertIn(response.status, OK_OR_ERROR, "%s: %r" % (what, response))
        if response.status >= 400:
            self.assertTrue(response.content_type.startswith("application/json"), "%s: %r" % (what, response))
            body = response.json
            self.assertIsInstance(body.get("error"), dict, "%s: %r" % (what, response))
            self.assertTrue(body["error"].get("message"), "%s: %r" % (what, response))

    def assert_alive(self, what):
        health = self.client.get("/healthz")
        self.assertEqual(health.status, 200, "daemon not healthy after %s\n%s" % (what, self.daemon.log_tail()))
        self.assertIsNone(self.daemon.proc.poll(), "daemon exited after %s" % what)

    def test_every_route_on_a_damaged_row_answers(self):
        for what, sid in self.sessions[:-1]:
            with self.subTest(what):
                self.assert_answered(self.client.get("/v1/sessions/%s" % sid), what + ": GET session")
                self.assert_answered(self.client.get("/v1/sessions/%s/messages" % sid), what + ": GET messages")
                self.assert_answered(self.client.get("/v1/sessions/%s/messages?role=user" % sid),
                                     what + ": GET messages?role=user")
                self.assert_answered(self.client.send(sid, "after the damage"), what + ": send")
                self.assert_answered(self.client.patch("/v1/sessions/%s" % sid, {"metadata": {"x": 1}}),
                                     what + ": PATCH")
                self.assert_alive(what)
        self.assert_answered(self.client.get("/v1/sessions?user_id=tamper&limit=100"), "GET /v1/sessions")
        self.assert_answered(self.client.get("/v1/conversations/%s/items" % self.conversation),
                             "conversation items")
        self.assert_alive("every route")

    def test_a_damaged_session_row_is_named_in_the_error(self):
        what, sid = self.sessions[0]  # broken config JSON
        got = self.client.get("/v1/sessions/%s" % sid)
        self.assertGreaterEqual(got.status, 500, got)
        self.assertIn("config", got.json["error"]["message"], got)

    def test_untouched_sessions_keep_working(self):
        _, sid = self.sessions[-1]
        self.assertEqual(self.client.messages(sid), self.untouched_before)
        sent = self.client.send(sid, "still fine")
        self.assertEqual(sent.status, 201, sent)
        self.assertEqual(len(self.client.messages(sid)), len(self.untouched_before) + 2)


if __name__ == "__main__":
    unittest.main()
