"""Limits, Idempotency-Keys and once-per-fleet hooks that hold across two real
daemons on one store (manifest `limits: { shared: storage }`, docs/fleet.md),
on PostgreSQL, on Redis and on a Redis Cluster: a key's rate limit, the key-guessing cut-off,
streams per key (and a killed daemon's streams lapse), messages per session
under concurrent sends through both daemons, an Idempotency-Key retried on the
other daemon (409 while in flight, then the stored answer, and one upstream
call: tools/fake_upstream counts them), and a hook with `once_per_fleet: true`
that handles an event both daemons saw once.

Each check fails with per-daemon limits (the same manifest without
`limits:`): two daemons let through twice the limit."""

import glob
import http.client
import os
import sys
import threading
import time
import unittest
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tooling"))
sys.path.insert(0, os.path.join(HERE, "..", "auth"))
sys.path.insert(0, os.path.join(HERE, "..", "pipeline"))

from storage_daemons import daemon_on, make_server, start_daemons, stop_daemons  # noqa: E402
from auth_fixture import Key, auth_section  # noqa: E402
from pipeline_support import parse_prometheus, sample  # noqa: E402
import swh_harness  # noqa: E402

ADMIN = Key("admin", "root", role="admin", rate_per_second=0)
# burst 4 at 0.1/s: fleet-wide a fixed window of 40 s letting 4 through.
RATED = Key("rated", "rita", rate_per_second=0.1, burst=4)
STREAMER = Key("streamer", "stella", rate_per_second=0)
SENDER = Key("sender", "sven", rate_per_second=0)
KILLED = Key("killed", "kim", rate_per_second=0)  # streams held by a daemon that is killed
BUDGETED = Key("budgeted", "bea", rate_per_second=0)  # a token budget the two daemons share
BUDGET_TOKENS = 24
MAX_STREAMS = 2
MAX_FAILURES = 3
MAX_MESSAGES = 6  # an idempotent retry in flight (1 stored + 2 + 2 reserved) stays under it
LEASE_SECONDS = 3
DEADLINE_S = 30.0  # bound of every wait below (it only ends a hung test)
ATTEMPTS_CAP = 50
GUESSER = "127.0.0.7"  # the cut-off test's own source address: the others' stays usable


def status_from(daemon, source, headers):
    """GET /v1/sessions from source address `source` (any 127.x reaches 127.0.0.1)."""
    conn = http.client.HTTPConnection("127.0.0.1", daemon.port, timeout=30, source_address=(source, 0))
    try:
        conn.request("GET", "/v1/sessions", headers=headers)
        resp = conn.getresponse()
        resp.read()
        return resp.status
    finally:
        conn.close()


def poll(what, pred, deadline_s=DEADLINE_S):
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        value = pred()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError("gave up waiting for " + what)


def manifest_extra(fake_base, backup_dir):
    provider = ("  - name: oa\n    plugin: openai\n    config:\n"
                "      base_url: %s\n      api_key_env: \"\"\n      retries: 0\n      timeout_ms: 20000\n"
                "      model: gpt-4o-mini\n" % swh_harness.yaml_str(fake_base + "/v1"))
    text = provider + auth_section([ADMIN, RATED, STREAMER, SENDER, KILLED, BUDGETED], max_streams_per_key=MAX_STREAMS,
                                   max_failures_per_minute=MAX_FAILURES)
    text += ("hooks:\n  - name: backup\n    plugin: backup\n" + "    once_per_fleet: true\n" +
             "    config:\n      dir: %s\n      triggers: [archived]\n      keep_history: true\n"
             % swh_harness.yaml_str(backup_dir))
    text += "limits:\n  shared: storage\n  lease_seconds: %d\n" % LEASE_SECONDS
    text += "budgets:\n  keys:\n    budgeted: { tokens: %d }\n" % BUDGET_TOKENS
    return text


class FleetLimitsBase:
    kind = None  # "postgres" | "redis"

    @classmethod
    def setUpClass(cls):
        cls.server = make_server(cls.kind)
        cls.fake = swh_harness.start_fake_upstream()
        fake_base = "http://127.0.0.1:%d" % cls.fake.server_address[1]
        cls.backup_dirs = []

        def make():
            backup = swh_harness.make_tmpdir("swh-backup-")
            cls.backup_dirs.append(backup)
            return daemon_on(cls.server, extra_yaml=manifest_extra(fake_base, backup),
                             server_lines=["sse_keepalive_seconds: 1",
                                           "max_messages_per_session: %d" % MAX_MESSAGES])
        try:
            cls.a, cls.b = start_daemons([cls.server], make, make)
        except BaseException:
            cls.fake.shutdown()
            raise

    @classmethod
    def tearDownClass(cls):
        stop_daemons([cls.a, cls.b], [cls.server])
        cls.fake.shutdown()
        cls.fake.server_close()

    # ---- helpers
    def call(self, daemon, method, path, key=None, body=None, headers=None):
        h = dict(headers or {})
        if key is not None:
            h.update(key.bearer())
        return daemon.client.request(method, path, body=body, headers=h)

    def session(self, key=ADMIN, provider="oa"):
        r = self.call(self.a, "POST", "/v1/sessions", key, {"user_id": key.user, "provider": provider})
        self.assertEqual(r.status, 201, r)
        return r.json["id"]

    def upstream_calls(self, marker):
        with self.fake.state.lock:
            return [r for r in self.fake.state.requests
                    if r["path"].endswith("/chat/completions") and marker in str(r["body"])]

    def metrics(self, daemon):
        r = self.call(daemon, "GET", "/metrics", ADMIN)
        self.assertEqual(r.status, 200, r)
        return parse_prometheus(r.raw.decode("utf-8"))

    # ---- rate limit of a key
    def test_rate_limit_of_a_key_holds_across_both_daemons(self):
        passed, started = 0, time.monotonic()
        for attempt in range(ATTEMPTS_CAP):
            r = self.call((self.a, self.b)[attempt % 2], "GET", "/v1/sessions", RATED)
            if r.status == 429:
                self.assertIn("rate limit", r.json["error"]["message"])
                self.assertTrue(r.headers.get("Retry-After"), r)
                break
            self.assertEqual(r.status, 200, r)
            passed += 1
        else:
            self.fail("no 429 in %d requests" % ATTEMPTS_CAP)
        window = RATED.burst / RATED.rate_per_second
        # All requests fell in the window the first one opened: exactly the
        # burst passed, half from each daemon (per daemon: twice the burst).
        # Only a run slower than a whole window may straddle two (docs/fleet.md: 2 x burst).
        bound = RATED.burst if time.monotonic() - started < window else 2 * RATED.burst
        self.assertLessEqual(passed, bound)
        self.assertGreaterEqual(passed, RATED.burst)

    # ---- a key's token budget (docs/budgets.md)
    def test_a_key_budget_is_shared_by_both_daemons(self):
        marker = "budget-%s" % uuid.uuid4().hex[:8]
        body = {"model": "oa", "messages": [{"role": "user", "content": "%s spend" % marker}]}
        spent, answered = 0, 0
        for attempt in range(ATTEMPTS_CAP):
            r = self.call((self.a, self.b)[attempt % 2], "POST", "/v1/chat/completions", BUDGETED, body)
            if r.status == 429:
                break
            self.assertEqual(r.status, 200, r)
            last = r.json["usage"]["total_tokens"]
            spent += last
            answered += 1
        else:
            self.fail("no refusal in %d requests" % ATTEMPTS_CAP)
        self.assertEqual(r.json["error"]["type"], "budget_exceeded", r)
        self.assertEqual(r.json["error"]["spent"]["tokens"], spent, r)
        self.assertGreater(answered, 1)
        # Sequential: the last reply started under the budget. Counted per
        # daemon, each would have let BUDGET_TOKENS through: twice in all.
        self.assertGreaterEqual(spent, BUDGET_TOKENS)
        self.assertLess(spent - last, BUDGET_TOKENS, "a request was let through past the fleet's budget")
        for daemon in (self.a, self.b):  # both refuse, and nothing more goes upstream
            refused = self.call(daemon, "POST", "/v1/chat/completions", BUDGETED, body)
            self.assertEqual(refused.status, 429, refused)
        self.assertEqual(len(self.upstream_calls(marker)), answered)
        for daemon in (self.a, self.b):  # each shows the fleet's spend
            mine = self.call(daemon, "GET", "/v1/budgets", BUDGETED)
            key = [b for b in mine.json["budgets"] if b["scope"] == "key"][0]
            self.assertEqual(key["spent"]["tokens"], spent, mine)

    # ---- the key-guessing cut-off
    def test_failed_guesses_count_across_both_daemons(self):
        statuses = []
        for attempt in range(2 * MAX_FAILURES + 2):
            wrong = {"Authorization": "Bearer swhk-guess-%s" % uuid.uuid4().hex}
            statuses.append(status_from((self.a, self.b)[attempt % 2], GUESSER, wrong))
        # Per daemon each would answer MAX_FAILURES 401s: 2 x MAX_FAILURES in all.
        self.assertEqual(statuses[:MAX_FAILURES], [401] * MAX_FAILURES, statuses)
        self.assertEqual(set(statuses[MAX_FAILURES:]), {429}, statuses)
        # A right key from the cut-off address waits too, on either daemon;
        # another address is served.
        self.assertEqual(status_from(self.a, GUESSER, ADMIN.bearer()), 429)
        self.assertEqual(status_from(self.b, GUESSER, ADMIN.bearer()), 429)
        self.assertEqual(status_from(self.b, "127.0.0.1", ADMIN.bearer()), 200)

    # ---- streams per key
    def open_events(self, daemon, sid):
        return daemon.client.stream("/v1/sessions/%s/events" % sid, None, method="GET",
                                    headers=STREAMER.bearer(), deadline_s=DEADLINE_S)

    def test_streams_per_key_hold_across_both_daemons(self):
        sid = self.session(STREAMER)
        first, second = self.open_events(self.a, sid), self.open_events(self.b, sid)
        for s in (first, second):
            self.assertEqual(getattr(s, "status", None), 200, s)
            self.addCleanup(s.close)
        for daemon in (self.a, self.b):
            refused = self.open_events(daemon, sid)
            self.assertEqual(refused.status, 429, refused)
            self.assertIn("max_streams_per_key", refused.json["error"]["message"])
        second.close()  # its daemon notices at the next keep-alive and gives the lease back
        third = poll("a freed stream slot", lambda: (lambda s: s if s.status == 200 else None)(
            self.open_events(self.a, sid)))
        self.addCleanup(third.close)

    # ---- messages per session
    def test_messages_per_session_hold_across_both_daemons(self):
        sid = self.session(SENDER)
        results = []

        def send(daemon, n):
            # slow upstream: every send is in flight while the others start
            r = self.call(daemon, "POST", "/v1/sessions/%s/messages" % sid, SENDER,
                          {"content": "[fake:slow:1500] cap %d" % n})
            results.append(r.status)
        sends = MAX_MESSAGES // 2 + 2  # per daemon (3 + 2) each would let its own through
        threads = [threading.Thread(target=send, args=((self.a, self.b)[n % 2], n)) for n in range(sends)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(DEADLINE_S)
        self.assertEqual(len(results), sends, results)
        # Each send stores 2 messages: at most MAX_MESSAGES / 2 sends may pass.
        self.assertLessEqual(results.count(201), MAX_MESSAGES // 2, results)
        self.assertGreaterEqual(results.count(201), 1, results)
        self.assertEqual(set(results) - {201, 409}, set(), results)
        stored = self.call(self.b, "GET", "/v1/sessions/%s" % sid, SENDER).json["message_count"]
        self.assertLessEqual(stored, MAX_MESSAGES)

    # ---- Idempotency-Key
    def test_retry_on_the_other_daemon_gets_409_in_flight_then_the_stored_answer(self):
        sid = self.session(SENDER)
        marker = "idem-%s" % uuid.uuid4().hex[:8]
        key = {"Idempotency-Key": marker}
        path = "/v1/sessions/%s/messages" % sid
        first = {}

        def send_first():
            first["r"] = self.call(self.a, "POST", path, SENDER, {"content": "[fake:slow:3000] %s" % marker}, key)
        t = threading.Thread(target=send_first)
        t.start()
        poll("the first attempt to reach the upstream", lambda: self.upstream_calls(marker))
        retry = self.call(self.b, "POST", path, SENDER, {"content": "[fake:slow:3000] %s" % marker}, key)
        self.assertEqual(retry.status, 409, retry)
        self.assertIn("Idempotency-Key", retry.json["error"]["message"])
        t.join(DEADLINE_S)
        self.assertEqual(first["r"].status, 201, first.get("r"))
        again = self.call(self.b, "POST", path, SENDER, {"content": "[fake:slow:3000] %s" % marker}, key)
        self.assertEqual(again.status, 201, again)
        self.assertEqual(again.json, first["r"].json)  # the same answer, stored once
        self.assertEqual(len(self.upstream_calls(marker)), 1)  # never a second provider call
        self.assertEqual(len(self.messages(sid)), 2)

    def messages(self, sid):
        r = self.call(self.b, "GET", "/v1/sessions/%s/messages" % sid, SENDER)
        self.assertEqual(r.status, 200, r)
        return r.json["messages"]

    # ---- once-per-fleet hook
    def test_a_once_per_fleet_hook_handles_an_event_both_daemons_saw_once(self):
        sid = self.session(ADMIN, provider="echo")
        for daemon in (self.a, self.b):  # a retried archive: both daemons archive the session
            r = self.call(daemon, "POST", "/v1/sessions/%s/archive" % sid, ADMIN)
            self.assertEqual(r.status, 200, r)

        def handled(daemon):
            # Only this test makes backup events: each daemon's lane counts
            # its one archive event as delivered, or as claimed elsewhere.
            m = self.metrics(daemon)
            return sum(sample(m, name, hook="backup") or 0 for name in (
                "swarmhost_hook_events_delivered_total", "swarmhost_hook_events_handled_elsewhere_total",
                "swarmhost_hook_events_failed_total"))
        poll("both daemons' backup lanes to take the event", lambda: all(handled(d) >= 1 for d in (self.a, self.b)))
        self.assertEqual([handled(d) for d in (self.a, self.b)], [1, 1])
        m = [self.metrics(d) for d in (self.a, self.b)]
        delivered = [sample(x, "swarmhost_hook_events_delivered_total", hook="backup") for x in m]
        elsewhere = [sample(x, "swarmhost_hook_events_handled_elsewhere_total", hook="backup") for x in m]
        self.assertEqual(sorted(delivered), [0, 1], delivered)  # metrics stay per daemon
        self.assertEqual(sorted(elsewhere), [0, 1], elsewhere)
        snapshots = [p for d in self.backup_dirs for p in glob.glob(os.path.join(d, sid, "*-archived.json"))]
        self.assertEqual(len(snapshots), 1, snapshots)

    # ---- a daemon killed -9: its leases lapse
    def test_streams_of_a_daemon_killed_minus_9_lapse(self):
        sid = self.session(KILLED)
        extra = manifest_extra("http://127.0.0.1:%d" % self.fake.server_address[1],
                               swh_harness.make_tmpdir("swh-backup-"))
        (c,) = start_daemons([], lambda: daemon_on(self.server, extra_yaml=extra,
                                                   server_lines=["sse_keepalive_seconds: 1"]))
        self.addCleanup(c.cleanup)
        held = [c.client.stream("/v1/sessions/%s/events" % sid, None, method="GET", headers=KILLED.bearer(),
                                deadline_s=DEADLINE_S) for _ in range(MAX_STREAMS)]
        for s in held:
            self.assertEqual(getattr(s, "status", None), 200, s)
        refused = self.a.client.stream("/v1/sessions/%s/events" % sid, None, method="GET", headers=KILLED.bearer())
        self.assertEqual(refused.status, 429, refused)
        c.kill()  # SIGKILL: nothing is given back, nothing renewed
        for s in held:
            s.close()

        def opened():
            s = self.a.client.stream("/v1/sessions/%s/events" % sid, None, method="GET", headers=KILLED.bearer(),
                                     deadline_s=DEADLINE_S)
            return s if s.status == 200 else None
        self.addCleanup(poll("the killed daemon's leases to lapse", opened).close)


class FleetLimitsPostgres(FleetLimitsBase, unittest.TestCase):
    kind = "postgres"


class FleetLimitsRedis(FleetLimitsBase, unittest.TestCase):
    kind = "redis"


class FleetLimitsRedisCluster(FleetLimitsBase, unittest.TestCase):
    """The redis plugin on a three-master Redis Cluster: each limit's keys
    are one slot (hash tag {limit:<key>}), its scripts run on that slot's master."""
    kind = "redis-cluster"


if __name__ == "__main__":
    unittest.main()
