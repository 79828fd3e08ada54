"""Retention of the Responses and Conversations doors
(server.responses_retention_seconds, docs/conversation-state.md): an
expired response or conversation is 404 on every route, and the daemon's
background sweep deletes its session from the store; other sessions stay.
A retention of 2 seconds; every wait is bounded, no assertion depends on how
fast the machine is.

Run by hand (from this folder):
  SWH_BINARY=<build>/host/swarmhost SWH_PLUGIN_DIR=<build>/plugins \\
    PYTHONPATH=../integration python3 -m unittest -v test_responses_retention
"""

import time
import unittest

from swh_harness import DaemonTestCase

DEADLINE_S = 60.0  # an upper bound only: expiry takes about 2 s, a sweep at most 1 s more


def uuid_of(hex32):
    return "%s-%s-%s-%s-%s" % (hex32[:8], hex32[8:12], hex32[12:16], hex32[16:20], hex32[20:])


class RetentionTests(DaemonTestCase):
    manifest_kw = {"server_lines": ["responses_retention_seconds: 2"]}

    def wait_for(self, what, predicate):
        deadline = time.monotonic() + DEADLINE_S
        while not predicate():
            if time.monotonic() > deadline:
                self.fail("not within %.0f s: %s" % (DEADLINE_S, what))
            time.sleep(0.2)

    def session_ids(self):
        return {s["id"] for s in self.client.get("/v1/sessions").json["sessions"]}

    def test_expired_objects_are_404_then_swept_from_the_store(self):
        response = self.client.post("/v1/responses", {"model": "echo", "input": "short lived"})
        self.assertEqual(response.status, 200, response)
        rid = response.json["id"]
        conv = self.client.post("/v1/conversations", {"items": [{"role": "user", "content": "hi"}]})
        self.assertEqual(conv.status, 200, conv)
        cid = conv.json["id"]
        plain = self.client.create_session("keeper")["id"]
        door_sessions = {uuid_of(rid[5:37]), uuid_of(cid[5:])}

        self.wait_for("the response expires", lambda: self.client.get("/v1/responses/" + rid).status == 404)
        self.wait_for("the conversation expires", lambda: self.client.get("/v1/conversations/" + cid).status == 404)
        for method, path, body in [
                ("GET", "/v1/responses/%s/input_items" % rid, None),
                ("POST", "/v1/responses", {"model": "echo", "input": "x", "previous_response_id": rid}),
                ("POST", "/v1/responses", {"model": "echo", "input": "x", "conversation": cid}),
                ("GET", "/v1/conversations/%s/items" % cid, None)]:
            with self.subTest(path=path, body=body):
                r = self.client.request(method, path, body=body)
                self.assertEqual(r.status, 404, r)
                self.assertEqual(r.json["error"]["type"], "invalid_request_error", r)

        self.wait_for("the sweep deletes both sessions", lambda: not (door_sessions & self.session_ids()))
        self.assertIn(plain, self.session_ids())  # only the doors' sessions expire


if __name__ == "__main__":
    unittest.main()
