"""Per-key limits through the real daemon (docs/security.md): the token bucket
(429 rate_limited with Retry-After, then success after waiting that long; one
key's limit leaves other keys alone) and auth.max_streams_per_key (429 on one
more stream of any kind, a slot freed when a stream closes)."""

import time
import unittest

import swh_harness
from swh_harness import Daemon

from auth_fixture import AuthTestCase, Key, auth_section, poll

SLOW = Key("slow", "sam", rate_per_second=1, burst=2)  # per-key rate over the default
DEFAULTED = Key("defaulted", "dora")                   # auth.rate_per_second / burst
# rate_per_second 0 on a key: unlimited, whatever the default says.
STREAMER = Key("streamer", "stella", rate_per_second=0)
OTHER = Key("other", "otto", rate_per_second=0)
# Each stream test has its own key: a closed stream's slot comes back only
# once the server notices, so tests sharing a key would see each other's.
HEADERS = Key("headers", "hedda", rate_per_second=0)
SEQUENTIAL = Key("sequential", "sequoia", rate_per_second=0)
UNLIMITED = Key("unlimited", "uma", rate_per_second=0)
MAX_STREAMS = 2
# A slow default (a token every 5 s), so that no machine, however slow (ASan,
# a loaded CI box), can be refilled as fast as it asks: the checks below bound
# what a bucket may let through by the time the client measured, not by a
# guess of how fast requests are.
DEFAULT_RATE, DEFAULT_BURST = 0.2, 3
ATTEMPTS_CAP = 1000  # only keeps a broken limiter from looping forever
RETRY_AFTER_MAX_S = 5  # bound of the wait the test accepts from Retry-After
SLOT_FREED_DEADLINE_S = 15.0  # the server notices a closed stream on its next keep-alive write


class LimitTests(AuthTestCase):

    @classmethod
    def setUpClass(cls):
        cls.daemon = Daemon(
            # A keep-alive comment every second: how the server notices a
            # client that closed an idle stream (its write fails).
            server_lines=["sse_keepalive_seconds: 1"],
            extra_providers=auth_section([SLOW, DEFAULTED, STREAMER, OTHER, HEADERS, SEQUENTIAL, UNLIMITED],
                                         rate_per_second=DEFAULT_RATE, burst=DEFAULT_BURST,
                                         max_streams_per_key=MAX_STREAMS))
        cls.daemon.start_or_cleanup()
        cls.client = cls.daemon.client

    def until_limited(self, client, rate, burst):
        """Requests until the first 429; returns (successes before it, the 429).
        A bucket of `burst` tokens refilled at `rate` per second lets through
        at most burst + rate * (time since the first request) requests: one
        more success than that fails the test."""
        t0 = time.monotonic()
        for done in range(ATTEMPTS_CAP):
            r = client.get("/v1/sessions")
            if r.status != 200:
                return done, r
            allowed = burst + rate * (time.monotonic() - t0)
            self.assertLessEqual(done + 1, allowed,
                                 "%d requests passed; a bucket of %d at %s/s allows %.2f by now"
                                 % (done + 1, burst, rate, allowed))
        self.fail("no 429 within %d requests" % ATTEMPTS_CAP)

    def assertRateLimited(self, r):
        self.assertError(r, 429, "rate_limited")
        retry_after = r.headers.get("Retry-After")
        self.assertIsNotNone(retry_after, r)
        self.assertRegex(retry_after, r"^[0-9]+$")
        seconds = int(retry_after)
        self.assertGreaterEqual(seconds, 1, r)
        self.assertLessEqual(seconds, RETRY_AFTER_MAX_S, r)
        return seconds

    def test_rate_limit_429_with_retry_after_then_success(self):
        slow = self.as_key(SLOW)
        # burst 2 at 1/s (its own rate, not the default): at least the burst
        # passes, then a 429 before the bucket could have refilled more.
        done, refused = self.until_limited(slow, SLOW.rate_per_second, SLOW.burst)
        self.assertGreaterEqual(done, SLOW.burst)
        wait = self.assertRateLimited(refused)
        # At 1/s a token is never more than 1 s away (the default's 0.2/s
        # could ask for up to 5).
        self.assertEqual(wait, 1, refused)
        # Limited is per key: other keys are served meanwhile.
        self.assertEqual(self.as_key(OTHER).get("/v1/sessions").status, 200)
        # The bucket refills at the key's rate: after Retry-After seconds a token is there.
        time.sleep(wait)
        r = slow.get("/v1/sessions")
        self.assertEqual(r.status, 200, r)

    def test_default_rate_and_burst_apply_to_keys_without_their_own(self):
        # The default bucket: 3, then a 429 (a token comes back every 5 s).
        done, refused = self.until_limited(self.as_key(DEFAULTED), DEFAULT_RATE, DEFAULT_BURST)
        self.assertGreaterEqual(done, DEFAULT_BURST)
        self.assertRateLimited(refused)

    def test_key_with_rate_zero_is_unlimited_under_a_default_rate(self):
        # The same burst that DEFAULTED's bucket cuts off after a few requests.
        client = self.as_key(UNLIMITED)
        statuses = [client.get("/v1/sessions").status for _ in range(20 * DEFAULT_BURST)]
        self.assertEqual(set(statuses), {200}, statuses)

    def test_streams_per_key_429_then_freed_after_closing_one(self):
        streamer = self.as_key(STREAMER)
        sid = streamer.create_session()["id"]
        open_streams = [self.open_events(streamer, sid)[0] for _ in range(MAX_STREAMS)]
        try:
            # One more stream of each kind is refused while MAX_STREAMS are open.
            more = {
                "events": lambda: streamer.stream("/v1/sessions/%s/events" % sid, None, method="GET"),
                "message stream": lambda: streamer.stream("/v1/sessions/%s/messages" % sid,
                                                          {"content": "x", "stream": True}),
                "completion stream": lambda: streamer.stream(
                    "/v1/chat/completions",
                    {"model": "echo", "stream": True, "messages": [{"role": "user", "content": "x"}]}),
            }
            for kind, attempt in more.items():
                with self.subTest(kind=kind):
                    r = attempt()
                    self.assertIsInstance(r, swh_harness.Response, "%s opened beyond the limit" % kind)
                    self.assertError(r, 429, "rate_limited")
            # The refused message stream stored nothing; ordinary requests still work.
            r = streamer.get("/v1/sessions/%s/messages" % sid)
            self.assertEqual((r.status, r.json["messages"]), (200, []), r)
            # Another key has its own slots.
            other = self.as_key(OTHER)
            other_sid = other.create_session()["id"]
            self.open_events(other, other_sid)[0].close()

            open_streams.pop().close()

            def reopened():
                r = streamer.stream("/v1/sessions/%s/events" % sid, None, method="GET")
                if isinstance(r, swh_harness.SSEStream):
                    return r
                self.assertError(r, 429, "rate_limited")
                return None

            stream = poll(reopened, SLOT_FREED_DEADLINE_S, interval_s=0.2)
            self.assertIsNotNone(stream, "the closed stream's slot was not freed within %.0f s"
                                 % SLOT_FREED_DEADLINE_S)
            first = next(iter(stream))
            self.assertEqual(first.event, "ready", first)
            open_streams.append(stream)
        finally:
            for s in open_streams:
                s.close()

    def test_stream_limit_429s_carry_retry_after_on_every_stream_kind(self):
        # A 429 rate_limited tells the client when to come back, whichever
        # kind of stream hit the limit.
        streamer = self.as_key(HEADERS)
        sid = streamer.create_session()["id"]
        open_streams = [self.open_events(streamer, sid)[0] for _ in range(MAX_STREAMS)]
        try:
            attempts = {
                "events": lambda: streamer.stream("/v1/sessions/%s/events" % sid, None, method="GET"),
                "message stream": lambda: streamer.stream("/v1/sessions/%s/messages" % sid,
                                                          {"content": "x", "stream": True}),
                "completion stream": lambda: streamer.stream(
                    "/v1/chat/completions",
                    {"model": "echo", "stream": True, "messages": [{"role": "user", "content": "x"}]}),
            }
            for kind, attempt in attempts.items():
                with self.subTest(kind=kind):
                    r = attempt()
                    self.assertIsInstance(r, swh_harness.Response, "%s opened beyond the limit" % kind)
                    self.assertRateLimited(r)
        finally:
            for s in open_streams:
                s.close()

    def test_finished_message_streams_give_their_slot_back(self):
        streamer = self.as_key(SEQUENTIAL)
        sid = streamer.create_session()["id"]
        # More streamed sends, one after another, than the key has slots.
        for i in range(MAX_STREAMS + 2):
            stream = streamer.stream("/v1/sessions/%s/messages" % sid, {"content": "s%d" % i, "stream": True})
            self.assertIsInstance(stream, swh_harness.SSEStream, stream)
            events = [e.event for e in stream.read_all()]
            self.assertEqual(events[-1], "done", events)


if __name__ == "__main__":
    unittest.main()
