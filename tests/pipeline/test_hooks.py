"""Lifecycle hooks through the real daemon: metrics, backup and user_behavior
receive every event type; /metrics is valid Prometheus text; a deliberately
slow hook (tests/fixture_plugins/fixture_slow_hook.c, blocked on a gate file)
delays neither requests nor the other hooks. Background work is awaited by
polling state (counters, files) with a generous deadline; nothing asserts on
how long anything took."""

import glob
import json
import os
import sys
import threading
import unittest

from pipeline_support import PipelineTestCase, parse_prometheus, sample, uid
import swh_harness
from swh_harness import FAIL_TOKEN

EVENTS = ("session_created", "message_sent", "session_archived", "session_deleted", "provider_error")


def value(parsed, name, **labels):
    v = sample(parsed, name, **labels)
    return 0 if v is None else v


class HookTests(PipelineTestCase):
    hooks = [
        {"name": "metrics", "plugin": "metrics", "config": {"slow_response_ms": -1}},
        {"name": "backup", "plugin": "backup",
         "config": {"dir": "{workdir}/backups", "triggers": ["created", "every_2_messages", "archived"],
                    "keep_history": True}},
        {"name": "behavior", "plugin": "user_behavior",
         "config": {"output_file": "{workdir}/behavior/flags.jsonl", "window_seconds": 3600,
                    "max_sessions_per_window": 2, "max_messages_per_window": 3, "max_active_sessions": 3}},
    ]

    def wait_deltas(self, before, expected):
        """Waits until every (name, labels) in `expected` grew by its value since `before`."""
        def reached():
            now = self.metrics()
            for (name, labels), delta in expected.items():
                if value(now, name, **dict(labels)) - value(before, name, **dict(labels)) < delta:
                    return None
            return now
        return self.wait_for("metrics deltas %r" % (expected,), reached)

    def flags(self):
        path = os.path.join(self.workdir, "behavior", "flags.jsonl")
        if not os.path.exists(path):
            return []
        with open(path, encoding="utf-8") as f:
            return [json.loads(line) for line in f if line.strip()]

    def backups(self, sid):
        return sorted(glob.glob(os.path.join(self.workdir, "backups", sid, "*.json")))

    def test_every_event_type_reaches_every_hook(self):
        before = self.metrics()
        user = uid("life")
        sid = self.client.create_session(user)["id"]
        self.send_ok(sid, "one two")
        self.send_ok(sid, "three")
        r = self.client.send(sid, "then %s" % FAIL_TOKEN)  # provider_error (the question stays stored)
        self.assertEqual(r.status, 502, r)
        self.assertEqual(self.client.post("/v1/sessions/%s/archive" % sid).status, 200)
        sid2 = self.client.create_session(user)["id"]
        self.assertEqual(self.client.delete("/v1/sessions/%s" % sid2).status, 204)

        behaviour = {("swarmhost_user_behavior_events_total", (("event", e),)): n for e, n in
                     zip(EVENTS, (2, 5, 1, 1, 1))}
        metrics = {
            ("swarmhost_sessions_created_total", (("provider", "echo"),)): 2,
            ("swarmhost_messages_total", (("role", "user"),)): 3,
            ("swarmhost_messages_total", (("role", "assistant"),)): 2,
            ("swarmhost_provider_errors_total", (("provider", "echo"),)): 1,
            ("swarmhost_sessions_archived_total", ()): 1,
            ("swarmhost_sessions_deleted_total", ()): 1,
            ("swarmhost_response_time_ms_count", ()): 2,
            ("swarmhost_token_usage_count", (("kind", "completion"),)): 2,
            ("swarmhost_session_duration_seconds_count", ()): 1,
            ("swarmhost_message_length_chars_count", (("role", "user"),)): 3,
            ("swarmhost_slow_responses_total", ()): 2,
        }
        after = self.wait_deltas(before, {**behaviour, **metrics})
        # the host's own per-hook counters agree: nothing failed or was dropped
        for hook in ("metrics", "backup", "behavior"):
            self.assertEqual(value(after, "swarmhost_hook_events_failed_total", hook=hook), 0, hook)
            self.assertEqual(value(after, "swarmhost_hook_events_dropped_total", hook=hook), 0, hook)
        self.assertEqual(value(after, "swarmhost_hook_events_delivered_total", hook="behavior")
                         - value(before, "swarmhost_hook_events_delivered_total", hook="behavior"), 10)
        # slow-response alerts are log lines naming the session
        self.wait_for("slow response alert", lambda: "slow response in session %s" % sid in self.daemon.log())

        # backup: created, every 2 messages (twice: 5 message events), archived
        files = self.wait_for("4 backups of %s" % sid, lambda: len(self.backups(sid)) >= 4 and self.backups(sid))
        triggers = [os.path.basename(f).split("-", 1)[1][:-5] for f in files]
        self.assertEqual(sorted(triggers), sorted(["created", "every_2_messages", "every_2_messages", "archived"]))
        docs = {}
        for f in files:
            with open(f, encoding="utf-8") as fh:
                doc = json.load(fh)
            self.assertEqual(doc["format"], "swarmhost.session_backup/1")
            docs.setdefault(doc["trigger"], []).append(doc)
        created = docs["created"][0]
        self.assertEqual(created["session"]["status"], "active")
        self.assertEqual(created["messages"], [])
        archived = docs["archived"][0]
        # the archived snapshot is the whole session exactly as the API shows it
        self.assertEqual(archived["session"], self.client.get("/v1/sessions/%s" % sid).json)
        self.assertEqual(archived["messages"], self.client.messages(sid))
        self.assertEqual([m["role"] for m in archived["messages"]], ["user", "assistant", "user", "assistant", "user"])
        counts = sorted(len(d["messages"]) for d in docs["every_2_messages"])
        self.assertEqual(counts[0] >= 2 and counts[1] >= 4, True, counts)
        # atomic writes leave no temp files behind
        leftovers = [n for n in os.listdir(os.path.join(self.workdir, "backups", sid)) if n.startswith(".")]
        self.assertEqual(leftovers, [])
        # the deleted session got its created snapshot only
        self.assertEqual([os.path.basename(f).split("-", 1)[1] for f in
                          self.wait_for("backup of %s" % sid2, lambda: self.backups(sid2))], ["created.json"])

    def test_backup_snapshots_from_its_cache_equal_the_store(self):
        """A snapshot whose session had no message the hook did not see reads
        only the row (swarmhost_backup_reads_total{kind="row"}) and writes
        exactly what a full read would: the messages as the API shows them."""
        before = self.metrics()
        sid = self.client.create_session(uid("cache"))["id"]
        def snapshots():
            return [f for f in self.backups(sid) if f.endswith("-every_2_messages.json")]

        for n in (1, 2, 3):
            self.send_ok(sid, "message %d" % n)
            # This session's own snapshot of this send is written: the hook has
            # had its events (a global delivered count can be met by events of
            # earlier tests still in the hook's queue, and then the next send
            # overtakes the hook and its snapshot reads in full).
            self.wait_for("backup caught up", lambda: len(snapshots()) >= n or None)
        after = self.metrics()
        self.assertGreaterEqual(value(after, "swarmhost_backup_reads_total", kind="row")
                                - value(before, "swarmhost_backup_reads_total", kind="row"), 2)
        files = snapshots()
        self.assertEqual(len(files), 3, files)
        api = self.client.messages(sid)
        self.assertEqual(len(api), 6)
        for i, f in enumerate(files):
            with open(f, encoding="utf-8") as fh:
                doc = json.load(fh)
            self.assertEqual(doc["messages"], api[:2 * (i + 1)], f)
        self.assertEqual(doc["session"], self.client.get("/v1/sessions/%s" % sid).json)

    def test_user_behavior_flags_bursts_once(self):
        user = uid("burst")
        sids = [self.client.create_session(user)["id"] for _ in range(5)]
        for i in range(4):
            self.send_ok(sids[0], "message %d?" % i)
        calm = uid("calm")
        self.send_ok(self.client.create_session(calm)["id"], "just one")

        def flagged():
            mine = [f for f in self.flags() if f["user_id"] == user]
            return mine if {"session_burst", "high_concurrent_sessions", "message_burst"} <= {f["flag"] for f in mine} else None
        self.wait_for("the three flags of %s" % user, flagged)
        # everything for both users is processed once the behavior hook has seen all their events
        before = self.metrics()
        self.client.create_session(calm)  # a marker event after ours
        self.wait_for("behavior hook to catch up", lambda: value(self.metrics(), "swarmhost_hook_events_delivered_total", hook="behavior")
                      > value(before, "swarmhost_hook_events_delivered_total", hook="behavior")
                      and value(self.metrics(), "swarmhost_hook_queue_length", hook="behavior") == 0)
        mine = [f for f in self.flags() if f["user_id"] == user]
        self.assertEqual(sorted(f["flag"] for f in mine),
                         ["high_concurrent_sessions", "message_burst", "session_burst"],
                         "each burst is flagged once, when it crosses the threshold: %r" % mine)
        burst = next(f for f in mine if f["flag"] == "session_burst")
        self.assertEqual((burst["count"], burst["threshold"], burst["window_seconds"]), (3, 2, 3600))
        self.assertEqual(burst["session_id"], sids[2])
        msg = next(f for f in mine if f["flag"] == "message_burst")
        self.assertEqual(msg["count"], 4)
        self.assertEqual(msg["patterns"]["question_share"], 1.0)
        self.assertEqual([f for f in self.flags() if f["user_id"] == calm], [])
        self.assertGreaterEqual(value(self.metrics(), "swarmhost_user_behavior_flags_total", flag="session_burst"), 1)

    def test_metrics_endpoint_is_valid_prometheus_text(self):
        sid = self.client.create_session(uid())["id"]
        self.send_ok(sid, "fill the histograms")
        self.wait_for("the metrics hook to see the reply",
                      lambda: value(self.metrics(), "swarmhost_response_time_ms_count") >= 1)
        r = self.client.get("/metrics")
        self.assertEqual(r.status, 200)
        self.assertTrue(r.content_type.startswith("text/plain"), r.content_type)
        text = r.raw.decode("utf-8")
        self.assertTrue(text.endswith("\n"), "the exposition must end with a newline")
        parsed = parse_prometheus(text)  # raises on any line that is neither a comment nor a sample
        names = {n for n, _, _ in parsed["samples"]}
        for hook in ("metrics", "backup", "behavior"):
            self.assertIsNotNone(sample(parsed, "swarmhost_hook_events_delivered_total", hook=hook), hook)
            self.assertIsNotNone(sample(parsed, "swarmhost_hook_queue_length", hook=hook), hook)
        for family in ("swarmhost_response_time_ms", "swarmhost_message_length_chars", "swarmhost_token_usage",
                       "swarmhost_session_duration_seconds"):
            self.assertEqual(parsed["types"].get(family), "histogram", family)
        self.assertIn("swarmhost_backup_snapshots_total", names)
        # histogram buckets are cumulative and end at +Inf == _count
        series = {}
        for n, labels, v in parsed["samples"]:
            if n.endswith("_bucket"):
                key = (n[:-7], tuple(sorted((k, x) for k, x in labels.items() if k != "le")))
                series.setdefault(key, []).append((float(labels["le"]), v))
        self.assertTrue(series)
        for (family, labels), buckets in series.items():
            values = [v for _, v in sorted(buckets)]
            self.assertEqual(values, sorted(values), (family, labels, buckets))
            self.assertEqual(sorted(buckets)[-1][0], float("inf"))
            self.assertEqual(values[-1], sample(parsed, family + "_count", **dict(labels)), family)


class SlowHookTests(PipelineTestCase):
    hooks = [
        {"name": "slow", "plugin": "fixture_slow_hook", "config": {"gate_file": "{workdir}/gate",
                                                                   "max_wait_ms": 30000}},
        {"name": "metrics", "plugin": "metrics"},
    ]

    @classmethod
    def tearDownClass(cls):
        cls.open_gate()  # let the slow hook drain, or shutdown would wait for it
        super().tearDownClass()

    @classmethod
    def open_gate(cls):
        with open(os.path.join(cls.workdir, "gate"), "w") as f:
            f.write("open\n")

    def test_slow_hook_delays_neither_requests_nor_other_hooks(self):
        sid = self.client.create_session(uid())["id"]
        for i in range(10):
            self.send_ok(sid, "message %d" % i)  # every request completes while the slow hook is stuck
        st = self.client.stream("/v1/sessions/%s/messages" % sid, {"content": "streamed", "stream": True})
        self.assertEqual([e.event for e in st.read_all()][-1], "done")
        events = 1 + 2 * 11
        # the other hook got everything, while the slow hook still holds a backlog
        m = self.wait_for("the metrics hook to get all %d events" % events,
                          lambda: (lambda m: m if value(m, "swarmhost_hook_events_delivered_total", hook="metrics")
                                   == events else None)(self.metrics()))
        self.assertEqual(value(m, "swarmhost_hook_events_delivered_total", hook="slow"), 0)
        self.assertIn(value(m, "swarmhost_hook_queue_length", hook="slow"), (events - 1, events),
                         "one event is being delivered, the rest waits in the slow hook's queue")
        self.assertEqual(value(m, "swarmhost_hook_queue_length", hook="metrics"), 0)
        self.assertEqual(value(m, "swarmhost_hook_events_dropped_total", hook="slow"), 0)
        self.assertEqual(value(m, "swarmhost_messages_total", role="assistant"), 11)
        # the API still answers everything else too
        self.assertEqual(len(self.client.messages(sid)), 22)
        # open the gate: the backlog is delivered in order, nothing lost
        self.open_gate()
        m = self.wait_for("the slow hook to drain",
                          lambda: (lambda m: m if value(m, "swarmhost_hook_events_delivered_total", hook="slow")
                                   == events else None)(self.metrics()))
        self.assertEqual(value(m, "swarmhost_hook_queue_length", hook="slow"), 0)
        self.assertEqual(value(m, "swarmhost_fixture_slow_hook_events_total"), events)
        self.assertEqual(value(m, "swarmhost_hook_events_failed_total", hook="slow"), 0)


class BackupBehindTests(PipelineTestCase):
    """Sends racing on one session faster than the backup hook snapshots it:
    a count-triggered snapshot that a later one of the same file supersedes
    may be skipped (swarmhost_backup_superseded_total), but every trigger is
    either written or superseded, and the file left at the end is the
    session as the store holds it."""
    hooks = [
        {"name": "backup", "plugin": "backup",
         "config": {"dir": "{workdir}/backups", "triggers": ["every_2_messages"]}},
    ]
    SENDERS = 8
    SENDS_EACH = 6

    def test_skipped_snapshots_never_leave_a_stale_file(self):
        sid = self.client.create_session(uid("behind"))["id"]
        self.send_ok(sid, "first")  # the first snapshot reads in full: the hook follows the session from then
        errors = []

        def sender(k):
            client = swh_harness.Client(self.daemon.port)
            for i in range(self.SENDS_EACH):
                r = client.send(sid, "sender %d message %d" % (k, i))
                if r.status != 201:
                    errors.append(r)

        threads = [threading.Thread(target=sender, args=(k,)) for k in range(self.SENDERS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
        self.assertFalse(any(t.is_alive() for t in threads), "senders hung")
        self.assertEqual(errors, [])
        messages = 2 * (1 + self.SENDERS * self.SENDS_EACH)
        triggers = messages // 2
        m = self.wait_for("the backup hook to take every event", lambda: (lambda m: m if value(
            m, "swarmhost_hook_events_delivered_total", hook="backup") >= messages else None)(self.metrics()))
        written = value(m, "swarmhost_backup_snapshots_total", trigger="every_2_messages")
        skipped = value(m, "swarmhost_backup_superseded_total")
        self.assertEqual(written + skipped, triggers, "every trigger is written or superseded")
        self.assertEqual(value(m, "swarmhost_backup_failures_total"), 0)
        with open(os.path.join(self.workdir, "backups", sid + ".json"), encoding="utf-8") as f:
            doc = json.load(f)
        self.assertEqual(doc["messages"], self.client.messages(sid))
        sys.stderr.write("\nbackup: %d snapshots due, %d written, %d superseded\n" % (triggers, written, skipped))


class BackupQueueIdleTests(PipelineTestCase):
    """The backup hook puts a snapshot off for events it expects; events
    that never come hold it up only until the hook's queue runs empty. (A
    daemon of its own: BackupBehindTests counts every snapshot of its daemon.)"""
    hooks = BackupBehindTests.hooks

    def test_a_snapshot_put_off_for_events_that_never_come_is_taken_when_the_queue_runs_empty(self):
        """A conversation's items are stored without a hook event. When the
        row counts such a message, a count-triggered snapshot is put off for
        its event (swarmhost_backup_deferred_total); the event never comes,
        and the snapshot is taken, in full, when the hook's queue runs empty
        (SWH_EVENT_QUEUE_IDLE). Without that the file would stay as the first
        snapshot left it."""
        r = self.client.post("/v1/conversations", {"items": [{"role": "user", "content": "item 1"}]})
        self.assertEqual(r.status, 200, r)
        conversation = r.json["id"]
        h = conversation[len("conv_"):]
        sid = "-".join((h[:8], h[8:12], h[12:16], h[16:20], h[20:]))
        path = os.path.join(self.workdir, "backups", sid + ".json")

        def file_is_the_store(count):
            if not os.path.exists(path):
                return None
            with open(path, encoding="utf-8") as f:
                doc = json.load(f)
            api = self.client.messages(sid)
            return doc if len(api) == count and doc["messages"] == api else None

        self.send_ok(sid, "first send")  # a trigger: read in full (the hook does not follow the session yet)
        self.wait_for("the first snapshot", lambda: file_is_the_store(3))
        before = self.metrics()
        r = self.client.post("/v1/conversations/%s/items" % conversation,
                             {"items": [{"role": "user", "content": "item 2"}]})
        self.assertEqual(r.status, 200, r)
        self.send_ok(sid, "second send")  # a trigger, with a message in the row whose event never comes
        self.wait_for("the put-off snapshot", lambda: file_is_the_store(6))
        after = self.metrics()
        self.assertEqual(value(after, "swarmhost_backup_deferred_total")
                         - value(before, "swarmhost_backup_deferred_total"), 1)
        self.assertEqual(value(after, "swarmhost_backup_reads_total", kind="full")
                         - value(before, "swarmhost_backup_reads_total", kind="full"), 1)


if __name__ == "__main__":
    unittest.main()
