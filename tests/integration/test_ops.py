"""Operations: /healthz, /v1/plugins, the CLI (check, plugins, --help,
--version), shutdown on SIGTERM during a stream, startup failures."""

import json
import os
import re
import signal
import sys
import time
import unittest
import shutil
import uuid

from swh_harness import (Daemon, DaemonTestCase, SSEStream, make_tmpdir, manifest_text, plugin_dir,
                         run_cli, yaml_str)

SEMVER_RE = re.compile(r"^\d+\.\d+\.\d+([-+][0-9A-Za-z.+-]+)?$")


def uid(prefix="u"):
    return "%s-%s" % (prefix, uuid.uuid4().hex[:12])


class EndpointTests(DaemonTestCase):

    def test_healthz(self):
        r = self.client.get("/healthz")
        self.assertEqual(r.status, 200, r)
        self.assertIn("application/json", r.content_type)
        h = r.json
        self.assertEqual(h["status"], "healthy", h)
        self.assertIsInstance(h["storage"], dict, h)
        self.assertEqual(h["storage"].get("status"), "healthy", h)
        self.assertIsInstance(h["providers"], dict, h)
        self.assertEqual(list(h["providers"].keys()), ["echo"], h)
        self.assertEqual(h["providers"]["echo"].get("status"), "healthy", h)

    def test_plugins(self):
        r = self.client.get("/v1/plugins")
        self.assertEqual(r.status, 200, r)
        self.assertIn("application/json", r.content_type)
        plugins = {p["name"]: p for p in r.json["plugins"]}
        self.assertIn("sqlite", plugins, r.json)
        self.assertIn("echo", plugins, r.json)
        for name, kind in (("sqlite", "storage"), ("echo", "provider")):
            p = plugins[name]
            with self.subTest(plugin=name):
                for key in ("name", "version", "kind", "description", "file", "abi", "config_schema"):
                    self.assertIn(key, p, p)
                self.assertRegex(p["version"], SEMVER_RE)
                self.assertEqual(p["kind"], kind, p)
                self.assertIsInstance(p["description"], str)
                self.assertTrue(p["description"])
                self.assertTrue(str(p["file"]).endswith(".so"), p)
                if os.path.isabs(p["file"]):
                    self.assertTrue(os.path.samefile(os.path.dirname(p["file"]), plugin_dir()), p)
                self.assertIsInstance(p["config_schema"], list, p)
                for field in p["config_schema"]:
                    self.assertIsInstance(field, dict, p)
                    self.assertIsInstance(field.get("key"), str, field)
        sqlite_keys = {f["key"] for f in plugins["sqlite"]["config_schema"]}
        self.assertIn("path", sqlite_keys)
        echo_keys = {f["key"] for f in plugins["echo"]["config_schema"]}
        self.assertIn("fail_on", echo_keys)
        instances = r.json["instances"]
        self.assertIn({"name": "echo", "plugin": "echo", "kind": "provider"},
                      [{k: i.get(k) for k in ("name", "plugin", "kind")} for i in instances])
        storage = [i for i in instances if i.get("plugin") == "sqlite"]
        self.assertEqual(len(storage), 1, instances)
        self.assertEqual(storage[0]["kind"], "storage")


class CliTests(unittest.TestCase):

    def setUp(self):
        self.tmp = make_tmpdir()

    def tearDown(self):
        if os.environ.get("SWH_KEEP_TMP") != "1":
            shutil.rmtree(self.tmp, ignore_errors=True)

    def write(self, name, text):
        path = os.path.join(self.tmp, name)
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
        return path

    def good_manifest(self):
        return self.write("good.yaml", manifest_text(8080, os.path.join(self.tmp, "db.sqlite")))

    def test_version(self):
        rc, out = run_cli(["--version"])
        self.assertEqual(rc, 0, out)
        self.assertRegex(out, r"\d+\.\d+\.\d+")
        # The build's malloc, and that it is the one serving malloc().
        self.assertRegex(out, r"allocator: (mimalloc \d+\.\d+\.\d+|system)\n")
        self.assertNotIn("NOT serving malloc", out)

    def test_help(self):
        rc, out = run_cli(["--help"])
        self.assertEqual(rc, 0, out)
        for word in ("serve", "check", "plugins"):
            self.assertIn(word, out)

    def test_unknown_subcommand_fails(self):
        rc, out = run_cli(["frobnicate"])
        self.assertNotEqual(rc, 0, out)

    def test_check_good(self):
        path = self.good_manifest()
        rc, out = run_cli(["check", path])
        self.assertEqual(rc, 0, out)
        # check does not create the database or start serving
        self.assertFalse(os.path.exists(os.path.join(self.tmp, "db.sqlite")), out)

    def bad_manifest(self, name, storage_config_lines):
        lines = [
            "server:",                                             # 1
            "  listen: \"127.0.0.1:8080\"",                        # 2
            "plugin_dirs:",                                        # 3
            "  - %s" % yaml_str(plugin_dir()),                     # 4
            "storage:",                                            # 5
            "  plugin: sqlite",                                    # 6
            "  config:",                                           # 7
        ] + storage_config_lines + [                               # 8..
            "providers:",
            "  - name: echo",
            "    plugin: echo",
        ]
        return self.write(name, "\n".join(lines) + "\n")

    def assertCheckFailsAt(self, path, line):
        rc, out = run_cli(["check", path])
        self.assertEqual(rc, 1, out)
        base = re.escape(os.path.basename(path))
        m = re.search(base + r":(\d+):(\d+)", out)
        self.assertIsNotNone(m, "no file:line:col in output:\n" + out)
        if line is not None:
            self.assertEqual(int(m.group(1)), line, out)
        self.assertGreaterEqual(int(m.group(2)), 1, out)
        return out

    def test_check_unknown_config_key(self):
        path = self.bad_manifest("unknown_key.yaml", ["    path: \"/tmp/x.db\"", "    bogus_key: 1"])
        out = self.assertCheckFailsAt(path, 9)
        self.assertIn("bogus_key", out)

    def test_check_wrong_config_type(self):
        path = self.bad_manifest("wrong_type.yaml", ["    path: [1, 2]"])
        self.assertCheckFailsAt(path, 8)

    def test_check_missing_required_section(self):
        path = self.write("no_storage.yaml", "server:\n  listen: \"127.0.0.1:8080\"\nproviders:\n"
                          "  - name: echo\n    plugin: echo\n")
        rc, out = run_cli(["check", path])
        self.assertEqual(rc, 1, out)
        self.assertIn("storage", out)

    def test_check_yaml_syntax_error(self):
        path = self.write("syntax.yaml", "server:\n  listen: \"127.0.0.1:8080\"\nstorage: {plugin: sqlite\n"
                          "providers:\n  - [\n")
        self.assertCheckFailsAt(path, None)

    def test_check_missing_file(self):
        rc, out = run_cli(["check", os.path.join(self.tmp, "does_not_exist.yaml")])
        self.assertEqual(rc, 1, out)
        self.assertIn("does_not_exist.yaml", out)

    def test_check_unknown_plugin(self):
        text = manifest_text(8080, os.path.join(self.tmp, "db.sqlite"),
                             extra_providers="  - name: gpt\n    plugin: no_such_plugin_xyz\n")
        path = self.write("unknown_plugin.yaml", text)
        rc, out = run_cli(["check", path])
        self.assertEqual(rc, 1, out)
        self.assertIn("no_such_plugin_xyz", out)

    def test_plugins_command(self):
        rc, out = run_cli(["plugins", "-c", self.good_manifest()])
        self.assertEqual(rc, 0, out)
        for word in ("sqlite", "echo", "path", "fail_on"):
            self.assertIn(word, out)
        rc, out = run_cli(["plugins", "--plugin-dir", plugin_dir()])
        self.assertEqual(rc, 0, out)
        for word in ("sqlite", "echo"):
            self.assertIn(word, out)


class LifecycleTests(unittest.TestCase):

    def test_missing_plugin_startup_fails(self):
        d = Daemon(extra_providers="  - name: gpt\n    plugin: no_such_plugin_xyz\n")
        try:
            d.spawn()
            try:
                rc = d.wait_exit(20)
            except Exception:
                self.fail("daemon kept running with a missing plugin\n" + d.log_tail())
            self.assertNotEqual(rc, 0, d.log_tail())
            self.assertIn("no_such_plugin_xyz", d.log(), d.log_tail())
        finally:
            d.cleanup()

    def test_missing_plugin_dir_startup_fails(self):
        tmp = make_tmpdir()
        try:
            d = Daemon(plugin_dirs=[os.path.join(tmp, "empty")])
            try:
                d.spawn()
                try:
                    rc = d.wait_exit(20)
                except Exception:
                    self.fail("daemon kept running without plugins\n" + d.log_tail())
                self.assertNotEqual(rc, 0, d.log_tail())
                self.assertIn("sqlite", d.log(), d.log_tail())
            finally:
                d.cleanup()
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def test_sigterm_idle_exits_zero(self):
        d = Daemon()
        try:
            d.start()
            rc = d.stop()  # None if it had to be SIGKILLed at the harness's deadline
            self.assertEqual(rc, 0, d.log_tail())
        finally:
            d.cleanup()

    def test_sigterm_during_stream(self):
        d = Daemon(shutdown_grace_seconds=10)
        try:
            d.start()
            s = d.client.create_session(uid())
            sid = s["id"]
            words = ["w%d" % i for i in range(3000)]
            text = " ".join(words)
            st = d.client.stream("/v1/sessions/%s/messages" % sid, {"content": text, "stream": True},
                                 deadline_s=40)
            self.assertIsInstance(st, SSEStream, st)
            it = iter(st)
            first = next(it)
            self.assertEqual(first.event, "user_message")
            d.proc.send_signal(signal.SIGTERM)
            rest = list(it)
            st.close()
            names = [e.event for e in rest]
            try:
                rc = d.wait_exit(25)
            except Exception:
                self.fail("daemon did not exit within 25 s of SIGTERM\n" + d.log_tail())
            self.assertEqual(rc, 0, d.log_tail())
            completed = bool(names) and names[-1] == "done"
            sys.stderr.write("[stream %s after SIGTERM: %d events, last %r] "
                             % ("completed" if completed else "was cut", len(rest), names[-1:]))
            if completed:
                self.assertEqual(names[-2], "assistant_message", names[-5:])
                chunks = "".join(e.json["text"] for e in rest if e.event == "chunk")
                self.assertEqual(chunks, "echo#1 " + text)
            else:
                # cleanly ended: an error event or EOF at an event boundary, not a torn stream
                self.assertTrue((names and names[-1] == "error") or st.ended_cleanly,
                                "stream torn on shutdown: last events %r, last lines %r"
                                % (names[-3:], st.raw_lines[-3:]))
            # what was acknowledged is durable: restart on the same files and look
            d.start()
            msgs = d.client.messages(sid)
            self.assertEqual(msgs[0]["id"], first.json["id"])
            if completed:
                self.assertEqual([m["role"] for m in msgs], ["user", "assistant"])
                self.assertEqual(msgs[1]["content"], "echo#1 " + text)
            else:
                self.assertEqual([m["role"] for m in msgs], ["user"])
            self.assertEqual(d.stop(), 0, d.log_tail())
        except BaseException:
            print(d.log_tail())
            raise
        finally:
            d.cleanup()

    def test_log_json(self):
        d = Daemon(extra_args=["--log-json"])
        try:
            d.start()
            s = d.client.create_session(uid())
            self.assertEqual(d.client.send(s["id"], "log me").status, 201)
            self.assertEqual(d.stop(), 0, d.log_tail())
            lines = [l for l in d.log().splitlines() if l.strip()]
            self.assertTrue(lines, "no log output at all with --log-json")
            for line in lines:
                try:
                    obj = json.loads(line)
                except ValueError:
                    self.fail("not a JSON log line: %r" % line)
                self.assertIsInstance(obj, dict, line)
        finally:
            d.cleanup()


if __name__ == "__main__":
    unittest.main()
