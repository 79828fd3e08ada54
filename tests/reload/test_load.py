"""Reloading under load: client threads send plain and streamed messages
without pause while the main thread reloads the manifest RELOADS times,
alternating two valid manifests (by HTTP and by SIGHUP). No request may fail,
every acknowledged message is stored exactly once, in order, and each message
went through one pipeline only: its middleware and its provider belong to the
same manifest."""

import threading
import unittest

from swh_harness import Daemon, Client
from reload_support import BLOCKED, REDACTED, filter_section, manifest, reload_http, reload_sighup, rewrite

RELOADS = 15
PLAIN_CLIENTS = 2
STREAM_CLIENTS = 2
ROUND_DEADLINE_S = 20.0  # each client must finish one request within this per reload


def with_prefix(text, prefix):
    """The harness manifest's echo provider with another reply prefix."""
    return text.replace("    config:\n      fail_on:", "    config:\n      prefix: %s\n      fail_on:" % prefix, 1)


class Sender(threading.Thread):
    """Sends messages to its own session until told to stop; records what
    the daemon acknowledged and every failure."""

    def __init__(self, port, session_id, index, stream, progress):
        super().__init__(daemon=True, name="sender-%d" % index)
        self.client = Client(port, keep_alive=not stream, timeout=20)
        self.session_id, self.index, self.stream, self.progress = session_id, index, stream, progress
        self.stop = threading.Event()
        self.acked = []     # (user message, assistant message) as answered
        self.failures = []  # descriptions of failed requests
        self.done = 0

    def run(self):
        try:
            while not self.stop.is_set():
                text = "client %d message %d says %s" % (self.index, len(self.acked), BLOCKED)
                pair = self.send_stream(text) if self.stream else self.send_plain(text)
                if pair is not None:
                    self.acked.append(pair)
                with self.progress:
                    self.done += 1
                    self.progress.notify_all()
        except Exception as e:  # noqa: BLE001 - any exception is a failed request
            self.failures.append("client %d: %r" % (self.index, e))
        finally:
            self.client.close()
            with self.progress:
                self.stop.set()
                self.progress.notify_all()

    def send_plain(self, text):
        r = self.client.send(self.session_id, text)
        if r.status != 201:
            self.failures.append("client %d: %r" % (self.index, r))
            return None
        return r.json["user_message"], r.json["assistant_message"]

    def send_stream(self, text):
        st = self.client.stream("/v1/sessions/%s/messages" % self.session_id, {"content": text, "stream": True},
                                deadline_s=20)
        if not hasattr(st, "read_all"):
            self.failures.append("client %d: stream refused %r" % (self.index, st))
            return None
        events = st.read_all()
        names = [e.event for e in events]
        if not names or names[-1] != "done" or "assistant_message" not in names or not st.ended_cleanly:
            self.failures.append("client %d: stream %r" % (self.index, events))
            return None
        by_name = {e.event: e.json for e in events}
        chunks = "".join(e.json["text"] for e in events if e.event == "chunk")
        if chunks != by_name["assistant_message"]["content"]:
            self.failures.append("client %d: chunks %r != reply %r"
                                 % (self.index, chunks, by_name["assistant_message"]["content"]))
        return by_name["user_message"], by_name["assistant_message"]


class ReloadUnderLoad(unittest.TestCase):
    def setUp(self):
        self.daemon = Daemon()
        self.addCleanup(self.daemon.cleanup)
        base = manifest(self.daemon)
        # two pipelines that can be told apart in every answer
        self.manifests = [with_prefix(base, "alpha"), with_prefix(manifest(self.daemon, tail=filter_section()), "beta")]
        rewrite(self.daemon, self.manifests[0])
        self.daemon.start()

    def tearDown(self):
        if self.daemon.proc is not None:
            self.assertEqual(self.daemon.stop(), 0, self.daemon.log_tail())

    def wait_for_progress(self, senders, progress, since):
        """Until every sender has finished one more request than `since`."""
        def advanced():
            return all(s.done > since[s] or s.stop.is_set() for s in senders)
        with progress:
            if not progress.wait_for(advanced, ROUND_DEADLINE_S):
                self.fail("a client finished no request within %.0f s: %r\n%s"
                          % (ROUND_DEADLINE_S, [(s.name, s.done) for s in senders], self.daemon.log_tail()))

    def test_no_request_fails_and_every_acknowledged_message_is_stored(self):
        client = self.daemon.client
        progress = threading.Condition()
        senders = []
        for i in range(PLAIN_CLIENTS + STREAM_CLIENTS):
            sid = client.create_session("load-%d" % i)["id"]
            senders.append(Sender(self.daemon.port, sid, i, i >= PLAIN_CLIENTS, progress))
        for s in senders:
            s.start()
        generations = []
        try:
            for n in range(RELOADS):
                # every client is mid-traffic at each reload: wait for one more answer each
                self.wait_for_progress(senders, progress, {s: s.done for s in senders})
                rewrite(self.daemon, self.manifests[(n + 1) % 2])
                if n % 3 == 2:
                    outcome, generation = reload_sighup(self.daemon)
                    self.assertEqual(outcome, "reloaded", generation)
                else:
                    r = reload_http(self.daemon)
                    self.assertEqual(r.status, 200, r)
                    generation = r.json["generation"]
                generations.append(generation)
            self.wait_for_progress(senders, progress, {s: s.done for s in senders})
        finally:
            for s in senders:
                s.stop.set()
            for s in senders:
                s.join(30)
        self.assertFalse([s.name for s in senders if s.is_alive()], "client threads still running")
        self.assertEqual(generations, list(range(2, 2 + RELOADS)))

        failures = [f for s in senders for f in s.failures]
        self.assertEqual(len(failures), 0, "%d failed requests, the first: %r\n%s"
                         % (len(failures), failures[:3], self.daemon.log_tail()))

        seen = {"alpha": 0, "beta": 0}
        for s in senders:
            self.assertGreaterEqual(len(s.acked), RELOADS, s.name)
            for user, assistant in s.acked:
                prefix = assistant["content"].split("#", 1)[0]
                self.assertIn(prefix, seen, assistant)
                seen[prefix] += 1
                # one pipeline per message: the filter ran iff the provider is beta's
                self.assertEqual(REDACTED in user["content"], prefix == "beta", (user, assistant))
                self.assertTrue(assistant["content"].endswith(user["content"]), (user, assistant))
            stored = client.messages(s.session_id)  # all of them: a sender may pass 500 exchanges
            expected = [m["id"] for pair in s.acked for m in pair]
            self.assertEqual([m["id"] for m in stored], expected, "%s: stored messages differ" % s.name)
            session = client.get("/v1/sessions/%s" % s.session_id).json
            self.assertEqual(session["message_count"], len(expected), session)
        self.assertGreater(seen["alpha"], 0, seen)
        self.assertGreater(seen["beta"], 0, seen)
        self.assertIsNone(self.daemon.proc.poll())
        print("\nreload under load: %d reloads, %d messages acknowledged (alpha %d, beta %d)"
              % (RELOADS, seen["alpha"] + seen["beta"], seen["alpha"], seen["beta"]))


if __name__ == "__main__":
    unittest.main()
