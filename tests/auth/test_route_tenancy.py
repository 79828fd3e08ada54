"""Tenancy on every route that can name a session, generated from the
daemon's own route table (GET /v1/admin/routes: the table the dispatcher
routes by, plus every loaded session type's routes), for every session type,
with the owner's key, another user's key, a collaborative participant with
each permission, an admin key and no key (docs/security.md, "Who may touch a
session"). A route added later is in the report, so it is covered here
without anyone remembering to add it.

The rules checked:
- no key: 401 on every route;
- another user: 404 ("not found", the session does not exist for them) on
  every route and every type; only a collaborative session's participants
  are let in, and only as far as their permissions go;
- the owner: never refused; an admin key: never refused on the host's
  routes, and never hidden on a type's own routes (the type may refuse it:
  the ABI tells a type the caller's user id, not its role);
- a participant: a host route needing an action it lacks is 403 (a read-only
  participant cannot write through any door, chat completions included); a
  session type's own route is the type's to refuse, never 404 for the session.
"""

import os
import unittest

import swh_harness
from swh_harness import Daemon

from auth_fixture import AuthTestCase, Key, auth_section

OWNER = Key("bob-phone", "bob")
OTHER = Key("alice-laptop", "alice")
OPS = Key("ops", "ops", role="admin")
# Collaborative participants, one per permission set the type knows.
PARTICIPANTS = {
    "read": Key("reader-key", "reader"),
    "write": Key("writer-key", "writer"),
    "admin": Key("coadmin-key", "coadmin"),
}
GRANTS = {"read": ["read"], "write": ["read", "write"], "admin": ["read", "write", "admin"]}
TEMPLATES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "configs", "templates")
TYPES = ("plain", "collaborative", "multimodal", "templated")

SESSION_TYPES = (
    "session_types:\n"
    "  - plugin: collaborative\n"
    "  - plugin: multimodal\n"
    "    config:\n"
    "      attachments_dir: \"./attachments\"\n"
    "  - plugin: templated\n"
    "    config:\n"
    "      templates_dir: %s\n" % swh_harness.yaml_str(TEMPLATES)
)

# Bodies that the owner's request would be accepted with; any other route
# gets {} (a POST/PATCH) or nothing. Tenancy must not depend on the body.
SAMPLE_BODIES = {
    ("POST", "/v1/sessions/{id}/messages"): {"content": "probe"},
    ("PATCH", "/v1/sessions/{id}"): {"metadata": {"probe": 1}},
    ("POST", "/v1/chat/completions"): {"model": "echo", "messages": [{"role": "user", "content": "probe"}]},
    ("POST", "/v1/messages"): {"model": "echo", "max_tokens": 16, "messages": [{"role": "user", "content": "probe"}]},
}


def create_fields(type_):
    if type_ == "plain":
        return {}
    fields = {"type": type_}
    if type_ == "templated":
        fields["metadata"] = {"template": "code_review"}
    return fields


class RouteTenancyTests(AuthTestCase):

    @classmethod
    def setUpClass(cls):
        keys = [OWNER, OTHER, OPS] + list(PARTICIPANTS.values())
        cls.daemon = Daemon(extra_providers=auth_section(keys) + SESSION_TYPES)
        cls.daemon.start_or_cleanup()
        cls.client = cls.daemon.client
        r = cls.daemon.client.get("/v1/admin/routes", headers=OPS.bearer())
        if r.status != 200:
            raise AssertionError("GET /v1/admin/routes -> %r" % r)
        cls.routes = r.json["routes"]

    def session_routes(self, type_):
        """The routes that act on one session of `type_`."""
        return [r for r in self.routes
                if r["session"] != "none" and r["source"] in ("host", "session_type:" + type_)]

    def new_session(self, type_):
        owner = self.as_key(OWNER)
        sid = owner.create_session(**create_fields(type_))["id"]
        if type_ == "collaborative":
            for name, key in PARTICIPANTS.items():
                r = owner.post("/v1/sessions/%s/participants" % sid,
                               {"user_id": key.user, "permissions": GRANTS[name]})
                self.assertIn(r.status, (200, 201), r)
        return sid

    def call(self, key, route, sid):
        """(status, error message or "") of `route` on session `sid` as `key`."""
        client = self.as_key(key) if key is not None else self.anonymous()
        path = route["path"].replace("{id}", sid)
        while "{" in path:  # any other placeholder: some value
            start = path.index("{")
            path = path[:start] + "probe" + path[path.index("}", start) + 1:]
        headers = {"X-Swarmhost-Session": sid} if route["session"].startswith("header:") else {}
        method = route["method"]
        body = SAMPLE_BODIES.get((method, route["path"]), {} if method in ("POST", "PATCH", "PUT") else None)
        if route["path"].endswith("/events"):
            resp = client.stream(path, None, method="GET", headers=headers)
            if isinstance(resp, swh_harness.SSEStream):
                first = next(iter(resp), None)
                resp.close()
                self.assertEqual(getattr(first, "event", None), "ready", route)
                return 200, ""
        else:
            resp = client.request(method, path, body=body, headers=headers)
        message = ""
        if isinstance(resp.json, dict) and isinstance(resp.json.get("error"), dict):
            message = resp.json["error"].get("message", "")
        return resp.status, message

    @staticmethod
    def hidden(outcome, sid):
        """The host's answer for a session the caller may not know of."""
        status, message = outcome
        return status == 404 and ("session '%s' not found" % sid) in message

    def assertNotRefused(self, outcome, sid, what):
        self.assertNotIn(outcome[0], (401, 403), "%s: %r" % (what, outcome))
        self.assertFalse(self.hidden(outcome, sid), "%s: the session was hidden: %r" % (what, outcome))

    def check(self, type_, route, who, key, fresh):
        sid = fresh()
        what = "%s %s on a %s session as %s" % (route["method"], route["path"], type_, who)
        outcome = self.call(key, route, sid)
        if key is None:
            self.assertEqual(outcome[0], 401, "%s: %r" % (what, outcome))
        elif who == "owner" or (who == "admin key" and route["source"] == "host"):
            self.assertNotRefused(outcome, sid, what)
        elif who == "another user" or (type_ != "collaborative" and who != "admin key"):
            self.assertTrue(self.hidden(outcome, sid), "%s: %r" % (what, outcome))
        elif route["source"] != "host":
            # The type's own route: the type may refuse (403; it knows
            # callers by user id, not by role); the host must not hide the
            # session from a participant or an admin key.
            self.assertNotEqual(outcome[0], 401, "%s: %r" % (what, outcome))
            self.assertFalse(self.hidden(outcome, sid), "%s: %r" % (what, outcome))
        elif route["action"] in GRANTS[who.split()[0]]:
            self.assertNotRefused(outcome, sid, what)
        else:
            self.assertEqual(outcome[0], 403, "%s: %r" % (what, outcome))

    def test_the_report_lists_every_door_and_type_route(self):
        sources = {r["source"] for r in self.routes}
        for type_ in TYPES[1:]:
            self.assertIn("session_type:" + type_, sources)
        scoped = {(r["method"], r["path"]) for r in self.routes if r["source"] == "host" and r["session"] != "none"}
        # The doors a client can name a session through today.
        self.assertIn(("POST", "/v1/chat/completions"), scoped)
        self.assertIn(("POST", "/v1/messages"), scoped)
        self.assertIn(("POST", "/v1/sessions/{id}/messages"), scoped)
        self.assertIn(("GET", "/v1/sessions/{id}/events"), scoped)

    def test_every_session_route_for_every_type_and_principal(self):
        principals = [("owner", OWNER), ("another user", OTHER), ("admin key", OPS), ("no key", None)]
        principals += [("%s participant" % name, key) for name, key in PARTICIPANTS.items()]
        checked = 0
        for type_ in TYPES:
            shared = self.new_session(type_)
            for route in self.session_routes(type_):
                # A route that changes the session for good gets its own session.
                destructive = route["method"] in ("DELETE", "PATCH") or route["path"].endswith("/archive")
                for who, key in principals:
                    with self.subTest(type=type_, route="%s %s" % (route["method"], route["path"]), who=who):
                        fresh = (lambda t=type_: self.new_session(t)) if destructive else (lambda s=shared: s)
                        self.check(type_, route, who, key, fresh)
                        checked += 1
        self.assertGreater(checked, 100)


if __name__ == "__main__":
    unittest.main()
