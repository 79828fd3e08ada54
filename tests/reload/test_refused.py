"""A bad manifest is refused and the running pipeline keeps serving:
POST /v1/admin/reload answers 400 invalid_request naming file:line:col;
SIGHUP logs the same and the daemon lives on. The middleware of the running
pipeline still applies, and a refused reload does not count as a generation."""

import re
import unittest

from swh_harness import DaemonTestCase
from reload_support import (BLOCKED, REDACTED, filter_section, manifest, reload_http, reload_sighup,
                            rewrite)


def position_of(text, needle):
    """1-based (line, column) where `needle` starts in `text`."""
    offset = text.index(needle)
    line = text.count("\n", 0, offset) + 1
    column = offset - (text.rfind("\n", 0, offset) + 1) + 1
    return line, column


class BadManifestsAreRefused(DaemonTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.good = manifest(cls.daemon, tail=filter_section())
        rewrite(cls.daemon, cls.good)
        r = reload_http(cls.daemon)
        if r.status != 200:
            raise AssertionError("the good manifest was not loaded: %r" % r)
        cls.generation = r.json["generation"]

    def bad_manifests(self):
        """(label, text, expected (line, column) or None when only the file is checked)."""
        good = self.good
        config_key = good.replace("blocked_words:", "blocked_wordz:")
        top_key = good + "bogus_section: 1\n"
        no_plugin = good.replace("plugin: content_filter", "plugin: no_such_plugin")
        syntax = good + "hooks:\n  - name: [unclosed\n"
        # valid YAML and schema, but the plugin's create refuses it
        create_fails = good.replace("      blocked_words:", "      regexes: ['(']\n      blocked_words:")
        return [
            ("unknown config key of a plugin", config_key, position_of(config_key, "blocked_wordz")),
            ("plugin create fails", create_fails, position_of(create_fails, "name: filter")),
            ("unknown top-level key", top_key, position_of(top_key, "bogus_section")),
            ("unknown plugin", no_plugin, None),
            ("YAML syntax error", syntax, None),
        ]

    def assertStillServing(self, sid):
        """The old pipeline (with its filter) answers."""
        r = self.client.send(sid, "one %s two" % BLOCKED)
        self.assertEqual(r.status, 201, r)
        self.assertEqual(r.json["user_message"]["content"], "one %s two" % REDACTED)
        self.assertEqual(self.daemon.healthz().status, 200)

    def assertNamesThePosition(self, message, expected):
        path = re.escape(self.daemon.manifest_path)
        m = re.search(path + r":(\d+):(\d+): ", message)
        self.assertIsNotNone(m, "no %s:line:col in %r" % (self.daemon.manifest_path, message))
        line, column = int(m.group(1)), int(m.group(2))
        if expected is not None:
            self.assertEqual((line, column), expected, message)
        self.assertGreaterEqual(line, 1)
        self.assertGreaterEqual(column, 1)

    def test_1_http_refuses_with_400_and_the_position(self):
        sid = self.client.create_session("refused-http")["id"]
        for label, text, expected in self.bad_manifests():
            with self.subTest(label):
                rewrite(self.daemon, text)
                r = reload_http(self.daemon)
                self.assertError(r, 400, "invalid_request")
                message = r.json["error"]["message"]
                self.assertTrue(message.startswith("reload refused, the running pipeline keeps serving: "),
                                message)
                self.assertNamesThePosition(message, expected)
                self.assertStillServing(sid)

    def test_2_sighup_logs_the_refusal_and_the_daemon_lives(self):
        sid = self.client.create_session("refused-sighup")["id"]
        for label, text, expected in self.bad_manifests():
            with self.subTest(label):
                rewrite(self.daemon, text)
                outcome, line = reload_sighup(self.daemon)
                self.assertEqual(outcome, "refused", line)
                self.assertIn(" error ", line)
                self.assertNamesThePosition(line, expected)
                self.assertIsNone(self.daemon.proc.poll(), "the daemon exited after SIGHUP")
                self.assertStillServing(sid)

    def test_3_refusals_do_not_count_and_a_good_manifest_loads_again(self):
        # whatever was refused before (tests 1 and 2 run first), only this reload counts
        rewrite(self.daemon, manifest(self.daemon))
        r = reload_http(self.daemon)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json["generation"], self.generation + 1, r)
        sid = self.client.create_session("refused-after")["id"]
        r = self.client.send(sid, "one %s two" % BLOCKED)
        self.assertEqual(r.status, 201, r)
        self.assertEqual(r.json["user_message"]["content"], "one %s two" % BLOCKED)


if __name__ == "__main__":
    unittest.main()
