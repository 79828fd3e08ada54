"""Secrets stay secret (docs/security.md): API key texts and a provider's API
key (named in the manifest by api_key_env, the value only in the daemon's
environment) never appear in the daemon's log (at trace level), in error
bodies, or in what admin routes report (/v1/plugins, /v1/providers,
/metrics, /healthz). The provider talks to tools/fake_upstream (the fake the
official vendor clients check), which answers every request with OpenAI's
401 quoting the key it was sent, so the daemon has an error that holds the
key to report; the fake's record of each request's Authorization header
proves the daemon did hold and send the provider key."""

import os
import secrets
import sys
import threading
import unittest

import swh_harness
from swh_harness import Daemon

from auth_fixture import AuthTestCase, AuthClient, Key, auth_section

sys.path.insert(0, os.path.join(swh_harness.REPO_ROOT, "tools", "fake_upstream"))
import server as fake_upstream  # noqa: E402

ALICE = Key("alice-laptop", "alice")
OPS = Key("ops", "ops", role="admin")
WRONG_KEY = "swhk-wrong-%s" % secrets.token_hex(16)
UPSTREAM_ENV = "SWH_AUTH_TEST_UPSTREAM_KEY"
UPSTREAM_KEY = "sk-swhtest-%s" % secrets.token_hex(20)
# The fake picks its scenario from the model name: every request of a
# provider with this model gets a 401 whose message repeats the key.
REFUSING_MODEL = "fake-401"


def openai_provider(name, base_url):
    return ("  - name: %s\n"
            "    plugin: openai\n"
            "    config:\n"
            "      base_url: %s\n"
            "      api_key_env: %s\n"
            "      model: %s\n"
            "      retries: 0\n"
            "      connect_timeout_ms: 2000\n"
            "      timeout_ms: 10000\n" % (name, swh_harness.yaml_str(base_url), UPSTREAM_ENV, REFUSING_MODEL))


class SecretTests(AuthTestCase):

    @classmethod
    def setUpClass(cls):
        cls.upstream = fake_upstream.make_server("127.0.0.1", 0)
        threading.Thread(target=cls.upstream.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True).start()
        dead_port = swh_harness.free_port()  # nothing listens there: connection refused
        os.environ[UPSTREAM_ENV] = UPSTREAM_KEY  # the daemon inherits it
        cls.daemon = Daemon(
            extra_args=["--log-level", "trace"],
            extra_providers=openai_provider("recorded", "http://127.0.0.1:%d/v1" % cls.upstream.server_address[1])
            + openai_provider("unreachable", "http://127.0.0.1:%d/v1" % dead_port)
            + auth_section([ALICE, OPS]))
        try:
            cls.daemon.start()
        except BaseException:
            cls.daemon.cleanup()
            cls.upstream.shutdown()
            raise
        cls.client = cls.daemon.client

    @classmethod
    def tearDownClass(cls):
        try:
            if cls.daemon.proc is None:  # the test stopped it to read the whole log
                cls.daemon.cleanup()
            else:
                super().tearDownClass()
        finally:
            os.environ.pop(UPSTREAM_ENV, None)
            cls.upstream.shutdown()
            cls.upstream.server_close()

    def secrets(self):
        return [ALICE.text, OPS.text, WRONG_KEY, UPSTREAM_KEY]

    def assertNoSecret(self, text, where):
        if isinstance(text, bytes):
            text = text.decode("utf-8", "replace")
        for secret in self.secrets():
            self.assertNotIn(secret, text, "%s holds a secret" % where)
        # Nor a recognisable piece of one (a "first 8 characters" preview, say).
        for secret in self.secrets():
            self.assertNotIn(secret[-16:], text, "%s holds the end of a secret" % where)

    def test_no_secret_in_log_bodies_or_reports(self):
        alice, ops = self.as_key(ALICE), self.as_key(OPS)
        answers = []

        # Refused credentials: the body does not echo what was sent.
        for headers in ({"Authorization": "Bearer " + WRONG_KEY}, {"X-API-Key": WRONG_KEY},
                        {"Authorization": WRONG_KEY}):
            r = self.client.get("/v1/sessions", headers=headers)
            self.assertUnauthorized(r)
            answers.append(("401 %r" % list(headers), r))
        # Errors of a valid key: 403, 404, 400.
        r = alice.get("/v1/plugins")
        self.assertForbidden(r)
        self.assertIn("alice-laptop", r.json["error"]["message"])  # the id names the key, the text does not
        answers.append(("403", r))
        r = alice.get("/v1/sessions/nope")
        self.assertNotFound(r)
        answers.append(("404", r))
        r = alice.post("/v1/sessions", {"user_id": "alice", "bogus": 1})
        self.assertError(r, 400, "invalid_request")
        answers.append(("400", r))

        # The provider's key at work: the upstream fails, the daemon reports it.
        # The fake's 401 quotes the key: a 502 whose message has it scrubbed.
        # Nothing listens for "unreachable": 503.
        expected = {"recorded": (502, "upstream_error"), "unreachable": (503, "unavailable")}
        for provider, (status, code) in expected.items():
            sid = alice.create_session(provider=provider)["id"]
            r = alice.send(sid, "hello")
            self.assertError(r, status, code)
            if provider == "recorded":
                self.assertIn("Incorrect API key provided: ***", r.json["error"]["message"], r)
            answers.append(("send via %s" % provider, r))
            stream = alice.stream("/v1/sessions/%s/messages" % sid, {"content": "again", "stream": True})
            if isinstance(stream, swh_harness.SSEStream):  # the error comes as an event
                events = [e.event for e in stream.read_all()]
                raw = "\n".join(stream.raw_lines)
                self.assertIn("error", events, raw)
            else:  # or as an error answer before the stream started
                self.assertError(stream, status, code)
                raw = stream.raw
            answers.append(("streamed send via %s" % provider, raw))
            r = alice.post("/v1/chat/completions",
                           {"model": provider, "messages": [{"role": "user", "content": "hi"}]})
            self.assertError(r, status, code)
            answers.append(("chat completion via %s" % provider, r))
        # Every provider call reached the fake with the key from UPSTREAM_ENV
        # (and the fake's 401 quoted it back), else the leak checks would
        # prove nothing: one send, one streamed send, one chat completion.
        with self.upstream.state.lock:
            calls = [r for r in self.upstream.state.requests if r["path"] == "/v1/chat/completions"]
        self.assertEqual(len(calls), 3, [(r["path"], r["scenario"]) for r in calls])
        for call in calls:
            self.assertEqual(call["headers"].get("authorization"), "Bearer " + UPSTREAM_KEY,
                             "the provider did not send the key from %s" % UPSTREAM_ENV)
            self.assertEqual(call["scenario"], "401", call)
            self.assertEqual(call["body"]["model"], REFUSING_MODEL, call)

        # What admins can read about the configuration.
        for path in ("/v1/plugins", "/v1/providers", "/v1/providers/recorded", "/metrics", "/healthz"):
            r = ops.get(path)
            self.assertEqual(r.status, 200, r)
            answers.append((path, r))
        r = ops.request("PATCH", "/v1/providers/recorded", {"temperature": 0.5})
        self.assertEqual(r.status, 200, r)
        answers.append(("PATCH provider", r))
        self.assertEqual(ops.post("/v1/admin/reload").status, 200)

        for where, answer in answers:
            with self.subTest(where=where):
                self.assertNoSecret(answer if isinstance(answer, (str, bytes)) else answer.raw, where)

        # The log, complete once the daemon has stopped (at trace level).
        self.assertEqual(self.daemon.stop(), 0)
        log = self.daemon.log()
        self.assertIn("recorded", log)  # it did log about the failing upstreams
        self.assertNoSecret(log, "the daemon log")


if __name__ == "__main__":
    unittest.main()
