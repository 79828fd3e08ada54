"""Two daemons on one PostgreSQL: a session created and written through one
is read, continued and archived through the other, with concurrent writers
through both and exact counts."""

import os
import sys
import threading
import unittest
import uuid

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tooling"))
from storage_daemons import daemon_on, make_server, start_daemons, stop_daemons  # noqa: E402

THREADS_PER_DAEMON = 4
SENDS_PER_THREAD = 10


class TwoDaemons(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = make_server("postgres")
        # Both start at once: the schema migration runs under a lock.
        cls.a, cls.b = start_daemons([cls.server], lambda: daemon_on(cls.server), lambda: daemon_on(cls.server))

    @classmethod
    def tearDownClass(cls):
        stop_daemons([cls.a, cls.b], [cls.server])

    def test_history_written_through_the_other_daemon_is_sent(self):
        # Daemon A caches the session's history as it sends; a message
        # stored through B must still reach A's provider on A's next send
        # (the echo provider counts the user messages it was given).
        a, b = self.a.client, self.b.client
        sid = a.create_session("u-" + uuid.uuid4().hex[:12])["id"]
        for i in range(3):
            r = a.send(sid, "a%d" % i)
            self.assertEqual(r.status, 201, r)
            self.assertEqual(r.json["assistant_message"]["content"], "echo#%d a%d" % (i + 1, i))
        r = b.send(sid, "from b")
        self.assertEqual(r.json["assistant_message"]["content"], "echo#4 from b")
        r = a.send(sid, "after b")
        self.assertEqual(r.status, 201, r)
        self.assertEqual(r.json["assistant_message"]["content"], "echo#5 after b")
        # A later PATCH through B changes the window A sends.
        r = b.patch("/v1/sessions/%s" % sid, {"config": {"max_history_messages": 3}})
        self.assertEqual(r.status, 200, r)
        r = a.send(sid, "windowed")
        self.assertEqual(r.json["assistant_message"]["content"], "echo#2 windowed")

    def test_one_session_through_both(self):
        a, b = self.a.client, self.b.client
        user = "u-" + uuid.uuid4().hex[:12]
        sid = a.create_session(user, metadata={"via": "a"})["id"]
        self.assertEqual(a.send(sid, "hello from a").status, 201)

        got = b.get("/v1/sessions/%s" % sid)
        self.assertEqual(got.status, 200, got)
        self.assertEqual(got.json["metadata"], {"via": "a"})
        self.assertEqual(got.json["message_count"], 2)
        self.assertEqual(b.send(sid, "hello from b").status, 201)
        self.assertEqual([m["content"] for m in a.messages(sid, "?role=user")], ["hello from a", "hello from b"])
        listed = b.get("/v1/sessions?user_id=%s" % user)
        self.assertEqual([s["id"] for s in listed.json["sessions"]], [sid])

        # concurrent writers through both daemons
        errors = []

        def writer(client, name):
            for i in range(SENDS_PER_THREAD):
                r = client.send(sid, "%s-%d" % (name, i))
                if r.status != 201:
                    errors.append(r)

        threads = [threading.Thread(target=writer, args=(client, "%s%d" % (tag, t)))
                   for client, tag in ((a, "a"), (b, "b")) for t in range(THREADS_PER_DAEMON)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
        self.assertFalse(any(t.is_alive() for t in threads), "writers hung")
        self.assertEqual(errors, [])

        sends = 2 + 2 * THREADS_PER_DAEMON * SENDS_PER_THREAD
        for client in (a, b):
            session = client.get("/v1/sessions/%s" % sid).json
            self.assertEqual(session["message_count"], 2 * sends)
            msgs = client.messages(sid)
            self.assertEqual(len(msgs), 2 * sends)
            self.assertEqual(len({m["id"] for m in msgs}), 2 * sends)
            users = [m["content"] for m in msgs if m["role"] == "user"]
            self.assertEqual(len(set(users)), sends)
            for tag in ("a", "b"):
                for t in range(THREADS_PER_DAEMON):
                    mine = [c for c in users if c.startswith("%s%d-" % (tag, t))]
                    self.assertEqual(mine, ["%s%d-%d" % (tag, t, i) for i in range(SENDS_PER_THREAD)])

        # archive through b; a sees it and refuses new messages
        archived = b.post("/v1/sessions/%s/archive" % sid)
        self.assertEqual(archived.status, 200, archived)
        self.assertEqual(a.get("/v1/sessions/%s" % sid).json["status"], "archived")
        refused = a.send(sid, "too late")
        self.assertEqual(refused.status, 409, refused)
        self.assertEqual(len(b.messages(sid)), 2 * sends)

    def test_openai_responses_and_conversations_through_both(self):
        """A response and a conversation made through a are read and
        continued through b the moment a has answered (no index, no delay:
        the ids name the session and message; docs/conversation-state.md)."""
        a, b = self.a.client, self.b.client

        def text(response):
            return "".join(p["text"] for item in response["output"] if item["type"] == "message"
                           for p in item["content"])

        first = a.post("/v1/responses", {"model": "echo", "input": "from a"})
        self.assertEqual(first.status, 200, first)
        got = b.get("/v1/responses/" + first.json["id"])
        self.assertEqual(got.status, 200, got)
        self.assertEqual(got.json["output"], first.json["output"])
        second = b.post("/v1/responses", {"model": "echo", "input": "from b",
                                          "previous_response_id": first.json["id"]})
        self.assertEqual(second.status, 200, second)
        self.assertEqual(text(second.json), "echo#2 from b")
        third = a.post("/v1/responses", {"model": "echo", "input": "a again",
                                         "previous_response_id": second.json["id"]})
        self.assertEqual(text(third.json), "echo#3 a again")
        items = b.get("/v1/responses/%s/input_items" % third.json["id"])
        self.assertEqual([i["content"][0]["text"] for i in items.json["data"]], ["a again"])

        conv = a.post("/v1/conversations", {"items": [{"role": "user", "content": "hi"}]})
        self.assertEqual(conv.status, 200, conv)
        cid = conv.json["id"]
        on_b = b.post("/v1/responses", {"model": "echo", "input": "via b", "conversation": cid})
        self.assertEqual(text(on_b.json), "echo#2 via b")
        listed = a.get("/v1/conversations/%s/items?order=asc" % cid)
        self.assertEqual([i["content"][0]["text"] for i in listed.json["data"]], ["hi", "via b", "echo#2 via b"])
        self.assertEqual(b.delete("/v1/conversations/" + cid).status, 200)
        self.assertEqual(a.get("/v1/conversations/" + cid).status, 404)


if __name__ == "__main__":
    unittest.main()
