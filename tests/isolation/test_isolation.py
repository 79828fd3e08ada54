"""Plugin crash isolation through the real daemon (docs/reliability.md,
"Isolation"). The fixture middleware `fixture_crash` segfaults on
"__crash__" and sleeps forever on "__hang__":

- in process, the segfault ends the daemon (it exits by SIGSEGV);
- with `isolation: process` and `fail: closed`, the message gets a 503 JSON
  error naming the middleware, the daemon and /healthz stay up, the child is
  restarted (after a backoff) and later messages pass; a hang gets 503/504
  once `isolation_timeout_ms` is over and the daemon lives on;
- with `fail: open`, the message passes unfiltered;
- an isolated hook (`metrics`) still receives events and renders /metrics;
- after restarts the daemon has exactly one live child per isolated
  instance, and no zombie.
No assertion depends on how long anything took."""

import os
import signal
import time
import unittest

from pipeline_support import POLL_DEADLINE_S, PipelineTestCase, pipeline_manifest, sample, uid
from swh_harness import Daemon, free_port, make_tmpdir

CRASH = "__crash__"
HANG = "__hang__"
CRASH_PLUGIN = "swh_fixture_crash_middleware.so"
METRICS_PLUGIN = "swh_hook_metrics.so"


def children(pid):
    """(pid, state, cmdline) of every child process of `pid`, zombies included."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % entry) as f:
                stat = f.read()
            # comm may hold spaces and parentheses: fields follow the last ')'.
            fields = stat[stat.rindex(")") + 2:].split()
            state, ppid = fields[0], int(fields[1])
            if ppid != pid:
                continue
            with open("/proc/%s/cmdline" % entry, "rb") as f:
                cmdline = f.read().replace(b"\0", b" ").decode("utf-8", "replace")
        except (OSError, ValueError):
            continue  # it ended while we looked
        found.append((int(entry), state, cmdline))
    return found


class IsolationCase(PipelineTestCase):
    def daemon_alive(self):
        self.assertIsNone(self.daemon.proc.poll(), "the daemon exited\n%s" % self.daemon.log_tail(30))
        self.assertEqual(self.client.get("/healthz").status, 200)

    def wait_recovered(self, sid):
        """Sends normal messages until one passes through the middleware's
        child (during a restart backoff they fail fast: 503 when fail-closed,
        unfiltered when fail-open); returns that answer. Every test starts
        with it, since an earlier test of the class may have crashed the child."""
        def attempt():
            r = self.client.send(sid, "normal %s" % uid("m"))
            if r.status == 201 and r.json["user_message"]["content"].endswith(" [crash-ok]"):
                return r
            self.assertIn(r.status, (201, 503), r)
            return None
        return self.wait_for("the middleware's plugin process to answer", attempt)

    def plugin_children(self, plugin_file):
        return [c for c in children(self.daemon.proc.pid) if plugin_file in c[2]]


class InProcessCrashKillsTheDaemon(unittest.TestCase):
    """The comparison: the same plugin without isolation takes the daemon down."""

    def test_segfault_in_process_ends_the_daemon(self):
        workdir, port = make_tmpdir("swh-isolation-"), free_port()
        manifest = pipeline_manifest(port, workdir, middleware=[
            {"name": "crashy", "plugin": "fixture_crash", "fail": "closed"}])
        daemon = Daemon(workdir=workdir, port=port, manifest=manifest)
        try:
            daemon.start()
            sid = daemon.client.create_session(uid())["id"]
            r = daemon.client.send(sid, "hello")
            self.assertEqual(r.status, 201, r)
            self.assertEqual(children(daemon.proc.pid), [], "in process: no plugin child expected")
            with self.assertRaises((ConnectionError, OSError)):
                daemon.client.send(sid, "boom " + CRASH)
            rc = daemon.wait_exit(timeout=POLL_DEADLINE_S)
            self.assertEqual(rc, -signal.SIGSEGV, "the daemon should have died by SIGSEGV\n%s" % daemon.log_tail())
        finally:
            daemon.cleanup()


class IsolatedFailClosed(IsolationCase):
    middleware = [{"name": "crashy", "plugin": "fixture_crash", "fail": "closed", "isolation": "process",
                   "isolation_timeout_ms": 1000}]
    hooks = [{"name": "isometrics", "plugin": "metrics", "isolation": "process", "config": {"prefix": "iso_"}}]

    def test_1_plugins_run_in_child_processes(self):
        sid = self.session()["id"]
        self.wait_recovered(sid)
        r = self.send_ok(sid, "hello")
        self.assertEqual(r["user_message"]["content"], "hello [crash-ok]")
        self.assertEqual(len(self.plugin_children(CRASH_PLUGIN)), 1, children(self.daemon.proc.pid))
        self.assertEqual(len(self.plugin_children(METRICS_PLUGIN)), 1, children(self.daemon.proc.pid))

    def test_2_segfault_gets_503_and_the_daemon_lives(self):
        sid = self.session()["id"]
        self.wait_recovered(sid)
        before = self.plugin_children(CRASH_PLUGIN)
        r = self.client.send(sid, "boom " + CRASH)
        self.assertError(r, 503, "unavailable")
        message = r.json["error"]["message"]
        self.assertIn("crashy", message, r)
        self.assertIn("SIGSEGV", message, r)
        self.daemon_alive()
        # The crashed message was not stored; the next one goes through a new child.
        self.wait_recovered(sid)
        after = self.plugin_children(CRASH_PLUGIN)
        self.assertEqual(len(after), 1, after)
        self.assertNotEqual(before[0][0], after[0][0], "the child should have been replaced")
        contents = [m["content"] for m in self.client.messages(sid)]
        self.assertFalse(any(CRASH in c for c in contents), contents)

    def test_3_hang_gets_503_or_504_and_the_daemon_lives(self):
        sid = self.session()["id"]
        self.wait_recovered(sid)
        r = self.client.send(sid, "stall " + HANG)
        self.assertIn(r.status, (503, 504), r)
        self.assertIn("crashy", r.json["error"]["message"], r)
        self.assertIn("did not answer", r.json["error"]["message"], r)
        self.daemon_alive()
        self.wait_recovered(sid)

    def test_4_isolated_hook_still_renders_metrics(self):
        sid = self.session()["id"]
        self.wait_recovered(sid)
        self.wait_for("the isolated metrics hook to count the user message",
                      lambda: (sample(self.metrics(), "iso_messages_total", role="user") or 0) >= 1)
        self.assertIsNotNone(sample(self.metrics(), "iso_sessions_created_total"))

    def test_5_no_zombies_after_restarts(self):
        sid = self.session()["id"]
        self.wait_recovered(sid)
        for _ in range(3):
            r = self.client.send(sid, "boom " + CRASH)
            self.assertEqual(r.status, 503, r)
            self.wait_recovered(sid)
        kids = children(self.daemon.proc.pid)
        self.assertEqual([k for k in kids if k[1] == "Z"], [], kids)
        self.assertEqual(len(self.plugin_children(CRASH_PLUGIN)), 1, kids)
        self.assertEqual(len(self.plugin_children(METRICS_PLUGIN)), 1, kids)
        self.assertEqual(len(kids), 2, kids)


class IsolatedFailOpen(IsolationCase):
    middleware = [{"name": "crashy", "plugin": "fixture_crash", "fail": "open", "isolation": "process"}]

    def test_segfault_fails_open_and_the_message_passes_unfiltered(self):
        sid = self.session()["id"]
        self.wait_recovered(sid)
        r = self.send_ok(sid, "boom " + CRASH)
        self.assertEqual(r["user_message"]["content"], "boom " + CRASH)
        self.assertNotIn("crashy", r["user_message"]["metadata"].get("processed_middleware", []))
        self.daemon_alive()
        self.wait_recovered(sid)


if __name__ == "__main__":
    unittest.main()
