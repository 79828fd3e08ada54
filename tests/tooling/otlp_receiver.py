"""A local OTLP/HTTP trace receiver for tests (Python 3 standard library only).

It accepts what an OpenTelemetry collector's OTLP/HTTP receiver accepts with
the JSON encoding: POST /v1/traces, Content-Type: application/json, a body
that is an ExportTraceServiceRequest in the protobuf JSON mapping. It decodes
every payload and keeps the spans, flattened, for the test to check:

    receiver = OtlpReceiver().start()      # 127.0.0.1, a free port
    receiver.endpoint                      # "http://127.0.0.1:PORT" for tracing.otlp_endpoint
    spans = receiver.wait_for(lambda spans: ..., deadline_s=20)
    receiver.stop()

Each span is a dict: trace_id, span_id, parent_span_id ("" for a root),
name, kind (int), start_ns/end_ns (int), attributes ({key: python value},
intValue decoded to int), status ({"code": int, "message": str}), resource
({key: value}), scope (name). A payload that does not follow the encoding
(wrong content type, bad JSON, ids that are not lowercase hex of the right
length, times that are not decimal strings) is answered 400/415 and recorded
in `errors`, so a test can assert there were none.
"""

import http.server
import json
import re
import threading
import time

HEX32 = re.compile(r"^[0-9a-f]{32}$")
HEX16 = re.compile(r"^[0-9a-f]{16}$")
DIGITS = re.compile(r"^[0-9]+$")


class PayloadError(ValueError):
    pass


def any_value(value):
    if not isinstance(value, dict) or len(value) != 1:
        raise PayloadError("AnyValue must have exactly one field: %r" % (value,))
    (kind, v), = value.items()
    if kind == "stringValue":
        return v
    if kind == "intValue":  # int64 as a decimal string in the JSON mapping
        if not isinstance(v, str) or not re.match(r"^-?[0-9]+$", v):
            raise PayloadError("intValue must be a decimal string: %r" % (v,))
        return int(v)
    if kind == "doubleValue":
        return float(v)
    if kind == "boolValue":
        return bool(v)
    if kind == "arrayValue":
        return [any_value(x) for x in v.get("values", [])]
    raise PayloadError("unknown AnyValue field %r" % kind)


def key_values(items):
    out = {}
    for kv in items or []:
        out[kv["key"]] = any_value(kv["value"])
    return out


def decode_span(raw, resource, scope):
    for key, pattern in (("traceId", HEX32), ("spanId", HEX16)):
        if not pattern.match(raw.get(key, "")):
            raise PayloadError("%s must be lowercase hex: %r" % (key, raw.get(key)))
    parent = raw.get("parentSpanId", "")
    if parent and not HEX16.match(parent):
        raise PayloadError("parentSpanId must be 16 lowercase hex digits: %r" % parent)
    for key in ("startTimeUnixNano", "endTimeUnixNano"):
        if not DIGITS.match(str(raw.get(key, ""))) or not isinstance(raw.get(key), str):
            raise PayloadError("%s must be a decimal string: %r" % (key, raw.get(key)))
    return {
        "trace_id": raw["traceId"],
        "span_id": raw["spanId"],
        "parent_span_id": parent,
        "name": raw.get("name", ""),
        "kind": raw.get("kind", 0),
        "start_ns": int(raw["startTimeUnixNano"]),
        "end_ns": int(raw["endTimeUnixNano"]),
        "attributes": key_values(raw.get("attributes")),
        "status": {"code": raw.get("status", {}).get("code", 0),
                   "message": raw.get("status", {}).get("message", "")},
        "resource": resource,
        "scope": scope,
    }


def decode_request(body):
    doc = json.loads(body)
    spans = []
    for rs in doc.get("resourceSpans", []):
        resource = key_values(rs.get("resource", {}).get("attributes"))
        for ss in rs.get("scopeSpans", []):
            scope = ss.get("scope", {}).get("name", "")
            spans += [decode_span(s, resource, scope) for s in ss.get("spans", [])]
    return spans


class OtlpReceiver:
    def __init__(self, host="127.0.0.1", port=0):
        self.lock = threading.Lock()
        self.spans = []
        self.requests = []  # (headers dict, span count) per accepted export
        self.errors = []
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _answer(self, status, obj):
                data = json.dumps(obj).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                if self.path != "/v1/traces":
                    return self._answer(404, {"message": "no such path"})
                if self.headers.get("Content-Type", "").split(";")[0].strip() != "application/json":
                    receiver._error("content type %r" % self.headers.get("Content-Type"))
                    return self._answer(415, {"message": "expected application/json"})
                try:
                    spans = decode_request(body)
                except (ValueError, KeyError, TypeError, AttributeError) as e:
                    receiver._error("%s: %s" % (type(e).__name__, e))
                    return self._answer(400, {"message": str(e)})
                with receiver.lock:
                    receiver.spans += spans
                    receiver.requests.append(({k.lower(): v for k, v in self.headers.items()}, len(spans)))
                self._answer(200, {})  # an ExportTraceServiceResponse without partialSuccess

        self.server = http.server.ThreadingHTTPServer((host, port), Handler)
        self.server.daemon_threads = True
        self.endpoint = "http://%s:%d" % (host, self.server.server_address[1])
        self.thread = None

    def _error(self, text):
        with self.lock:
            self.errors.append(text)

    def start(self):
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.1},
                                       daemon=True)
        self.thread.start()
        return self

    def stop(self):
        self.server.shutdown()
        self.server.server_close()

    def snapshot(self):
        with self.lock:
            return list(self.spans)

    def wait_for(self, predicate, deadline_s=20.0):
        """The spans once predicate(spans) is true; AssertionError with what
        came at the deadline."""
        deadline = time.monotonic() + deadline_s
        while True:
            spans = self.snapshot()
            if predicate(spans):
                return spans
            if time.monotonic() >= deadline:
                raise AssertionError("OTLP receiver: condition not met within %.0f s; %d spans: %s; errors: %s"
                                     % (deadline_s, len(spans), [(s["name"], s["trace_id"]) for s in spans],
                                        self.errors))
            time.sleep(0.05)
