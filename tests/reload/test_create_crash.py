"""A plugin whose `create` crashes or fails (issue #13 item 7), through the
real daemon, the real loader and the fixture middleware `fixture_crash`
(tests/fixture_plugins/fixture_crash_middleware.c, config `on_create`:
"crash" raises SIGSEGV in create, "fail" returns SWH_E_INVALID):

- a reload to a manifest with it is refused with a 400 naming the instance,
  its kind and file and the signal; the daemon lives on, the old pipeline
  serves the next request, and the log names it (HTTP and SIGHUP); a create
  that fails (no crash) is refused the same way with the plugin's reason;
- a daemon started with it exits non-zero with a line naming the plugin;
- `swarmhost check --try-create` names the failing instance (crash or
  failure) with its manifest position and exits 1; it says ok for a good
  manifest, where plain `check` cannot tell (it creates nothing).
No assertion depends on how long anything took."""

import os
import re
import shutil
import unittest

from swh_harness import (REPO_ROOT, Daemon, DaemonTestCase, make_tmpdir, manifest_text, plugin_dir,
                         run_cli, yaml_str)
from reload_support import log_lines_matching, reload_http, reload_sighup, rewrite

FIXTURE_SO = "swh_fixture_crash_middleware.so"


def fixture_dir():
    return os.environ.get("SWH_FIXTURE_PLUGIN_DIR") or os.path.join(
        REPO_ROOT, "build", "tests", "fixture_plugins")


def plugin_dirs():
    return [plugin_dir(), fixture_dir()]


def fixture_middleware(name, on_create):
    """A middleware section with one fixture_crash instance."""
    return "\n".join([
        "middleware:",
        "  - name: %s" % name,
        "    plugin: fixture_crash",
        "    config:",
        "      on_create: %s" % yaml_str(on_create),
        ""])


def names_the_crash(name):
    """The words that must name a crash of instance `name` in create."""
    return re.compile(r"plugin '%s' \(middleware, [^)]*%s\) crashed in create: SIGSEGV"
                      % (re.escape(name), re.escape(FIXTURE_SO)))


class ReloadRefusesAPluginWhoseCreateCrashes(DaemonTestCase):
    manifest_kw = {"plugin_dirs": plugin_dirs()}

    def manifest(self, tail=""):
        return manifest_text(self.daemon.port, self.daemon.db_path, plugin_dirs=plugin_dirs(),
                             extra_providers=tail)

    def assertStillServing(self, user):
        self.assertIsNone(self.daemon.proc.poll(), "the daemon exited\n%s" % self.daemon.log_tail())
        sid = self.client.create_session(user)["id"]
        r = self.client.send(sid, "still here")
        self.assertEqual(r.status, 201, r)
        # the old pipeline: no fixture middleware ran on this message
        self.assertEqual(r.json["user_message"]["content"], "still here")

    def test_1_http_reload_is_refused_naming_the_plugin_and_the_signal(self):
        rewrite(self.daemon, self.manifest(fixture_middleware("crashy", "crash")))
        r = reload_http(self.daemon)
        self.assertError(r, 400, "invalid_request")
        message = r.json["error"]["message"]
        self.assertTrue(message.startswith("reload refused, the running pipeline keeps serving: "), message)
        self.assertRegex(message, names_the_crash("crashy"))
        self.assertIn(self.daemon.manifest_path + ":", message)  # at its manifest entry
        self.assertStillServing("crash-http")
        refused = log_lines_matching(self.daemon, r"reload refused.*" + names_the_crash("crashy").pattern)
        self.assertTrue(refused, self.daemon.log_tail())

    def test_2_sighup_reload_is_refused_and_the_daemon_lives(self):
        rewrite(self.daemon, self.manifest(fixture_middleware("crashy_hup", "crash")))
        outcome, line = reload_sighup(self.daemon)
        self.assertEqual(outcome, "refused", line)
        self.assertRegex(line, names_the_crash("crashy_hup"))
        self.assertStillServing("crash-sighup")

    def test_3_a_create_that_fails_is_refused_with_its_reason(self):
        rewrite(self.daemon, self.manifest(fixture_middleware("failer", "fail")))
        r = reload_http(self.daemon)
        self.assertError(r, 400, "invalid_request")
        message = r.json["error"]["message"]
        self.assertRegex(message, r"plugin 'failer' \(middleware, [^)]*%s\) failed in create: "
                                  r"fixture_crash: asked to fail in create" % re.escape(FIXTURE_SO))
        self.assertStillServing("fail-http")

    def test_4_the_same_plugin_with_a_good_config_loads(self):
        rewrite(self.daemon, self.manifest(fixture_middleware("fine", "ok")))
        r = reload_http(self.daemon)
        self.assertEqual(r.status, 200, r)
        sid = self.client.create_session("fine")["id"]
        r = self.client.send(sid, "hello")
        self.assertEqual(r.status, 201, r)
        self.assertEqual(r.json["user_message"]["content"], "hello [crash-ok]")


class StartUpNamesThePluginWhoseCreateCrashes(unittest.TestCase):
    def test_start_up_exits_non_zero_with_a_line_naming_the_plugin(self):
        daemon = Daemon(plugin_dirs=plugin_dirs())
        self.addCleanup(daemon.cleanup)
        with open(daemon.manifest_path, "a", encoding="utf-8") as f:
            f.write(fixture_middleware("crashy_start", "crash"))
        daemon.spawn()
        rc = daemon.wait_exit(timeout=60)
        log = daemon.log()
        self.assertNotEqual(rc, 0, log)
        self.assertRegex(log, names_the_crash("crashy_start"))


class CheckTryCreate(unittest.TestCase):
    def setUp(self):
        self.workdir = make_tmpdir("swh-check-")
        self.addCleanup(shutil.rmtree, self.workdir, True)
        self.db = os.path.join(self.workdir, "swarmhost.db")

    def write(self, tail=""):
        path = os.path.join(self.workdir, "manifest.yaml")
        with open(path, "w", encoding="utf-8") as f:
            f.write(manifest_text(1, self.db, plugin_dirs=plugin_dirs(), extra_providers=tail))
        return path

    def test_a_crash_in_create_is_named_and_check_fails(self):
        path = self.write(fixture_middleware("crashy_check", "crash"))
        rc, out = run_cli(["check", path])
        self.assertEqual(rc, 0, out)  # plain check creates nothing: it cannot tell
        rc, out = run_cli(["check", "--try-create", path])
        self.assertEqual(rc, 1, out)
        self.assertRegex(out, re.escape(path) + r":\d+:\d+: " + names_the_crash("crashy_check").pattern)
        self.assertRegex(out, r"ok: plugin 'echo' \(provider, ")  # the others were tried too
        self.assertIn("1 of 3 plugin instances failed to start", out)

    def test_a_create_that_fails_is_named_with_its_reason(self):
        path = self.write(fixture_middleware("failer_check", "fail"))
        rc, out = run_cli(["check", "--try-create", path])
        self.assertEqual(rc, 1, out)
        self.assertRegex(out, r"plugin 'failer_check' \(middleware, [^)]*\) failed in create: "
                              r"fixture_crash: asked to fail in create")

    def test_a_good_manifest_is_ok(self):
        path = self.write(fixture_middleware("fine_check", "ok"))
        rc, out = run_cli(["check", "--try-create", path])
        self.assertEqual(rc, 0, out)
        for instance in ("'sqlite' (storage", "'echo' (provider", "'fine_check' (middleware"):
            self.assertIn("ok: plugin " + instance, out)
        self.assertIn(": OK (", out)


if __name__ == "__main__":
    unittest.main()
