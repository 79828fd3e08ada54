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
                if (r["session"] == "path" or r["session"].startswith("header:"))
                and r["source"] in ("host", "session_type:" + type_)]

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


class OpenAIObjectTenancyTests(AuthTestCase):
    """The routes that name an OpenAI object (a response, a conversation) or
    take one in their body: another user's key gets OpenAI's 404 on every
    one of them, no key 401, generated from the same report; the owner is
    never refused. (The doors create plain sessions, so no collaborative
    participant can hold one: the participant cases do not arise here.)"""

    @classmethod
    def setUpClass(cls):
        cls.daemon = Daemon(extra_providers=auth_section([OWNER, OTHER, OPS]))
        cls.daemon.start_or_cleanup()
        cls.client = cls.daemon.client
        r = cls.daemon.client.get("/v1/admin/routes", headers=OPS.bearer())
        if r.status != 200:
            raise AssertionError("GET /v1/admin/routes -> %r" % r)
        cls.routes = [r for r in r.json["routes"]
                      if r["session"].startswith("object:") or r["session"].startswith("body:")]

    def fresh_objects(self):
        owner = self.as_key(OWNER)
        response = owner.post("/v1/responses", {"model": "echo", "input": "probe"})
        self.assertEqual(response.status, 200, response)
        conversation = owner.post("/v1/conversations", {"items": [{"role": "user", "content": "probe"}]})
        self.assertEqual(conversation.status, 200, conversation)
        cid = conversation.json["id"]
        item = owner.get("/v1/conversations/%s/items" % cid).json["data"][0]["id"]
        return {"response_id": response.json["id"], "conversation_id": cid, "item_id": item}

    def calls(self, route, ids):
        """(path, body) pairs that name the objects `ids` through `route`."""
        path = route["path"]
        for name, value in ids.items():
            path = path.replace("{%s}" % name, value)
        method = route["method"]
        if route["session"].startswith("body:"):
            return [(path, {"model": "echo", "input": "probe", "previous_response_id": ids["response_id"]}),
                    (path, {"model": "echo", "input": "probe", "conversation": ids["conversation_id"]})]
        bodies = {("POST", "/v1/conversations/{conversation_id}"): {"metadata": {"a": "b"}},
                  ("POST", "/v1/conversations/{conversation_id}/items"): {"items": [{"role": "user", "content": "x"}]}}
        return [(path, bodies.get((method, route["path"]), {} if method == "POST" else None))]

    def test_the_report_lists_the_openai_object_routes(self):
        paths = {(r["method"], r["path"]) for r in self.routes}
        self.assertIn(("GET", "/v1/responses/{response_id}"), paths)
        self.assertIn(("POST", "/v1/responses"), paths)
        self.assertIn(("DELETE", "/v1/conversations/{conversation_id}/items/{item_id}"), paths)
        self.assertGreaterEqual(len(self.routes), 11)

    def test_another_users_key_gets_openai_404_and_the_owner_gets_in(self):
        checked = 0
        for route in self.routes:
            for who, key in (("another user", OTHER), ("owner", OWNER), ("admin key", OPS), ("no key", None)):
                ids = self.fresh_objects()
                for path, body in self.calls(route, ids):
                    with self.subTest(route="%s %s" % (route["method"], route["path"]), who=who, body=body):
                        client = self.as_key(key) if key is not None else self.anonymous()
                        resp = client.request(route["method"], path, body=body)
                        if key is None:
                            self.assertEqual(resp.status, 401, resp)
                        elif who == "another user":
                            self.assertEqual(resp.status, 404, resp)
                            self.assertEqual(resp.json["error"]["type"], "invalid_request_error", resp)
                            self.assertIn("not found", resp.json["error"]["message"], resp)
                        else:
                            self.assertEqual(resp.status, 200, resp)
                        checked += 1
        self.assertGreaterEqual(checked, 30)


if __name__ == "__main__":
    unittest.main()
