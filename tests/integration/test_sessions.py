"""Session resource: create, get, list, patch, archive, delete (docs/http-api.md)."""

import unittest
import uuid

from swh_harness import DaemonTestCase, iso_to_us


def uid(prefix="u"):
    return "%s-%s" % (prefix, uuid.uuid4().hex[:12])


SESSION_KEYS = ("id", "user_id", "provider", "model", "status", "type", "created_at",
                "last_activity", "message_count", "config", "context", "metadata")


class SessionTests(DaemonTestCase):

    def assertContext(self, session, given):
        """user_context is exactly what the client gave; system_context holds
        what the client gave plus the host-maintained provider/model keys
        (host/session/session_manager.cpp keeps them in step with the
        session; not in docs/http-api.md)."""
        ctx = session["context"]
        self.assertEqual(set(ctx), {"user_context", "system_context"}, ctx)
        self.assertEqual(ctx["user_context"], given.get("user_context", {}))
        system = dict(ctx["system_context"])
        for key, value in given.get("system_context", {}).items():
            self.assertEqual(system.get(key), value, ctx)
        self.assertEqual(system.pop("provider", session["provider"]), session["provider"], ctx)
        self.assertEqual(system.pop("model", session["model"]), session["model"], ctx)
        for key in given.get("system_context", {}):
            system.pop(key, None)
        self.assertEqual(system, {}, "unexpected system_context keys: %r" % ctx)

    def assertSession(self, s):
        for key in SESSION_KEYS:
            self.assertIn(key, s, "session lacks %r: %r" % (key, s))
        self.assertIsInstance(s["id"], str)
        self.assertTrue(s["id"])
        self.assertIsoTime(s["created_at"])
        self.assertIsoTime(s["last_activity"])
        self.assertIsInstance(s["message_count"], int)
        self.assertIsInstance(s["config"], dict)
        self.assertIsInstance(s["context"], dict)
        self.assertIsInstance(s["metadata"], dict)

    # ---------------------------------------------------------------- create
    def test_create_defaults(self):
        user = uid()
        r = self.client.post("/v1/sessions", {"user_id": user})
        self.assertEqual(r.status, 201, r)
        self.assertIn("application/json", r.content_type)
        s = r.json
        self.assertSession(s)
        self.assertEqual(s["user_id"], user)
        self.assertEqual(s["provider"], "echo")  # the manifest's only (= default) provider
        self.assertEqual(s["status"], "active")
        self.assertEqual(s["message_count"], 0)
        self.assertEqual(s["metadata"], {})
        self.assertContext(s, {})
        self.assertLessEqual(iso_to_us(s["created_at"]), iso_to_us(s["last_activity"]))

    def test_create_ids_unique(self):
        user = uid()
        ids = {self.client.create_session(user)["id"] for _ in range(5)}
        self.assertEqual(len(ids), 5)

    def test_create_with_fields(self):
        user = uid()
        ctx = {"user_context": {"name": "Ada", "lang": "en"}, "system_context": {"tier": "gold"}}
        meta = {"source": "itest", "n": 3, "nested": {"a": [1, 2, 3]}}
        r = self.client.post("/v1/sessions", {"user_id": user, "provider": "echo", "model": "echo-large",
                                              "context": ctx, "metadata": meta, "config": {"temperature": 0.5}})
        self.assertEqual(r.status, 201, r)
        s = r.json
        self.assertSession(s)
        self.assertEqual(s["provider"], "echo")
        self.assertEqual(s["model"], "echo-large")
        self.assertContext(s, ctx)
        self.assertEqual(s["metadata"], meta)
        self.assertEqual(s["config"], {"temperature": 0.5})
        # and it is what GET returns
        g = self.client.get("/v1/sessions/%s" % s["id"])
        self.assertEqual(g.status, 200, g)
        self.assertEqual(g.json, s)

    # ------------------------------------------------------------------- get
    def test_get(self):
        s = self.client.create_session(uid())
        r = self.client.get("/v1/sessions/%s" % s["id"])
        self.assertEqual(r.status, 200, r)
        self.assertIn("application/json", r.content_type)
        self.assertEqual(r.json, s)

    def test_get_unknown(self):
        r = self.client.get("/v1/sessions/%s" % uuid.uuid4())
        self.assertError(r, 404, "not_found")

    # ------------------------------------------------------------------ list
    def test_list_by_user_only_matching_most_recent_first(self):
        user, other = uid(), uid()
        s1 = self.client.create_session(user)
        s2 = self.client.create_session(user)
        s3 = self.client.create_session(user)
        self.client.create_session(other)
        r = self.client.get("/v1/sessions?user_id=%s" % user)
        self.assertEqual(r.status, 200, r)
        sessions = r.json["sessions"]
        self.assertEqual([s["id"] for s in sessions], [s3["id"], s2["id"], s1["id"]])
        for s in sessions:
            self.assertEqual(s["user_id"], user)
        # activity moves the oldest one to the front
        m = self.client.send(s1["id"], "wake up")
        self.assertEqual(m.status, 201, m)
        r = self.client.get("/v1/sessions?user_id=%s" % user)
        self.assertEqual([s["id"] for s in r.json["sessions"]], [s1["id"], s3["id"], s2["id"]])
        acts = [iso_to_us(s["last_activity"]) for s in r.json["sessions"]]
        self.assertEqual(acts, sorted(acts, reverse=True))

    def test_list_limit_offset(self):
        user = uid()
        ids = [self.client.create_session(user)["id"] for _ in range(4)]
        newest_first = list(reversed(ids))
        r = self.client.get("/v1/sessions?user_id=%s&limit=2" % user)
        self.assertEqual(r.status, 200, r)
        self.assertEqual([s["id"] for s in r.json["sessions"]], newest_first[:2])
        r = self.client.get("/v1/sessions?user_id=%s&limit=2&offset=1" % user)
        self.assertEqual(r.status, 200, r)
        self.assertEqual([s["id"] for s in r.json["sessions"]], newest_first[1:3])
        r = self.client.get("/v1/sessions?user_id=%s&offset=10" % user)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json["sessions"], [])

    def test_list_unknown_user_is_empty(self):
        r = self.client.get("/v1/sessions?user_id=%s" % uid("nobody"))
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json, {"sessions": []})

    def test_list_by_status(self):
        user = uid()
        a1 = self.client.create_session(user)
        a2 = self.client.create_session(user)
        z = self.client.create_session(user)
        r = self.client.post("/v1/sessions/%s/archive" % z["id"])
        self.assertEqual(r.status, 200, r)
        r = self.client.get("/v1/sessions?user_id=%s&status=archived" % user)
        self.assertEqual(r.status, 200, r)
        self.assertEqual([s["id"] for s in r.json["sessions"]], [z["id"]])
        self.assertEqual(r.json["sessions"][0]["status"], "archived")
        r = self.client.get("/v1/sessions?user_id=%s&status=active" % user)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(sorted(s["id"] for s in r.json["sessions"]), sorted([a1["id"], a2["id"]]))
        # status alone (any user): only archived ones, ours among them
        r = self.client.get("/v1/sessions?status=archived")
        self.assertEqual(r.status, 200, r)
        self.assertTrue(all(s["status"] == "archived" for s in r.json["sessions"]), r)
        self.assertIn(z["id"], [s["id"] for s in r.json["sessions"]])

    # ----------------------------------------------------------------- patch
    def test_patch_model_metadata_context_config(self):
        s = self.client.create_session(uid())
        ctx = {"user_context": {"name": "Grace"}, "system_context": {"persona": "terse"}}
        body = {"model": "echo-xl", "metadata": {"k": "v", "n": 1}, "context": ctx, "config": {"max_tokens": 7}}
        r = self.client.patch("/v1/sessions/%s" % s["id"], body)
        self.assertEqual(r.status, 200, r)
        p = r.json
        self.assertSession(p)
        self.assertEqual(p["id"], s["id"])
        self.assertEqual(p["model"], "echo-xl")
        self.assertEqual(p["metadata"], {"k": "v", "n": 1})
        self.assertContext(p, ctx)
        self.assertEqual(p["config"], {"max_tokens": 7})
        # untouched fields stay
        self.assertEqual(p["user_id"], s["user_id"])
        self.assertEqual(p["provider"], s["provider"])
        self.assertEqual(p["status"], "active")
        self.assertEqual(p["created_at"], s["created_at"])
        self.assertEqual(p["message_count"], 0)
        g = self.client.get("/v1/sessions/%s" % s["id"])
        self.assertEqual(g.status, 200, g)
        self.assertEqual(g.json["model"], "echo-xl")
        self.assertEqual(g.json["metadata"], {"k": "v", "n": 1})
        self.assertEqual(g.json["context"], p["context"])
        self.assertEqual(g.json["config"], {"max_tokens": 7})

    def test_patch_one_field_keeps_others(self):
        s = self.client.create_session(uid(), model="m1", metadata={"keep": True})
        r = self.client.patch("/v1/sessions/%s" % s["id"], {"model": "m2"})
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json["model"], "m2")
        self.assertEqual(r.json["metadata"], {"keep": True})

    def test_patch_status_archived(self):
        s = self.client.create_session(uid())
        r = self.client.patch("/v1/sessions/%s" % s["id"], {"status": "archived"})
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json["status"], "archived")
        self.assertEqual(self.client.get("/v1/sessions/%s" % s["id"]).json["status"], "archived")

    def test_patch_unknown(self):
        r = self.client.patch("/v1/sessions/%s" % uuid.uuid4(), {"model": "x"})
        self.assertError(r, 404, "not_found")

    # --------------------------------------------------------------- archive
    def test_archive_then_send_conflicts(self):
        s = self.client.create_session(uid())
        r = self.client.post("/v1/sessions/%s/archive" % s["id"])
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json["id"], s["id"])
        self.assertEqual(r.json["status"], "archived")
        g = self.client.get("/v1/sessions/%s" % s["id"])
        self.assertEqual(g.json["status"], "archived")
        m = self.client.send(s["id"], "anyone there?")
        self.assertError(m, 409, "conflict")
        # nothing was stored
        self.assertEqual(self.client.messages(s["id"]), [])
        self.assertEqual(self.client.get("/v1/sessions/%s" % s["id"]).json["message_count"], 0)

    def test_archive_unknown(self):
        r = self.client.post("/v1/sessions/%s/archive" % uuid.uuid4())
        self.assertError(r, 404, "not_found")

    # ---------------------------------------------------------------- delete
    def test_delete(self):
        user = uid()
        s = self.client.create_session(user)
        self.assertEqual(self.client.send(s["id"], "to be deleted").status, 201)
        r = self.client.delete("/v1/sessions/%s" % s["id"])
        self.assertEqual(r.status, 204, r)
        self.assertEqual(r.raw, b"")
        self.assertError(self.client.get("/v1/sessions/%s" % s["id"]), 404, "not_found")
        self.assertError(self.client.get("/v1/sessions/%s/messages" % s["id"]), 404, "not_found")
        self.assertError(self.client.send(s["id"], "again"), 404, "not_found")
        self.assertError(self.client.delete("/v1/sessions/%s" % s["id"]), 404, "not_found")
        r = self.client.get("/v1/sessions?user_id=%s" % user)
        self.assertEqual(r.json["sessions"], [])


if __name__ == "__main__":
    unittest.main()
