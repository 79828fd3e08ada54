"""Out-of-tree SDK tests: install the SDK into a temporary prefix, build the
examples/ plugins as standalone CMake projects against it (find_package) and
one with pkg-config + cc, then start the real daemon with a manifest that
loads them and exercise them over HTTP.

Environment (set by CTest, see CMakeLists.txt):
  SWH_BINARY         the swarmhost executable
  SWH_PLUGIN_DIR     folder with swh_storage_sqlite.so / swh_provider_echo.so
  SWH_SDK_BUILD_DIR  the configured swarmhost build tree (cmake --install source)
  SWH_SOURCE_DIR     the repository root
All build products go to a temporary folder under /tmp, removed at the end
(SWH_KEEP_TMP=1 keeps it).
"""

import os
import shutil
import subprocess
import sys
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
import swh_harness as h  # noqa: E402

SOURCE_DIR = os.environ.get("SWH_SOURCE_DIR") or os.path.abspath(os.path.join(HERE, "..", ".."))
BUILD_DIR = os.environ.get("SWH_SDK_BUILD_DIR") or os.path.join(SOURCE_DIR, "build")


def run(cmd, **kw):
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=180, **kw)
    if p.returncode != 0:
        raise AssertionError("command failed (%d): %s\n%s" % (p.returncode, " ".join(cmd),
                                                            p.stdout.decode("utf-8", "replace")[-4000:]))
    return p.stdout.decode("utf-8", "replace")


class OutOfTree(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="swh-sdk-oot-", dir="/tmp")
        cls.prefix = os.path.join(cls.tmp, "prefix")
        # Only the sdk component: nothing of the host is needed or installed.
        run(["cmake", "--install", BUILD_DIR, "--component", "sdk", "--prefix", cls.prefix])
        cls.plugin_dirs = {}
        for example in ("middleware_word_guard", "hook_message_stats", "storage_memory"):
            build = os.path.join(cls.tmp, example)
            run(["cmake", "-S", os.path.join(SOURCE_DIR, "examples", example), "-B", build,
                 "-DCMAKE_BUILD_TYPE=Release", "-DCMAKE_PREFIX_PATH=" + cls.prefix])
            run(["cmake", "--build", build, "-j", "2"])
            cls.plugin_dirs[example] = build

    @classmethod
    def tearDownClass(cls):
        if os.environ.get("SWH_KEEP_TMP") != "1":
            shutil.rmtree(cls.tmp, ignore_errors=True)

    # ---- the installed SDK itself

    def test_installed_layout(self):
        for rel in ("include/swarmhost/swarmhost.h", "include/swarmhost/abi.h",
                    "include/swarmhost/cpp/edge.hpp", "include/swarmhost/cpp/plugin.hpp",
                    "lib/cmake/swarmhost-sdk/swarmhost-sdkConfig.cmake",
                    "lib/cmake/swarmhost-sdk/swarmhost-sdkConfigVersion.cmake",
                    "lib/cmake/swarmhost-sdk/SwarmhostPlugin.cmake",
                    "share/pkgconfig/swarmhost-sdk.pc"):
            self.assertTrue(os.path.exists(os.path.join(self.prefix, rel)), rel)
        # No library: the SDK has no link-time dependency on the host.
        libs = [f for _, _, files in os.walk(self.prefix) for f in files if f.endswith((".so", ".a"))]
        self.assertEqual(libs, [])

    def test_plugins_export_only_the_entry_point(self):
        for example, so in (("middleware_word_guard", "swh_middleware_word_guard.so"),
                            ("hook_message_stats", "swh_hook_message_stats.so"),
                            ("storage_memory", "swh_storage_memory.so")):
            out = run(["nm", "-D", "--defined-only", os.path.join(self.plugin_dirs[example], so)])
            symbols = [line.split()[-1] for line in out.splitlines() if line.strip()]
            self.assertEqual(symbols, ["swh_plugin_entry"], so)

    def test_pkg_config_build(self):
        env = dict(os.environ, PKG_CONFIG_PATH=os.path.join(self.prefix, "share", "pkgconfig"))
        cflags = run(["pkg-config", "--cflags", "swarmhost-sdk"], env=env).split()
        exports = run(["pkg-config", "--variable=exports_map", "swarmhost-sdk"], env=env).strip()
        self.assertTrue(os.path.exists(exports), exports)
        self.assertEqual(run(["pkg-config", "--modversion", "swarmhost-sdk"], env=env).strip().split(".")[0], "1")
        out = os.path.join(self.tmp, "pc", "word_guard.so")
        os.makedirs(os.path.dirname(out), exist_ok=True)
        run(["cc", "-std=c99", "-Wall", "-Wextra", "-pedantic", "-Werror", "-shared", "-fPIC",
             "-fvisibility=hidden", "-Wl,--version-script=" + exports] + cflags +
            [os.path.join(SOURCE_DIR, "examples", "middleware_word_guard", "word_guard.c"), "-o", out])
        code, text = h.run_cli(["plugins", "--plugin-dir", os.path.dirname(out)])
        self.assertEqual(code, 0, text)
        self.assertIn("word_guard", text)

    def test_find_package_version_check(self):
        # A request for a newer major than installed must fail to configure.
        proj = os.path.join(self.tmp, "want2")
        os.makedirs(proj, exist_ok=True)
        with open(os.path.join(proj, "CMakeLists.txt"), "w") as f:
            f.write("cmake_minimum_required(VERSION 3.20)\nproject(w C)\nfind_package(swarmhost-sdk 2.0 REQUIRED)\n")
        p = subprocess.run(["cmake", "-S", proj, "-B", os.path.join(proj, "b"), "-DCMAKE_PREFIX_PATH=" + self.prefix],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=120)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("swarmhost-sdk", p.stdout.decode())

    # ---- swarmhost new-plugin scaffolds build against the installed SDK

    def test_scaffolds_build_and_load(self):
        for kind, lang in (("middleware", "c"), ("middleware", "cpp"), ("hook", "c"), ("hook", "cpp")):
            with self.subTest(kind=kind, lang=lang):
                name = "my_%s_%s" % (kind, lang)
                out = os.path.join(self.tmp, "scaffold", name)
                code, text = h.run_cli(["new-plugin", "--kind", kind, "--name", name, "--lang", lang,
                                        "--dir", out, "--plugin-dir", h.plugin_dir()])
                self.assertEqual(code, 0, text)
                for rel in ("CMakeLists.txt", "README.md", "test/manifest.yaml",
                            "src/%s.%s" % (name, "cpp" if lang == "cpp" else "c")):
                    self.assertTrue(os.path.exists(os.path.join(out, rel)), rel)
                self.assertIn("| key | type |", open(os.path.join(out, "README.md")).read())
                run(["cmake", "-S", out, "-B", os.path.join(out, "build"), "-DCMAKE_PREFIX_PATH=" + self.prefix])
                run(["cmake", "--build", os.path.join(out, "build"), "-j", "2"])
                code, text = h.run_cli(["check", os.path.join(out, "test", "manifest.yaml")])
                self.assertEqual(code, 0, text)
        # Refuses to overwrite, and validates its arguments.
        code, text = h.run_cli(["new-plugin", "--kind", "hook", "--name", "x", "--dir", out])
        self.assertNotEqual(code, 0)
        self.assertIn("not empty", text)
        code, text = h.run_cli(["new-plugin", "--kind", "middleware", "--name", "Bad-Name"])
        self.assertEqual(code, 2, text)
        code, text = h.run_cli(["new-plugin", "--kind", "teapot", "--name", "x"])
        self.assertEqual(code, 2, text)

    def test_scaffolded_middleware_rejects_over_http(self):
        out = os.path.join(self.tmp, "scaffold-http", "guard")
        code, text = h.run_cli(["new-plugin", "--kind", "middleware", "--name", "guard", "--lang", "cpp",
                                "--dir", out, "--plugin-dir", h.plugin_dir()])
        self.assertEqual(code, 0, text)
        run(["cmake", "-S", out, "-B", os.path.join(out, "build"), "-DCMAKE_PREFIX_PATH=" + self.prefix])
        run(["cmake", "--build", os.path.join(out, "build"), "-j", "2"])
        workdir = h.make_tmpdir("swh-sdk-scaffold-")
        manifest = open(os.path.join(out, "test", "manifest.yaml")).read()
        manifest = manifest.replace('"../build"', h.yaml_str(os.path.join(out, "build")))
        d = h.Daemon(workdir=workdir, manifest=manifest)
        try:
            d.start()
            s = d.client.create_session("u")
            r = d.client.send(s["id"], "this is forbidden")
            self.assertEqual(r.status, 422, r)
            self.assertEqual(r.json["error"]["code"], "rejected", r)
            self.assertIn(d.client.send(s["id"], "fine").status, (200, 201))
            self.assertEqual(d.stop(), 0, d.log_tail())
        except BaseException:
            sys.stderr.write(d.log_tail() + "\n")
            raise
        finally:
            d.cleanup()
            shutil.rmtree(workdir, ignore_errors=True)

    # ---- the daemon with the examples

    def manifest(self, port, db):
        dirs = [h.plugin_dir(), self.plugin_dirs["middleware_word_guard"], self.plugin_dirs["hook_message_stats"]]
        lines = ["server:", "  listen: %s" % h.yaml_str("127.0.0.1:%d" % port), "plugin_dirs:"]
        lines += ["  - %s" % h.yaml_str(d) for d in dirs]
        lines += [
            "storage:", "  plugin: sqlite", "  config:", "    path: %s" % h.yaml_str(db),
            "providers:", "  - name: echo", "    plugin: echo",
            "middleware:", "  - plugin: word_guard", "    config:",
            "      blocked_words: [\"forbidden\"]", "      mask_words: [\"darn\"]", "      mask: \"[masked]\"",
            "hooks:", "  - plugin: message_stats", "    config:", "      metric_prefix: \"oot_stats\"",
        ]
        return "\n".join(lines) + "\n"

    def test_daemon_runs_the_examples(self):
        workdir = h.make_tmpdir("swh-sdk-daemon-")
        port = h.free_port()
        d = h.Daemon(workdir=workdir, port=port,
                     manifest=self.manifest(port, os.path.join(workdir, "db.sqlite")))
        try:
            d.start()
            c = d.client
            r = c.get("/v1/plugins")
            self.assertEqual(r.status, 200, r)
            self.assertIn("word_guard", r.raw.decode())
            self.assertIn("message_stats", r.raw.decode())
            # Every running instance is listed, middleware and hooks included.
            instances = [{k: i.get(k) for k in ("name", "plugin", "kind")} for i in r.json["instances"]]
            self.assertIn({"name": "word_guard", "plugin": "word_guard", "kind": "middleware"}, instances)
            self.assertIn({"name": "message_stats", "plugin": "message_stats", "kind": "hook"}, instances)

            s = c.create_session("oot-user")
            # C99 middleware: masking rewrites the stored user message.
            r = c.send(s["id"], "well DARN it")
            self.assertIn(r.status, (200, 201), r)
            msgs = c.messages(s["id"])
            user = [m for m in msgs if m["role"] == "user"]
            self.assertEqual(user[-1]["content"], "well [masked] it", msgs)
            self.assertEqual(user[-1]["metadata"].get("word_guard"), {"masked": 1}, user[-1])
            # ... and a blocked word is a 422 "rejected", nothing stored.
            r = c.send(s["id"], "this is Forbidden talk")
            self.assertEqual(r.status, 422, r)
            self.assertEqual(r.json["error"]["code"], "rejected", r)
            self.assertIn("forbidden", r.json["error"]["message"])
            self.assertEqual(len(c.messages(s["id"])), len(msgs))

            # C++ hook: events are delivered off the request path; poll /metrics.
            deadline = time.monotonic() + 10
            text = ""
            while time.monotonic() < deadline:
                text = c.get("/metrics").raw.decode()
                if 'oot_stats_messages_total{role="assistant"} 1' in text:
                    break
                time.sleep(0.1)
            self.assertIn("oot_stats_sessions_total 1", text)
            self.assertIn('oot_stats_messages_total{role="user"} 1', text)
            self.assertIn('oot_stats_messages_total{role="assistant"} 1', text)
            self.assertEqual(d.stop(), 0, d.log_tail())
        except BaseException:
            sys.stderr.write(d.log_tail() + "\n")
            raise
        finally:
            d.cleanup()
            shutil.rmtree(workdir, ignore_errors=True)

    def test_daemon_on_the_c_storage_example(self):
        # examples/storage_memory (C99) as the daemon's store; its data
        # survives a hot reload, which runs a second instance beside the first.
        workdir = h.make_tmpdir("swh-sdk-storage-")
        port = h.free_port()
        manifest = "\n".join([
            "server:", "  listen: %s" % h.yaml_str("127.0.0.1:%d" % port), "plugin_dirs:",
            "  - %s" % h.yaml_str(h.plugin_dir()), "  - %s" % h.yaml_str(self.plugin_dirs["storage_memory"]),
            "storage:", "  plugin: memory", "providers:", "  - name: echo", "    plugin: echo"]) + "\n"
        d = h.Daemon(workdir=workdir, port=port, manifest=manifest)
        try:
            d.start()
            c = d.client
            s = c.create_session("c-store-user")
            self.assertIn(c.send(s["id"], "hello").status, (200, 201))
            health = c.get("/healthz").json["storage"]
            self.assertEqual((health["status"], health["backend"]), ("healthy", "memory"), health)
            r = c.post("/v1/admin/reload")
            self.assertEqual(r.status, 200, r)
            self.assertEqual(c.get("/v1/sessions/%s" % s["id"]).json["message_count"], 2)
            self.assertEqual([m["role"] for m in c.messages(s["id"])], ["user", "assistant"])
            self.assertEqual(d.stop(), 0, d.log_tail())
        except BaseException:
            sys.stderr.write(d.log_tail() + "\n")
            raise
        finally:
            d.cleanup()
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    unittest.main()
