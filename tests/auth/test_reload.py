"""The keys file (auth.keys_file) is re-read on reload (docs/security.md):
a key added works after POST /v1/admin/reload (or SIGHUP), a removed one gets
401, a rotated key keeps its user's sessions; a bad keys file makes the reload
400 with file:line:col and the old keys keep working."""

import os
import signal
import unittest

import swh_harness
from swh_harness import Daemon

from auth_fixture import AuthTestCase, Key, auth_section, keys_yaml, mark_of, poll, sha256_by_shell

OPS = Key("ops", "ops", role="admin")        # in the manifest: survives every keys file
DAVE = Key("dave-old", "dave")               # in the first keys file
ERIN = Key("dave-new", "dave")               # dave's rotated key, added on reload
FRANK = Key("frank", "frank")                # added by SIGHUP
SIGHUP_DEADLINE_S = 10.0  # a SIGHUP reload has no answer to wait for: poll for its effect


class KeysFileReloadTests(AuthTestCase):
    """Steps of one keys file's life; the numbers keep unittest's (name) order."""

    @classmethod
    def setUpClass(cls):
        workdir = swh_harness.make_tmpdir("swh-auth-")
        cls.keys_path = os.path.join(workdir, "keys.yaml")
        cls.write_keys(keys_yaml([DAVE]))
        cls.daemon = Daemon(workdir=workdir, extra_providers=auth_section([OPS], keys_file="keys.yaml"))
        cls.daemon.owns_workdir = True
        cls.daemon.start_or_cleanup()
        cls.client = cls.daemon.client

    @classmethod
    def write_keys(cls, text):
        # Written whole and renamed, as an operator's tooling would.
        tmp = cls.keys_path + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, cls.keys_path)

    def reload(self):
        return self.as_key(OPS).post("/v1/admin/reload")

    def status_of(self, key):
        return self.as_key(key).get("/v1/sessions").status

    def test_1_added_key_works_after_reload_removed_key_gets_401(self):
        self.assertEqual(self.status_of(DAVE), 200)
        self.assertUnauthorized(self.as_key(ERIN).get("/v1/sessions"))
        sid = self.as_key(DAVE).create_session()["id"]

        # Rotation: the new key's hash computed with the documented recipe.
        erin = Key("dave-new", "dave")
        erin.text, erin.sha256 = ERIN.text, sha256_by_shell(ERIN.text)
        self.assertEqual(erin.sha256, ERIN.sha256)
        self.write_keys(keys_yaml([erin]))
        # The file is read on reload, not before.
        self.assertEqual(self.status_of(DAVE), 200)
        self.assertEqual(self.status_of(ERIN), 401)

        r = self.reload()
        self.assertEqual((r.status, r.json["status"]), (200, "reloaded"), r)
        self.assertUnauthorized(self.as_key(DAVE).get("/v1/sessions"))
        erin_client = self.as_key(ERIN)
        r = erin_client.get("/v1/sessions")
        self.assertEqual(r.status, 200, r)
        self.assertIn(sid, [s["id"] for s in r.json["sessions"]])  # same user, same sessions
        self.assertEqual(erin_client.send(sid, "after rotation").status, 201)
        self.assertEqual(self.status_of(OPS), 200)

    def test_2_bad_keys_file_is_refused_with_its_place_and_old_keys_keep_working(self):
        self.write_keys(keys_yaml([ERIN]))
        self.assertEqual(self.reload().status, 200)
        self.assertEqual(self.status_of(ERIN), 200)
        new = Key("newcomer", "nina")
        good_entry = new.entry()
        bad_files = {
            "sha256 not hex": ("keys:\n  - %s\n" % good_entry.replace(new.sha256, "nothex"), '"nothex"',
                               "expected 64 hex digits for 'sha256'"),
            "unknown role": ("keys:\n  - %s\n" % good_entry.replace("role: user", "role: root"), "root",
                             "role must be 'user' or 'admin'"),
            "duplicate id": ("keys:\n  - %s\n  - %s\n" % (good_entry, Key("newcomer", "x").entry()),
                             "{", "duplicate key id 'newcomer'", 2),
            "unknown field": ("keys:\n  - %s\n" % good_entry.replace("role: user", "colour: red"), "colour",
                              "unknown key 'colour'"),
            "invalid YAML": ("keys:\n  - { id: newcomer\n", None, "invalid YAML"),
            "not a map": ("- %s\n" % good_entry, "-", "expected a map with 'keys'"),
        }
        for name, spec in bad_files.items():
            text, needle, message = spec[:3]
            with self.subTest(case=name):
                self.write_keys(text)
                r = self.reload()
                self.assertError(r, 400, "invalid_request")
                error = r.json["error"]["message"]
                self.assertIn("reload refused", error)
                self.assertIn(message, error)
                if needle is not None:
                    line, column = mark_of(text, needle, *spec[3:])
                    self.assertIn("%s:%d:%d: " % (self.keys_path, line, column), error)
                else:
                    self.assertRegex(error, r"%s:\d+:\d+: " % self.keys_path)
                # The running keys are untouched; the refused file's key is not in.
                self.assertEqual(self.status_of(ERIN), 200)
                self.assertEqual(self.status_of(new), 401)
                self.assertEqual(self.status_of(OPS), 200)
        # A missing file is refused too, naming it.
        os.unlink(self.keys_path)
        r = self.reload()
        self.assertError(r, 400, "invalid_request")
        self.assertIn(self.keys_path, r.json["error"]["message"])
        self.assertEqual(self.status_of(ERIN), 200)

    def test_3_same_key_in_manifest_and_keys_file_is_refused_pointing_at_the_file(self):
        twin = Key("ops-twin", "mallory", role="admin")
        twin.text, twin.sha256 = OPS.text, OPS.sha256
        text = keys_yaml([ERIN, twin])
        self.write_keys(text)
        r = self.reload()
        self.assertError(r, 400, "invalid_request")
        error = r.json["error"]["message"]
        self.assertIn("the same key appears twice", error)
        # The duplicate is the keys file's entry; the message names the first one.
        line, column = mark_of(text, "{", 2)
        self.assertIn("%s:%d:%d: " % (self.keys_path, line, column), error)
        self.assertIn("'ops'", error)
        self.assertEqual(self.status_of(OPS), 200)

    def test_3b_same_id_in_manifest_and_keys_file_is_refused(self):
        # Ids name keys in errors, logs and the per-key stream count: two
        # different keys under one id would share a stream limit.
        namesake = Key("ops", "olga")
        text = keys_yaml([ERIN, namesake])
        self.write_keys(text)
        r = self.reload()
        self.assertError(r, 400, "invalid_request")
        error = r.json["error"]["message"]
        self.assertIn("duplicate key id 'ops'", error)
        line, column = mark_of(text, "{", 2)
        self.assertIn("%s:%d:%d: " % (self.keys_path, line, column), error)
        self.assertEqual(self.status_of(namesake), 401)

    def test_4_sighup_rereads_the_keys_file(self):
        self.write_keys(keys_yaml([ERIN, FRANK]))
        self.daemon.proc.send_signal(signal.SIGHUP)
        self.assertTrue(poll(lambda: self.status_of(FRANK) == 200, SIGHUP_DEADLINE_S),
                        "a key added to the keys file did not work within %.0f s of SIGHUP" % SIGHUP_DEADLINE_S)
        # A bad file on SIGHUP: logged with its place, old keys keep working.
        self.write_keys("keys:\n  - { id: broken, user: b, sha256: \"xyz\" }\n")
        self.daemon.proc.send_signal(signal.SIGHUP)
        self.assertTrue(poll(lambda: "reload refused" in self.daemon.log()
                             and "keys.yaml:2:" in self.daemon.log(), SIGHUP_DEADLINE_S),
                        self.daemon.log_tail())
        self.assertEqual(self.status_of(FRANK), 200)
        self.assertEqual(self.status_of(ERIN), 200)


if __name__ == "__main__":
    unittest.main()
