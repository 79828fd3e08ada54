"""Shared pieces of the hot reload tests (tests/reload/test_*.py).

- manifests: the integration harness's test manifest plus optional raw YAML
  (more providers, a middleware section, an auth section);
- `rewrite` + `reload_http` / `reload_sighup`: change the manifest of a
  running daemon and reload it, and wait for the outcome (the HTTP answer,
  or the daemon's log line for SIGHUP, polled with a deadline);
- `mapped`: whether a plugin library is mapped in the daemon's address space
  (/proc/<pid>/maps), to see libraries unloaded;
- `GatedUpstream`: tools/fake_upstream with a gate: a streamed OpenAI reply
  sends its first word, then waits until the test opens the gate, so a
  stream is provably still running while the test reloads.
"""

import os
import re
import signal
import sys
import threading
import time
from http.server import ThreadingHTTPServer

from swh_harness import REPO_ROOT, manifest_text, yaml_str

sys.path.insert(0, os.path.join(REPO_ROOT, "tools", "fake_upstream"))
import server as fake_upstream  # noqa: E402

FILTER_SO = "swh_middleware_content_filter.so"
OPENAI_SO = "swh_provider_openai.so"
BLOCKED = "spam"
REDACTED = "[FILTERED]"


def filter_section(blocked=BLOCKED, name="filter"):
    """A middleware section with the content_filter plugin (user stage)."""
    return "\n".join([
        "middleware:",
        "  - name: %s" % name,
        "    plugin: content_filter",
        "    config:",
        "      blocked_words: [%s]" % yaml_str(blocked),
        ""])


def openai_provider(name, base_url):
    """A provider entry (under `providers:`) of the openai plugin."""
    return "\n".join([
        "  - name: %s" % name,
        "    plugin: openai",
        "    config:",
        "      base_url: %s" % yaml_str(base_url),
        "      api_key_env: \"\"",
        "      retries: 0",
        "      timeout_ms: 20000",
        ""])


def manifest(daemon, providers="", tail=""):
    """The harness manifest for `daemon` (echo provider, its SQLite file),
    with extra provider entries and raw top-level YAML appended."""
    return manifest_text(daemon.port, daemon.db_path, extra_providers=providers + tail)


def rewrite(daemon, text):
    """Replace the manifest file atomically (a reload never reads half a file)."""
    tmp = daemon.manifest_path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, daemon.manifest_path)


def reload_http(daemon, headers=None):
    return daemon.client.post("/v1/admin/reload", headers=headers)


def wait_until(predicate, timeout_s=10.0, interval_s=0.02, what="condition"):
    """Poll `predicate` until it is true; AssertionError after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("timed out after %.0f s waiting for %s" % (timeout_s, what))
        time.sleep(interval_s)


def log_lines_matching(daemon, pattern):
    return [line for line in daemon.log().splitlines() if re.search(pattern, line)]


def reload_sighup(daemon, expect_generation=None, timeout_s=15.0):
    """SIGHUP the daemon and wait for the log line of the outcome: returns
    ("reloaded", generation) or ("refused", reason line). With
    `expect_generation`, waits for exactly that generation's line."""
    before_ok = len(log_lines_matching(daemon, r"\breloaded .* \(generation \d+\)"))
    before_bad = len(log_lines_matching(daemon, r"reload refused"))
    os.kill(daemon.proc.pid, signal.SIGHUP)

    def outcome():
        ok = log_lines_matching(daemon, r"\breloaded .* \(generation \d+\)")
        bad = log_lines_matching(daemon, r"reload refused")
        if len(ok) > before_ok:
            return ("reloaded", int(re.search(r"\(generation (\d+)\)", ok[-1]).group(1)))
        if len(bad) > before_bad:
            return ("refused", bad[-1])
        return None

    result = wait_until(outcome, timeout_s, what="the daemon's log line after SIGHUP")
    if expect_generation is not None and result != ("reloaded", expect_generation):
        raise AssertionError("SIGHUP: expected generation %d, got %r\n%s"
                             % (expect_generation, result, daemon.log_tail()))
    return result


def mapped(pid, library):
    """Whether a file named `library` is mapped into process `pid`."""
    with open("/proc/%d/maps" % pid, encoding="utf-8", errors="replace") as f:
        return any(line.rstrip().endswith("/" + library) for line in f)


class _GatedHandler(fake_upstream.Handler):
    """The fake's handler; a streamed reply whose prompt contains
    GatedUpstream.MARKER stops after its first word until the gate opens."""

    def _start_stream(self, extra_headers=None):
        self._chunks_sent = 0
        super()._start_stream(extra_headers)

    def _chunk(self, text):
        self._chunks_sent = getattr(self, "_chunks_sent", 0) + 1
        # chunk 1 is the role delta, chunk 2 the first word of the reply
        hold = GatedUpstream.MARKER in getattr(self, "_prompt", "") and self._chunks_sent == 2
        if hold:
            self.server.held.set()  # before the word goes out: whoever sees it sees `held`
        super()._chunk(text)
        if hold and not self.server.gate.wait(30):
            raise ConnectionError("gate never opened")  # the fake drops the stream

    def _last_user_text(self, body, vendor):
        text = fake_upstream.Handler._last_user_text(body, vendor)
        self._prompt = text
        return text


class GatedUpstream(ThreadingHTTPServer):
    """tools/fake_upstream on a thread, with a gate (see _GatedHandler)."""

    MARKER = "[gate]"
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self):
        super().__init__(("127.0.0.1", 0), _GatedHandler)
        self.state = fake_upstream.State()
        self.gate = threading.Event()
        self.held = threading.Event()  # a gated stream is waiting at the gate
        self._thread = threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)
        self._thread.start()

    @property
    def base_url(self):
        return "http://127.0.0.1:%d/v1" % self.server_address[1]

    def handle_error(self, request, client_address):
        if isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            return
        super().handle_error(request, client_address)

    def close(self):
        self.gate.set()
        self.shutdown()
        self.server_close()
