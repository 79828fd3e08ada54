"""Live session events across two daemons on one store (manifest
`events: { carrier: storage }`, docs/fleet-events.md): a listener on one
daemon hears, in order and with fleet-wide ids, the events of messages sent
through the other; a listener that reconnects to the other daemon with
Last-Event-ID gets what it missed, or is told it missed events the store no
longer holds. Runs on PostgreSQL (LISTEN/NOTIFY) and Redis (streams +
pub/sub), each with two real daemons."""

import json
import os
import subprocess
import sys
import threading
import time
import unittest
import uuid

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tooling"))
import swh_servers  # noqa: E402
from storage_daemons import daemon_on, make_server, start_daemons, stop_daemons  # noqa: E402

EVENTS = "events:\n  carrier: storage\n"
MAX_PER_SESSION = 20  # events_max_per_session: small, so trimming is testable
STREAM_DEADLINE_S = 60.0


def message_events(stream, count):
    """The next `count` events of a stream that are not keep-alives, as
    (id, type, content-or-None) tuples."""
    got = []
    for ev in stream:
        content = ev.json.get("content") if isinstance(ev.json, dict) else None
        got.append((ev.id, ev.event, content))
        if len(got) == count:
            return got
    raise AssertionError("stream ended after %r (raw tail %r)" % (got, stream.raw_lines[-10:]))


class FleetEventsBase:
    kind = None  # "postgres" | "redis"

    @classmethod
    def setUpClass(cls):
        cls.server = make_server(cls.kind)
        config = {"events_max_per_session": MAX_PER_SESSION}
        make = lambda: daemon_on(cls.server, storage_config=config, extra_yaml=EVENTS)  # noqa: E731
        cls.a, cls.b = start_daemons([cls.server], make, make)

    @classmethod
    def tearDownClass(cls):
        stop_daemons([cls.a, cls.b], [cls.server])

    def listen(self, daemon, sid, last_event_id=None):
        headers = {} if last_event_id is None else {"Last-Event-ID": str(last_event_id)}
        stream = daemon.client.stream("/v1/sessions/%s/events" % sid, None, method="GET",
                                      headers=headers, deadline_s=STREAM_DEADLINE_S)
        self.assertEqual(getattr(stream, "status", None), 200, stream)
        self.addCleanup(stream.close)
        return stream

    def wait_ready(self, stream):
        """Events before `ready` (a replay), as message_events tuples."""
        before = []
        for ev in stream:
            if ev.event == "ready":
                return before
            content = ev.json.get("content") if isinstance(ev.json, dict) else None
            before.append((ev.id, ev.event, content))
        raise AssertionError("stream ended before ready: %r" % stream.raw_lines[-10:])

    def wait_published(self, sid, last):
        """Returns once event `last` of the session is in the store: a send is
        answered when its messages are stored, and their events follow. A
        listener that resumes after `last - 1` gets it, replayed or live."""
        stream = self.listen(self.a, sid, last_event_id=last - 1)
        for ev in stream:
            if ev.id == str(last):
                stream.close()
                return
        raise AssertionError("event %d never came: %r" % (last, stream.raw_lines[-10:]))

    def new_session(self):
        return self.a.client.create_session("u-" + uuid.uuid4().hex[:12])["id"]

    def test_listener_on_a_hears_messages_sent_through_b_in_order(self):
        sid = self.new_session()
        stream = self.listen(self.a, sid)
        self.assertEqual(self.wait_ready(stream), [])
        for i in range(4):
            r = self.b.client.send(sid, "b%d" % i)
            self.assertEqual(r.status, 201, r)
        got = message_events(stream, 8)
        expected = []
        for i in range(4):
            expected += [("message", "b%d" % i), ("message", "echo#%d b%d" % (i + 1, i))]
        self.assertEqual([(t, c) for _, t, c in got], expected)
        # fleet-wide ids: the session's sequence, 1, 2, 3, ...
        self.assertEqual([int(i) for i, _, _ in got], list(range(1, 9)))

    def test_both_daemons_hear_one_order_of_concurrent_sends(self):
        sid = self.new_session()
        on_a, on_b = self.listen(self.a, sid), self.listen(self.b, sid)
        self.wait_ready(on_a)
        self.wait_ready(on_b)
        errors = []

        def writer(client, tag):
            for i in range(3):
                r = client.send(sid, "%s%d" % (tag, i))
                if r.status != 201:
                    errors.append(r)

        threads = [threading.Thread(target=writer, args=(d.client, tag)) for d, tag in ((self.a, "a"), (self.b, "b"))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
        self.assertFalse(any(t.is_alive() for t in threads), "writers hung")
        self.assertEqual(errors, [])
        heard_a, heard_b = message_events(on_a, 12), message_events(on_b, 12)
        self.assertEqual(heard_a, heard_b)  # same events, same ids, same order
        self.assertEqual([int(i) for i, _, _ in heard_a], list(range(1, 13)))
        users = [c for _, _, c in heard_a if not c.startswith("echo#")]
        for tag in ("a", "b"):  # each writer's messages in the order it sent them
            self.assertEqual([c for c in users if c.startswith(tag)], ["%s%d" % (tag, i) for i in range(3)])

    def test_reconnect_to_the_other_daemon_with_last_event_id_replays(self):
        sid = self.new_session()
        stream = self.listen(self.a, sid)
        self.wait_ready(stream)
        self.assertEqual(self.a.client.send(sid, "one").status, 201)
        first = message_events(stream, 2)
        stream.close()
        last_id = first[-1][0]
        self.assertEqual(last_id, "2")
        # missed while disconnected, sent through both daemons
        self.assertEqual(self.a.client.send(sid, "two").status, 201)
        self.assertEqual(self.b.client.send(sid, "three").status, 201)
        self.wait_published(sid, 6)
        again = self.listen(self.b, sid, last_event_id=last_id)
        replayed = self.wait_ready(again)
        # Each daemon publishes its events after answering the send, so A's
        # reply and B's next message may be numbered either way round; every
        # daemon sees the one order the store gave (docs/fleet-events.md).
        self.assertEqual([i for i, _, _ in replayed], ["3", "4", "5", "6"])
        contents = [c for _, _, c in replayed]
        self.assertEqual(sorted(contents), sorted(["two", "echo#2 two", "three", "echo#3 three"]))
        self.assertLess(contents.index("two"), contents.index("echo#2 two"))
        self.assertLess(contents.index("three"), contents.index("echo#3 three"))
        # and then live, without a gap or a repeat
        self.assertEqual(self.a.client.send(sid, "four").status, 201)
        self.assertEqual(message_events(again, 2), [("7", "message", "four"), ("8", "message", "echo#4 four")])

    def test_reconnect_past_the_retention_says_events_were_missed(self):
        sid = self.new_session()
        sends = MAX_PER_SESSION // 2 + 3  # two events each: the oldest are trimmed
        for i in range(sends):
            self.assertEqual(self.b.client.send(sid, "m%d" % i).status, 201)
        self.wait_published(sid, 2 * sends)
        stream = self.listen(self.a, sid, last_event_id=1)
        replayed = self.wait_ready(stream)
        self.assertEqual(replayed[0][1], "events_missed", replayed[:2])
        self.assertIsNone(replayed[0][0])  # a notice, not an event of the session
        ids = [int(i) for i, _, _ in replayed[1:]]
        last = 2 * sends
        self.assertEqual(ids, list(range(last - MAX_PER_SESSION + 1, last + 1)))
        self.assertEqual(replayed[-1][2], "echo#%d m%d" % (sends, sends - 1))

    def test_an_id_the_store_never_gave_says_events_were_missed(self):
        sid = self.new_session()
        self.assertEqual(self.a.client.send(sid, "x").status, 201)
        self.wait_published(sid, 2)
        stream = self.listen(self.b, sid, last_event_id=999)
        replayed = self.wait_ready(stream)
        self.assertEqual([t for _, t, _ in replayed], ["events_missed", "message", "message"], replayed)
        self.assertEqual([i for i, _, _ in replayed[1:]], ["1", "2"])

    def test_a_last_event_id_that_is_not_a_number_is_refused(self):
        sid = self.new_session()
        r = self.a.client.stream("/v1/sessions/%s/events" % sid, None, method="GET",
                                 headers={"Last-Event-ID": "abc"})
        self.assertEqual(r.status, 400, r)
        self.assertIn("Last-Event-ID", r.json["error"]["message"])


class PostgresFleetEvents(FleetEventsBase, unittest.TestCase):
    kind = "postgres"


class RedisFleetEvents(FleetEventsBase, unittest.TestCase):
    kind = "redis"


class CarrierOutage(unittest.TestCase):
    """Sessions in PostgreSQL, events carried by a Redis of their own
    (`carrier: plugin`), so the carrier can die while the store serves:
    messages are still acknowledged and stored, listeners are told they
    missed events, the failure is logged and counted, and live events resume
    when the carrier is back."""

    @classmethod
    def setUpClass(cls):
        cls.store = make_server("postgres")
        cls.carrier = make_server("redis")
        events = ("events:\n  carrier: plugin\n  plugin: redis\n  name: bus\n  config:\n"
                  "    port: %d\n    connect_timeout_ms: 1000\n    command_timeout_ms: 2000\n" % cls.carrier.port)
        make = lambda: daemon_on(cls.store, extra_yaml=events)  # noqa: E731
        cls.a, cls.b = start_daemons([cls.store, cls.carrier], make, make)

    @classmethod
    def tearDownClass(cls):
        stop_daemons([cls.a, cls.b], [cls.carrier, cls.store])

    def wait_log(self, daemon, text, count, deadline_s=30.0):
        deadline = time.monotonic() + deadline_s
        while daemon.log().count(text) < count:
            if time.monotonic() > deadline:
                self.fail("%r did not appear %d times in the log:\n%s" % (text, count, daemon.log_tail(20)))
            time.sleep(0.05)

    def test_carrier_down_loses_no_message_and_listeners_resume(self):
        a, b = self.a.client, self.b.client
        sid = a.create_session("u-" + uuid.uuid4().hex[:12])["id"]
        stream = a.stream("/v1/sessions/%s/events" % sid, None, method="GET", deadline_s=STREAM_DEADLINE_S)
        self.addCleanup(stream.close)
        self.assertEqual(next(iter(stream)).event, "ready")
        self.assertEqual(b.send(sid, "before").status, 201)
        self.assertEqual([ev[0] for ev in message_events(stream, 2)], ["1", "2"])

        self.carrier.stop()
        self.wait_log(self.a, "lost its listening link", 1)
        r = a.send(sid, "while down")
        self.assertEqual(r.status, 201, r)  # acknowledged: stored in PostgreSQL
        # one notice per event the carrier could not take (the user's and the reply's)
        self.assertEqual(message_events(stream, 2), [(None, "events_missed", None)] * 2)
        self.assertEqual([m["content"] for m in b.messages(sid)],
                         ["before", "echo#1 before", "while down", "echo#2 while down"])
        self.assertIn("failed to publish", self.a.log())
        metrics = a.get("/metrics").raw.decode()
        self.assertIn('swarmhost_events_carrier_errors_total{operation="publish"}', metrics)

        self.carrier.start()  # same port and data (append-only file)
        self.wait_log(self.a, "is listening", 2)
        self.wait_log(self.b, "is listening", 2)
        self.assertEqual(b.send(sid, "after").status, 201)
        self.assertEqual(message_events(stream, 2), [("3", "message", "after"), ("4", "message", "echo#3 after")])


class DaemonDiesBeforePublishing(unittest.TestCase):
    """A daemon killed after storing a send's messages and before the store
    has numbered their events (docs/fleet-events.md "When a daemon dies"):
    the send is not answered before its events are in the store, and its
    retry with the same Idempotency-Key on the other daemon gets the stored
    answer and publishes the events that are missing, once.

    The daemon is caught between the two deterministically: a psql session
    holds the lock of the session's row in swh_event_heads, which the
    carrier's numbering statement takes, while messages go to other tables."""

    @classmethod
    def setUpClass(cls):
        cls.server = make_server("postgres")
        make = lambda: daemon_on(cls.server, extra_yaml=EVENTS)  # noqa: E731
        cls.a, cls.b = start_daemons([cls.server], make, make)

    @classmethod
    def tearDownClass(cls):
        stop_daemons([cls.a, cls.b], [cls.server])

    def psql_argv(self):
        return [os.path.join(swh_servers.PG_BIN, "psql"), "-X", "-q", "-t", "-A", "-h", "127.0.0.1",
                "-p", str(self.server.port), "-U", self.server.user, "-d", self.server.database]

    def psql_json(self, sql):
        p = subprocess.run(self.psql_argv() + ["-c", sql], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           timeout=30)
        self.assertEqual(p.returncode, 0, p.stdout)
        return json.loads(p.stdout.decode("utf-8"))

    def wait_for(self, what, probe, deadline_s=30.0):
        deadline = time.monotonic() + deadline_s
        while not probe():
            if time.monotonic() > deadline:
                self.fail("waited %.0f s for %s" % (deadline_s, what))
            time.sleep(0.05)

    def hold_event_lock(self, sid):
        """A psql session holding the row lock the numbering of `sid`'s
        events needs; returns it (write COMMIT to let go)."""
        holder = subprocess.Popen(self.psql_argv() + ["-v", "ON_ERROR_STOP=1"], stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        self.addCleanup(lambda: holder.poll() is None and holder.kill())
        holder.stdin.write(("BEGIN;\nSELECT 'locked:' || last_seq FROM swh_event_heads WHERE session_id = '%s' "
                            "FOR UPDATE;\n" % sid).encode())
        holder.stdin.flush()
        line = holder.stdout.readline().decode().strip()
        self.assertTrue(line.startswith("locked:"), line)
        return holder

    def waiting_on_the_lock(self):
        return self.psql_json("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                              "AND query LIKE '%swh_event_heads%'") > 0

    def stored(self, sid):
        return self.psql_json("SELECT count(*) FROM swh_messages WHERE session_id = '%s'" % sid)

    def test_a_retry_publishes_what_the_dead_daemon_did_not(self):
        sid = self.a.client.create_session("u-" + uuid.uuid4().hex[:12])["id"]
        self.assertEqual(self.a.client.send(sid, "first").status, 201)  # events 1 and 2; the row exists
        holder = self.hold_event_lock(sid)
        answered = []
        sender = threading.Thread(target=lambda: answered.append(self.a.client.post(
            "/v1/sessions/%s/messages" % sid, {"content": "second"}, headers={"Idempotency-Key": "k-second"})),
            daemon=True)
        sender.start()
        self.wait_for("daemon A to wait on the events row lock", self.waiting_on_the_lock)
        self.wait_for("the question and the reply to be stored", lambda: self.stored(sid) == 4)
        # Stored, not yet numbered: not acknowledged either. (Were it answered
        # now, a daemon dying here would leave an acknowledged message that no
        # listener ever hears, and no retry to publish it.)
        sender.join(timeout=1.0)
        self.assertEqual(answered, [], "answered before its events were in the store")

        self.a.kill()  # SIGKILL, still waiting on the lock
        # Its waiting statement would still run once the lock is let go (the
        # server notices a dead client only when it next talks to it); a
        # daemon on a lost machine never gets that far.
        self.psql_json("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                       "WHERE wait_event_type = 'Lock' AND query LIKE '%swh_event_heads%'")
        holder.stdin.write(b"COMMIT;\n")
        holder.stdin.close()
        holder.wait(timeout=30)
        self.assertEqual(self.psql_json("SELECT count(*) FROM swh_events WHERE session_id = '%s'" % sid), 2)

        retry = self.b.client.post("/v1/sessions/%s/messages" % sid, {"content": "second"},
                                   headers={"Idempotency-Key": "k-second"})
        self.assertEqual(retry.status, 201, retry)
        self.assertEqual(retry.json["assistant_message"]["content"], "echo#2 second")
        stream = self.b.client.stream("/v1/sessions/%s/events" % sid, None, method="GET",
                                      headers={"Last-Event-ID": "2"}, deadline_s=STREAM_DEADLINE_S)
        self.assertEqual(getattr(stream, "status", None), 200, stream)
        self.addCleanup(stream.close)
        self.assertEqual([(i, t, c) for i, t, c in message_events(stream, 3)],
                         [("3", "message", "second"), ("4", "message", "echo#2 second"), (None, "ready", None)])
        # Asked again: the same answer, and nothing announced twice.
        again = self.b.client.post("/v1/sessions/%s/messages" % sid, {"content": "second"},
                                   headers={"Idempotency-Key": "k-second"})
        self.assertEqual(again.status, 201, again)
        self.assertEqual(again.json["assistant_message"]["id"], retry.json["assistant_message"]["id"])
        self.assertEqual(self.psql_json("SELECT count(*) FROM swh_events WHERE session_id = '%s'" % sid), 4)
        self.assertEqual(self.stored(sid), 4)


if __name__ == "__main__":
    unittest.main()
