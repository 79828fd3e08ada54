"""The command line as scripts use it: every error exits non-zero (2 for a
usage error, 1 for a failed command), each subcommand's --help describes
that subcommand and its own options, and an option another subcommand owns
is refused."""

import os
import shutil
import socket
import unittest

import migrate_support as ms
import swh_harness

# Each subcommand with options only it has, and one that belongs to another.
OWN = {
    "serve": (["--listen", "--config"], "--from"),
    "check": (["--try-create", "--config"], "--listen"),
    "plugins": (["--plugin-dir", "--config"], "--out"),
    "new-plugin": (["--kind", "--name", "--lang", "--dir"], "--config"),
    "migrate": (["--from", "--to", "--quiet"], "--config"),
    "export": (["--config", "--out", "--quiet"], "--in"),
    "import": (["--config", "--in", "--quiet"], "--out"),
}


class CommandLine(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.tmp = swh_harness.make_tmpdir("swh-cli-")
        cls.good = ms.manifest_for(cls.tmp, "good.yaml", ms.sqlite_block(os.path.join(cls.tmp, "good.db")))

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def assertExit(self, args, code, *needles, stdin=b""):
        rc, out, err = ms.run(args, stdin=stdin, timeout=60)
        text = out.decode("utf-8", "replace") + err
        self.assertEqual(rc, code, "swarmhost %s -> %d\n%s" % (" ".join(args), rc, text))
        for needle in needles:
            self.assertIn(needle, text)
        return text

    def test_top_level(self):
        text = self.assertExit(["--help"], 0, "migrate", "export", "import", "serve", "--help")
        self.assertIn("Exit status", text)
        self.assertExit([], 2, "usage")
        self.assertExit(["frobnicate"], 2, "unknown command 'frobnicate'")
        self.assertExit(["--bogus"], 2)
        self.assertExit(["--log-level", "debug", "check", self.good], 2, "options go after")

    def test_each_subcommand_has_its_own_help_and_refuses_others_options(self):
        for command, (own, foreign) in OWN.items():
            with self.subTest(command=command):
                text = self.assertExit([command, "--help"], 0, "usage: swarmhost " + command, *own)
                self.assertNotIn(foreign + " ", text, "%s --help shows %s" % (command, foreign))
                self.assertExit([command, "--no-such-option"], 2, "no-such-option", command + " --help")
                self.assertExit([command, foreign, "x"], 2, foreign.lstrip("-"))

    def test_missing_arguments_are_usage_errors(self):
        self.assertExit(["serve"], 2, "manifest")
        self.assertExit(["check"], 2, "manifest")
        self.assertExit(["plugins"], 2, "--plugin-dir")
        self.assertExit(["migrate", "--from", self.good], 2, "--to")
        self.assertExit(["export"], 2, "-c FILE")
        self.assertExit(["import"], 2, "-c FILE")
        self.assertExit(["check", self.good, "extra"], 2)
        self.assertExit(["migrate", "--from"], 2, "from")
        self.assertExit(["new-plugin", "--kind", "teapot", "--name", "x"], 2, "teapot")

    def test_failures_exit_one(self):
        missing = os.path.join(self.tmp, "missing.yaml")
        self.assertExit(["serve", "-c", missing], 1, "missing.yaml")
        self.assertExit(["check", missing], 1, "missing.yaml")
        self.assertExit(["plugins", "-c", missing], 1, "missing.yaml")
        self.assertExit(["migrate", "--from", missing, "--to", self.good], 1, "missing.yaml")
        self.assertExit(["migrate", "--from", self.good, "--to", missing], 1, "missing.yaml")
        self.assertExit(["export", "-c", missing], 1, "missing.yaml")
        self.assertExit(["import", "-c", missing], 1, "missing.yaml")
        self.assertExit(["import", "-c", self.good], 1, "line 1", stdin=b"[1, 2]\n")
        self.assertExit(["serve", "-c", self.good, "--listen", "not-an-address"], 1, "not-an-address")
        with socket.socket() as taken:  # a port someone else listens on
            taken.bind(("127.0.0.1", 0))
            taken.listen(1)
            port = taken.getsockname()[1]
            self.assertExit(["serve", "-c", self.good, "--listen", "127.0.0.1:%d" % port], 1, str(port))

    def test_a_good_manifest_works_as_before(self):
        self.assertExit(["check", self.good], 0, "OK")
        self.assertExit(["check", "-c", self.good], 0, "OK")
        self.assertExit(["plugins", "--plugin-dir", swh_harness.plugin_dir()], 0, "sqlite")
        # An empty store migrates and exports to nothing, successfully.
        empty = ms.manifest_for(self.tmp, "empty.yaml", ms.sqlite_block(os.path.join(self.tmp, "empty.db")))
        self.assertExit(["migrate", "--from", self.good, "--to", empty], 0, "migrated 0 sessions", "verified")
        rc, out, _ = ms.run(["export", "-c", empty, "-q"])
        self.assertEqual((rc, out), (0, b""))


if __name__ == "__main__":
    unittest.main()
