"""Shared pieces of the auth tests (docs/security.md): API keys made fresh for
each run, their SHA-256 the way the docs tell operators to compute it, and
manifests with an `auth:` section appended to the integration harness's
test manifest."""

import hashlib
import http.client
import os
import re
import secrets
import subprocess
import time

import swh_harness
from swh_harness import Client, DaemonTestCase

STREAM_DEADLINE_S = 20.0  # upper bound of one SSE stream in these tests


class Key:
    """One API key: the text a client sends, and the entry the manifest holds."""

    def __init__(self, key_id, user, role="user", rate_per_second=None, burst=None):
        self.id = key_id
        self.user = user
        self.role = role
        # Fresh per run, and distinctive so a leak is easy to grep for.
        self.text = "swhk-%s-%s" % (key_id, secrets.token_hex(16))
        self.sha256 = hashlib.sha256(self.text.encode("utf-8")).hexdigest()
        self.rate_per_second = rate_per_second
        self.burst = burst

    def entry(self):
        """The flow-style YAML map of this key (one line)."""
        fields = ["id: %s" % self.id, "user: %s" % self.user, "role: %s" % self.role,
                  "sha256: \"%s\"" % self.sha256]
        if self.rate_per_second is not None:
            fields.append("rate_per_second: %s" % self.rate_per_second)
        if self.burst is not None:
            fields.append("burst: %d" % self.burst)
        return "{ %s }" % ", ".join(fields)

    def bearer(self):
        return {"Authorization": "Bearer %s" % self.text}

    def x_api_key(self):
        return {"X-API-Key": self.text}


def sha256_by_shell(text):
    """The SHA-256 of a key computed with the recipe docs/security.md gives
    (printf %s "$KEY" | sha256sum), so the documented command is checked."""
    out = subprocess.run(["sh", "-c", 'printf %s "$KEY" | sha256sum'], env={"KEY": text, "PATH": os.environ["PATH"]},
                         stdout=subprocess.PIPE, check=True, timeout=10).stdout.decode()
    return out.split()[0]


def keys_yaml(keys):
    """A keys file (auth.keys_file) holding `keys`."""
    return "keys:\n" + "".join("  - %s\n" % k.entry() for k in keys)


def auth_section(keys, keys_file=None, rate_per_second=None, burst=None, max_streams_per_key=None,
                 max_failures_per_minute=None):
    lines = ["auth:", "  mode: api_keys"]
    if max_failures_per_minute is not None:
        lines.append("  max_failures_per_minute: %d" % max_failures_per_minute)
    if keys_file:
        lines.append("  keys_file: %s" % swh_harness.yaml_str(keys_file))
    if rate_per_second is not None:
        lines.append("  rate_per_second: %s" % rate_per_second)
    if burst is not None:
        lines.append("  burst: %d" % burst)
    if max_streams_per_key is not None:
        lines.append("  max_streams_per_key: %d" % max_streams_per_key)
    if keys:
        lines.append("  keys:")
        lines += ["    - %s" % k.entry() for k in keys]
    return "\n".join(lines) + "\n"


COLLABORATIVE = (
    "session_types:\n"
    "  - name: collaborative\n"
    "    plugin: collaborative\n"
)


class AuthClient:
    """Requests with one key's credentials (or none)."""

    def __init__(self, port, key=None, header="bearer"):
        self.http = Client(port)
        self.key = key
        self.header = header

    def headers(self, extra=None):
        h = {}
        if self.key is not None:
            h.update(self.key.bearer() if self.header == "bearer" else self.key.x_api_key())
        h.update(extra or {})
        return h

    def request(self, method, path, body=None, headers=None):
        return self.http.request(method, path, body=body, headers=self.headers(headers))

    def get(self, path, headers=None):
        return self.request("GET", path, headers=headers)

    def post(self, path, body=None, headers=None):
        return self.request("POST", path, body=body, headers=headers)

    def stream(self, path, body=None, method="POST", headers=None):
        return self.http.stream(path, body, method=method, headers=self.headers(headers),
                                deadline_s=STREAM_DEADLINE_S)

    def create_session(self, **fields):
        r = self.post("/v1/sessions", fields)
        if r.status != 201:
            raise AssertionError("POST /v1/sessions %r as %s -> %r" % (fields, self.key and self.key.id, r))
        return r.json

    def send(self, sid, content, **fields):
        body = {"content": content}
        body.update(fields)
        return self.post("/v1/sessions/%s/messages" % sid, body)


class AuthTestCase(DaemonTestCase):
    """A daemon per class; `as_key(key)` gives a client that sends that key."""

    def as_key(self, key, header="bearer"):
        return AuthClient(self.daemon.port, key, header)

    def anonymous(self):
        return AuthClient(self.daemon.port, None)

    def open_events(self, client, sid):
        """An /events stream past its `ready` event: (stream, iterator)."""
        stream = client.stream("/v1/sessions/%s/events" % sid, None, method="GET")
        self.assertIsInstance(stream, swh_harness.SSEStream, stream)
        events = iter(stream)
        first = next(events)
        self.assertEqual(first.event, "ready", first)
        return stream, events

    def assertUnauthorized(self, resp):
        self.assertError(resp, 401, "unauthorized")
        self.assertEqual(resp.headers.get("WWW-Authenticate"), "Bearer", resp)

    def assertForbidden(self, resp):
        self.assertError(resp, 403, "forbidden")

    def assertNotFound(self, resp):
        self.assertError(resp, 404, "not_found")


def poll(predicate, deadline_s, interval_s=0.1):
    """Calls `predicate` until it returns a true value or `deadline_s`
    passes; returns the last value. For states with no event to await (a
    stream slot the server frees once it notices the client left)."""
    end = time.monotonic() + deadline_s
    while True:
        value = predicate()
        if value or time.monotonic() > end:
            return value
        time.sleep(interval_s)


def mark_of(text, needle, occurrence=1, after=0):
    """(line, column), 1-based, where `needle` starts in `text` (its
    `occurrence`-th appearance at or after offset `after`): where a manifest
    error must point."""
    start = after - 1
    for _ in range(occurrence):
        start = text.index(needle, start + 1)
    line = text.count("\n", 0, start) + 1
    column = start - (text.rfind("\n", 0, start) + 1) + 1
    return line, column


def port_is_listening(port):
    """True when something accepts TCP connections on 127.0.0.1:port."""
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
        conn.connect()
        conn.close()
        return True
    except OSError:
        return False


def strip_ansi(text):
    return re.sub(r"\x1b\[[0-9;]*m", "", text)
