"""The Rust example plugin (examples/middleware_rust_redact) end to end: built
with cargo (no registry, --offline --locked), its hand-written bindings
compared with the C compiler's layout of the headers (`cargo test` with
SWH_C_LAYOUT), its export table checked, then loaded by the real daemon from a
manifest and driven over HTTP.

Every cargo found (PATH, /usr/bin - Debian's 1.63 - and ~/.cargo/bin) builds
and tests the crate, so a machine with both proves the crate still builds
with Debian 12's rustc. Without any cargo the test exits 77, which CTest
reports as skipped; the output says why.

Environment (set by CTest, see CMakeLists.txt):
  SWH_BINARY, SWH_PLUGIN_DIR  the daemon and the in-tree plugins (echo, sqlite)
  SWH_C_LAYOUT_BIN            tests/rust/c_layout.c, built
  SWH_SOURCE_DIR              the repository root
"""

import os
import shutil
import subprocess
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
import swh_harness as h  # noqa: E402

SOURCE_DIR = os.environ.get("SWH_SOURCE_DIR") or os.path.abspath(os.path.join(HERE, "..", ".."))
CRATE = os.path.join(SOURCE_DIR, "examples", "middleware_rust_redact")
SKIP = 77  # CTest SKIP_RETURN_CODE


def find_cargos():
    """Every distinct cargo on this machine, PATH's first."""
    found = []
    for cand in (shutil.which("cargo"), "/usr/bin/cargo", "/root/.cargo/bin/cargo",
                 os.path.expanduser("~/.cargo/bin/cargo")):
        if cand and os.access(cand, os.X_OK) and os.path.realpath(cand) not in [os.path.realpath(c) for c in found]:
            found.append(cand)
    return found


def cargo_env(cargo):
    """The rustc next to `cargo` goes with it (Debian's cargo with Debian's
    rustc, not with a rustup rustc that comes first on PATH)."""
    env = dict(os.environ)
    rustc = os.path.join(os.path.dirname(cargo), "rustc")
    if os.access(rustc, os.X_OK):
        env["RUSTC"] = rustc
    return env


def run(cmd, env=None):
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=240, env=env)
    text = p.stdout.decode("utf-8", "replace")
    if p.returncode != 0:
        raise AssertionError("command failed (%d): %s\n%s" % (p.returncode, " ".join(cmd), text[-4000:]))
    return text


class RustPlugin(h.DaemonTestCase):
    """Builds the crate, then runs one daemon (DaemonTestCase) with it."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = h.make_tmpdir("swh-rust-")
        try:
            cls.build_crate()
            port = h.free_port()
            cls.manifest_kw = {"workdir": os.path.join(cls.tmp, "daemon"), "port": port,
                               "manifest": cls.manifest(port, os.path.join(cls.tmp, "db.sqlite"))}
            os.makedirs(cls.manifest_kw["workdir"])
            super().setUpClass()
        except BaseException:
            shutil.rmtree(cls.tmp, ignore_errors=True)
            raise

    @classmethod
    def tearDownClass(cls):
        try:
            super().tearDownClass()
        finally:
            if os.environ.get("SWH_KEEP_TMP") != "1":
                shutil.rmtree(cls.tmp, ignore_errors=True)

    @classmethod
    def build_crate(cls):
        cls.layout = os.path.join(cls.tmp, "c_layout.txt")
        with open(cls.layout, "w") as f:
            f.write(run([os.environ["SWH_C_LAYOUT_BIN"]]))
        cls.built = {}  # cargo -> its cdylib
        versions = []
        for i, cargo in enumerate(CARGOS):
            target = os.path.join(cls.tmp, "target%d" % i)
            env = cargo_env(cargo)
            env["SWH_C_LAYOUT"] = cls.layout  # read by the crate's layout test
            versions.append(run([env.get("RUSTC", "rustc"), "--version"], env).strip())
            flags = ["--offline", "--locked", "--manifest-path", os.path.join(CRATE, "Cargo.toml"),
                     "--target-dir", target]
            run([cargo, "test"] + flags, env)
            run([cargo, "build", "--release"] + flags, env)
            cls.built[cargo] = os.path.join(target, "release", "libswh_middleware_rust_redact.so")
        sys.stderr.write("built and unit-tested with: %s\n" % "; ".join(versions))
        # The plugin folder holds the module alone, under the usual name.
        cls.plugin_dir = os.path.join(cls.tmp, "plugins")
        os.makedirs(cls.plugin_dir)
        shutil.copy(cls.built[CARGOS[0]], os.path.join(cls.plugin_dir, "swh_middleware_rust_redact.so"))

    @classmethod
    def manifest(cls, port, db):
        return "\n".join([
            "server:", "  listen: %s" % h.yaml_str("127.0.0.1:%d" % port),
            "plugin_dirs:", "  - %s" % h.yaml_str(h.plugin_dir()), "  - %s" % h.yaml_str(cls.plugin_dir),
            "storage:", "  plugin: sqlite", "  config:", "    path: %s" % h.yaml_str(db),
            "providers:", "  - name: echo", "    plugin: echo", "    config:", "      prefix: \"classified\"",
            "middleware:", "  - plugin: redact", "    fail: closed", "    config:",
            "      words: [\"hunter2\", \"classified\"]", "      blocked_words: [\"forbidden\"]",
            "      panic_on: \"kaboom\"",
        ]) + "\n"

    def test_exports_only_the_entry_point(self):
        for cargo, so in self.built.items():
            out = run(["nm", "-D", "--defined-only", so])
            self.assertEqual([line.split()[-1] for line in out.splitlines() if line.strip()],
                             ["swh_plugin_entry"], cargo)

    def test_schema_is_declared(self):
        code, text = h.run_cli(["plugins", "--plugin-dir", self.plugin_dir])
        self.assertEqual(code, 0, text)
        for key in ("redact", "words", "replacement", "blocked_words", "panic_on", "[redacted]"):
            self.assertIn(key, text)

    def test_both_stages_redact(self):
        # USER stage rewrites the question (so echo repeats the redacted
        # text); ASSISTANT stage rewrites echo's own "classified" prefix,
        # which the question never contained.
        s = self.client.create_session("rust-stages")
        r = self.client.send(s["id"], "my password is HUNTER2")
        self.assertIn(r.status, (200, 201), r)
        self.assertEqual(r.json["assistant_message"]["content"], "[redacted]#1 my password is [redacted]", r)
        msgs = self.client.messages(s["id"])
        self.assertEqual([m["content"] for m in msgs],
                         ["my password is [redacted]", "[redacted]#1 my password is [redacted]"], msgs)
        for m in msgs:
            self.assertEqual(m["metadata"].get("redact"), {"replaced": 1}, m)

    def test_blocked_word_is_rejected(self):
        # 422 "rejected" with the plugin's reason, nothing stored.
        s = self.client.create_session("rust-blocked")
        r = self.client.send(s["id"], "this is Forbidden talk")
        self.assertEqual(r.status, 422, r)
        self.assertEqual(r.json["error"]["code"], "rejected", r)
        self.assertIn("contains a blocked word: forbidden", r.json["error"]["message"])
        self.assertEqual(self.client.messages(s["id"]), [])

    def test_panic_is_caught_at_the_boundary(self):
        # The call fails (fail: closed -> 503), the daemon lives, the log
        # has the plugin's reason, and the next message goes through.
        s = self.client.create_session("rust-panic")
        r = self.client.send(s["id"], "say kaboom")
        self.assertEqual(r.status, 503, r)
        self.assertEqual(self.client.messages(s["id"]), [])
        self.assertEqual(self.client.get("/healthz").status, 200)
        self.assertIn("panicked (caught at the ABI boundary)", self.daemon.log())
        r = self.client.send(s["id"], "still fine")
        self.assertIn(r.status, (200, 201), r)
        self.assertEqual(r.json["assistant_message"]["content"], "[redacted]#1 still fine", r)


CARGOS = find_cargos()

if __name__ == "__main__":
    if not CARGOS:
        print("SKIP: no cargo on PATH, in /usr/bin or in ~/.cargo/bin: the Rust example cannot be built "
              "(apt-get install cargo, or tools/install-deps.sh --test)")
        sys.exit(SKIP)
    unittest.main(verbosity=2)
