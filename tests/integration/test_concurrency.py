"""Concurrent writers on one session: nothing lost, nothing duplicated."""

import collections
import threading
import unittest
import uuid

from swh_harness import Client, DaemonTestCase, SSEStream

THREADS = 8
PER_THREAD = 25


def uid(prefix="u"):
    return "%s-%s" % (prefix, uuid.uuid4().hex[:12])


class ConcurrencyTests(DaemonTestCase):

    def run_threads(self, target, n):
        errors = []

        def wrap(i):
            try:
                target(i)
            except BaseException as e:  # reported below, with the thread number
                errors.append("thread %d: %r" % (i, e))

        threads = [threading.Thread(target=wrap, args=(i,), daemon=True) for i in range(n)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=100)
        self.assertFalse([t for t in threads if t.is_alive()], "threads still running after 100 s")
        self.assertEqual(errors, [])

    def test_parallel_sends_one_session(self):
        sid = self.client.create_session(uid())["id"]
        results = collections.defaultdict(list)  # thread -> [(status, user_message, assistant_message)]

        def worker(i):
            c = Client(self.daemon.port, keep_alive=True)
            try:
                for j in range(PER_THREAD):
                    content = "t%d-m%d" % (i, j)
                    r = c.post("/v1/sessions/%s/messages" % sid, {"content": content})
                    if r.status != 201:
                        raise AssertionError("%s -> %r" % (content, r))
                    results[i].append((content, r.json["user_message"], r.json["assistant_message"]))
            finally:
                c.close()

        self.run_threads(worker, THREADS)

        total = THREADS * PER_THREAD
        acked_user = {}
        acked_assistant = {}
        for i in range(THREADS):
            self.assertEqual(len(results[i]), PER_THREAD)
            for content, u, a in results[i]:
                self.assertEqual(u["content"], content)
                self.assertEqual(u["role"], "user")
                self.assertEqual(a["role"], "assistant")
                # the reply answers this request's message, whatever its number
                self.assertRegex(a["content"], r"^echo#\d+ " + content + "$")
                acked_user[u["id"]] = u
                acked_assistant[a["id"]] = a
        self.assertEqual(len(acked_user), total)
        self.assertEqual(len(acked_assistant), total)

        msgs = self.client.messages(sid)
        ids = [m["id"] for m in msgs]
        self.assertEqual(len(ids), len(set(ids)), "duplicate message ids in storage")
        roles = collections.Counter(m["role"] for m in msgs)
        self.assertEqual(roles["user"], total, roles)
        self.assertEqual(roles["assistant"], total, roles)
        self.assertEqual(len(msgs), 2 * total)
        user_contents = [m["content"] for m in msgs if m["role"] == "user"]
        self.assertEqual(sorted(user_contents),
                         sorted("t%d-m%d" % (i, j) for i in range(THREADS) for j in range(PER_THREAD)))
        # every acknowledged message is stored exactly as acknowledged
        by_id = {m["id"]: m for m in msgs}
        for mid, m in list(acked_user.items()) + list(acked_assistant.items()):
            self.assertEqual(by_id.get(mid), m)
        # each thread's messages are stored in the order it sent them
        for i in range(THREADS):
            mine = [c for c in user_contents if c.startswith("t%d-" % i)]
            self.assertEqual(mine, ["t%d-m%d" % (i, j) for j in range(PER_THREAD)])
        s = self.client.get("/v1/sessions/%s" % sid).json
        self.assertEqual(s["message_count"], 2 * total)
        # reply numbers count the session's user messages: within 1..total
        numbers = sorted(int(a["content"].split(" ", 1)[0][len("echo#"):]) for a in acked_assistant.values())
        self.assertGreaterEqual(numbers[0], 1)
        self.assertLessEqual(numbers[-1], total)

    def test_parallel_sessions_and_streams(self):
        sids = [self.client.create_session(uid())["id"] for _ in range(4)]

        def worker(i):
            c = Client(self.daemon.port)
            for j in range(5):
                st = c.stream("/v1/sessions/%s/messages" % sids[i], {"content": "s%d m%d here" % (i, j),
                                                                    "stream": True})
                if not isinstance(st, SSEStream):
                    raise AssertionError("no SSE answer: %r" % (st,))
                events = st.read_all()
                names = [e.event for e in events]
                if names[-2:] != ["assistant_message", "done"]:
                    raise AssertionError("stream %d/%d events %r" % (i, j, names))
                want = "echo#%d s%d m%d here" % (j + 1, i, j)
                got = "".join(e.json["text"] for e in events if e.event == "chunk")
                if got != want or events[-2].json["content"] != want:
                    raise AssertionError("stream %d/%d: chunks %r, stored %r, want %r"
                                         % (i, j, got, events[-2].json["content"], want))

        self.run_threads(worker, 4)
        for i, sid in enumerate(sids):
            msgs = self.client.messages(sid)
            self.assertEqual([m["content"] for m in msgs if m["role"] == "assistant"],
                             ["echo#%d s%d m%d here" % (j + 1, i, j) for j in range(5)])
            self.assertEqual(self.client.get("/v1/sessions/%s" % sid).json["message_count"], 10)


if __name__ == "__main__":
    unittest.main()
