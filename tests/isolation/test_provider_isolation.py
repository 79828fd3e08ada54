"""Provider plugins in a child process (`isolation: process` on a provider,
host/isolation/provider_process.hpp; docs/reliability.md, "Isolation").

- The real openai plugin (against tools/fake_upstream, streaming over
  loopback HTTP) and the real echo plugin answer byte for byte the same
  isolated as in process: plain and streamed, chunk by chunk, with reply
  events (tool calls) and provider metadata.
- The fixture provider `fixture_crash_provider` (tests/fixture_plugins)
  answers like echo from a thread of its own and pauses, waits for a gate or
  segfaults on trigger words, so that a test can act mid-stream:
  - streams interleave over one child: a second call runs start to end
    while a first one is open on the same child;
  - kill -9 of the child mid-stream with a fallback: the client's stream
    goes on on the fallback after the partial answer, as for an upstream
    failure; without a fallback the client gets an error event naming the
    crash; a segfault mid-stream likewise;
  - a SIGSTOPped child is killed after isolation_timeout_ms, reaped, and the
    next request is served by a new child;
  - no zombie, one child per isolated instance.
No assertion depends on how long anything took."""

import json
import os
import re
import signal
import time
import unittest
import uuid

from pipeline_support import POLL_DEADLINE_S, PipelineTestCase, uid
from swh_harness import FakeUpstreamTestCase, SSEStream, free_port, yaml_str
from test_isolation import children

FIXTURE = "swh_fixture_crash_provider.so"
OPENAI_KEY = "sk-swhtest-isolated-" + uid("k")


def instance_children(daemon_pid, instance):
    """The live plugin host children of the daemon that run `instance`."""
    return [c for c in children(daemon_pid)
            if "--instance %s " % instance in c[2] + " " and c[1] != "Z"]


def chunk_texts(events):
    return [e.json["text"] for e in events if e.event == "chunk"]


def openai_pair(base):
    """The openai plugin on the fake upstream, in process (`oa_in`) and isolated (`oa_iso`)."""
    os.environ["SWH_TEST_ISOLATED_OPENAI_KEY"] = OPENAI_KEY
    extra = ""
    for name, isolated in (("oa_in", False), ("oa_iso", True)):
        extra += "\n".join([
            "  - name: %s" % name, "    plugin: openai",
            "    isolation: process" if isolated else "    isolation: in_process",
            "    config:",
            "      base_url: %s" % yaml_str(base + "/v1"),
            "      api_key_env: SWH_TEST_ISOLATED_OPENAI_KEY",
            "      retries: 0",
            "      timeout_ms: 5000"]) + "\n"
    return extra


class Identical(FakeUpstreamTestCase):
    """The same requests through an in-process and an isolated instance of
    each real provider plugin: the client sees the same bytes."""

    maxDiff = None

    @classmethod
    def manifest_kw_for(cls, base):
        extra = openai_pair(base) + "  - name: echo_iso\n    plugin: echo\n    isolation: process\n"
        return {"extra_providers": extra, "fail_on": None}

    def session(self, provider):
        r = self.client.post("/v1/sessions", {"user_id": "iso-identical", "provider": provider})
        self.assertEqual(r.status, 201, r)
        return r.json["id"]

    def normalised(self, message, sid):
        """What may differ between two sessions: the session id, and the
        vendor's id of the reply (the fake upstream draws one per request)."""
        text = json.dumps({k: message.get(k) for k in ("content", "provider_message_id", "provider_metadata",
                                                        "tool_calls")}, sort_keys=True)
        text = text.replace(sid, "<sid>")
        if message.get("provider_message_id"):
            text = text.replace(message["provider_message_id"], "<reply id>")
        return json.loads(text)

    def plain(self, provider, body):
        sid = self.session(provider)
        r = self.client.post("/v1/sessions/%s/messages" % sid, body)
        self.assertEqual(r.status, 201, r)
        return self.normalised(r.json["assistant_message"], sid)

    def streamed(self, provider, body):
        sid = self.session(provider)
        st = self.client.stream("/v1/sessions/%s/messages" % sid, dict(body, stream=True))
        self.assertIsInstance(st, SSEStream, st)
        events = st.read_all()
        names = [e.event for e in events]
        self.assertNotIn("error", names, events)
        data = [(e.event, e.data.replace(sid, "<sid>")) for e in events
                if e.event not in ("assistant_message", "done", "user_message")]
        final = [e.json for e in events if e.event == "assistant_message"]
        self.assertEqual(len(final), 1, names)
        return data, self.normalised(final[0], sid)

    def test_openai_plain_and_streamed(self):
        for content in ("hello there, isolated world", "a second, longer message " * 20):
            body = {"content": content}
            with self.subTest(content=content[:20]):
                self.assertEqual(self.plain("oa_iso", body), self.plain("oa_in", body))
                iso_events, iso_final = self.streamed("oa_iso", body)
                in_events, in_final = self.streamed("oa_in", body)
                self.assertGreater(len(iso_events), 2, iso_events)
                self.assertEqual(iso_events, in_events)
                self.assertEqual(iso_final, in_final)

    def test_echo_plain_streamed_tool_calls_and_params(self):
        tools = [{"type": "function", "name": "lookup", "description": "find a thing",
                  "parameters": {"type": "object", "properties": {"q": {"type": "string"}}}}]
        bodies = [{"content": "plain words for the echo"},
                  {"content": "please lookup the weather", "params": {"tools": tools}},
                  {"content": "no tools here", "params": {"temperature": 0.5, "max_output_tokens": 2}},
                  # Multi-byte text, and one word of 200 KB: a chunk frame that
                  # takes several reads of the daemon's buffered reader.
                  {"content": "h\u00e9llo w\u00f6rld \u2713 \u65e5\u672c\u8a9e \U0001f600 end"},
                  {"content": "x" * 200000 + " end"}]
        for body in bodies:
            with self.subTest(body=body["content"][:30]):
                plain_iso, plain_in = self.plain("echo_iso", body), self.plain("echo", body)
                self.assertEqual(plain_iso, plain_in)
                if "tools" in body.get("params", {}):
                    self.assertTrue(plain_iso["tool_calls"], plain_iso)  # reply events crossed
                iso_events, iso_final = self.streamed("echo_iso", body)
                in_events, in_final = self.streamed("echo", body)
                self.assertEqual(iso_events, in_events)
                self.assertEqual(iso_final, in_final)

    def test_provider_routes_reach_the_child(self):
        # get_metadata and update_config cross the channel too.
        r = self.client.get("/v1/providers/echo_iso")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json["metadata"]["prefix"], "echo", r)
        r = self.client.patch("/v1/providers/echo_iso", {"prefix": "iso"})
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json["metadata"]["prefix"], "iso", r)
        try:
            sid = self.session("echo_iso")
            r = self.client.post("/v1/sessions/%s/messages" % sid, {"content": "hi"})
            self.assertEqual(r.json["assistant_message"]["content"], "iso#1 hi", r)
        finally:
            self.client.patch("/v1/providers/echo_iso", {"prefix": "echo"})
        bad = self.client.patch("/v1/providers/echo_iso", {"no_such_key": 1})
        self.assertEqual(bad.status, 400, bad)


class Traceparent(FakeUpstreamTestCase):
    """With tracing on, the isolated provider's upstream request names the
    daemon's provider span as its parent, in the client's trace, as the
    in-process one does (the child records nothing; spans go nowhere here:
    the OTLP endpoint is a port nothing listens on)."""

    @classmethod
    def manifest_kw_for(cls, base):
        tracing = "tracing:\n  otlp_endpoint: %s\n  flush_ms: 100\n" % yaml_str("http://127.0.0.1:%d" % free_port())
        return {"extra_providers": openai_pair(base), "fail_on": None, "extra_sections": tracing}

    def test_the_upstream_gets_the_provider_span_as_parent(self):
        for provider in ("oa_in", "oa_iso"):
            with self.subTest(provider=provider):
                trace, span = uuid.uuid4().hex, uuid.uuid4().hex[:16]
                r = self.client.post("/v1/sessions", {"user_id": "iso-trace", "provider": provider})
                self.assertEqual(r.status, 201, r)
                self.fake.state.reset()
                r = self.client.post("/v1/sessions/%s/messages" % r.json["id"], {"content": "trace me"},
                                     headers={"traceparent": "00-%s-%s-01" % (trace, span)})
                self.assertEqual(r.status, 201, r)
                [req] = [q for q in self.fake.state.requests if q["path"].endswith("/chat/completions")]
                sent = req["headers"].get("traceparent", "")
                m = re.match(r"^00-%s-([0-9a-f]{16})-01$" % trace, sent)
                self.assertIsNotNone(m, req["headers"])
                self.assertNotEqual(m.group(1), span, "the parent is the provider span, not the client's")


class Failures(PipelineTestCase):
    """An isolated fixture provider with an echo fallback (`fx`) and one
    without (`fx_alone`). A paused call is not silence (the child answers
    pings), so the timeouts only bound the SIGSTOP test; they are long enough
    that a loaded machine's scheduling never looks like a hang."""

    extra_providers = [
        {"name": "fx", "plugin": "fixture_crash_provider", "isolation": "process",
         "isolation_timeout_ms": 10000, "fallback": ["steady"]},
        {"name": "fx_alone", "plugin": "fixture_crash_provider", "isolation": "process",
         "isolation_timeout_ms": 2000},
        {"name": "steady", "plugin": "echo"},
    ]

    def provider_session(self, provider):
        r = self.client.post("/v1/sessions", {"user_id": uid("iso"), "provider": provider})
        self.assertEqual(r.status, 201, r)
        return r.json["id"]

    def child_of(self, instance):
        kids = self.wait_for("one live child for %s" % instance,
                             lambda: instance_children(self.daemon.proc.pid, instance) or None)
        self.assertEqual(len(kids), 1, kids)
        return kids[0][0]

    def wait_served(self, instance):
        """Sends plain messages until the instance answers one (during the
        restart backoff they fail fast); returns the serving child's pid."""
        def attempt():
            sid = self.provider_session(instance)
            r = self.client.send(sid, "ping")
            if r.status == 201 and r.json["assistant_message"]["content"] == "echo#1 ping" and \
                    r.json["assistant_message"]["metadata"]["provider"] == instance:
                return r
            self.assertIn(r.status, (201, 503, 504), r)
            return None
        self.wait_for("%s to answer through a child" % instance, attempt)
        return self.child_of(instance)

    def assertNoZombies(self):
        kids = children(self.daemon.proc.pid)
        self.assertEqual([k for k in kids if k[1] == "Z"], [], kids)

    def wait_reaped(self, pid):
        def gone():
            try:
                with open("/proc/%d/stat" % pid) as f:
                    stat = f.read()
            except OSError:
                return True
            # Still there: as a zombie (not reaped yet) or alive.
            return None if stat else True
        self.wait_for("child %d to be reaped" % pid, gone)

    def open_until(self, sid, content, seen):
        """Opens a streamed send and reads chunk events until their text is
        `seen`; returns the stream, its events so far and an iterator."""
        st = self.client.stream("/v1/sessions/%s/messages" % sid, {"content": content, "stream": True})
        self.assertIsInstance(st, SSEStream, st)
        events, it = [], iter(st)
        deadline = time.monotonic() + POLL_DEADLINE_S
        while "".join(chunk_texts(events)) != seen:
            self.assertLess(time.monotonic(), deadline, events)
            events.append(next(it))
            self.assertNotIn(events[-1].event, ("error", "done"), events)
        return st, events, it

    def test_1_streams_like_echo_in_a_child(self):
        pid = self.wait_served("fx")
        sid = self.provider_session("fx")
        events = self.client.stream("/v1/sessions/%s/messages" % sid,
                                    {"content": "hello isolated world", "stream": True}).read_all()
        self.assertEqual(chunk_texts(events), ["echo#1 ", "hello ", "isolated ", "world"], events)
        self.assertEqual(self.child_of("fx"), pid)

    def test_2_streams_interleave_over_one_child(self):
        pid = self.wait_served("fx")
        first = self.provider_session("fx")
        st, events, it = self.open_until(first, "one __gate__ two", "echo#1 one ")
        try:
            # The first call is open (waiting at its gate) on the child; a
            # second runs start to end over the same child meanwhile, and
            # opens the gate.
            second = self.provider_session("fx")
            r = self.client.send(second, "go __open__")
            self.assertEqual(r.status, 201, r)
            self.assertEqual(r.json["assistant_message"]["content"], "echo#1 go __open__")
            events += list(it)
        finally:
            st.close()
        self.assertEqual("".join(chunk_texts(events)), "echo#1 one __gate__ two", events)
        self.assertEqual(events[-1].event, "done", events)
        final = [e.json for e in events if e.event == "assistant_message"][0]
        self.assertEqual(final["metadata"]["provider"], "fx", final)
        self.assertNotIn("failover", final["metadata"], final)
        self.assertEqual(self.child_of("fx"), pid)

    def test_3_kill_mid_stream_continues_on_the_fallback(self):
        pid = self.wait_served("fx")
        sid = self.provider_session("fx")
        st, events, it = self.open_until(sid, "alpha beta __pause__ gamma delta", "echo#1 alpha beta ")
        try:
            os.kill(pid, signal.SIGKILL)
            events += list(it)
        finally:
            st.close()
        names = [e.event for e in events]
        self.assertNotIn("error", names, events)
        self.assertEqual(names[-2:], ["assistant_message", "done"], names)
        # One uninterrupted answer: the fallback went on after the partial one.
        self.assertEqual("".join(chunk_texts(events)), "echo#1 alpha beta __pause__ gamma delta")
        final = events[-2].json
        self.assertEqual(final["metadata"]["providers"], ["fx", "steady"], final)
        failover = final["metadata"]["failover"][0]
        self.assertEqual(failover["provider"], "fx", failover)
        self.assertIn("plugin process for 'fx' crashed (SIGKILL)", failover["error"], failover)
        self.assertEqual(self.client.messages(sid)[-1]["content"], "echo#1 alpha beta __pause__ gamma delta")
        self.wait_reaped(pid)
        self.assertNotEqual(self.wait_served("fx"), pid)
        self.assertNoZombies()

    def test_4_kill_mid_stream_without_fallback_is_an_error_event(self):
        pid = self.wait_served("fx_alone")
        sid = self.provider_session("fx_alone")
        st, events, it = self.open_until(sid, "alpha beta __pause__ gamma", "echo#1 alpha beta ")
        try:
            os.kill(pid, signal.SIGKILL)
            events += list(it)
        finally:
            st.close()
        errors = [e for e in events if e.event == "error"]
        self.assertEqual(len(errors), 1, events)
        message = errors[0].json["error"]["message"]
        self.assertIn("provider 'fx_alone' failed", message, errors)
        self.assertIn("crashed (SIGKILL)", message, errors)
        self.assertNotIn("assistant_message", [e.event for e in events])
        self.wait_reaped(pid)
        self.assertNotEqual(self.wait_served("fx_alone"), pid)
        self.assertNoZombies()

    def test_5_segfault_mid_stream_continues_on_the_fallback(self):
        pid = self.wait_served("fx")
        sid = self.provider_session("fx")
        events = self.client.stream("/v1/sessions/%s/messages" % sid,
                                    {"content": "red green __crash__ blue", "stream": True}).read_all()
        self.assertEqual("".join(chunk_texts(events)), "echo#1 red green __crash__ blue", events)
        final = [e.json for e in events if e.event == "assistant_message"][0]
        self.assertEqual(final["metadata"]["providers"], ["fx", "steady"], final)
        self.assertIn("crashed (SIGSEGV)", final["metadata"]["failover"][0]["error"], final)
        self.wait_reaped(pid)
        self.assertNotEqual(self.wait_served("fx"), pid)
        self.assertNoZombies()

    def test_6_a_stopped_child_is_killed_reaped_and_replaced(self):
        pid = self.wait_served("fx_alone")
        os.kill(pid, signal.SIGSTOP)
        try:
            sid = self.provider_session("fx_alone")
            r = self.client.send(sid, "anyone there")
            # The start never gets its answer: the silence ends the child.
            self.assertIn(r.status, (503, 504), r)
            self.assertIn("fx_alone", r.json["error"]["message"], r)
            self.assertIn("sent nothing for 2000 ms", r.json["error"]["message"], r)
        finally:
            try:
                os.kill(pid, signal.SIGCONT)
            except ProcessLookupError:
                pass
        self.wait_reaped(pid)
        self.assertNotEqual(self.wait_served("fx_alone"), pid)
        self.assertNoZombies()

    def test_7_one_child_per_isolated_instance_and_no_zombies(self):
        self.wait_served("fx")
        self.wait_served("fx_alone")
        kids = children(self.daemon.proc.pid)
        self.assertNoZombies()
        self.assertEqual(len(instance_children(self.daemon.proc.pid, "fx")), 1, kids)
        self.assertEqual(len(instance_children(self.daemon.proc.pid, "fx_alone")), 1, kids)
        self.assertEqual(len(kids), 2, kids)


if __name__ == "__main__":
    unittest.main()
