"""A deadline for every request (server.deadlines; docs/reliability.md,
"Deadlines"), through the real daemon, the real openai and anthropic provider
plugins and tools/fake_upstream, whose slow scenarios notice at once when the
daemon hangs up on them (outcome "client_closed"):

- a whole answer that does not come within request_ms is a 504 in the door's
  own error shape (native, OpenAI's, Anthropic's), and the upstream request
  behind it is aborted, not left to finish;
- a stream that goes quiet for stream_idle_ms, or does not end within
  stream_ms, ends with the door's own last error event, and its upstream
  request is aborted;
- a door's override wins over the global limit; a client's
  X-Swarmhost-Timeout-Ms can only shorten it; a reload changes the limits;
- what was acknowledged stays stored (the user message), no reply is stored
  afterwards, /metrics counts the expiries by door, the daemon stays healthy;
- a handler that hangs where there is no provider call to cancel (a
  middleware) still gets its client the 504.

The fake's waits (60 s) are far past every limit here, so an outcome never
depends on how fast the machine is.

Run by hand from this folder:
  SWH_BINARY=<build>/host/swarmhost SWH_PLUGIN_DIR=<build>/plugins python3 -m unittest -v test_deadlines
"""

import json
import os
import time
import unittest
import uuid

from swh_harness import REPO_ROOT, DaemonTestCase, FakeUpstreamTestCase, manifest_text, plugin_dir, yaml_str

STALL = 60000  # ms the fake waits in the stalled scenarios (far past every deadline below)


def providers(fake_base):
    lines = []
    for name, plugin, base, extra in (("oa", "openai", fake_base + "/v1", []),
                                      ("an", "anthropic", fake_base, ["max_tokens: 300"])):
        lines += ["  - name: %s" % name, "    plugin: %s" % plugin, "    config:",
                  "      base_url: %s" % yaml_str(base), '      api_key_env: ""', "      retries: 0",
                  # the provider's own timeout is not what ends these requests
                  "      timeout_ms: 120000"] + ["      %s" % line for line in extra]
    return "\n".join(lines) + "\n"


def deadline_lines(request_ms, stream_ms, stream_idle_ms, doors=()):
    lines = ["deadlines:", "  request_ms: %d" % request_ms, "  stream_ms: %d" % stream_ms,
             "  stream_idle_ms: %d" % stream_idle_ms]
    if doors:
        lines.append("  doors:")
        lines += ["    %s: %s" % (door, limits) for door, limits in doors]
    return lines


class FakeOutcomes:
    """Reads tools/fake_upstream's record of the upstream requests."""

    def vendor_requests(self, marker):
        with self.fake.state.lock:
            return [r for r in self.fake.state.requests
                    if r["path"].endswith(("/chat/completions", "/messages")) and marker in json.dumps(r["body"])]

    def wait_outcome(self, marker, deadline_s=30.0):
        """The outcome of the one upstream request whose body holds `marker`,
        once it has one (None if it never ended within the bound: the fake
        would still be waiting out its 60 s)."""
        deadline = time.monotonic() + deadline_s
        while time.monotonic() < deadline:
            found = self.vendor_requests(marker)
            if len(found) == 1 and found[0]["outcome"] is not None:
                return found[0]["outcome"]
            time.sleep(0.05)
        return None

    def assertUpstreamAborted(self, marker):
        outcome = self.wait_outcome(marker)
        self.assertEqual(outcome, "client_closed",
                         "the upstream request was not aborted: %r\n%s" % (outcome, self.daemon.log_tail()))


class DeadlineTests(FakeOutcomes, FakeUpstreamTestCase):
    @classmethod
    def manifest_kw_for(cls, fake_base):
        # The sessions door has a long request limit of its own (the override);
        # its tests shorten it per request with X-Swarmhost-Timeout-Ms.
        return {"extra_providers": providers(fake_base),
                "server_lines": deadline_lines(1500, 4000, 1500, [("sessions", "{ request_ms: 60000 }")])}

    def marker(self):
        return "m" + uuid.uuid4().hex[:12]

    def session(self, provider="oa"):
        return self.client.create_session("deadline-" + uuid.uuid4().hex[:6], provider=provider)["id"]

    def assertHealthy(self):
        self.assertEqual(self.client.get("/healthz").status, 200)
        r = self.client.post("/v1/chat/completions",
                             {"model": "oa", "messages": [{"role": "user", "content": "still there?"}]})
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json["choices"][0]["message"]["content"], "You said: still there?")

    def counter(self, door, limit):
        text = self.client.get("/metrics").body.decode()
        series = 'swarmhost_request_deadlines_passed_total{door="%s",limit="%s"} ' % (door, limit)
        for line in text.splitlines():
            if line.startswith(series):
                return float(line[len(series):])
        return 0.0

    # ---- whole answers: 504 in the door's shape, the upstream aborted

    def test_chat_completion_past_request_ms_is_504_and_the_upstream_is_aborted(self):
        m = self.marker()
        before = self.counter("chat_completions", "request_ms")
        r = self.client.post("/v1/chat/completions", {
            "model": "oa", "messages": [{"role": "user", "content": "[fake:slow:%d] %s" % (STALL, m)}]})
        self.assertError(r, 504, "upstream_timeout")
        self.assertIn("1500 ms", r.json["error"]["message"])
        self.assertIn("request_ms", r.json["error"]["message"])
        self.assertUpstreamAborted(m)
        self.assertEqual(self.counter("chat_completions", "request_ms"), before + 1)
        self.assertHealthy()

    def test_anthropic_messages_past_request_ms_is_504_in_anthropics_shape(self):
        m = self.marker()
        r = self.client.post("/v1/messages", {
            "model": "an", "max_tokens": 100,
            "messages": [{"role": "user", "content": "[fake:slow:%d] %s" % (STALL, m)}]},
            headers={"anthropic-version": "2023-06-01"})
        self.assertEqual(r.status, 504, r)
        self.assertEqual(r.json["type"], "error", r.json)
        self.assertEqual(r.json["error"]["type"], "timeout_error", r.json)
        self.assertIn("request_ms", r.json["error"]["message"])
        self.assertUpstreamAborted(m)
        self.assertGreaterEqual(self.counter("messages", "request_ms"), 1)
        self.assertHealthy()

    def test_responses_past_request_ms_is_504_in_openais_shape(self):
        m = self.marker()
        r = self.client.post("/v1/responses", {"model": "oa", "input": "[fake:slow:%d] %s" % (STALL, m)})
        self.assertEqual(r.status, 504, r)
        error = r.json["error"]
        self.assertEqual(error["code"], "upstream_timeout", r.json)
        self.assertIn("type", error)
        self.assertIn("param", error)
        self.assertIn("request_ms", error["message"])
        self.assertUpstreamAborted(m)
        self.assertHealthy()

    def test_session_send_past_the_clients_timeout_is_504_and_stores_no_reply(self):
        sid = self.session()
        m = self.marker()
        r = self.client.post("/v1/sessions/%s/messages" % sid,
                             {"content": "[fake:slow:%d] %s" % (STALL, m)},
                             headers={"X-Swarmhost-Timeout-Ms": "1000"})
        self.assertError(r, 504, "upstream_timeout")
        self.assertIn("X-Swarmhost-Timeout-Ms", r.json["error"]["message"])
        self.assertUpstreamAborted(m)
        # The acknowledged user message stays; the upstream request is gone,
        # so no reply can be stored later (as after an upstream failure).
        self.assertEqual([msg["role"] for msg in self.client.messages(sid)], ["user"])
        self.assertHealthy()
        self.assertEqual([msg["role"] for msg in self.client.messages(sid)], ["user"])

    def test_a_doors_override_wins_over_the_global_limit(self):
        # 2.5 s upstream: past the global 1.5 s, inside the sessions door's 60 s.
        sid = self.session()
        r = self.client.send(sid, "[fake:slow:2500] patient")
        self.assertEqual(r.status, 201, r)
        self.assertEqual(r.json["assistant_message"]["content"], "You said: [fake:slow:2500] patient")
        r = self.client.post("/v1/chat/completions", {
            "model": "oa", "messages": [{"role": "user", "content": "[fake:slow:2500] impatient"}]})
        self.assertError(r, 504, "upstream_timeout")

    def test_the_clients_timeout_only_shortens(self):
        # A longer header does not lift the chat door's 1.5 s.
        m = self.marker()
        r = self.client.post("/v1/chat/completions", {
            "model": "oa", "messages": [{"role": "user", "content": "[fake:slow:%d] %s" % (STALL, m)}]},
            headers={"X-Swarmhost-Timeout-Ms": "600000"})
        self.assertError(r, 504, "upstream_timeout")
        self.assertIn("server.deadlines request_ms", r.json["error"]["message"])
        self.assertUpstreamAborted(m)
        for bad in ("soon", "-5", "0", "1.5"):
            r = self.client.post("/v1/chat/completions", {
                "model": "oa", "messages": [{"role": "user", "content": "x"}]},
                headers={"X-Swarmhost-Timeout-Ms": bad})
            self.assertError(r, 400, "invalid_request")

    # ---- streams: the door's own last error event, the upstream aborted

    def test_a_quiet_chat_stream_ends_with_an_error_chunk_after_stream_idle_ms(self):
        m = self.marker()
        st = self.client.stream("/v1/chat/completions", {
            "model": "oa", "stream": True,
            "messages": [{"role": "user", "content": "[fake:slowchunks:%d] %s one two" % (STALL, m)}]})
        self.assertEqual(st.status, 200)
        events = st.read_all()
        self.assertTrue(st.ended_cleanly, st.raw_lines)
        last = events[-1].json
        self.assertEqual(last["error"]["code"], "upstream_timeout", events)
        self.assertIn("stream_idle_ms", last["error"]["message"])
        self.assertUpstreamAborted(m)
        self.assertGreaterEqual(self.counter("chat_completions", "stream_idle_ms"), 1)
        self.assertHealthy()

    def test_a_quiet_session_stream_ends_with_an_error_event(self):
        sid = self.session()
        m = self.marker()
        st = self.client.stream("/v1/sessions/%s/messages" % sid,
                                {"content": "[fake:slowchunks:%d] %s one two" % (STALL, m), "stream": True})
        events = st.read_all()
        self.assertTrue(st.ended_cleanly, st.raw_lines)
        names = [e.event for e in events]
        self.assertEqual(names[0], "user_message", names)
        self.assertEqual(names[-1], "error", names)
        self.assertEqual(events[-1].json["error"]["code"], "upstream_timeout")
        self.assertIn("stream_idle_ms", events[-1].json["error"]["message"])
        self.assertUpstreamAborted(m)
        self.assertEqual([msg["role"] for msg in self.client.messages(sid)], ["user"])

    def test_a_quiet_anthropic_stream_ends_with_its_error_event(self):
        m = self.marker()
        st = self.client.stream("/v1/messages", {
            "model": "an", "max_tokens": 100, "stream": True,
            "messages": [{"role": "user", "content": "[fake:slowchunks:%d] %s one two" % (STALL, m)}]},
            headers={"anthropic-version": "2023-06-01"})
        events = st.read_all()
        self.assertTrue(st.ended_cleanly, st.raw_lines)
        self.assertEqual(events[0].event, "message_start", [e.event for e in events])
        self.assertEqual(events[-1].event, "error", [e.event for e in events])
        self.assertEqual(events[-1].json["type"], "error")
        self.assertEqual(events[-1].json["error"]["type"], "timeout_error")
        self.assertIn("stream_idle_ms", events[-1].json["error"]["message"])
        self.assertUpstreamAborted(m)

    def test_a_quiet_responses_stream_ends_with_response_failed(self):
        m = self.marker()
        st = self.client.stream("/v1/responses", {
            "model": "oa", "stream": True, "input": "[fake:slowchunks:%d] %s one two" % (STALL, m)})
        events = st.read_all()
        self.assertTrue(st.ended_cleanly, st.raw_lines)
        names = [e.event for e in events]
        self.assertEqual(names[0], "response.created", names)
        self.assertEqual(names[-1], "response.failed", names)
        failed = events[-1].json
        self.assertEqual(failed["response"]["status"], "failed")
        self.assertEqual(failed["response"]["id"], events[0].json["response"]["id"])
        self.assertEqual(failed["response"]["error"]["code"], "upstream_timeout")
        # sequence numbers go on without a gap
        self.assertEqual([e.json["sequence_number"] for e in events], list(range(len(events))))
        self.assertUpstreamAborted(m)

    def test_a_stream_that_keeps_going_ends_at_stream_ms(self):
        # A word every 300 ms (never idle for 1.5 s) for ~18 s: past stream_ms (4 s).
        sid = self.session()
        m = self.marker()
        words = " ".join("w%d" % i for i in range(60))
        st = self.client.stream("/v1/sessions/%s/messages" % sid,
                                {"content": "[fake:slowchunks:300] %s %s" % (m, words), "stream": True})
        events = st.read_all()
        names = [e.event for e in events]
        self.assertIn("chunk", names)  # it had been streaming
        self.assertEqual(names[-1], "error", names)
        self.assertIn("stream_ms", events[-1].json["error"]["message"])
        self.assertNotIn("stream_idle_ms", events[-1].json["error"]["message"])
        self.assertUpstreamAborted(m)
        self.assertGreaterEqual(self.counter("sessions", "stream_ms"), 1)
        self.assertEqual([msg["role"] for msg in self.client.messages(sid)], ["user"])

    def test_answers_within_the_limits_are_untouched(self):
        st = self.client.stream("/v1/chat/completions", {
            "model": "oa", "stream": True, "messages": [{"role": "user", "content": "[fake:slowchunks:100] a b c"}]})
        events = st.read_all()
        self.assertEqual(events[-1].data, "[DONE]", events)
        self.assertHealthy()


class DeadlineReloadTests(FakeOutcomes, FakeUpstreamTestCase):
    """A reload changes the deadlines of the requests read after it."""

    @classmethod
    def manifest_kw_for(cls, fake_base):
        return {"extra_providers": providers(fake_base), "server_lines": deadline_lines(60000, 0, 60000)}

    def chat(self, content):
        return self.client.post("/v1/chat/completions",
                                {"model": "oa", "messages": [{"role": "user", "content": content}]})

    def test_a_reload_changes_the_deadline(self):
        self.assertEqual(self.chat("[fake:slow:2000] before").status, 200)
        d = self.daemon
        text = manifest_text(d.port, d.db_path, extra_providers=providers(self.fake_base),
                             server_lines=deadline_lines(1000, 0, 60000))
        with open(d.manifest_path + ".tmp", "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(d.manifest_path + ".tmp", d.manifest_path)
        r = self.client.post("/v1/admin/reload")
        self.assertEqual(r.status, 200, r)
        m = "reloaded-" + uuid.uuid4().hex[:8]
        r = self.chat("[fake:slow:%d] %s" % (STALL, m))
        self.assertError(r, 504, "upstream_timeout")
        self.assertIn("1000 ms", r.json["error"]["message"])
        self.assertUpstreamAborted(m)


class DeadlineHandlerTests(DaemonTestCase):
    """Handler included: a user-stage middleware that hangs (the fixture
    `fixture_crash` sleeps forever on "__hang__"; isolated, so its call ends
    at isolation_timeout_ms, 4 s) holds no provider call to cancel, yet the
    client gets its 504 at request_ms (1 s), and nothing of the send is
    stored: the middleware vets the message before it is stored."""

    fixtures = os.environ.get("SWH_FIXTURE_PLUGIN_DIR") or os.path.join(REPO_ROOT, "build", "tests",
                                                                        "fixture_plugins")
    manifest_kw = {
        "plugin_dirs": [plugin_dir(), fixtures],
        "server_lines": deadline_lines(1000, 0, 0),
        "extra_sections": "middleware:\n  - %s\n" % json.dumps({
            "name": "hangs", "plugin": "fixture_crash", "fail": "closed", "isolation": "process",
            "isolation_timeout_ms": 4000}),
    }

    def test_a_hanging_handler_gets_504_and_stores_nothing(self):
        hung = self.client.create_session("deadline-handler")["id"]
        r = self.client.send(hung, "wait __hang__")
        self.assertError(r, 504, "upstream_timeout")
        self.assertIn("request_ms", r.json["error"]["message"])
        # The daemon serves on: once the hung call has ended (the child is
        # killed at its timeout and restarted), a send passes the middleware.
        other = self.client.create_session("deadline-handler")["id"]
        deadline = time.monotonic() + 60
        while True:
            r = self.client.send(other, "fine")
            if r.status == 201:
                break
            self.assertIn(r.status, (503, 504), r)  # the child restarting, or busy with the hung call
            self.assertLess(time.monotonic(), deadline, "the middleware never answered again")
            time.sleep(0.2)
        self.assertEqual(self.client.messages(hung), [])
        self.assertEqual(self.client.get("/healthz").status, 200)


if __name__ == "__main__":
    unittest.main()
