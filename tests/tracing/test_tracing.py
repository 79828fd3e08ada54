"""Traces of the real daemon over OTLP/HTTP (docs/tracing.md).

One daemon with `tracing:` pointing at a local OTLP receiver (it decodes the
JSON payloads), the openai provider plugin in front of tools/fake_upstream
(which records the headers it receives). A second daemon exports to a port
nothing listens on: requests still succeed, and the failures and drops show
on /metrics.
"""

import os
import re
import socket
import time
import unittest
import uuid

from otlp_receiver import OtlpReceiver
from swh_harness import Daemon, FakeUpstreamTestCase, yaml_str

CLIENT_TRACE = uuid.uuid4().hex
CLIENT_SPAN = uuid.uuid4().hex[:16]
OPENAI_KEY = "sk-swhtest-otel-" + uuid.uuid4().hex
SERVER, CLIENT = 2, 3  # OTLP span kinds


def tracing_yaml(endpoint, **settings):
    """The manifest's tracing section: a fast flush, small batches."""
    values = {"service_name": "swh-test", "flush_ms": 100, "batch": 64, "timeout_ms": 2000}
    values.update(settings)
    return "tracing:\n  otlp_endpoint: %s\n" % yaml_str(endpoint) + \
        "".join("  %s: %s\n" % item for item in values.items())


def openai_yaml(base):
    return "\n".join(["  - name: openai", "    plugin: openai", "    config:",
                      "      base_url: %s" % yaml_str(base + "/v1"),
                      "      api_key_env: SWH_TEST_OTEL_KEY",
                      "      retries: 0",
                      "      timeout_ms: 5000"]) + "\n"


def metric(text, name, labels=""):
    m = re.search(r"^%s%s (\d+)$" % (re.escape(name), re.escape(labels)), text, re.M)
    if not m:
        raise AssertionError("no %s%s in /metrics:\n%s" % (name, labels, text))
    return int(m.group(1))


def metrics_when(client, predicate, deadline_s=30.0):
    """/metrics once predicate(text) holds, or at the deadline (the caller asserts)."""
    deadline = time.monotonic() + deadline_s
    while True:
        text = client.get("/metrics").raw.decode()
        if predicate(text) or time.monotonic() > deadline:
            return text
        time.sleep(0.1)


class TracingTests(FakeUpstreamTestCase):
    receiver = None

    @classmethod
    def manifest_kw_for(cls, fake_base):
        os.environ["SWH_TEST_OTEL_KEY"] = OPENAI_KEY
        cls.receiver = OtlpReceiver().start()
        return {"extra_providers": openai_yaml(fake_base), "extra_sections": tracing_yaml(cls.receiver.endpoint)}

    @classmethod
    def tearDownClass(cls):
        try:
            super().tearDownClass()
        finally:
            if cls.receiver:
                cls.receiver.stop()

    def trace(self, trace_id, done):
        """The spans of one trace once `done(spans)` holds."""
        return [s for s in self.receiver.wait_for(
            lambda spans: done([s for s in spans if s["trace_id"] == trace_id]))
            if s["trace_id"] == trace_id]

    def test_send_is_one_trace_continuing_the_clients(self):
        sid = self.client.create_session("u-otel", provider="openai", model="gpt-otel-test",
                                         config={"params": {"temperature": 0.25, "max_output_tokens": 64}})["id"]
        self.fake.state.reset()
        traceparent = "00-%s-%s-01" % (CLIENT_TRACE, CLIENT_SPAN)
        r = self.client.post("/v1/sessions/%s/messages" % sid, {"content": "trace these four words"},
                             headers={"traceparent": traceparent})
        self.assertEqual(r.status, 201, r)
        usage = r.json["assistant_message"]["provider_metadata"]["usage"]

        def complete(spans):
            names = [s["name"] for s in spans]
            return "POST" in names and any(n.startswith("chat ") for n in names) and \
                any(n.startswith("storage ") for n in names)
        spans = self.trace(CLIENT_TRACE, complete)
        self.assertEqual(self.receiver.errors, [])
        by_id = {s["span_id"]: s for s in spans}

        # The door: a server span, child of the client's span.
        [door] = [s for s in spans if s["name"] == "POST"]
        self.assertEqual(door["kind"], SERVER)
        self.assertEqual(door["parent_span_id"], CLIENT_SPAN)
        self.assertEqual(door["attributes"]["http.request.method"], "POST")
        self.assertEqual(door["attributes"]["url.path"], "/v1/sessions/%s/messages" % sid)
        self.assertEqual(door["attributes"]["http.response.status_code"], 201)
        self.assertEqual(door["attributes"]["session.id"], sid)
        self.assertEqual(door["resource"]["service.name"], "swh-test")

        # Auth and every storage call: children of the door.
        [auth] = [s for s in spans if s["name"] == "auth"]
        self.assertEqual(auth["parent_span_id"], door["span_id"])
        storage = [s for s in spans if s["name"].startswith("storage ")]
        self.assertGreaterEqual(len(storage), 2, [s["name"] for s in storage])  # history read + reply write
        for s in storage:
            self.assertEqual(s["parent_span_id"], door["span_id"], s)
            self.assertEqual(s["attributes"]["db.operation.name"], s["name"][len("storage "):])

        # The provider call: a client span of the door, GenAI conventions.
        [chat] = [s for s in spans if s["name"].startswith("chat ")]
        self.assertEqual(chat["name"], "chat gpt-otel-test")
        self.assertEqual(chat["kind"], CLIENT)
        self.assertEqual(chat["parent_span_id"], door["span_id"])
        a = chat["attributes"]
        self.assertEqual(a["gen_ai.operation.name"], "chat")
        self.assertEqual(a["gen_ai.system"], "openai")
        self.assertEqual(a["gen_ai.provider.name"], "openai")
        self.assertEqual(a["gen_ai.request.model"], "gpt-otel-test")
        self.assertEqual(a["gen_ai.response.model"], "gpt-otel-test")  # the fake answers with the model asked
        self.assertEqual(a["gen_ai.request.temperature"], 0.25)
        self.assertEqual(a["gen_ai.request.max_tokens"], 64)
        self.assertEqual(a["session.id"], sid)
        # Token counts: what the upstream reported (the fake counts words).
        self.assertEqual(a["gen_ai.usage.input_tokens"], usage["input_tokens"])
        self.assertEqual(a["gen_ai.usage.output_tokens"], usage["output_tokens"])
        self.assertEqual(a["gen_ai.usage.input_tokens"], 4)
        self.assertEqual(a["gen_ai.usage.output_tokens"], len("You said: trace these four words".split()))
        self.assertEqual(chat["status"]["code"], 1)  # OK
        self.assertLessEqual(door["start_ns"], chat["start_ns"])
        self.assertLessEqual(chat["end_ns"], door["end_ns"])

        # The upstream got the provider span as its parent, in the client's trace.
        [req] = [q for q in self.fake.state.requests if q["path"].endswith("/chat/completions")]
        sent = req["headers"].get("traceparent")
        self.assertEqual(sent, "00-%s-%s-01" % (CLIENT_TRACE, chat["span_id"]), req["headers"])
        for s in spans:  # every span hangs off the client's span through the door
            if s is not door:
                self.assertIn(s["parent_span_id"], by_id, s)

    def test_without_traceparent_a_new_trace_is_sent_upstream(self):
        sid = self.client.create_session("u-otel2", provider="openai", model="gpt-otel-test")["id"]
        self.fake.state.reset()
        r = self.client.send(sid, "a new trace")
        self.assertEqual(r.status, 201, r)
        [req] = [q for q in self.fake.state.requests if q["path"].endswith("/chat/completions")]
        m = re.match(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-01$", req["headers"].get("traceparent", ""))
        self.assertIsNotNone(m, req["headers"])
        trace_id, parent = m.group(1), m.group(2)
        self.assertNotEqual(trace_id, CLIENT_TRACE)
        spans = self.trace(trace_id, lambda spans: any(s["name"] == "POST" for s in spans)
                           and any(s["span_id"] == parent for s in spans))
        [door] = [s for s in spans if s["name"] == "POST"]
        self.assertEqual(door["parent_span_id"], "")  # a root span
        [chat] = [s for s in spans if s["span_id"] == parent]
        self.assertEqual(chat["parent_span_id"], door["span_id"])

    def test_invalid_traceparent_is_ignored(self):
        # Each request has a path of its own, to find its span by.
        cases = {"/v1/sessions/zero-%s" % uuid.uuid4().hex: "00-%s-%s-01" % ("0" * 32, CLIENT_SPAN),
                 "/v1/sessions/ff-%s" % uuid.uuid4().hex: "ff-%s-%s-01" % (CLIENT_TRACE, CLIENT_SPAN),
                 "/v1/sessions/upper-%s" % uuid.uuid4().hex: "00-%s-%s-01" % (CLIENT_TRACE.upper(), CLIENT_SPAN)}
        for path, header in cases.items():
            r = self.client.get(path, headers={"traceparent": header})
            self.assertEqual(r.status, 404, r)  # the request itself is served as usual
        spans = self.receiver.wait_for(
            lambda spans: {s["attributes"].get("url.path") for s in spans} >= set(cases))
        for s in spans:
            if s["attributes"].get("url.path") in cases:
                self.assertEqual(s["parent_span_id"], "", s)  # a new trace, not the client's
                self.assertNotIn(s["trace_id"], ("0" * 32, CLIENT_TRACE), s)
                self.assertEqual(s["attributes"]["http.response.status_code"], 404)

    def test_metrics_count_exported_spans(self):
        self.receiver.wait_for(lambda spans: len(spans) > 0)
        text = metrics_when(self.client, lambda t: metric(t, "swarmhost_trace_spans_exported_total") > 0)
        self.assertGreater(metric(text, "swarmhost_trace_spans_exported_total"), 0, text)
        self.assertEqual(metric(text, "swarmhost_trace_export_failures_total"), 0)
        self.assertEqual(metric(text, "swarmhost_trace_spans_dropped_total", '{reason="queue_full"}'), 0)
        self.assertEqual(metric(text, "swarmhost_trace_spans_dropped_total", '{reason="export_failed"}'), 0)


class DeadCollectorTests(unittest.TestCase):
    """A collector that hangs: it accepts connections and never answers (the
    kernel's backlog completes the handshake). Each export request waits out
    tracing.timeout_ms on the exporter's thread; requests must not notice,
    and the failures and queue drops are counted on /metrics."""

    def test_requests_succeed_and_failures_are_counted(self):
        with socket.socket() as hole:
            hole.bind(("127.0.0.1", 0))
            hole.listen(64)
            endpoint = "http://127.0.0.1:%d" % hole.getsockname()[1]
            # One span per export request, each held for timeout_ms: the
            # exporter drains one span a second, a send makes several.
            d = Daemon(extra_sections=tracing_yaml(endpoint, queue=4, batch=1, timeout_ms=1000))
            d.start_or_cleanup()
            try:
                sid = d.client.create_session("u-dead")["id"]
                for i in range(10):
                    r = d.client.send(sid, "still works %d" % i)
                    self.assertEqual(r.status, 201, r)
                # The first export request times out after 1 s.
                text = metrics_when(d.client, lambda t: metric(t, "swarmhost_trace_export_failures_total") > 0)
                self.assertGreater(metric(text, "swarmhost_trace_export_failures_total"), 0, text)
                self.assertGreater(metric(text, "swarmhost_trace_spans_dropped_total", '{reason="export_failed"}'),
                                   0, text)
                self.assertGreater(metric(text, "swarmhost_trace_spans_dropped_total", '{reason="queue_full"}'),
                                   0, text)
                self.assertEqual(metric(text, "swarmhost_trace_spans_exported_total"), 0)
            finally:
                rc = d.stop()
                d.cleanup()
            self.assertEqual(rc, 0)


if __name__ == "__main__":
    unittest.main()
