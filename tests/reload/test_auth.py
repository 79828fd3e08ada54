"""Reload with API keys: only admin keys may reload; the keys (manifest and
keys file) are re-read on reload; a bad keys file is refused like a bad
manifest; turning auth off (on loopback) and on applies without a restart."""

import hashlib
import os
import unittest

from swh_harness import Daemon, yaml_str
from reload_support import manifest, reload_http, reload_sighup, rewrite

ADMIN_KEY = "reload-admin-key-0001"
USER_KEY = "reload-user-key-0001"
FILE_KEY = "reload-file-key-0001"
NEW_KEY = "reload-file-key-0002"


def sha(key):
    return hashlib.sha256(key.encode()).hexdigest()


def key_entry(key_id, user, role, key):
    return "    - { id: %s, user: %s, role: %s, sha256: %s }" % (key_id, user, role, sha(key))


def bearer(key):
    return {"Authorization": "Bearer %s" % key}


class ReloadWithApiKeys(unittest.TestCase):
    def setUp(self):
        self.daemon = Daemon()
        self.addCleanup(self.daemon.cleanup)
        self.keys_file = os.path.join(self.daemon.workdir, "keys.yaml")
        self.write_keys_file([("bob-laptop", "bob", "user", FILE_KEY)])
        rewrite(self.daemon, self.manifest_with_keys())
        self.daemon.start()
        self.client = self.daemon.client

    def tearDown(self):
        if self.daemon.proc is not None:
            self.assertEqual(self.daemon.stop(), 0, self.daemon.log_tail())

    def manifest_with_keys(self, extra_keys=()):
        lines = ["auth:", "  mode: api_keys", "  keys_file: %s" % yaml_str("keys.yaml"), "  keys:",
                 key_entry("ops", "ops", "admin", ADMIN_KEY), key_entry("alice-laptop", "alice", "user", USER_KEY)]
        lines += [key_entry(*k) for k in extra_keys]
        return manifest(self.daemon, tail="\n".join(lines) + "\n")

    def write_keys_file(self, keys):
        text = "keys:\n" + "\n".join("  - { id: %s, user: %s, role: %s, sha256: %s }" % (i, u, r, sha(k))
                                     for i, u, r, k in keys) + "\n"
        tmp = self.keys_file + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, self.keys_file)

    def assertErrorCode(self, resp, status, code):
        self.assertEqual(resp.status, status, resp)
        self.assertEqual(resp.json["error"]["code"], code, resp)

    def can_list_sessions(self, key):
        return self.client.get("/v1/sessions", headers=bearer(key)).status

    def test_only_admin_keys_may_reload(self):
        self.assertErrorCode(reload_http(self.daemon), 401, "unauthorized")
        self.assertErrorCode(reload_http(self.daemon, headers=bearer("not-a-key")), 401, "unauthorized")
        self.assertErrorCode(reload_http(self.daemon, headers=bearer(USER_KEY)), 403, "forbidden")
        self.assertErrorCode(reload_http(self.daemon, headers=bearer(FILE_KEY)), 403, "forbidden")
        r = reload_http(self.daemon, headers=bearer(ADMIN_KEY))
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json["generation"], 2, r)
        r = reload_http(self.daemon, headers={"X-API-Key": ADMIN_KEY})
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json["generation"], 3, r)
        for secret in (ADMIN_KEY, USER_KEY, FILE_KEY):
            self.assertNotIn(secret, self.daemon.log())

    def test_keys_are_reread_on_reload(self):
        self.assertEqual(self.can_list_sessions(FILE_KEY), 200)
        self.assertEqual(self.can_list_sessions(NEW_KEY), 401)
        # the keys file loses bob's key and gains carol's; the manifest gains dave
        self.write_keys_file([("carol-laptop", "carol", "user", NEW_KEY)])
        rewrite(self.daemon, self.manifest_with_keys([("dave", "dave", "admin", "reload-dave-0001")]))
        r = reload_http(self.daemon, headers=bearer(ADMIN_KEY))
        self.assertEqual(r.status, 200, r)
        self.assertEqual(self.can_list_sessions(FILE_KEY), 401)
        self.assertEqual(self.can_list_sessions(NEW_KEY), 200)
        self.assertEqual(reload_http(self.daemon, headers=bearer("reload-dave-0001")).status, 200)
        # by SIGHUP too: carol's key goes again
        self.write_keys_file([("bob-laptop", "bob", "user", FILE_KEY)])
        outcome, _ = reload_sighup(self.daemon)
        self.assertEqual(outcome, "reloaded")
        self.assertEqual(self.can_list_sessions(NEW_KEY), 401)
        self.assertEqual(self.can_list_sessions(FILE_KEY), 200)

    def test_a_bad_keys_file_is_refused_and_the_old_keys_keep_working(self):
        bad_files = {
            "bad sha256": "keys:\n  - { id: x, user: x, role: user, sha256: nothex }\n",
            "unknown role": "keys:\n  - { id: x, user: x, role: root, sha256: %s }\n" % sha(NEW_KEY),
            "YAML syntax": "keys:\n  - { id: x, user: [\n",
            "duplicate of a manifest key": "keys:\n  - { id: x, user: x, role: user, sha256: %s }\n" % sha(USER_KEY),
        }
        for label, text in bad_files.items():
            with self.subTest(label):
                with open(self.keys_file, "w", encoding="utf-8") as f:
                    f.write(text)
                r = reload_http(self.daemon, headers=bearer(ADMIN_KEY))
                self.assertErrorCode(r, 400, "invalid_request")
                self.assertRegex(r.json["error"]["message"], r"keys\.yaml:\d+:\d+: |manifest\.yaml:\d+:\d+: ")
                self.assertEqual(self.can_list_sessions(FILE_KEY), 200)
                self.assertEqual(self.can_list_sessions(USER_KEY), 200)
        with self.subTest("missing keys file"):
            os.remove(self.keys_file)
            r = reload_http(self.daemon, headers=bearer(ADMIN_KEY))
            self.assertErrorCode(r, 400, "invalid_request")
            self.assertIn("keys.yaml", r.json["error"]["message"])
            outcome, line = reload_sighup(self.daemon)
            self.assertEqual(outcome, "refused", line)
            self.assertIn("keys.yaml", line)
            self.assertEqual(self.can_list_sessions(FILE_KEY), 200)

    def test_turning_auth_off_applies_without_a_restart(self):
        rewrite(self.daemon, manifest(self.daemon, tail="auth: none\n"))
        r = reload_http(self.daemon, headers=bearer(ADMIN_KEY))
        self.assertEqual(r.status, 200, r)
        self.assertIn("API keys turned off", self.daemon.log())
        # no key needed any more; a key sent anyway is not checked
        self.assertEqual(self.client.get("/v1/sessions").status, 200)
        self.assertEqual(self.can_list_sessions("not-a-key"), 200)
        # and on again, by SIGHUP this time: keys required again at once
        rewrite(self.daemon, self.manifest_with_keys())
        outcome, line = reload_sighup(self.daemon)
        self.assertEqual(outcome, "reloaded", line)
        self.assertErrorCode(self.client.get("/v1/sessions"), 401, "unauthorized")
        self.assertEqual(self.can_list_sessions(USER_KEY), 200)
        self.assertErrorCode(reload_http(self.daemon, headers=bearer(USER_KEY)), 403, "forbidden")


class TurningAuthOn(unittest.TestCase):
    def test_turning_auth_on_applies_without_a_restart(self):
        daemon = Daemon()
        self.addCleanup(daemon.cleanup)
        daemon.start()
        self.assertEqual(daemon.client.get("/v1/sessions").status, 200)
        rewrite(daemon, manifest(daemon, tail="auth:\n  mode: api_keys\n  keys:\n%s\n"
                                               % key_entry("ops", "ops", "admin", ADMIN_KEY)))
        r = reload_http(daemon)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(daemon.client.get("/v1/sessions").status, 401)
        self.assertEqual(daemon.client.get("/v1/sessions", headers=bearer(ADMIN_KEY)).status, 200)
        self.assertEqual(daemon.stop(), 0, daemon.log_tail())


if __name__ == "__main__":
    unittest.main()
