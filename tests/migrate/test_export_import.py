"""swarmhost export / import on real SQLite stores: JSON lines that
round-trip exactly (export → import → export gives the same bytes), an
import that resumes and never duplicates, bad lines refused by line number
with the good ones kept, and an export file that appears only when whole."""

import json
import os
import shutil
import signal
import unittest

import migrate_support as ms
import swh_harness


class ExportImport(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.tmp = swh_harness.make_tmpdir("swh-export-")
        try:
            cls.source = ms.seed(cls.tmp, os.path.join(cls.tmp, "source.db"))
        except BaseException:
            shutil.rmtree(cls.tmp, ignore_errors=True)
            raise

    @classmethod
    def tearDownClass(cls):
        if not os.environ.get("SWH_KEEP_TMP"):
            shutil.rmtree(cls.tmp, ignore_errors=True)

    def fresh(self, name):
        return ms.manifest_for(self.tmp, name + ".yaml", ms.sqlite_block(os.path.join(self.tmp, name + ".db")))

    def test_round_trip_is_byte_identical(self):
        path = os.path.join(self.tmp, "first.jsonl")
        rc, out, err = ms.run(["export", "-c", self.source, "--out", path])
        self.assertEqual(rc, 0, err)
        self.assertEqual(out, b"", "a file export writes nothing on stdout")
        self.assertIn("exported 18 sessions", err)
        with open(path, "rb") as f:
            first = f.read()
        self.assertEqual(first, ms.export(self.source), "--out FILE and stdout differ")
        target = self.fresh("round")
        rc, _, err = ms.run(["import", "-c", target, "--in", path])
        self.assertEqual(rc, 0, err)
        self.assertIn("imported 18 sessions", err)
        self.assertEqual(ms.export(target), first)
        # One session per line, with its messages.
        recs = ms.records(first)
        self.assertEqual(len(recs), 18)
        for r in recs:
            self.assertEqual(r["session"]["message_count"], len(r["messages"]))

    def test_more_sessions_than_one_listing_page(self):
        # The stores are listed 500 sessions at a time: 520 need a second page.
        lines = []
        for i in range(520):
            session = {"id": "page-%04d" % i, "user_id": "u", "provider": "echo", "model": "", "status": "active",
                       "type": "", "created_at": 1_600_000_000_000_000 + i, "last_activity": 1_600_000_000_000_000 + i,
                       "message_count": 0, "config": {}, "context": {}, "metadata": {}}
            lines.append(json.dumps({"v": 1, "session": session, "messages": []}))
        data = ("\n".join(lines) + "\n").encode()
        target = self.fresh("many")
        rc, _, err = ms.run(["import", "-c", target, "--quiet"], stdin=data)
        self.assertEqual(rc, 0, err)
        exported = ms.export(target)
        self.assertEqual([r["session"]["id"] for r in ms.records(exported)], ["page-%04d" % i for i in range(520)])
        copy = self.fresh("many-copy")
        rc, out, err = ms.run(["migrate", "--from", target, "--to", copy, "--quiet"])
        self.assertEqual(rc, 0, err)
        self.assertIn(b"migrated 520 sessions", out)
        self.assertEqual(ms.export(copy), exported)

    def test_import_twice_writes_nothing_new(self):
        data = ms.export(self.source)
        target = self.fresh("twice")
        for _ in range(2):
            rc, _, err = ms.run(["import", "-c", target, "--quiet"], stdin=data)
            self.assertEqual(rc, 0, err)
        self.assertIn("(0 messages written now)", err)
        self.assertEqual(ms.export(target), data)

    def test_import_killed_then_resumed(self):
        data = ms.export(self.source)
        target = self.fresh("import-killed")
        rc, _, err = ms.run(["import", "-c", target, "--quiet"], stdin=data,
                            env_extra={"SWARMHOST_TEST_KILL_AFTER_MESSAGES": "120"})
        self.assertEqual(rc, -signal.SIGKILL, err)
        self.assertEqual(sum(len(r["messages"]) for r in ms.records(ms.export(target))), 120)
        rc, _, err = ms.run(["import", "-c", target, "--quiet"], stdin=data)
        self.assertEqual(rc, 0, err)
        self.assertEqual(ms.export(target), data)

    def test_bad_lines_are_named_and_the_good_ones_kept(self):
        lines = ms.export(self.source).splitlines()
        broken = json.loads(lines[2])
        broken["session"]["colour"] = "blue"
        short = json.loads(lines[3])
        short["session"]["message_count"] += 1
        bad = [lines[0], b"{not json", lines[1], json.dumps(broken).encode(), json.dumps(short).encode(),
               b"", lines[4]]
        target = self.fresh("bad-lines")
        rc, _, err = ms.run(["import", "-c", target, "--quiet"], stdin=b"\n".join(bad) + b"\n")
        self.assertEqual(rc, 1, err)
        self.assertIn("line 2: not valid JSON", err)
        self.assertIn("line 4: ", err)
        self.assertIn("colour", err)
        self.assertIn("line 5: ", err)
        self.assertIn("message_count", err)
        self.assertIn("3 lines not imported", err)
        kept = ms.export(target).splitlines()
        self.assertEqual(sorted(kept), sorted([lines[0], lines[1], lines[4]]))

    def test_missing_input_and_unwritable_output_fail(self):
        rc, _, err = ms.run(["import", "-c", self.fresh("none"), "--in", os.path.join(self.tmp, "nope.jsonl")])
        self.assertEqual(rc, 1, err)
        self.assertIn("nope.jsonl", err)
        out = os.path.join(self.tmp, "no-such-dir", "x.jsonl")
        rc, _, err = ms.run(["export", "-c", self.source, "--out", out])
        self.assertEqual(rc, 1, err)
        self.assertIn("no-such-dir", err)
        self.assertFalse(os.path.exists(out))

    def test_failed_export_leaves_no_file(self):
        # A store that cannot be opened: no file, not even an empty one.
        bad = ms.manifest_for(self.tmp, "bad-store.yaml",
                              ms.sqlite_block(os.path.join(self.source, "x.db")))  # under a file: cannot be made
        out = os.path.join(self.tmp, "never.jsonl")
        rc, _, err = ms.run(["export", "-c", bad, "--out", out])
        self.assertEqual(rc, 1, err)
        self.assertFalse(os.path.exists(out))
        self.assertFalse(os.path.exists(out + ".partial"))


if __name__ == "__main__":
    unittest.main()
