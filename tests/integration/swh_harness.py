"""Test harness for the swarmhost daemon (Python 3 standard library only).

Starts the real `swarmhost serve` binary on a free loopback port with a
temporary manifest (absolute plugin_dirs, a temporary SQLite file), talks HTTP
to it with http.client, reads SSE streams incrementally, and stops it with
SIGTERM (then SIGKILL after a bounded wait).

Environment:
  SWH_BINARY       path of the swarmhost executable (set by CTest)
  SWH_PLUGIN_DIR   folder holding swh_storage_sqlite.so / swh_provider_echo.so
  SWH_KEEP_TMP=1   keep the temporary folders (manifest, db, daemon log)
Without them, the defaults point into <repo>/build.
"""

import datetime
import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest

REPO_ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))

START_DEADLINE_S = 20.0    # daemon must answer /healthz 200 within this
STOP_DEADLINE_S = 20.0     # daemon must exit after SIGTERM within this
HTTP_TIMEOUT_S = 30.0      # per socket operation
FAIL_TOKEN = "__swh_fail_now__"  # echo provider `fail_on` value in test manifests

ISO_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$")


def binary_path():
    return os.environ.get("SWH_BINARY") or os.path.join(REPO_ROOT, "build", "host", "swarmhost")


def plugin_dir():
    return os.environ.get("SWH_PLUGIN_DIR") or os.path.join(REPO_ROOT, "build", "plugins")


def free_port():
    """A loopback port that was free a moment ago (bind to port 0)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def iso_to_us(text):
    """'2026-11-25T14:39:42.123456Z' -> integer microseconds since the epoch."""
    dt = datetime.datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=datetime.timezone.utc)
    epoch = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)
    return (dt - epoch) // datetime.timedelta(microseconds=1)


def yaml_str(value):
    """A YAML double-quoted scalar (JSON string syntax is valid YAML)."""
    return json.dumps(value)


def make_tmpdir(prefix="swh-itest-"):
    base = os.environ.get("SWH_TEST_TMPDIR")
    if base:
        os.makedirs(base, exist_ok=True)
    return tempfile.mkdtemp(prefix=prefix, dir=base or None)


def manifest_text(port, db_path, plugin_dirs=None, max_body_bytes=None, shutdown_grace_seconds=5,
                  fail_on=FAIL_TOKEN, extra_providers="", server_lines=(), extra_sections=""):
    """The test manifest, block-style YAML so line numbers are predictable."""
    dirs = plugin_dirs if plugin_dirs is not None else [plugin_dir()]
    lines = [
        "server:",
        "  listen: %s" % yaml_str("127.0.0.1:%d" % port),
    ]
    if max_body_bytes is not None:
        lines.append("  max_body_bytes: %d" % max_body_bytes)
    if shutdown_grace_seconds is not None:
        lines.append("  shutdown_grace_seconds: %d" % shutdown_grace_seconds)
    lines += ["  %s" % line for line in server_lines]
    lines.append("plugin_dirs:")
    lines += ["  - %s" % yaml_str(os.path.abspath(d)) for d in dirs]
    lines += [
        "storage:",
        "  plugin: sqlite",
        "  config:",
        "    path: %s" % yaml_str(db_path),
        "providers:",
        "  - name: echo",
        "    plugin: echo",
    ]
    if fail_on is not None:
        lines += ["    config:", "      fail_on: %s" % yaml_str(fail_on)]
    text = "\n".join(lines) + "\n"
    if extra_providers:
        text += extra_providers
    # Top-level sections after the providers list (e.g. "tracing:\n  ...").
    return text + extra_sections


class Response:
    """One HTTP answer. Unpacks as (status, headers, body) where body is the
    parsed JSON when the answer is JSON, else the raw bytes."""

    def __init__(self, status, headers, raw):
        self.status = status
        self.headers = headers  # http.client.HTTPMessage, case-insensitive
        self.raw = raw
        self.json = None
        self.json_error = None
        ctype = headers.get("Content-Type", "") or ""
        if raw and "json" in ctype:
            try:
                self.json = json.loads(raw.decode("utf-8"))
            except ValueError as e:  # keep the raw body for the assertion message
                self.json_error = str(e)

    @property
    def body(self):
        return self.json if self.json is not None else self.raw

    @property
    def content_type(self):
        return self.headers.get("Content-Type", "") or ""

    def __iter__(self):
        return iter((self.status, self.headers, self.body))

    def __repr__(self):
        raw = self.raw[:600] if self.raw else b""
        return "<HTTP %s %s %r>" % (self.status, self.content_type, raw)


class SSEEvent:
    def __init__(self, event, data, id=None):
        self.event = event
        self.id = id  # the `id:` field, None when the event had none
        self.data = data  # the data text (multi-line data joined with \n)
        try:
            self.json = json.loads(data) if data else None
        except ValueError:
            self.json = None

    def __repr__(self):
        return "SSEEvent(%r, %r)" % (self.event, self.data[:200])


class SSEStream:
    """Incremental `event:` / `data:` parser over a streaming HTTPResponse.

    Iterate to get SSEEvent objects as they arrive. Each read is bounded by the
    connection's socket timeout and the whole stream by `deadline_s`.
    """

    def __init__(self, conn, response, deadline_s=60.0):
        self.conn = conn
        self.response = response
        self.status = response.status
        self.headers = response.headers
        self.deadline = time.monotonic() + deadline_s
        self.ended_cleanly = None  # True: EOF after a complete event; False: broken
        self.raw_lines = []

    @property
    def content_type(self):
        return self.headers.get("Content-Type", "") or ""

    def __iter__(self):
        event, data, event_id = None, [], None
        while True:
            if time.monotonic() > self.deadline:
                raise TimeoutError("SSE stream did not end before its deadline; lines so far: %r"
                                   % self.raw_lines[-20:])
            try:
                line = self.response.readline()
            except (http.client.IncompleteRead, ConnectionError, OSError) as e:
                self.ended_cleanly = False
                self.raw_lines.append("<read error: %r>" % (e,))
                return
            if not line:  # EOF
                self.ended_cleanly = event is None and not data
                return
            text = line.decode("utf-8").rstrip("\r\n")
            self.raw_lines.append(text)
            if text == "":
                if event is not None or data:
                    yield SSEEvent(event or "message", "\n".join(data), event_id)
                event, data, event_id = None, [], None
                continue
            if text.startswith(":"):
                continue  # comment / keep-alive
            field, _, value = text.partition(":")
            if value.startswith(" "):
                value = value[1:]
            if field == "event":
                event = value
            elif field == "data":
                data.append(value)
            elif field == "id":
                event_id = value
            # retry: and unknown fields are ignored, as the SSE spec says

    def read_all(self):
        events = list(self)
        self.close()
        return events

    def close(self):
        try:
            self.response.close()
        finally:
            self.conn.close()


class Client:
    """HTTP/1.1 client for one daemon; a fresh connection per request unless
    `keep_alive=True` (then one connection, reopened if the server closed it)."""

    def __init__(self, port, keep_alive=False, timeout=HTTP_TIMEOUT_S):
        self.port = port
        self.keep_alive = keep_alive
        self.timeout = timeout
        self._conn = None

    def _connection(self):
        if self.keep_alive and self._conn is not None:
            return self._conn
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=self.timeout)
        if self.keep_alive:
            self._conn = conn
        return conn

    def close(self):
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def request(self, method, path, body=None, headers=None, raw=None):
        """body: a JSON-able value (sent as JSON); raw: bytes sent as is."""
        hdrs = dict(headers or {})
        payload = None
        if raw is not None:
            payload = raw
            hdrs.setdefault("Content-Type", "application/json")
        elif body is not None:
            payload = json.dumps(body).encode("utf-8")
            hdrs.setdefault("Content-Type", "application/json")
        for attempt in (0, 1):
            conn = self._connection()
            try:
                conn.request(method, path, body=payload, headers=hdrs)
                resp = conn.getresponse()
                data = resp.read()
                result = Response(resp.status, resp.headers, data)
                if not self.keep_alive or resp.will_close:
                    conn.close()
                    self._conn = None
                return result
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                # A kept-alive connection the server closed: retry once on a new one.
                conn.close()
                self._conn = None
                if not self.keep_alive or attempt == 1:
                    raise

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def post(self, path, body=None, **kw):
        return self.request("POST", path, body=body, **kw)

    def patch(self, path, body=None, **kw):
        return self.request("PATCH", path, body=body, **kw)

    def delete(self, path, **kw):
        return self.request("DELETE", path, **kw)

    def stream(self, path, body, deadline_s=60.0, method="POST", headers=None):
        """Send a request (a JSON body, or none with body=None) and return an
        SSEStream when the answer is text/event-stream; otherwise read the
        whole answer and return a Response (an ordinary JSON error, for
        instance). GET /v1/sessions/{id}/events: stream(path, None, method="GET")."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=self.timeout)
        hdrs = {"Accept": "text/event-stream"}
        payload = None
        if body is not None:
            payload = json.dumps(body).encode("utf-8")
            hdrs["Content-Type"] = "application/json"
        hdrs.update(headers or {})
        conn.request(method, path, body=payload, headers=hdrs)
        resp = conn.getresponse()
        if "text/event-stream" in (resp.headers.get("Content-Type") or ""):
            return SSEStream(conn, resp, deadline_s=deadline_s)
        data = resp.read()
        conn.close()
        return Response(resp.status, resp.headers, data)

    # ---- convenience wrappers for the session API
    def create_session(self, user_id, **fields):
        body = {"user_id": user_id}
        body.update(fields)
        r = self.post("/v1/sessions", body)
        if r.status != 201 or not isinstance(r.json, dict) or "id" not in r.json:
            raise AssertionError("POST /v1/sessions %r -> %r" % (body, r))
        return r.json

    def send(self, session_id, content, **fields):
        body = {"content": content}
        body.update(fields)
        return self.post("/v1/sessions/%s/messages" % session_id, body)

    def messages(self, session_id, query=""):
        r = self.get("/v1/sessions/%s/messages%s" % (session_id, query))
        if r.status != 200 or not isinstance(r.json, dict) or "messages" not in r.json:
            raise AssertionError("GET messages %s%s -> %r" % (session_id, query, r))
        return r.json["messages"]


# ---- raw HTTP over a socket (framing tests: what the server does with bytes
# http.client would never send, and whether it keeps the connection)

def request_bytes(method, path, body=b"", headers=()):
    """One request as bytes: request line, Host, `headers` (name, value)
    pairs (str, or bytes for values that are not latin-1 text), a blank line,
    then `body` as is."""
    head = ("%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\n" % (method, path)).encode("latin-1")
    for name, value in headers:
        value = value if isinstance(value, bytes) else value.encode("latin-1")
        head += name.encode("latin-1") + b": " + value + b"\r\n"
    return head + b"\r\n" + body


def read_head(s, buf=b""):
    """Read one response head from socket `s` (after `buf`, bytes already
    read); returns (status, headers with lower-case names, bytes after the
    head). AssertionError if the connection ends first."""
    while b"\r\n\r\n" not in buf:
        try:
            chunk = s.recv(65536)
        except ConnectionResetError:
            chunk = b""
        if not chunk:
            raise AssertionError("connection closed before a response; got %r" % buf[:300])
        buf += chunk
    head, _, rest = buf.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    return int(lines[0].split()[1]), headers, rest


def _recv_until(s, data, enough):
    """Reads from `s` onto `data` until enough(data), or the server closes or
    resets the connection (the socket's timeout bounds each wait)."""
    while not enough(data):
        try:
            chunk = s.recv(65536)
        except ConnectionResetError:
            break
        if not chunk:
            break
        data += chunk
    return data


def read_response(s):
    """One Content-Length framed response: (status, headers, body bytes)."""
    status, headers, body = read_head(s)
    length = int(headers.get("content-length", "0"))
    return status, headers, _recv_until(s, body, lambda b: len(b) >= length)


def read_to_close(s, limit=1 << 20):
    """Everything the server sends until it closes (at most `limit` bytes; the
    socket's timeout bounds each wait). socket.timeout if it stays open."""
    return _recv_until(s, b"", lambda d: len(d) >= limit)


def raw_exchange(port, data, timeout=10.0, read=True):
    """Send raw bytes on a fresh connection; return (status, headers, body bytes)
    of the answer read until the server closes (or the Content-Length ends)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        try:
            s.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server may answer and close before reading everything
        if not read:
            return None
        return read_response(s)


class DaemonError(AssertionError):
    pass


class Daemon:
    """One `swarmhost serve` process with its own manifest and SQLite file."""

    def __init__(self, workdir=None, port=None, db_path=None, manifest=None, extra_args=(), **manifest_kw):
        self.owns_workdir = workdir is None
        self.workdir = workdir or make_tmpdir()
        self.port = port or free_port()
        self.db_path = db_path or os.path.join(self.workdir, "swarmhost.db")
        self.manifest_path = os.path.join(self.workdir, "manifest.yaml")
        self.manifest_kw = manifest_kw
        self.extra_args = list(extra_args)
        if manifest is None:
            manifest = manifest_text(self.port, self.db_path, **manifest_kw)
        with open(self.manifest_path, "w", encoding="utf-8") as f:
            f.write(manifest)
        self.proc = None
        self.log_path = None
        self._log_file = None
        self._starts = 0
        self.client = Client(self.port)

    # ---- process control
    def command(self):
        # SWH_TEST_LOG_LEVEL (e.g. debug) raises every test daemon's log level
        # when a failure needs its story; the log tail is in the failure text.
        level = os.environ.get("SWH_TEST_LOG_LEVEL")
        return [binary_path(), "serve", "-c", self.manifest_path,
                "--listen", "127.0.0.1:%d" % self.port] + (["--log-level", level] if level else []) + self.extra_args

    def spawn(self):
        """Start the process without waiting for it to be healthy."""
        if not os.path.exists(binary_path()):
            raise DaemonError("swarmhost binary not found at %s (set SWH_BINARY)" % binary_path())
        self._starts += 1
        self.log_path = os.path.join(self.workdir, "daemon-%d.log" % self._starts)
        self._log_file = open(self.log_path, "wb")
        self.proc = subprocess.Popen(self.command(), stdout=self._log_file, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, cwd=self.workdir)
        return self.proc

    def start(self, deadline_s=START_DEADLINE_S):
        self.spawn()
        self.wait_healthy(deadline_s)
        return self

    def start_or_cleanup(self, deadline_s=START_DEADLINE_S):
        """start(); if it fails, clean up (process, work dir) before raising:
        a setUpClass that raises gets no tearDownClass."""
        try:
            return self.start(deadline_s)
        except BaseException:
            self.cleanup()
            raise

    def wait_healthy(self, deadline_s=START_DEADLINE_S):
        deadline = time.monotonic() + deadline_s
        last = None
        while time.monotonic() < deadline:
            rc = self.proc.poll()
            if rc is not None:
                raise DaemonError("swarmhost exited with %s before /healthz answered\n%s"
                                  % (rc, self.log_tail()))
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
                conn.request("GET", "/healthz")
                resp = conn.getresponse()
                resp.read()
                conn.close()
                last = resp.status
                if resp.status == 200:
                    return
            except (OSError, http.client.HTTPException) as e:
                last = repr(e)
            time.sleep(0.1)
        raise DaemonError("swarmhost not healthy within %.0f s (last: %s)\n%s"
                          % (deadline_s, last, self.log_tail()))

    def stop(self, sig=signal.SIGTERM, deadline_s=STOP_DEADLINE_S):
        """Signal the daemon and wait (bounded). Returns the exit code; if it
        had to be SIGKILLed, returns None."""
        if self.proc is None:
            return None
        rc = self.proc.poll()
        if rc is None:
            try:
                self.proc.send_signal(sig)
            except ProcessLookupError:
                pass
            try:
                rc = self.proc.wait(timeout=deadline_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
                rc = None
        self._close_log()
        self.proc_rc = rc
        self.proc = None
        return rc

    def wait_exit(self, timeout):
        """Wait for the process to exit by itself (bounded); returns its exit
        code, or raises subprocess.TimeoutExpired (the process keeps running)."""
        rc = self.proc.wait(timeout=timeout)
        self._close_log()
        self.proc = None
        return rc

    def _close_log(self):
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self.proc = None
        self._close_log()

    def cleanup(self):
        self.kill()
        if self.owns_workdir and os.environ.get("SWH_KEEP_TMP") != "1":
            shutil.rmtree(self.workdir, ignore_errors=True)

    def log(self):
        if not self.log_path or not os.path.exists(self.log_path):
            return ""
        if self._log_file is not None:
            self._log_file.flush()
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def log_tail(self, lines=40):
        text = self.log()
        tail = "\n".join(text.splitlines()[-lines:])
        return "---- daemon log tail (%s) ----\n%s\n---- end of log ----" % (self.log_path, tail)

    # ---- shortcuts
    def healthz(self):
        return self.client.get("/healthz")


def run_cli(args, timeout=30):
    """Run the swarmhost binary with `args`; returns (exit code, stdout+stderr text)."""
    p = subprocess.run([binary_path()] + list(args), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       stdin=subprocess.DEVNULL, timeout=timeout)
    return p.returncode, p.stdout.decode("utf-8", "replace")


class DaemonTestCase(unittest.TestCase):
    """One daemon per test class (started in setUpClass). On a failing test
    the daemon's log tail goes to stderr. Override `manifest_kw` to change the
    manifest."""

    manifest_kw = {}
    daemon = None

    @classmethod
    def setUpClass(cls):
        cls.daemon = Daemon(**cls.manifest_kw)
        cls.daemon.start_or_cleanup()
        cls.client = cls.daemon.client

    @classmethod
    def tearDownClass(cls):
        d = cls.daemon
        if d is None:
            return
        rc = d.stop()
        failed = rc != 0
        if failed:
            sys.stderr.write("swarmhost did not exit 0 on SIGTERM (rc=%r)\n%s\n" % (rc, d.log_tail()))
            if os.environ.get("SWH_KEEP_TMP") != "1":
                d.owns_workdir = False  # keep it for inspection
                sys.stderr.write("kept %s\n" % d.workdir)
        d.cleanup()
        if failed:
            raise DaemonError("swarmhost did not exit 0 on SIGTERM (rc=%r)" % rc)

    def _this_test_failed(self):
        # unittest records failures (and failed subTests) on the result as
        # they happen; tearDown runs in a fresh "part", so look there.
        result = getattr(getattr(self, "_outcome", None), "result", None)
        for test, _ in list(getattr(result, "failures", [])) + list(getattr(result, "errors", [])):
            if test is self or getattr(test, "test_case", None) is self:
                return True
        return False

    def tearDown(self):
        if self.daemon is not None and self._this_test_failed():
            sys.stderr.write("\n%s: %s\n" % (self.id(), self.daemon.log_tail(15)))

    # ---- assertions shared by the test modules
    def assertError(self, resp, status, code):
        """An error answer: status, application/json, {"error":{"code","message"}}."""
        self.assertEqual(resp.status, status, resp)
        self.assertIn("application/json", resp.content_type, resp)
        self.assertIsInstance(resp.json, dict, resp)
        self.assertIn("error", resp.json, resp)
        err = resp.json["error"]
        self.assertIsInstance(err, dict, resp)
        self.assertEqual(err.get("code"), code, resp)
        self.assertIsInstance(err.get("message"), str, resp)
        self.assertTrue(err["message"], "error message is empty: %r" % resp)

    def assertIsoTime(self, value):
        self.assertIsInstance(value, str)
        self.assertRegex(value, ISO_RE)

    def assertMessage(self, msg, session_id, role, content):
        self.assertIsInstance(msg, dict)
        for key in ("id", "session_id", "role", "content", "timestamp", "metadata",
                    "provider_message_id", "provider_metadata"):
            self.assertIn(key, msg, "message lacks %r: %r" % (key, msg))
        self.assertIsInstance(msg["id"], str)
        self.assertTrue(msg["id"])
        self.assertEqual(msg["session_id"], session_id)
        self.assertEqual(msg["role"], role)
        self.assertEqual(msg["content"], content)
        self.assertIsoTime(msg["timestamp"])
        self.assertIsInstance(msg["metadata"], dict)
        self.assertIsInstance(msg["provider_metadata"], dict)


def start_fake_upstream():
    """tools/fake_upstream/server.py serving on a free loopback port in a
    thread of this process (it records every request: fake.state.requests);
    stop it with fake.shutdown() and fake.server_close()."""
    fake_dir = os.path.join(REPO_ROOT, "tools", "fake_upstream")
    if fake_dir not in sys.path:
        sys.path.insert(0, fake_dir)
    import server as fake_upstream  # tools/fake_upstream/server.py
    fake = fake_upstream.make_server("127.0.0.1", 0)
    threading.Thread(target=fake.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True).start()
    return fake


class FakeUpstreamTestCase(DaemonTestCase):
    """A daemon per class in front of tools/fake_upstream, run in this process
    (it records every request it gets; the vendors' npm clients check its
    wire format). Subclasses return the daemon's manifest keywords for the
    fake's base address ("http://127.0.0.1:PORT") from `manifest_kw_for`.
    The fake's record is cleared before each test."""

    fake = None
    fake_base = None

    @classmethod
    def manifest_kw_for(cls, fake_base):
        raise NotImplementedError

    @classmethod
    def setUpClass(cls):
        cls.fake = start_fake_upstream()
        cls.fake_base = "http://127.0.0.1:%d" % cls.fake.server_address[1]
        try:
            cls.manifest_kw = cls.manifest_kw_for(cls.fake_base)
            super().setUpClass()
        except BaseException:
            cls._stop_fake()
            raise

    @classmethod
    def tearDownClass(cls):
        try:
            super().tearDownClass()
        finally:
            cls._stop_fake()

    @classmethod
    def _stop_fake(cls):
        cls.fake.shutdown()
        cls.fake.server_close()

    def setUp(self):
        self.fake.state.reset()
