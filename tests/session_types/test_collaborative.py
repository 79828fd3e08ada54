"""The `collaborative` session type (plugins/session_collaborative) through the
real daemon over loopback HTTP: participants and permissions, the host's
authorize / on_user_message calls, live events on two /events listeners, and
state that survives a restart on the same SQLite file."""

import os
import shutil
import unittest

import swh_harness
from swh_harness import Daemon, DaemonTestCase

MAX_PARTICIPANTS = 4
SESSION_TYPES = (
    "session_types:\n"
    "  - name: collaborative\n"
    "    plugin: collaborative\n"
    "    config:\n"
    "      max_participants: %d\n" % MAX_PARTICIPANTS
)
ALL = ["read", "write", "admin"]
READ_WRITE = ["read", "write"]
EVENTS_DEADLINE_S = 20.0  # upper bound of one /events stream in these tests


def as_user(user):
    return {"X-Swarmhost-User": user}


class CollaborativeHelpers:
    """Shared steps; expects self.client (a swh_harness.Client)."""

    def new_session(self, owner="owner"):
        return self.client.create_session(owner, type="collaborative")["id"]

    def call(self, method, path, user, body=None):
        return self.client.request(method, path, body=body, headers=as_user(user) if user is not None else None)

    def participants_path(self, sid, user=None):
        return "/v1/sessions/%s/participants%s" % (sid, "" if user is None else "/" + user)

    def add(self, sid, by, user, permissions=None, expect=201):
        body = {"user_id": user}
        if permissions is not None:
            body["permissions"] = permissions
        r = self.call("POST", self.participants_path(sid), by, body)
        self.assertEqual(r.status, expect, r)
        return r

    def roster(self, sid, user="owner"):
        r = self.call("GET", self.participants_path(sid), user)
        self.assertEqual(r.status, 200, r)
        return {p["user_id"]: p["permissions"] for p in r.json["participants"]}

    def team(self):
        """A session where owner is admin, bob may write, carol may only read."""
        sid = self.new_session()
        self.add(sid, "owner", "bob", ["write"])
        self.add(sid, "owner", "carol", ["read"])
        return sid

    def send_as(self, sid, user, content):
        return self.call("POST", "/v1/sessions/%s/messages" % sid, user, {"content": content})

    def open_events(self, sid, user):
        """An /events stream of `user`, past its `ready` event; returns (stream, iterator)."""
        stream = self.client.stream("/v1/sessions/%s/events" % sid, None, method="GET", headers=as_user(user),
                                    deadline_s=EVENTS_DEADLINE_S)
        self.assertIsInstance(stream, swh_harness.SSEStream, stream)
        events = iter(stream)
        first = next(events)
        self.assertEqual(first.event, "ready", first)
        self.assertEqual(first.json.get("session_id"), sid, first)
        return stream, events

    def read_until(self, events, predicate, limit=50):
        """Events up to and including the first that satisfies `predicate`
        (bounded by `limit` events and the stream's deadline)."""
        seen = []
        try:
            for event in events:
                seen.append(event)
                if predicate(event):
                    return seen
                if len(seen) >= limit:
                    break
        except TimeoutError:
            pass  # the stream's deadline: report what did arrive
        self.fail("expected event never arrived; got %r" % seen)

    def assertForbidden(self, resp):
        self.assertError(resp, 403, "forbidden")


class CollaborativeTests(CollaborativeHelpers, DaemonTestCase):
    manifest_kw = {"extra_providers": SESSION_TYPES}

    def test_creator_is_first_admin_and_state_is_in_metadata(self):
        r = self.client.post("/v1/sessions", {"user_id": "owner", "type": "collaborative"})
        self.assertEqual(r.status, 201, r)
        sid = r.json["id"]
        participants = r.json["metadata"]["collaborative"]["participants"]
        self.assertEqual(list(participants), ["owner"])
        self.assertEqual(participants["owner"]["permissions"], ALL)
        self.assertIsoTime(participants["owner"]["joined_at"])

        r = self.call("GET", self.participants_path(sid), "owner")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json["session_id"], sid)
        self.assertEqual(r.json["participant_count"], 1)
        self.assertEqual(r.json["max_participants"], MAX_PARTICIPANTS)
        self.assertEqual(r.json["participants"], [
            {"user_id": "owner", "permissions": ALL, "joined_at": participants["owner"]["joined_at"]}])

    def test_client_cannot_seed_the_roster_at_creation(self):
        forged = {"collaborative": {"participants": {"mallory": {"permissions": ALL,
                                                                  "joined_at": "2020-01-01T00:00:00.000000Z"}}}}
        sid = self.client.create_session("owner", type="collaborative", metadata=forged)["id"]
        self.assertEqual(self.roster(sid), {"owner": ALL})
        self.assertForbidden(self.call("GET", self.participants_path(sid), "mallory"))
        self.assertForbidden(self.call("GET", "/v1/sessions/%s/messages" % sid, "mallory"))

    def test_permissions_nest_and_are_stored_closed(self):
        sid = self.team()
        self.assertEqual(self.roster(sid), {"owner": ALL, "bob": READ_WRITE, "carol": ["read"]})
        r = self.add(sid, "owner", "dan")  # no list: the default, read + write
        self.assertEqual(r.json["permissions"], READ_WRITE)
        self.assertEqual(r.json["participant_count"], 4)
        r = self.call("GET", self.participants_path(sid, "bob"), "carol")
        self.assertEqual(r.status, 200, r)
        self.assertEqual((r.json["user_id"], r.json["permissions"]), ("bob", READ_WRITE))

    def test_writer_sends_reader_and_strangers_are_refused(self):
        sid = self.team()
        r = self.send_as(sid, "bob", "hello team")
        self.assertEqual(r.status, 201, r)
        meta = r.json["user_message"]["metadata"]
        self.assertEqual(meta["participant_id"], "bob")
        self.assertIs(meta["collaborative_session"], True)
        self.assertEqual(meta["participant_count"], 3)
        self.assertEqual(r.json["assistant_message"]["content"], "echo#1 hello team")

        self.assertForbidden(self.send_as(sid, "carol", "may I?"))
        self.assertForbidden(self.send_as(sid, "dave", "let me in"))
        self.assertForbidden(self.send_as(sid, None, "anonymous"))

        # Nothing of the refused sends was stored; carol may read.
        r = self.call("GET", "/v1/sessions/%s/messages" % sid, "carol")
        self.assertEqual(r.status, 200, r)
        self.assertEqual([m["content"] for m in r.json["messages"]], ["hello team", "echo#1 hello team"])
        self.assertEqual(r.json["messages"][0]["metadata"]["participant_id"], "bob")

        self.assertForbidden(self.call("GET", "/v1/sessions/%s/messages" % sid, "dave"))
        self.assertForbidden(self.call("GET", "/v1/sessions/%s" % sid, "dave"))
        self.assertForbidden(self.call("GET", "/v1/sessions/%s/messages" % sid, None))
        self.assertForbidden(self.call("GET", self.participants_path(sid), "dave"))
        self.assertForbidden(self.call("GET", self.participants_path(sid), None))

    def test_only_admins_manage(self):
        sid = self.team()
        self.assertForbidden(self.call("POST", self.participants_path(sid), "bob", {"user_id": "eve"}))
        self.assertForbidden(self.call("POST", self.participants_path(sid), None, {"user_id": "eve"}))
        self.assertForbidden(self.call("PATCH", self.participants_path(sid, "carol"), "bob",
                                       {"permissions": ["write"]}))
        self.assertForbidden(self.call("DELETE", self.participants_path(sid, "carol"), "bob"))
        self.assertForbidden(self.call("DELETE", self.participants_path(sid, "carol"), "dave"))
        # The host's admin actions go through authorize("admin").
        self.assertForbidden(self.call("POST", "/v1/sessions/%s/archive" % sid, "bob"))
        self.assertForbidden(self.call("DELETE", "/v1/sessions/%s" % sid, "carol"))
        self.assertEqual(self.roster(sid), {"owner": ALL, "bob": READ_WRITE, "carol": ["read"]})

        r = self.call("PATCH", self.participants_path(sid, "carol"), "owner", {"permissions": ["write"]})
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json["permissions"], READ_WRITE)
        self.assertEqual(self.send_as(sid, "carol", "now I can").status, 201)

    def test_leaving_and_the_last_admin(self):
        sid = self.team()
        r = self.call("DELETE", self.participants_path(sid, "carol"), "carol")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json, {"user_id": "carol", "participant_count": 2, "removed_by": "carol"})
        self.assertForbidden(self.call("GET", self.participants_path(sid), "carol"))

        self.assertError(self.call("DELETE", self.participants_path(sid, "owner"), "owner"), 409, "conflict")
        self.assertError(self.call("PATCH", self.participants_path(sid, "owner"), "owner",
                                   {"permissions": ["write"]}), 409, "conflict")
        r = self.call("PATCH", self.participants_path(sid, "bob"), "owner", {"permissions": ["admin"]})
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json["permissions"], ALL)
        # With a second admin, the owner may leave; then bob is the last one.
        self.assertEqual(self.call("DELETE", self.participants_path(sid, "owner"), "owner").status, 200)
        self.assertError(self.call("DELETE", self.participants_path(sid, "bob"), "bob"), 409, "conflict")
        self.assertEqual(self.roster(sid, "bob"), {"bob": ALL})
        self.assertForbidden(self.send_as(sid, "owner", "I left"))

    def test_bad_bodies_unknown_users_and_conflicts(self):
        sid = self.team()
        path = self.participants_path(sid)
        bad = [
            {"user_id": "eve", "role": "admin"},       # unknown field
            {"user_id": 7},                             # wrong type
            {"user_id": ""},
            {"user_id": "a/b"},
            {"permissions": ["read"]},                  # user_id missing
            {"user_id": "eve", "permissions": ["read", "root"]},
            {"user_id": "eve", "permissions": "read"},
            {"user_id": "eve", "permissions": []},
            {"user_id": "eve", "permissions": [1]},
            ["eve"],
        ]
        for body in bad:
            with self.subTest(body=body):
                self.assertError(self.call("POST", path, "owner", body), 400, "invalid_request")
        r = self.client.request("POST", path, raw=b"{not json", headers=as_user("owner"))
        self.assertEqual(r.status, 400, r)
        self.assertError(self.call("PATCH", self.participants_path(sid, "bob"), "owner", {"permissions": ["su"]}),
                         400, "invalid_request")
        self.assertError(self.call("PATCH", self.participants_path(sid, "bob"), "owner",
                                   {"permissions": ["read"], "x": 1}), 400, "invalid_request")
        self.assertError(self.call("PATCH", self.participants_path(sid, "bob"), "owner", {}), 400,
                         "invalid_request")

        for method, body in (("GET", None), ("PATCH", {"permissions": ["read"]}), ("DELETE", None)):
            with self.subTest(method=method):
                self.assertError(self.call(method, self.participants_path(sid, "nobody"), "owner", body),
                                 404, "not_found")
        self.assertError(self.add(sid, "owner", "bob", ["read"], expect=409), 409, "conflict")
        self.assertEqual(self.roster(sid), {"owner": ALL, "bob": READ_WRITE, "carol": ["read"]})

    def test_max_participants(self):
        sid = self.team()
        self.add(sid, "owner", "dan")
        self.assertError(self.add(sid, "owner", "eve", expect=409), 409, "conflict")
        self.assertEqual(len(self.roster(sid)), MAX_PARTICIPANTS)
        # Leaving makes room again.
        self.assertEqual(self.call("DELETE", self.participants_path(sid, "dan"), "dan").status, 200)
        self.add(sid, "owner", "eve")

    def test_two_listeners_see_the_same_events_in_order(self):
        sid = self.team()
        bob_stream, bob_events = self.open_events(sid, "bob")
        try:
            carol_stream, carol_events = self.open_events(sid, "carol")
            try:
                self.add(sid, "owner", "erin", ["read"])
                r = self.send_as(sid, "bob", "for everyone")
                self.assertEqual(r.status, 201, r)
                self.assertEqual(self.call("DELETE", self.participants_path(sid, "erin"), "erin").status, 200)

                def erin_left(e):
                    return e.event == "participant_left" and (e.json or {}).get("user_id") == "erin"
                seen = {}
                for name, events in (("bob", bob_events), ("carol", carol_events)):
                    seen[name] = [(e.event, e.json) for e in self.read_until(events, erin_left)]
            finally:
                carol_stream.close()
        finally:
            bob_stream.close()

        self.assertEqual(seen["bob"], seen["carol"])
        wanted = ("participant_joined", "message", "participant_left")
        relevant = [(event, data) for event, data in seen["bob"] if event in wanted]
        self.assertEqual([event for event, _ in relevant], ["participant_joined", "message", "message",
                                                             "participant_left"], relevant)
        joined, user_msg, assistant_msg, left = (data for _, data in relevant)
        self.assertEqual(joined, {"user_id": "erin", "permissions": ["read"], "participant_count": 4,
                                  "added_by": "owner"})
        self.assertMessage(user_msg, sid, "user", "for everyone")
        self.assertEqual(user_msg["metadata"]["participant_id"], "bob")
        self.assertMessage(assistant_msg, sid, "assistant", "echo#1 for everyone")
        self.assertEqual(left, {"user_id": "erin", "participant_count": 3, "removed_by": "erin",
                                "revoke_access": ["erin"]})

    def test_removed_participant_cannot_open_events(self):
        sid = self.team()
        stream, events = self.open_events(sid, "carol")
        other, other_events = self.open_events(sid, "bob")
        r = self.call("DELETE", self.participants_path(sid, "carol"), "owner")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json["removed_by"], "owner")
        # carol's open stream gets the news, then ends; bob's goes on
        left = self.read_until(events, lambda e: e.event == "participant_left")[-1]
        self.assertEqual(left.json["revoke_access"], ["carol"])
        self.assertEqual(list(events), [], "carol's stream must end once she is removed")
        stream.close()
        self.read_until(other_events, lambda e: e.event == "participant_left")
        self.assertEqual(self.send_as(sid, "bob", "still here").status, 201)
        self.read_until(other_events, lambda e: e.event == "message")
        other.close()
        r = self.client.stream("/v1/sessions/%s/events" % sid, None, method="GET", headers=as_user("carol"))
        if isinstance(r, swh_harness.SSEStream):
            r.close()
            self.fail("a removed participant opened /events")
        self.assertForbidden(r)
        r = self.client.stream("/v1/sessions/%s/events" % sid, None, method="GET")
        if isinstance(r, swh_harness.SSEStream):
            r.close()
            self.fail("a caller without identity opened /events")
        self.assertForbidden(r)


class CollaborativeRestartTests(CollaborativeHelpers, unittest.TestCase):
    """The roster is in the session's stored metadata: a new daemon process on
    the same SQLite file enforces the same participants."""

    def setUp(self):
        self.workdir = swh_harness.make_tmpdir()
        self.daemon = Daemon(workdir=self.workdir, extra_providers=SESSION_TYPES)
        self.client = self.daemon.client

    def tearDown(self):
        self.daemon.cleanup()
        if os.environ.get("SWH_KEEP_TMP") != "1":
            shutil.rmtree(self.workdir, ignore_errors=True)

    def assertForbidden(self, resp):
        self.assertEqual(resp.status, 403, resp)
        self.assertEqual((resp.json or {}).get("error", {}).get("code"), "forbidden", resp)

    def test_participants_survive_a_restart(self):
        self.daemon.start()
        sid = self.team()
        self.assertEqual(self.call("DELETE", self.participants_path(sid, "carol"), "owner").status, 200)
        before = self.call("GET", self.participants_path(sid), "owner").json
        self.assertEqual(self.daemon.stop(), 0, self.daemon.log_tail())

        self.daemon.start()
        after = self.call("GET", self.participants_path(sid), "bob")
        self.assertEqual(after.status, 200, after)
        self.assertEqual(after.json, before)
        self.assertEqual(self.roster(sid), {"owner": ALL, "bob": READ_WRITE})
        self.assertEqual(self.send_as(sid, "bob", "still here").status, 201)
        self.assertForbidden(self.send_as(sid, "carol", "me too?"))
        self.assertForbidden(self.call("GET", "/v1/sessions/%s/messages" % sid, "carol"))


def session_types_with(config_lines):
    return "session_types:\n  - name: collaborative\n    plugin: collaborative\n    config:\n" + "".join(
        "      %s\n" % line for line in config_lines)


class CollaborativeConfigTests(CollaborativeHelpers, unittest.TestCase):
    """The instance config: default_permissions is applied, bad values stop the daemon."""

    def daemon_with(self, config_lines):
        daemon = Daemon(extra_providers=session_types_with(config_lines))
        self.addCleanup(daemon.cleanup)
        return daemon

    def test_default_permissions_from_config(self):
        daemon = self.daemon_with(["default_permissions: [read]"]).start()
        self.client = daemon.client
        sid = self.new_session()
        r = self.add(sid, "owner", "vic")
        self.assertEqual(r.json["permissions"], ["read"])
        r = self.send_as(sid, "vic", "hi")
        self.assertEqual(r.status, 403, r)
        self.assertEqual(daemon.stop(), 0, daemon.log_tail())

    def test_invalid_config_refuses_to_start(self):
        for lines, needle in ((["default_permissions: [read, root]"], "root"),
                              (["default_permissions: []"], "default_permissions"),
                              (["max_participants: 0"], "max_participants")):
            with self.subTest(config=lines):
                daemon = self.daemon_with(lines)
                with self.assertRaises(swh_harness.DaemonError):
                    daemon.start()
                self.assertIn(needle, daemon.log())


if __name__ == "__main__":
    unittest.main()
