"""Hot reload swaps the pipeline: POST /v1/admin/reload and SIGHUP both
re-read the manifest, and the next message goes through the new pipeline
(a content_filter middleware added, then removed). The generation counts
successful reloads."""

import unittest

from swh_harness import DaemonTestCase
from reload_support import (BLOCKED, REDACTED, filter_section, log_lines_matching, manifest, reload_http,
                            reload_sighup, rewrite, wait_until)

RESTART_WARNING = r" warn(ing)? .*reload: .*only after a restart"


class ReloadSwapsThePipeline(DaemonTestCase):
    def setUp(self):
        self.sid = self.client.create_session("reload-swap")["id"]
        self.plain = manifest(self.daemon)
        self.filtered = manifest(self.daemon, tail=filter_section())
        # the tests share one daemon: each starts from the plain pipeline
        rewrite(self.daemon, self.plain)
        self.reload_ok("http")

    def assertFiltered(self, filtered, stream=False):
        """Send a message with the blocked word; check the stored user message
        and the reply (echo repeats what reached it) are (not) redacted."""
        text = "hello %s world" % BLOCKED
        expected = text.replace(BLOCKED, REDACTED) if filtered else text
        if stream:
            events = self.client.stream("/v1/sessions/%s/messages" % self.sid,
                                        {"content": text, "stream": True}).read_all()
            names = [e.event for e in events]
            self.assertEqual(names[-1], "done", events)
            user = next(e.json for e in events if e.event == "user_message")
            reply = next(e.json for e in events if e.event == "assistant_message")
        else:
            r = self.client.send(self.sid, text)
            self.assertEqual(r.status, 201, r)
            user, reply = r.json["user_message"], r.json["assistant_message"]
        self.assertEqual(user["content"], expected)
        self.assertTrue(reply["content"].endswith(" " + expected), reply)
        stored = self.client.messages(self.sid)[-2:]
        self.assertEqual([m["id"] for m in stored], [user["id"], reply["id"]])
        self.assertEqual(stored[0]["content"], expected)

    def reload_ok(self, via):
        if via == "http":
            r = reload_http(self.daemon)
            self.assertEqual(r.status, 200, r)
            self.assertEqual(r.json["status"], "reloaded", r)
            self.assertEqual(r.json["storage"], "sqlite", r)
            self.assertEqual(r.json["providers"], 1, r)
            return r.json["generation"], r.json["middleware"]
        outcome, generation = reload_sighup(self.daemon)
        self.assertEqual(outcome, "reloaded", generation)
        return generation, None

    def test_http_and_sighup_add_and_remove_a_middleware(self):
        self.assertFiltered(False)
        generations = []
        for via in ("http", "sighup"):
            with self.subTest(via=via):
                rewrite(self.daemon, self.filtered)
                generation, middleware = self.reload_ok(via)
                generations.append(generation)
                if middleware is not None:
                    self.assertEqual(middleware, 1)
                self.assertFiltered(True)
                self.assertFiltered(True, stream=True)

                rewrite(self.daemon, self.plain)
                generation, middleware = self.reload_ok(via)
                generations.append(generation)
                if middleware is not None:
                    self.assertEqual(middleware, 0)
                self.assertFiltered(False)
                self.assertFiltered(False, stream=True)
        # each successful reload counts one, whichever way it came
        self.assertEqual(generations, list(range(generations[0], generations[0] + 4)), generations)
        self.assertGreaterEqual(generations[0], 2, "generation 1 is the pipeline the daemon started with")

    def test_an_events_stream_lives_across_reloads(self):
        events = self.client.stream("/v1/sessions/%s/events" % self.sid, None, method="GET", deadline_s=30)
        self.assertEqual(events.status, 200, events)
        seen = iter(events)
        self.assertEqual(next(seen).event, "ready")
        try:
            for n, text in enumerate((self.filtered, self.plain)):
                rewrite(self.daemon, text)
                self.reload_ok("http")
                r = self.client.send(self.sid, "after reload %d" % n)
                self.assertEqual(r.status, 201, r)
                wanted = {r.json["user_message"]["id"], r.json["assistant_message"]["id"]}
                while wanted:
                    event = next(seen)
                    if event.event == "message":
                        wanted.discard(event.json["id"])
        finally:
            events.close()

    def test_a_listen_change_is_named_in_a_warning(self):
        # the daemon listens where --listen says; the manifest's listen changes
        rewrite(self.daemon, self.plain.replace("127.0.0.1:%d" % self.daemon.port, "127.0.0.1:1"))
        before = len(log_lines_matching(self.daemon, RESTART_WARNING))
        self.reload_ok("http")
        wait_until(lambda: len(log_lines_matching(self.daemon, RESTART_WARNING)) > before, 5,
                   what="the 'apply only after a restart' warning")
        self.assertFiltered(False)

    def test_server_limits_apply_or_are_named_in_a_warning(self):
        """server.max_body_bytes changed by a reload: either the new limit
        holds, or a warning says it needs a restart. Silently keeping the
        old limit is the failure."""
        small = self.plain.replace("server:\n", "server:\n  max_body_bytes: 2000\n", 1)
        rewrite(self.daemon, small)
        self.reload_ok("http")
        r = self.client.send(self.sid, "x" * 5000)
        if r.status == 413:
            return
        self.assertEqual(r.status, 201, r)
        warned = [line for line in log_lines_matching(self.daemon, RESTART_WARNING) if "max_body_bytes" in line]
        self.assertTrue(warned, "a 5000-byte body passed a reloaded max_body_bytes of 2000, and no warning "
                                "says the limit needs a restart\n%s" % self.daemon.log_tail(6))

    def test_sessions_and_messages_survive_a_reload(self):
        r = self.client.send(self.sid, "before the reload")
        self.assertEqual(r.status, 201, r)
        rewrite(self.daemon, self.plain)
        self.reload_ok("http")
        r = self.client.send(self.sid, "after the reload")
        self.assertEqual(r.status, 201, r)
        contents = [m["content"] for m in self.client.messages(self.sid) if m["role"] == "user"]
        self.assertEqual(contents, ["before the reload", "after the reload"])
        got = self.client.get("/v1/sessions/%s" % self.sid)
        self.assertEqual(got.status, 200, got)
        self.assertEqual(got.json["message_count"], 4, got)


if __name__ == "__main__":
    unittest.main()
