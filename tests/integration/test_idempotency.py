"""Idempotency keys on message POST (issue 9): a client that retries after a
lost response gets the first attempt's answer, and nothing is stored twice."""

import threading
import unittest

import swh_harness as h


class IdempotencyTests(h.DaemonTestCase):
    def post(self, sid, content, key, stream=False):
        return self.client.post("/v1/sessions/%s/messages" % sid, {"content": content, "stream": stream},
                                headers={"Idempotency-Key": key})

    def test_a_retry_gets_the_same_answer_and_stores_nothing_new(self):
        sid = self.client.create_session("idem")["id"]
        first = self.post(sid, "hello once", "key-1")
        self.assertEqual(first.status, 201, first)
        again = self.post(sid, "hello once", "key-1")
        self.assertEqual(again.status, 201, again)
        self.assertEqual(again.json["user_message"]["id"], first.json["user_message"]["id"])
        self.assertEqual(again.json["assistant_message"]["id"], first.json["assistant_message"]["id"])
        self.assertEqual(again.json["assistant_message"]["content"], "echo#1 hello once")
        self.assertEqual(len(self.client.messages(sid)), 2)
        other = self.post(sid, "hello twice", "key-2")
        self.assertEqual(other.json["assistant_message"]["content"], "echo#2 hello twice")
        self.assertEqual(len(self.client.messages(sid)), 4)
        self.assertEqual(self.client.get("/v1/sessions/%s" % sid).json["message_count"], 4)

    def test_a_retry_right_after_the_answer_is_never_told_to_wait(self):
        # The key is let go before the answer is sent: a client that retries
        # the moment it has (or lost) the answer gets it again, not a 409.
        sid = self.client.create_session("idem-quick")["id"]
        for i in range(20):
            key = "quick-%d" % i
            first = self.post(sid, "q%d" % i, key, stream=(i % 2 == 1))
            again = self.post(sid, "q%d" % i, key)
            self.assertEqual(again.status, 201, (i, again))
            if i % 2 == 0:
                self.assertEqual(again.json["assistant_message"]["id"], first.json["assistant_message"]["id"])
        self.assertEqual(len(self.client.messages(sid)), 40)

    def test_same_key_in_another_session_is_independent(self):
        a = self.client.create_session("idem-a")["id"]
        b = self.client.create_session("idem-b")["id"]
        ra, rb = self.post(a, "x", "shared"), self.post(b, "y", "shared")
        self.assertEqual((ra.status, rb.status), (201, 201))
        self.assertNotEqual(ra.json["user_message"]["id"], rb.json["user_message"]["id"])

    def test_concurrent_retries_store_one_exchange(self):
        sid = self.client.create_session("idem-race")["id"]
        results = []

        def send():
            c = h.Client(self.daemon.port)
            r = c.post("/v1/sessions/%s/messages" % sid, {"content": "race"}, headers={"Idempotency-Key": "race-1"})
            results.append((r.status, r.json))

        threads = [threading.Thread(target=send) for _ in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        statuses = sorted(s for s, _ in results)
        self.assertEqual(len(statuses), 6)
        self.assertTrue(all(s in (201, 409) for s in statuses), statuses)
        self.assertIn(201, statuses)
        ids = {j["user_message"]["id"] for s, j in results if s == 201}
        self.assertEqual(len(ids), 1, ids)  # every 201 is the same exchange
        self.assertEqual([m["role"] for m in self.client.messages(sid)], ["user", "assistant"])

    def test_streamed_retry_replays_the_stored_exchange(self):
        sid = self.client.create_session("idem-stream")["id"]
        first = self.post(sid, "stream me", "s-1")
        st = self.client.stream("/v1/sessions/%s/messages" % sid, {"content": "stream me", "stream": True})
        # (no key: a new exchange) — then a keyed stream retry of the first
        st.read_all()
        c = h.Client(self.daemon.port)
        conn_stream = c.request("POST", "/v1/sessions/%s/messages" % sid,
                                {"content": "stream me", "stream": True}, headers={"Idempotency-Key": "s-1"})
        self.assertEqual(conn_stream.status, 200, conn_stream)
        self.assertIn(first.json["assistant_message"]["id"], conn_stream.body if isinstance(conn_stream.body, str)
                      else conn_stream.body.decode())
        self.assertEqual(len(self.client.messages(sid)), 4)


if __name__ == "__main__":
    unittest.main()
