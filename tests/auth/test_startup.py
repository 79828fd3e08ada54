"""What the daemon refuses at start (docs/security.md): `auth: none` (or no
auth section) on an address that is not loopback, judged on the address it
would really listen on (--listen overrides server.listen), refused before it
listens; and bad auth sections or keys files, named by file:line:col."""

import os
import subprocess
import unittest

import swh_harness
from swh_harness import Daemon

from auth_fixture import Key, auth_section, keys_yaml, mark_of, strip_ansi

EXIT_DEADLINE_S = 20.0  # a refused start must end within this
ALICE = Key("alice", "alice")


class StartDaemon(Daemon):
    """A daemon started with the listen flag the test chooses (None: no
    --listen, so server.listen decides)."""

    def __init__(self, listen_flag=None, **kw):
        self.listen_flag = listen_flag
        super().__init__(**kw)

    def command(self):
        cmd = [swh_harness.binary_path(), "serve", "-c", self.manifest_path]
        if self.listen_flag:
            cmd += ["--listen", self.listen_flag]
        return cmd + self.extra_args


def manifest(port, db_path, listen_host="127.0.0.1", auth=""):
    text = swh_harness.manifest_text(port, db_path, extra_providers=auth)
    return text.replace('listen: "127.0.0.1:%d"' % port, 'listen: "%s:%d"' % (listen_host, port))


class StartupTests(unittest.TestCase):

    def run_refused(self, daemon):
        """Starts `daemon`, expects it to exit non-zero by itself; returns its log."""
        try:
            daemon.spawn()
            try:
                rc = daemon.wait_exit(EXIT_DEADLINE_S)
            except subprocess.TimeoutExpired:
                self.fail("the daemon kept running (it should have refused to start)\n%s" % daemon.log_tail())
            log = strip_ansi(daemon.log())
            self.assertNotEqual(rc, 0, log)
            self.assertNotIn("listening on", log)  # refused before it listened
            return log
        finally:
            daemon.cleanup()

    def daemon(self, listen_host="127.0.0.1", auth="", listen_flag=None, files=None):
        workdir = swh_harness.make_tmpdir("swh-auth-")
        for name, text in (files or {}).items():
            with open(os.path.join(workdir, name), "w", encoding="utf-8") as f:
                f.write(text)
        port = swh_harness.free_port()
        db = os.path.join(workdir, "swarmhost.db")
        d = StartDaemon(listen_flag=listen_flag, workdir=workdir, port=port,
                        manifest=manifest(port, db, listen_host, auth))
        d.owns_workdir = True
        return d

    # ---- the loopback rule

    def test_auth_none_on_a_public_address_is_refused(self):
        cases = {"no auth section": "", "auth: none": "auth: none\n",
                 "mode: none": "auth:\n  mode: none\n"}
        for name, auth in cases.items():
            for host in ("0.0.0.0", "[::]"):
                with self.subTest(case=name, host=host):
                    d = self.daemon(listen_host=host, auth=auth)
                    log = self.run_refused(d)
                    self.assertIn("auth is 'none'", log)
                    self.assertIn("not a loopback address", log)
                    self.assertIn("%s:%d" % (host, d.port), log)

    def test_auth_none_error_points_at_the_auth_setting(self):
        d = self.daemon(listen_host="0.0.0.0", auth="auth: none\n")
        text = manifest(d.port, d.db_path, "0.0.0.0", "auth: none\n")
        line, column = mark_of(text, "none", after=text.index("auth:"))
        log = self.run_refused(d)
        self.assertIn("manifest.yaml:%d:%d: auth is 'none'" % (line, column), log)

    def test_listen_flag_is_the_address_the_rule_checks(self):
        # The manifest says loopback, --listen says public: refused.
        d = self.daemon(listen_host="127.0.0.1", listen_flag="0.0.0.0:%d" % swh_harness.free_port())
        log = self.run_refused(d)
        self.assertIn("not a loopback address", log)
        self.assertIn(d.listen_flag, log)
        # The manifest says public, --listen says loopback: it starts (on loopback) with a warning.
        d = self.daemon(listen_host="0.0.0.0")
        d.listen_flag = "127.0.0.1:%d" % d.port
        try:
            d.start()
            self.assertEqual(d.healthz().status, 200)
            self.assertIn("auth: none", strip_ansi(d.log()))
            self.assertEqual(d.stop(), 0)
        finally:
            d.cleanup()

    # ---- manifest errors in auth sections

    def test_bad_auth_sections_name_file_line_col(self):
        good = ALICE.entry()
        cases = [
            ("auth: yes\n", "yes", "expected 'none' or a map"),
            ("auth:\n  mode: ldap\n  keys:\n    - %s\n" % good, "ldap", "auth.mode must be 'none' or 'api_keys'"),
            ("auth:\n  mode: api_keys\n", "mode", "needs 'keys' or 'keys_file'"),
            ("auth:\n  max_streams: 2\n  keys:\n    - %s\n" % good, "max_streams", "unknown key 'max_streams'"),
            ("auth:\n  rate_per_second: -1\n  keys:\n    - %s\n" % good, "-1", "rate_per_second"),
            ("auth:\n  keys:\n    - %s\n" % good.replace(ALICE.sha256, "abc123"), '"abc123"',
             "expected 64 hex digits for 'sha256'"),
            ("auth:\n  keys:\n    - %s\n" % good.replace("role: user", "role: superuser"), "superuser",
             "role must be 'user' or 'admin'"),
            ("auth:\n  keys:\n    - %s\n    - %s\n" % (good, Key("alice", "x").entry()), "{",
             "duplicate key id 'alice'", 2),
            ("auth:\n  keys:\n    - %s\n    - %s\n" % (good, good.replace("id: alice", "id: alias")), "{",
             "the same key appears twice", 2),
            ("auth:\n  keys:\n    - %s\n" % good.replace("user: alice, ", ""), "{", "missing required key 'user'"),
        ]
        for case in cases:
            auth, needle, message = case[:3]
            with self.subTest(auth=auth):
                d = self.daemon(auth=auth)
                text = manifest(d.port, d.db_path, auth=auth)
                # Where the error must point: the needle, searched in the auth section.
                line, column = mark_of(text, needle, *case[3:], after=text.index(auth))
                log = self.run_refused(d)
                self.assertIn("%s:%d:%d: " % (d.manifest_path, line, column), log)
                self.assertIn(message, log)

    def test_bad_keys_file_at_start_names_its_place(self):
        text = keys_yaml([ALICE]).replace("role: user", "role: owner")
        d = self.daemon(auth=auth_section([], keys_file="keys.yaml"), files={"keys.yaml": text})
        line, column = mark_of(text, "owner")
        log = self.run_refused(d)
        self.assertIn("keys.yaml:%d:%d: role must be 'user' or 'admin'" % (line, column), log)

    def test_missing_keys_file_at_start_is_named(self):
        d = self.daemon(auth=auth_section([], keys_file="absent-keys.yaml"))
        log = self.run_refused(d)
        self.assertIn("absent-keys.yaml", log)


if __name__ == "__main__":
    unittest.main()
