"""`isolation: process` for SESSION TYPE plugins, through the real daemon
(docs/reliability.md, "Isolation"). The session types are the real
multimodal and collaborative plugins, each in its own swarmhost-plugin-host
child; the store is SQLite in process and the provider is echo. No fixture
plugin: the children are made to fail from outside.

- uploads (multipart and base64 JSON, bytes of every value) cross the wire
  intact, are stored and listed, download byte for byte, and reach the echo
  provider through a message naming them;
- collaborative join / message / leave are seen live on two /events
  listeners;
- SIGSEGV of a session type's child: the daemon lives, the next route call
  gets a 503 JSON error naming the instance and the signal (never 500, never
  a hang), later calls succeed after the restart, and the state the type
  keeps in session metadata (attachments, roster) is intact; the upload
  that met the dead child is not recorded and can be sent again;
- SIGSTOP of a child: the waiting call (an upload, a roster read) gets 503
  once `isolation_timeout_ms` is over, the stopped child is killed and
  reaped, a new child serves;
- after all that, one live child per isolated instance and no zombie.
No assertion depends on how long anything took."""

import base64
import hashlib
import json
import os
import signal
import unittest
import uuid

from pipeline_support import POLL_DEADLINE_S, PipelineTestCase, uid
from swh_harness import FAIL_TOKEN, Daemon, SSEStream, free_port, make_tmpdir, plugin_dir, yaml_str
from test_isolation import children
import test_storage_isolation  # not its classes by name: unittest would run them here too

MULTIMODAL_PLUGIN = "swh_session_multimodal.so"
COLLABORATIVE_PLUGIN = "swh_session_collaborative.so"
# Generous: no normal call (an fsync'd upload, a restart's dlopen + create)
# comes near it, even under ASan on a loaded 2-core machine; only a stopped
# child reaches it.
TIMEOUT_MS = 5000
# A real 1x1 PNG; then the PNG signature followed by every byte value
# (sniffed as image/png: the type comes from the magic bytes).
PNG = base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==")
ALL_BYTES = PNG[:8] + bytes(range(256)) + bytes(range(255, -1, -1))


def sha(data):
    return hashlib.sha256(data).hexdigest()


def as_user(user):
    return {"X-Swarmhost-User": user}


def multipart(filename, ctype, data):
    boundary = "swh-" + uuid.uuid4().hex
    body = (b"--" + boundary.encode() + b"\r\n"
            b'Content-Disposition: form-data; name="file"; filename="' + filename.encode() + b'"\r\n'
            b"Content-Type: " + ctype.encode() + b"\r\n\r\n" + data + b"\r\n"
            b"--" + boundary.encode() + b"--\r\n")
    return "multipart/form-data; boundary=%s" % boundary, body


def session_type_manifest(port, workdir):
    """sqlite store and echo provider in process; both session types isolated."""
    isolated = ["    isolation: process", "    isolation_timeout_ms: %d" % TIMEOUT_MS]
    lines = ["server:", "  listen: %s" % yaml_str("127.0.0.1:%d" % port), "  shutdown_grace_seconds: 5",
             "plugin_dirs:", "  - %s" % yaml_str(os.path.abspath(plugin_dir())),
             "storage:", "  plugin: sqlite", "  config:",
             "    path: %s" % yaml_str(os.path.join(workdir, "swarmhost.db")),
             "providers:", "  - %s" % json.dumps({"name": "echo", "plugin": "echo",
                                                 "config": {"fail_on": FAIL_TOKEN}}),
             "session_types:",
             "  - name: multimodal", "    plugin: multimodal"] + isolated + [
             "    config:", "      attachments_dir: \"./attachments\"", "      max_bytes: 65536",
             "  - name: collaborative", "    plugin: collaborative"] + isolated
    return "\n".join(lines) + "\n"


class SessionTypeIsolation(PipelineTestCase):
    """One daemon for the class; each test starts by waiting until both
    session types answer, since an earlier test may have ended a child."""

    @classmethod
    def setUpClass(cls):
        cls.workdir = make_tmpdir("swh-st-isolation-")
        port = free_port()
        cls.daemon = Daemon(workdir=cls.workdir, port=port, manifest=session_type_manifest(port, cls.workdir))
        cls.daemon.owns_workdir = True
        cls.daemon.start_or_cleanup()
        cls.client = cls.daemon.client
        cls.attachments_dir = os.path.join(os.path.realpath(cls.workdir), "attachments")

    def setUp(self):
        self.wait_types_answer()

    # ---- helpers (the /proc ones are test_storage_isolation's, reused)
    wait_dead = test_storage_isolation.StorageIsolation.wait_dead
    wait_reaped = test_storage_isolation.StorageIsolation.wait_reaped
    daemon_alive = test_storage_isolation.StorageIsolation.daemon_alive

    def type_pid(self, plugin_file):
        kids = [c for c in children(self.daemon.proc.pid)
                if "swarmhost-plugin-host" in c[2] and plugin_file in c[2] and c[1] != "Z"]
        self.assertEqual(len(kids), 1, children(self.daemon.proc.pid))
        return kids[0][0]

    def wait_types_answer(self):
        """Until a session of each type can be created (503 while a child restarts)."""
        for kind in ("multimodal", "collaborative"):
            def attempt():
                r = self.client.post("/v1/sessions", {"user_id": uid("probe"), "type": kind})
                if r.status == 201:
                    return r
                self.assertError(r, 503, "unavailable")
                return None
            self.wait_for("the isolated %s session type to answer" % kind, attempt)

    def assertUnavailable(self, r, instance, *words):
        """A clear error: 503 JSON `unavailable` naming the instance."""
        self.assertError(r, 503, "unavailable")
        message = r.json["error"]["message"]
        self.assertIn("plugin process for '%s'" % instance, message, r)
        for word in words:
            self.assertIn(word, message, r)

    def wait_route_ok(self, what, call):
        """Until `call()` answers 2xx; 503 in between (the restart's backoff)."""
        def attempt():
            r = call()
            if 200 <= r.status < 300:
                return r
            self.assertError(r, 503, "unavailable")
            return None
        return self.wait_for(what, attempt)

    def mm_session(self):
        return self.client.create_session(uid("mm"), type="multimodal")["id"]

    def upload_multipart(self, sid, data, filename="cat.png", ctype="image/png"):
        content_type, body = multipart(filename, ctype, data)
        return self.client.post("/v1/sessions/%s/attachments" % sid, raw=body, headers={"Content-Type": content_type})

    def upload_json(self, sid, data, name, mime_type):
        return self.client.post("/v1/sessions/%s/attachments" % sid,
                                {"name": name, "mime_type": mime_type, "data_base64": base64.b64encode(data).decode()})

    def listed(self, sid):
        r = self.client.get("/v1/sessions/%s/attachments" % sid)
        self.assertEqual(r.status, 200, r)
        return [(a["id"], a["name"], a["size"]) for a in r.json["attachments"]]

    def download(self, sid, data):
        r = self.client.get("/v1/sessions/%s/attachments/%s" % (sid, sha(data)))
        self.assertEqual(r.status, 200, r)
        return r

    def collab_session(self):
        """owner (admin) and carol (read) in a new collaborative session."""
        sid = self.client.create_session("owner", type="collaborative")["id"]
        r = self.client.post("/v1/sessions/%s/participants" % sid, {"user_id": "carol", "permissions": ["read"]},
                             headers=as_user("owner"))
        self.assertEqual(r.status, 201, r)
        return sid

    def roster(self, sid):
        return self.client.get("/v1/sessions/%s/participants" % sid, headers=as_user("owner"))

    def open_events(self, sid, user):
        stream = self.client.stream("/v1/sessions/%s/events" % sid, None, method="GET", headers=as_user(user),
                                    deadline_s=POLL_DEADLINE_S)
        self.assertIsInstance(stream, SSEStream, stream)
        events = iter(stream)
        self.assertEqual(next(events).event, "ready")
        return stream, events

    # ---- a. the multimodal type, isolated
    def test_1_uploads_cross_the_wire_intact_and_reach_the_provider(self):
        self.type_pid(MULTIMODAL_PLUGIN)  # exactly one child each
        self.type_pid(COLLABORATIVE_PLUGIN)
        sid = self.mm_session()
        r = self.upload_multipart(sid, PNG)
        self.assertEqual(r.status, 201, r)
        self.assertEqual((r.json["id"], r.json["name"], r.json["mime_type"], r.json["size"]),
                         (sha(PNG), "cat.png", "image/png", len(PNG)))
        r = self.upload_json(sid, ALL_BYTES, "bytes.png", "image/png")
        self.assertEqual(r.status, 201, r)
        self.assertEqual((r.json["id"], r.json["size"]), (sha(ALL_BYTES), len(ALL_BYTES)))
        text = ("notes " + uuid.uuid4().hex + " caf\u00e9").encode("utf-8")
        r = self.upload_json(sid, text, "n.txt", "text/plain; charset=utf-8")
        self.assertEqual(r.status, 201, r)
        self.assertEqual(self.listed(sid), [(sha(PNG), "cat.png", len(PNG)),
                                            (sha(ALL_BYTES), "bytes.png", len(ALL_BYTES)),
                                            (sha(text), "n.txt", len(text))])
        for data, ctype in ((PNG, "image/png"), (ALL_BYTES, "image/png"), (text, "text/plain")):
            got = self.download(sid, data)
            self.assertEqual((got.content_type, got.raw), (ctype, data))
            with open(os.path.join(self.attachments_dir, sha(data)), "rb") as f:
                self.assertEqual(f.read(), data)
        # Errors of the plugin cross as themselves.
        r = self.upload_json(sid, b"%PDF-1.4\n%%EOF\n", "x.png", "image/png")
        self.assertError(r, 415, "unsupported_media_type")
        # on_user_message runs in the child too: the provider gets the files.
        reply = self.send_ok(sid, "what is this?", metadata={"attachment_ids": [sha(PNG), sha(text)]})
        self.assertEqual(reply["assistant_message"]["content"],
                         "echo#1 what is this? [attachments: cat.png image/png %dB, n.txt text/plain %dB]"
                         % (len(PNG), len(text)))
        r = self.client.send(sid, "bad", metadata={"attachment_ids": ["0" * 64]})
        self.assertError(r, 400, "invalid_request")

    # ---- b. the collaborative type, isolated
    def test_2_collaborative_join_message_leave_on_two_listeners(self):
        sid = self.collab_session()
        streams = [self.open_events(sid, user) for user in ("owner", "carol")]
        try:
            r = self.client.post("/v1/sessions/%s/participants" % sid, {"user_id": "bob"}, headers=as_user("owner"))
            self.assertEqual(r.status, 201, r)
            r = self.client.post("/v1/sessions/%s/messages" % sid, {"content": "hi all"}, headers=as_user("bob"))
            self.assertEqual(r.status, 201, r)
            self.assertEqual(r.json["user_message"]["metadata"]["participant_id"], "bob")
            r = self.client.delete("/v1/sessions/%s/participants/bob" % sid, headers=as_user("bob"))
            self.assertEqual(r.status, 200, r)
            r = self.client.post("/v1/sessions/%s/messages" % sid, {"content": "ro"}, headers=as_user("carol"))
            self.assertError(r, 403, "forbidden")
            wanted = ("participant_joined", "message", "participant_left")
            seen = []
            for stream, events in streams:
                relevant = []
                for event in events:  # bounded by the stream's deadline and the count below
                    if event.event in wanted:
                        relevant.append((event.event, event.json))
                    if event.event == "participant_left" or len(relevant) > 10:
                        break
                seen.append(relevant)
            self.assertEqual(seen[0], seen[1])  # both listeners, the same events in the same order
            self.assertEqual([e for e, _ in seen[0]],
                             ["participant_joined", "message", "message", "participant_left"], seen[0])
            joined, user_msg, assistant_msg, left = (data for _, data in seen[0])
            self.assertEqual((joined["user_id"], joined["added_by"]), ("bob", "owner"))
            self.assertEqual((user_msg["content"], assistant_msg["content"]), ("hi all", "echo#1 hi all"))
            self.assertEqual((left["user_id"], left["revoke_access"]), ("bob", ["bob"]))
        finally:
            for stream, _ in streams:
                stream.close()
        r = self.roster(sid)
        self.assertEqual(r.status, 200, r)
        self.assertEqual([p["user_id"] for p in r.json["participants"]], ["owner", "carol"])

    # ---- c. a segfault of a session type's child
    def test_3_segfault_gets_503_and_the_state_in_metadata_survives(self):
        sid = self.mm_session()
        self.assertEqual(self.upload_multipart(sid, PNG).status, 201)
        before = self.listed(sid)
        team = self.collab_session()
        roster = self.roster(team).json["participants"]

        pid = self.type_pid(MULTIMODAL_PLUGIN)
        os.kill(pid, signal.SIGSEGV)
        self.wait_dead(pid)
        data = ("after the crash " + uuid.uuid4().hex).encode()
        r = self.upload_json(sid, data, "late.txt", "text/plain")  # meets the dead child
        self.assertUnavailable(r, "multimodal", "SIGSEGV")
        self.daemon_alive()
        self.wait_reaped(pid)
        self.assertEqual(self.roster(team).status, 200)  # the other type is not affected
        listed = self.wait_route_ok("the restarted multimodal type", lambda: self.client.get(
            "/v1/sessions/%s/attachments" % sid))
        self.assertNotEqual(self.type_pid(MULTIMODAL_PLUGIN), pid, "the child should have been replaced")
        self.assertEqual([(a["id"], a["name"], a["size"]) for a in listed.json["attachments"]], before)
        self.assertEqual(self.download(sid, PNG).raw, PNG)
        r = self.upload_json(sid, data, "late.txt", "text/plain")  # the 503'd upload, sent again
        self.assertEqual(r.status, 201, r)
        self.assertEqual(self.listed(sid), before + [(sha(data), "late.txt", len(data))])

        pid = self.type_pid(COLLABORATIVE_PLUGIN)
        os.kill(pid, signal.SIGSEGV)
        self.wait_dead(pid)
        r = self.client.post("/v1/sessions/%s/participants" % team, {"user_id": "dave"}, headers=as_user("owner"))
        self.assertUnavailable(r, "collaborative", "SIGSEGV")
        self.daemon_alive()
        self.wait_reaped(pid)
        after = self.wait_route_ok("the restarted collaborative type", lambda: self.roster(team))
        self.assertEqual(after.json["participants"], roster)  # dave's add was not recorded
        r = self.client.post("/v1/sessions/%s/participants" % team, {"user_id": "dave"}, headers=as_user("owner"))
        self.assertEqual(r.status, 201, r)

    # ---- d. a hang of a session type's child
    def test_4_hang_gets_503_and_the_stopped_child_is_reaped(self):
        sid = self.mm_session()
        team = self.collab_session()
        for plugin_file, instance, call in (
                (MULTIMODAL_PLUGIN, "multimodal", lambda: self.upload_multipart(sid, PNG)),
                (COLLABORATIVE_PLUGIN, "collaborative", lambda: self.roster(team))):
            pid = self.type_pid(plugin_file)
            os.kill(pid, signal.SIGSTOP)
            reaped = False
            try:
                r = call()
                self.assertUnavailable(r, instance, "did not answer")
                self.daemon_alive()
                self.wait_reaped(pid)  # killed while stopped, and waited for: no zombie
                reaped = True
            finally:
                if not reaped:  # the test failed early: do not leave a stopped process behind
                    os.kill(pid, signal.SIGCONT)
            answered = self.wait_route_ok("the restarted %s type" % instance, call)
            self.assertNotEqual(self.type_pid(plugin_file), pid)
            self.assertIn(answered.status, (200, 201), answered)
        self.assertEqual(self.listed(sid), [(sha(PNG), "cat.png", len(PNG))])
        self.assertEqual([p["user_id"] for p in self.roster(team).json["participants"]], ["owner", "carol"])

    # ---- e. no leftovers
    def test_5_one_live_child_per_isolated_type_and_no_zombies(self):
        for plugin_file in (MULTIMODAL_PLUGIN, COLLABORATIVE_PLUGIN, MULTIMODAL_PLUGIN):
            pid = self.type_pid(plugin_file)
            os.kill(pid, signal.SIGKILL)
            self.wait_dead(pid)
            self.wait_types_answer()  # the creation that finds the dead child restarts it
            self.wait_reaped(pid)
        kids = children(self.daemon.proc.pid)
        self.assertEqual([k for k in kids if k[1] == "Z"], [], kids)
        self.type_pid(MULTIMODAL_PLUGIN)
        self.type_pid(COLLABORATIVE_PLUGIN)
        self.assertEqual(len(kids), 2, kids)


if __name__ == "__main__":
    unittest.main()
