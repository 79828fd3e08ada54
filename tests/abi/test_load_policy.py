"""Load policy: a `sha256:` pin per plugin in the manifest, and refusal of
plugin files that are world-writable or not owned by the daemon's user.

Driven through `swarmhost check`, so the tests do not depend on how the
loader implements it.
"""

import hashlib
import os
import shutil
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
import swh_harness as h  # noqa: E402


def sha256_of(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


class LoadPolicy(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="swh-load-policy-", dir="/tmp")
        self.plugins = os.path.join(self.tmp, "plugins")
        os.makedirs(self.plugins)
        for so in ("swh_storage_sqlite.so", "swh_provider_echo.so"):
            shutil.copy2(os.path.join(h.plugin_dir(), so), self.plugins)
            os.chmod(os.path.join(self.plugins, so), 0o755)
        self.sqlite = os.path.join(self.plugins, "swh_storage_sqlite.so")

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def check(self, storage_extra=""):
        manifest = os.path.join(self.tmp, "m.yaml")
        with open(manifest, "w") as f:
            f.write("plugin_dirs: [%s]\n"
                    "storage:\n  plugin: sqlite\n%s  config: { path: %s }\n"
                    "providers:\n  - { name: echo, plugin: echo }\n"
                    % (h.yaml_str(self.plugins), storage_extra, h.yaml_str(os.path.join(self.tmp, "db"))))
        return h.run_cli(["check", manifest])

    def test_control_manifest_is_valid(self):
        code, text = self.check()
        self.assertEqual(code, 0, text)

    def test_sha256_pin_matches(self):
        code, text = self.check("  sha256: %s\n" % h.yaml_str(sha256_of(self.sqlite)))
        self.assertEqual(code, 0, text)

    def test_sha256_pin_mismatch_is_refused(self):
        code, text = self.check("  sha256: %s\n" % h.yaml_str("0" * 64))
        self.assertNotEqual(code, 0, text)
        self.assertIn("swh_storage_sqlite.so", text)
        self.assertIn("sha256", text)
        self.assertIn(sha256_of(self.sqlite), text)  # the actual digest, to paste into the manifest

    def test_world_writable_plugin_is_refused(self):
        os.chmod(self.sqlite, 0o777)
        code, text = self.check()
        self.assertNotEqual(code, 0, text)
        self.assertIn("world-writable", text)

    def test_plugin_owned_by_another_user_is_refused(self):
        if os.geteuid() != 0:
            raise unittest.SkipTest("chown to another user needs root; CI runs as root")
        os.chown(self.sqlite, 65534, 65534)
        code, text = self.check()
        self.assertNotEqual(code, 0, text)
        self.assertIn("owned by", text)


if __name__ == "__main__":
    unittest.main()
