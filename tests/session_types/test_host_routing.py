"""The host's side of session types, through the real daemon and a session
type written in plain C (tests/fixture_plugins/fixture_session_type.c):
creation hooks, route dispatch (path parameters, 404/405, plugin errors),
metadata writes serialised per session, message vetting, authorization,
reserved metadata, and the live event stream GET /v1/sessions/{id}/events.

With SWH_ISOLATE_SESSION_TYPE=1 (ctest session_types.host_routing_isolated)
the whole suite runs again with the fixture under `isolation: process`: each
call then crosses to a swarmhost-plugin-host child and back.
"""

import os
import shutil
import sys
import threading
import unittest

import swh_harness as h

FIXTURE_DIR = os.environ.get("SWH_FIXTURE_PLUGIN_DIR") or os.path.join(
    h.REPO_ROOT, "build", "tests", "fixture_plugins")

ISOLATED = os.environ.get("SWH_ISOLATE_SESSION_TYPE") == "1"
# Generous: no call of the fixture comes near it, even under ASan on a loaded machine.
ISOLATION = "    isolation: process\n    isolation_timeout_ms: 10000\n"
SESSION_TYPES = "session_types:\n  - name: notes\n    plugin: fixture_notes\n" + (ISOLATION if ISOLATED else "")


def manifest(daemon_port, db_path, with_types=True):
    text = h.manifest_text(daemon_port, db_path, plugin_dirs=[h.plugin_dir(), FIXTURE_DIR])
    return text + (SESSION_TYPES if with_types else "")


class HostRoutingTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.workdir = h.make_tmpdir("swh-st-host-")
        port = h.free_port()
        db = os.path.join(cls.workdir, "swarmhost.db")
        cls.daemon = h.Daemon(workdir=cls.workdir, port=port, db_path=db, manifest=manifest(port, db))
        cls.daemon.start()
        cls.client = cls.daemon.client

    @classmethod
    def tearDownClass(cls):
        cls.daemon.stop()
        if not os.environ.get("SWH_KEEP_TMP"):
            shutil.rmtree(cls.workdir, ignore_errors=True)

    def notes_session(self, user="owner", **fields):
        return self.client.create_session(user, type="notes", **fields)

    def as_user(self, user):
        return {"X-Swarmhost-User": user}

    def open_events(self, session_id, user="owner"):
        stream = self.client.stream("/v1/sessions/%s/events" % session_id, None, method="GET",
                                    headers=self.as_user(user), deadline_s=60)
        self.assertIsInstance(stream, h.SSEStream, "events did not stream: %r" % (stream,))
        events = iter(stream)
        first = next(events)
        self.assertEqual(first.event, "ready")
        self.assertEqual(first.json["session_id"], session_id)
        return stream, events

    # ---- creation

    def test_unknown_type_is_400_and_names_the_known_ones(self):
        r = self.client.post("/v1/sessions", {"user_id": "u", "type": "nope"})
        self.assertEqual(r.status, 400, r)
        self.assertIn("notes", r.json["error"]["message"])

    def test_on_session_created_sets_state_and_can_refuse_without_storing(self):
        s = self.notes_session()
        self.assertEqual(s["type"], "notes")
        self.assertEqual(s["metadata"]["fixture_notes"], {"count": 0})
        r = self.client.post("/v1/sessions", {"user_id": "refused-user", "type": "notes",
                                              "metadata": {"refuse": True}})
        self.assertEqual(r.status, 400, r)
        self.assertIn("refused by fixture_notes", r.json["error"]["message"])
        listed = self.client.get("/v1/sessions?user_id=refused-user")
        self.assertEqual(listed.json["sessions"], [])

    # ---- routing

    def test_route_gets_path_params_query_caller_and_body(self):
        s = self.notes_session()
        r = self.client.get("/v1/sessions/%s/echo/first/second?x=1&y=two" % s["id"],
                            headers=self.as_user("bob"))
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json["route_index"], 1)
        self.assertEqual(r.json["path"], "echo/first/second")
        self.assertEqual(r.json["params"], ["first", "second"])
        self.assertEqual(r.json["query"], "x=1&y=two")
        self.assertEqual(r.json["caller"], "bob")

    def test_wrong_method_is_405_with_allow_and_unknown_path_404(self):
        s = self.notes_session()
        r = self.client.post("/v1/sessions/%s/echo/a/b" % s["id"], {})
        self.assertEqual(r.status, 405, r)
        self.assertEqual(r.headers.get("Allow"), "GET")
        self.assertEqual(r.json["error"]["code"], "method_not_allowed")
        r = self.client.get("/v1/sessions/%s/echo/only-one" % s["id"])
        self.assertEqual(r.status, 404, r)
        r = self.client.get("/v1/sessions/%s/nothing-here" % s["id"])
        self.assertEqual(r.status, 404, r)
        self.assertEqual(r.json["error"]["code"], "not_found")

    def test_plain_session_and_missing_session_have_no_type_routes(self):
        plain = self.client.create_session("owner")
        r = self.client.post("/v1/sessions/%s/notes" % plain["id"], {})
        self.assertEqual(r.status, 404, r)
        r = self.client.post("/v1/sessions/00000000-0000-4000-8000-000000000000/notes", {})
        self.assertEqual(r.status, 404, r)

    def test_plugin_errors_become_json_errors(self):
        s = self.notes_session()
        r = self.client.post("/v1/sessions/%s/fail" % s["id"], {})
        self.assertEqual(r.status, 409, r)
        self.assertIn("fixture conflict on purpose", r.json["error"]["message"])
        r = self.client.post("/v1/sessions/%s/silent" % s["id"], {})
        self.assertEqual(r.status, 500, r)
        self.assertEqual(r.json["error"]["code"], "internal")
        self.assertTrue(self.client.get("/healthz").status == 200)

    def test_concurrent_route_calls_of_one_session_do_not_lose_updates(self):
        s = self.notes_session()
        stream, events = self.open_events(s["id"])
        writers, per_writer = 4, 6
        statuses = []

        def write():
            c = h.Client(self.daemon.port)
            for _ in range(per_writer):
                statuses.append(c.post("/v1/sessions/%s/notes" % s["id"], raw=b"note").status)

        threads = [threading.Thread(target=write) for _ in range(writers)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        total = writers * per_writer
        self.assertEqual(statuses, [201] * total)
        stored = self.client.get("/v1/sessions/%s" % s["id"]).json
        self.assertEqual(stored["metadata"]["fixture_notes"]["count"], total)
        counts = []
        for event in events:
            self.assertEqual(event.event, "note_added")
            counts.append(event.json["count"])
            if len(counts) == total:
                break
        stream.close()
        self.assertEqual(counts, list(range(1, total + 1)))

    def test_patch_keeps_the_type_state_and_cannot_forge_it(self):
        s = self.notes_session()
        self.assertEqual(self.client.post("/v1/sessions/%s/notes" % s["id"], raw=b"n").status, 201)
        r = self.client.patch("/v1/sessions/%s" % s["id"], {"metadata": {"topic": "x"}})
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json["metadata"], {"topic": "x", "fixture_notes": {"count": 1}})
        r = self.client.patch("/v1/sessions/%s" % s["id"], {"metadata": {"fixture_notes": {"count": 99}}})
        self.assertEqual(r.status, 400, r)
        self.assertIn("holds the state of session type 'notes'", r.json["error"]["message"])
        self.assertEqual(self.client.get("/v1/sessions/%s" % s["id"]).json["metadata"]["fixture_notes"], {"count": 1})

    # ---- messages

    def test_on_user_message_vets_and_enriches(self):
        s = self.notes_session()
        path = "/v1/sessions/%s/messages" % s["id"]
        r = self.client.post(path, {"content": "hi"}, headers=self.as_user("mallory"))
        self.assertEqual(r.status, 403, r)
        self.assertEqual(r.json["error"]["code"], "forbidden")
        self.assertIn("mallory may not write here", r.json["error"]["message"])
        r = self.client.post(path, {"content": "say forbidden-word"}, headers=self.as_user("bob"))
        self.assertEqual(r.status, 422, r)
        self.assertIn("does not take forbidden-word", r.json["error"]["message"])
        r = self.client.post(path, {"content": "hello"}, headers=self.as_user("bob"))
        self.assertEqual(r.status, 201, r)
        meta = r.json["user_message"]["metadata"]
        self.assertEqual(meta["vetted_by"], "fixture_notes")
        self.assertEqual(meta["caller"], "bob")
        stored = self.client.messages(s["id"])
        self.assertEqual([m["content"] for m in stored], ["hello", "echo#1 hello"])

    def test_client_cannot_set_reserved_attachments_metadata(self):
        for session in (self.client.create_session("owner"), self.notes_session()):
            r = self.client.post("/v1/sessions/%s/messages" % session["id"],
                                 {"content": "x", "metadata": {"attachments": [{"path": "/etc/passwd"}],
                                                               "kept": 1}})
            self.assertEqual(r.status, 201, r)
            meta = r.json["user_message"]["metadata"]
            self.assertNotIn("attachments", meta)
            self.assertEqual(meta["kept"], 1)

    # ---- authorization of the host's own routes

    def test_authorize_guards_reads_and_admin_actions(self):
        s = self.notes_session()
        base = "/v1/sessions/%s" % s["id"]
        self.assertEqual(self.client.get(base, headers=self.as_user("mallory")).status, 403)
        self.assertEqual(self.client.get(base + "/messages", headers=self.as_user("mallory")).status, 403)
        r = self.client.stream(base + "/events", None, method="GET", headers=self.as_user("mallory"))
        self.assertEqual(r.status, 403)
        self.assertEqual(self.client.get(base, headers=self.as_user("reader")).status, 200)
        for method, path in (("PATCH", base), ("POST", base + "/archive"), ("DELETE", base)):
            r = self.client.request(method, path, body={} if method != "DELETE" else None,
                                    headers=self.as_user("reader"))
            self.assertEqual(r.status, 403, (method, path, r))
        self.assertEqual(self.client.get(base).json["status"], "active")
        self.assertEqual(self.client.delete(base, headers=self.as_user("owner")).status, 204)

    # ---- live events

    def test_events_of_a_plain_session_follow_its_life(self):
        s = self.client.create_session("owner")
        stream, events = self.open_events(s["id"])
        sent = self.client.send(s["id"], "watch this").json
        got = next(events)
        self.assertEqual((got.event, got.json["id"]), ("message", sent["user_message"]["id"]))
        got = next(events)
        self.assertEqual((got.event, got.json["id"]), ("message", sent["assistant_message"]["id"]))
        self.assertEqual(got.json["content"], "echo#1 watch this")
        self.client.patch("/v1/sessions/%s" % s["id"], {"metadata": {"topic": "t"}})
        got = next(events)
        self.assertEqual(got.event, "session_updated")
        self.assertEqual(got.json["metadata"], {"topic": "t"})
        self.client.post("/v1/sessions/%s/archive" % s["id"], {})
        got = next(events)
        self.assertEqual((got.event, got.json["status"]), ("session_archived", "archived"))
        self.assertEqual(self.client.delete("/v1/sessions/%s" % s["id"]).status, 204)
        got = next(events)
        self.assertEqual((got.event, got.json), ("session_deleted", {"session_id": s["id"]}))
        self.assertEqual(list(events), [])  # the stream ends after the deletion
        self.assertTrue(stream.ended_cleanly)
        stream.close()

    def test_events_of_an_unknown_session_is_404(self):
        r = self.client.stream("/v1/sessions/00000000-0000-4000-8000-000000000000/events", None, method="GET")
        self.assertEqual(r.status, 404, r)
        self.assertEqual(r.json["error"]["code"], "not_found")

    def test_the_type_runs_in_a_plugin_process_only_when_isolated(self):
        sys.path[:0] = [os.path.join(h.REPO_ROOT, "tests", d) for d in ("isolation", "pipeline")]
        from test_isolation import children  # the /proc scan of the isolation tests, imported
        kids = children(self.daemon.proc.pid)
        mine = [k for k in kids if "swarmhost-plugin-host" in k[2] and "swh_fixture_session_type" in k[2]]
        self.assertEqual(len(mine), 1 if ISOLATED else 0, kids)
        self.assertEqual(self.notes_session()["metadata"]["fixture_notes"], {"count": 0})

    def test_plugins_lists_the_type_and_its_routes(self):
        instances = self.client.get("/v1/plugins").json["instances"]
        notes = [i for i in instances if i["kind"] == "session_type"]
        self.assertEqual(len(notes), 1, instances)
        self.assertEqual(notes[0]["name"], "notes")
        self.assertEqual(notes[0]["plugin"], "fixture_notes")
        self.assertIn("GET /v1/sessions/{id}/echo/{a}/{b}", notes[0]["routes"])


class LifecycleTest(unittest.TestCase):
    """Daemon restarts: open streams end on SIGTERM; a session whose type is
    no longer configured fails closed."""

    def test_sigterm_ends_open_event_streams_and_missing_type_fails_closed(self):
        workdir = h.make_tmpdir("swh-st-life-")
        port = h.free_port()
        db = os.path.join(workdir, "swarmhost.db")
        d = h.Daemon(workdir=workdir, port=port, db_path=db, manifest=manifest(port, db))
        d.start()
        try:
            s = d.client.create_session("owner", type="notes")
            stream = d.client.stream("/v1/sessions/%s/events" % s["id"], None, method="GET")
            events = iter(stream)
            self.assertEqual(next(events).event, "ready")
            d.stop()
            rest = [e.event for e in events]
            self.assertEqual(rest, ["shutdown"])
            stream.close()

            with open(d.manifest_path, "w", encoding="utf-8") as f:
                f.write(manifest(port, db, with_types=False))
            d.start()
            r = d.client.post("/v1/sessions/%s/messages" % s["id"], {"content": "hi"})
            self.assertEqual(r.status, 503, r)
            self.assertIn("not configured", r.json["error"]["message"])
            r = d.client.post("/v1/sessions/%s/notes" % s["id"], {})
            self.assertEqual(r.status, 503, r)
        finally:
            d.stop()
            if not os.environ.get("SWH_KEEP_TMP"):
                shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    unittest.main()
