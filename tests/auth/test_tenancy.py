"""API keys through the real daemon (docs/security.md): 401 without a valid
key, /healthz for probes, both credential headers, tenant isolation as 404 on
every route of another user's session, 403 for another user_id and for admin
routes, a collaborative session shared through its participants route (and
X-Swarmhost-User ignored under auth), server.max_messages_per_session."""

import os
import threading
import unittest

import swh_harness
from swh_harness import Daemon

from auth_fixture import COLLABORATIVE, AuthTestCase, Key, auth_section, keys_yaml

ALICE = Key("alice-laptop", "alice")
BOB = Key("bob-phone", "bob")
OPS = Key("ops", "ops", role="admin")
CAROL = Key("carol-ci", "carol")  # from the keys file
STRANGER = Key("stranger", "mallory")  # never configured
MAX_MESSAGES = 4  # two sends: question + reply each


class TenancyTests(AuthTestCase):

    @classmethod
    def setUpClass(cls):
        workdir = swh_harness.make_tmpdir("swh-auth-")
        keys_file = os.path.join(workdir, "keys.yaml")
        with open(keys_file, "w", encoding="utf-8") as f:
            f.write(keys_yaml([CAROL]))
        cls.daemon = Daemon(workdir=workdir,
                            server_lines=["max_messages_per_session: %d" % MAX_MESSAGES],
                            extra_providers=auth_section([ALICE, BOB, OPS], keys_file="keys.yaml")
                            + COLLABORATIVE)
        cls.daemon.owns_workdir = True
        cls.daemon.start_or_cleanup()
        cls.client = cls.daemon.client

    # ---- 401 and /healthz

    def test_missing_or_wrong_key_is_401_with_www_authenticate(self):
        anonymous = self.anonymous()
        stranger = self.as_key(STRANGER)
        routes = [("GET", "/v1/sessions"), ("POST", "/v1/sessions"), ("GET", "/v1/models"),
                  ("GET", "/v1/plugins"), ("GET", "/metrics"), ("POST", "/v1/admin/reload"),
                  ("POST", "/v1/chat/completions"), ("GET", "/v1/sessions/x/events")]
        for method, path in routes:
            with self.subTest(method=method, path=path):
                self.assertUnauthorized(anonymous.request(method, path, body={}))
                self.assertUnauthorized(stranger.request(method, path, body={}))
        # Not a key: an empty bearer, another scheme, the stored hash itself.
        for value in ("Bearer ", "Basic %s" % ALICE.text, "Bearer %s" % ALICE.sha256):
            with self.subTest(authorization=value):
                self.assertUnauthorized(self.client.get("/v1/sessions", headers={"Authorization": value}))
        # Nothing was created by the refused POSTs.
        r = self.as_key(OPS).get("/v1/sessions?user_id=mallory")
        self.assertEqual((r.status, r.json["sessions"]), (200, []), r)

    def test_healthz_verdict_without_key_full_report_with_one(self):
        for headers in ({}, STRANGER.bearer()):
            r = self.client.get("/healthz", headers=headers)
            self.assertEqual(r.status, 200, r)
            self.assertEqual(r.json, {"status": "healthy"}, r)
        for key in (ALICE, OPS):
            r = self.as_key(key).get("/healthz")
            self.assertEqual(r.status, 200, r)
            self.assertEqual(r.json["status"], "healthy", r)
            self.assertIn("storage", r.json, r)
            self.assertIn("echo", r.json["providers"], r)

    def test_bearer_and_x_api_key_both_work(self):
        for header in ("bearer", "x-api-key"):
            with self.subTest(header=header):
                alice = self.as_key(ALICE, header)
                created = alice.create_session()
                self.assertEqual(created["user_id"], "alice")
                r = alice.get("/v1/sessions/%s" % created["id"])
                self.assertEqual((r.status, r.json["id"]), (200, created["id"]), r)

    def test_bare_key_in_authorization_is_401_saying_how_to_send_it(self):
        # A valid key without the scheme is not taken (issue #13)...
        r = self.client.get("/v1/sessions", headers={"Authorization": ALICE.text})
        self.assertUnauthorized(r)
        self.assertIn("Bearer <key>", r.json["error"]["message"])
        self.assertIn("X-API-Key", r.json["error"]["message"])
        # ...while the scheme in any case, and the header names as SDKs send them, are.
        for headers in ({"Authorization": "bearer %s" % ALICE.text}, {"Authorization": "BEARER %s" % ALICE.text},
                        {"x-api-key": ALICE.text}, {"X-Api-Key": ALICE.text}):
            with self.subTest(headers=list(headers)):
                self.assertEqual(self.client.get("/v1/sessions", headers=headers).status, 200)

    def test_keys_file_keys_work_beside_manifest_keys(self):
        carol = self.as_key(CAROL)
        self.assertEqual(carol.create_session()["user_id"], "carol")
        r = carol.get("/v1/sessions")
        self.assertEqual(r.status, 200, r)
        self.assertEqual({s["user_id"] for s in r.json["sessions"]}, {"carol"})

    # ---- tenant isolation

    def test_other_users_session_is_404_on_every_route(self):
        alice, bob = self.as_key(ALICE), self.as_key(BOB)
        secret_text = "bob-private-%s" % os.urandom(4).hex()
        plain = bob.create_session()["id"]
        self.assertEqual(bob.send(plain, secret_text).status, 201)
        shared_type = bob.create_session(type="collaborative")["id"]
        missing = "00000000-0000-4000-8000-000000000000"

        def attempts(sid):
            completion = {"model": "echo", "messages": [{"role": "user", "content": "let me in"}]}
            session_header = {"X-Swarmhost-Session": sid}
            return [
                ("GET session", lambda: alice.get("/v1/sessions/%s" % sid)),
                ("PATCH session", lambda: alice.request("PATCH", "/v1/sessions/%s" % sid, {"metadata": {"x": 1}})),
                ("DELETE session", lambda: alice.request("DELETE", "/v1/sessions/%s" % sid)),
                ("POST archive", lambda: alice.post("/v1/sessions/%s/archive" % sid)),
                ("GET messages", lambda: alice.get("/v1/sessions/%s/messages" % sid)),
                ("POST messages", lambda: alice.send(sid, "hi")),
                ("POST messages stream", lambda: alice.stream("/v1/sessions/%s/messages" % sid,
                                                              {"content": "hi", "stream": True})),
                ("GET events", lambda: alice.stream("/v1/sessions/%s/events" % sid, None, method="GET")),
                ("GET participants", lambda: alice.get("/v1/sessions/%s/participants" % sid)),
                ("POST participants", lambda: alice.post("/v1/sessions/%s/participants" % sid,
                                                         {"user_id": "alice", "permissions": ["admin"]})),
                ("chat completion", lambda: alice.post("/v1/chat/completions", completion, session_header)),
                ("chat completion stream", lambda: alice.stream("/v1/chat/completions",
                                                                dict(completion, stream=True),
                                                                headers=session_header)),
            ]

        for sid in (plain, shared_type):
            for name, attempt in attempts(sid):
                with self.subTest(session=sid, route=name):
                    r = attempt()
                    self.assertIsInstance(r, swh_harness.Response, "%s opened a stream" % name)
                    self.assertNotFound(r)
                    self.assertNotIn(secret_text.encode(), r.raw)
                    self.assertNotIn(b"bob", r.raw)
                    # Indistinguishable from a session that does not exist.
                    self.assertEqual(r.json["error"]["message"].replace(sid, "ID"),
                                     "session 'ID' not found", r)
        for name, attempt in attempts(missing):
            if name != "chat completion stream":  # a stream with an unknown session is covered above
                with self.subTest(session="missing", route=name):
                    self.assertNotFound(attempt())

        # None of it touched bob's sessions.
        r = bob.get("/v1/sessions/%s" % plain)
        self.assertEqual((r.status, r.json["status"], r.json["metadata"]), (200, "active", {}), r)
        r = bob.get("/v1/sessions/%s/messages" % plain)
        self.assertEqual([m["content"] for m in r.json["messages"]], [secret_text, "echo#1 " + secret_text])
        r = bob.get("/v1/sessions/%s/participants" % shared_type)
        self.assertEqual([p["user_id"] for p in r.json["participants"]], ["bob"], r)
        self.assertEqual(bob.get("/v1/sessions/%s/messages" % shared_type).json["messages"], [])

    def test_listing_shows_only_the_callers_sessions(self):
        alice, bob = self.as_key(ALICE), self.as_key(BOB)
        mine = alice.create_session()["id"]
        theirs = bob.create_session()["id"]
        for query in ("", "?user_id=bob", "?user_id=alice"):
            with self.subTest(query=query):
                r = alice.get("/v1/sessions%s" % query)
                self.assertEqual(r.status, 200, r)
                ids = [s["id"] for s in r.json["sessions"]]
                self.assertIn(mine, ids)
                self.assertNotIn(theirs, ids)
                self.assertEqual({s["user_id"] for s in r.json["sessions"]}, {"alice"})
        # An admin key sees everyone's.
        ids = [s["id"] for s in self.as_key(OPS).get("/v1/sessions").json["sessions"]]
        self.assertIn(mine, ids)
        self.assertIn(theirs, ids)

    def test_user_key_creates_only_for_its_own_user(self):
        alice = self.as_key(ALICE)
        self.assertForbidden(alice.post("/v1/sessions", {"user_id": "bob"}))
        self.assertForbidden(alice.post("/v1/sessions", {"user_id": "bob"}, {"X-Swarmhost-User": "bob"}))
        # X-Swarmhost-User does not change who the key acts as.
        created = alice.create_session()
        self.assertEqual(created["user_id"], "alice")
        r = alice.post("/v1/sessions", {}, {"X-Swarmhost-User": "bob"})
        self.assertEqual((r.status, r.json["user_id"]), (201, "alice"), r)
        self.assertEqual(alice.create_session(user_id="alice")["user_id"], "alice")
        # The refused ones left nothing behind for bob.
        bob_sessions = self.as_key(OPS).get("/v1/sessions?user_id=bob").json["sessions"]
        self.assertNotIn(created["id"], [s["id"] for s in bob_sessions])
        self.assertEqual([s for s in bob_sessions if s["created_at"] >= created["created_at"]], [])
        # An admin key creates for anyone.
        self.assertEqual(self.as_key(OPS).create_session(user_id="bob")["user_id"], "bob")

    def test_admin_routes_are_403_for_user_keys_and_open_to_admin_keys(self):
        alice, ops = self.as_key(ALICE), self.as_key(OPS)
        admin_routes = [("GET", "/metrics"), ("GET", "/v1/plugins"), ("GET", "/v1/providers"),
                        ("GET", "/v1/providers/echo"), ("PATCH", "/v1/providers/echo"),
                        ("POST", "/v1/admin/reload")]
        for method, path in admin_routes:
            with self.subTest(method=method, path=path):
                self.assertForbidden(alice.request(method, path, body={}))
        for method, path in admin_routes[:4]:
            with self.subTest(admin=True, method=method, path=path):
                self.assertEqual(ops.request(method, path).status, 200)
        r = ops.post("/v1/admin/reload")
        self.assertEqual((r.status, r.json["status"]), (200, "reloaded"), r)
        self.assertEqual(r.json["session_types"], 1, r)
        # The keys survive the reload (the manifest's and the keys file's).
        for key in (ALICE, BOB, CAROL):
            self.assertEqual(self.as_key(key).get("/v1/sessions").status, 200, key.id)
        # Admin keys reach any user's session.
        sid = self.as_key(BOB).create_session()["id"]
        self.assertEqual(ops.get("/v1/sessions/%s" % sid).status, 200)
        self.assertEqual(ops.send(sid, "from ops").status, 201)

    # ---- a session type that shares a session

    def test_collaborative_session_shared_through_participants(self):
        alice, bob, carol = self.as_key(ALICE), self.as_key(BOB), self.as_key(CAROL)
        sid = alice.create_session(type="collaborative")["id"]
        path = "/v1/sessions/%s" % sid
        self.assertNotFound(bob.get(path))
        # bob claiming to be alice gets nowhere: the caller is the key's user.
        as_alice = {"X-Swarmhost-User": "alice"}
        self.assertNotFound(bob.get(path, as_alice))
        self.assertNotFound(bob.post(path + "/participants", {"user_id": "bob"}, as_alice))

        r = alice.post(path + "/participants", {"user_id": "bob", "permissions": ["read"]})
        self.assertEqual(r.status, 201, r)
        self.assertEqual((r.json["user_id"], r.json["permissions"]), ("bob", ["read"]), r)
        # A participant: in, with the type's permissions (read only here).
        self.assertEqual(bob.get(path).status, 200)
        self.assertEqual(bob.get(path + "/messages").status, 200)
        self.assertEqual(bob.get(path + "/participants").status, 200)
        stream, _ = self.open_events(bob, sid)
        stream.close()
        self.assertForbidden(bob.send(sid, "may I?"))
        self.assertForbidden(bob.post(path + "/messages", {"content": "as alice?"}, as_alice))
        self.assertForbidden(bob.post(path + "/participants", {"user_id": "mallory"}, as_alice))
        self.assertForbidden(bob.request("PATCH", path + "/participants/bob", {"permissions": ["admin"]},
                                         as_alice))
        self.assertForbidden(bob.request("DELETE", path, headers=as_alice))
        self.assertEqual([m for m in alice.get(path + "/messages").json["messages"]], [])
        roster = {p["user_id"]: p["permissions"] for p in alice.get(path + "/participants").json["participants"]}
        self.assertEqual(roster, {"alice": ["read", "write", "admin"], "bob": ["read"]})

        r = alice.request("PATCH", path + "/participants/bob", {"permissions": ["write"]})
        self.assertEqual(r.status, 200, r)
        r = bob.post(path + "/messages", {"content": "hello alice"}, as_alice)
        self.assertEqual(r.status, 201, r)
        self.assertEqual(r.json["user_message"]["metadata"]["participant_id"], "bob")
        # Not shared with carol; not listed for bob (the list is of one's own sessions).
        self.assertNotFound(carol.get(path))
        self.assertNotIn(sid, [s["id"] for s in bob.get("/v1/sessions").json["sessions"]])

    # ---- server.max_messages_per_session

    def test_send_beyond_max_messages_is_409_and_stores_nothing(self):
        alice = self.as_key(ALICE)
        sid = alice.create_session()["id"]
        for i in range(MAX_MESSAGES // 2):
            self.assertEqual(alice.send(sid, "m%d" % i).status, 201)
        self.assertError(alice.send(sid, "one too many"), 409, "conflict")
        r = alice.stream("/v1/sessions/%s/messages" % sid, {"content": "streamed too many", "stream": True})
        self.assertIsInstance(r, swh_harness.Response, "the refused send opened a stream")
        self.assertError(r, 409, "conflict")
        messages = alice.get("/v1/sessions/%s/messages" % sid).json["messages"]
        self.assertEqual([m["content"] for m in messages], ["m0", "echo#1 m0", "m1", "echo#2 m1"])
        self.assertEqual(alice.get("/v1/sessions/%s" % sid).json["message_count"], MAX_MESSAGES)

    def test_concurrent_sends_do_not_overshoot_max_messages(self):
        # Sends racing for the last places: the cap holds whatever the timing.
        sid = self.as_key(ALICE).create_session()["id"]
        senders = 4 * (MAX_MESSAGES // 2)
        start = threading.Barrier(senders)
        statuses = []

        def send(i):
            client = self.as_key(ALICE)
            start.wait(timeout=30)
            statuses.append(client.send(sid, "racer %d" % i).status)

        threads = [threading.Thread(target=send, args=(i,)) for i in range(senders)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        self.assertEqual(len(statuses), senders, "a sender did not finish")
        self.assertEqual(set(statuses) - {201, 409}, set(), statuses)
        stored = self.as_key(ALICE).get("/v1/sessions/%s/messages" % sid).json["messages"]
        self.assertLessEqual(len(stored), MAX_MESSAGES, "%d stored: %r" % (len(stored), sorted(statuses)))
        self.assertEqual(statuses.count(201), MAX_MESSAGES // 2, sorted(statuses))

    def test_chat_completion_into_a_full_session_is_409_and_stores_nothing(self):
        alice = self.as_key(ALICE)
        sid = alice.create_session()["id"]
        header = {"X-Swarmhost-Session": sid}

        def complete(text):
            return alice.post("/v1/chat/completions",
                              {"model": "echo", "messages": [{"role": "user", "content": text}]}, header)

        for i in range(MAX_MESSAGES // 2):
            self.assertEqual(complete("c%d" % i).status, 200)
        stored = [m["content"] for m in alice.get("/v1/sessions/%s/messages" % sid).json["messages"]]
        self.assertEqual(len(stored), MAX_MESSAGES, stored)
        self.assertError(complete("one too many"), 409, "conflict")
        after = [m["content"] for m in alice.get("/v1/sessions/%s/messages" % sid).json["messages"]]
        self.assertEqual(after, stored)


if __name__ == "__main__":
    unittest.main()
