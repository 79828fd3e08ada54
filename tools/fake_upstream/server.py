#!/usr/bin/env python3
"""A local fake of two LLM vendor APIs, for tests (Python 3 standard library only).

Speaks, byte for byte as documented by the vendors:
  * OpenAI Chat Completions: POST /v1/chat/completions (JSON and SSE `data:`
    chunks ending with `data: [DONE]`), GET /v1/models, GET /v1/models/{id}.
    Azure-style paths work too: POST /openai/deployments/{d}/chat/completions
    (with ?api-version=...).
  * Anthropic Messages: POST /v1/messages (requires the `anthropic-version`
    header; `system` top level; SSE with `event:` lines: message_start,
    content_block_start, ping, content_block_delta, content_block_stop,
    message_delta, message_stop).

Replies are deterministic: "You said: <text of the last user message>"
(usage counts are whitespace-separated words). When the conversation ends with
an assistant turn (a prefill / assistant prefix) and the reply starts with its
text, only the rest is sent. Stop sequences are honoured as the vendors do:
a reply that contains one (Anthropic `stop_sequences`, OpenAI `stop`, a
string or a list) ends before the first that ends earliest; Anthropic then
answers `stop_reason: "stop_sequence"` with `stop_sequence` the one matched,
OpenAI `finish_reason: "stop"`.

Images and files: content parts (OpenAI: `image_url` with a base64 data URL,
`file` with `file_data`; Anthropic: `image` / `document` blocks with a base64
`source`) are decoded and checked as the vendors do (the declared media type
must be one the vendor takes and must match the bytes; bad base64 or an
unknown part type is a 400 in the vendor's shape). The reply then ends with
what was received, from every message of the request, in order:
  "You said: <text> [saw image/png 1234 bytes sha256=<first 12 hex>; application/pdf …]"
so a test can prove which bytes arrived.

Scenarios (what goes wrong) are chosen per request, first match wins:
  1. header  `X-Fake-Scenario: <scenario>`
  2. model   `fake-<scenario>`            (e.g. "fake-429x2")
  3. marker  `[fake:<scenario>]` anywhere in the last user message
Scenario grammar: NAME[xN][:ARG]
  ok            the normal answer (default)
  429[:S]       HTTP 429 in the vendor's error shape, `Retry-After: S` (default 1)
  503[:S]       HTTP 503 (Anthropic: 529 overloaded is `529`), `Retry-After: S`
  500, 502, 529 HTTP error in the vendor's shape
  400, 401, 403, 404   HTTP error in the vendor's shape (invalid request / auth / not found);
                the 401 message repeats the key that was presented, as OpenAI does
                (so tests can check that a gateway scrubs it)
  slow[:MS]     wait MS milliseconds (default 2000) before the first byte
  slowchunks[:MS]  wait MS (default 200) between streamed chunks (after the first)
                (both waits end at once when the client hangs up meanwhile:
                outcome "client_closed", e.g. a gateway whose deadline passed)
  timeout[:MS]  accept, then send nothing for MS (default 60000) and close
  garbage       HTTP 200 whose body is not what the vendor sends (both modes)
  deep          HTTP 200, an OpenAI answer (or chunk) whose message carries an
                extra member nested 100 levels deep: valid JSON a gateway may
                refuse for its depth (both modes)
  disconnect    streaming: a few chunks, then the connection is cut mid-stream
                (chunked encoding left unterminated); non-streaming: half the
                body, then the connection is cut
  streamerror   streaming: a few chunks, then the vendor's in-stream error
                (OpenAI `data: {"error":…}`, Anthropic `event: error`)
  reset         the connection is closed before any response
  badargs       the normal answer, but tool-call arguments are cut short (not
                valid JSON; Anthropic: in streams only)

Tools, thinking, cached and reasoning usage: see the "tools" section below
(and README.md).
`xN` makes the failure happen only N times for the same conversation (same
path + scenario + last user message), after that the request succeeds: e.g.
`429x2` answers 429, 429, then the normal reply.

Test helpers (not vendor API):
  GET    /__requests         every request received, oldest first, as JSON:
                             {"requests":[{"seq","method","path","query","headers"
                             (lower-case names),"body" (parsed JSON or text),
                             "scenario","time","outcome","last_write"}]}
                             outcome: null while the answer is being sent, then
                             "answered" (all of it was written), "cut" (the
                             scenario dropped the connection) or "client_closed"
                             (a write failed: the client hung up before the
                             end, e.g. a gateway cancelling a stream);
                             time: when the request had been read; last_write:
                             when the answer's last write began (null before
                             the first), so [time, last_write] lies inside the
                             client's wait for the answer (the fleet test
                             counts concurrent streams with it)
  DELETE /__requests         forget recorded requests and the xN counters
  GET    /__health           {"ok":true}

Keys: any `Authorization: Bearer …`, `x-api-key` or `api-key` is accepted
unless --require-key K is given (then others get 401 in the vendor's shape).

CLI: python3 server.py [--host 127.0.0.1] [--port 0] [--port-file F] [--require-key K]
prints "fake_upstream listening on http://HOST:PORT" and writes PORT to F.
"""

import argparse
import base64
import binascii
import hashlib
import json
import os
import re
import select
import socket
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

CREATED = 1700000000  # fixed "created" timestamp: replies are deterministic
OPENAI_MODELS = ["gpt-4o-mini", "gpt-4o", "fake-ok"]
ANTHROPIC_MODELS = ["claude-3-5-haiku-latest", "claude-sonnet-4-5"]

SCENARIO_RE = re.compile(r"^(?P<name>[a-z]+|[0-9]+)(?:x(?P<times>\d+))?(?::(?P<arg>\d+))?$")
MARKER_RE = re.compile(r"\[fake:([a-z0-9:]+)\]")


class Scenario:
    def __init__(self, text):
        self.text = text or "ok"
        m = SCENARIO_RE.match(self.text)
        if not m:
            self.name, self.times, self.arg = "unknown", None, None
        else:
            self.name = m.group("name")
            self.times = int(m.group("times")) if m.group("times") else None
            self.arg = int(m.group("arg")) if m.group("arg") else None


class State:
    def __init__(self, require_key=None):
        self.lock = threading.Lock()
        self.requests = []
        self.counters = {}
        self.seq = 0
        self.require_key = require_key

    def record(self, entry):
        with self.lock:
            self.seq += 1
            entry["seq"] = self.seq
            self.requests.append(entry)

    def count(self, key):
        """How many times `key` was seen before this call (then counts it)."""
        with self.lock:
            n = self.counters.get(key, 0)
            self.counters[key] = n + 1
            return n

    def finish(self, entry, outcome):
        """How the answer to a recorded request ended (its "outcome")."""
        with self.lock:
            entry["outcome"] = outcome

    def reset(self):
        with self.lock:
            self.requests = []
            self.counters = {}


def words(text):
    return len(text.split())


def stop_at(reply, stops):
    """The reply cut where the first of `stops` ends (as a model stops when it
    has written a stop sequence; the sequence itself is not sent), and that
    sequence; (reply, None) when none occurs."""
    if isinstance(stops, str):
        stops = [stops]
    hits = [(reply.find(s) + len(s), -len(s), s) for s in stops or []
            if isinstance(s, str) and s and s in reply]
    if not hits:
        return reply, None
    _, _, seq = min(hits)
    return reply[:reply.find(seq)], seq


def text_of(content):
    """Plain text of a message content (a string or a list of content parts)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for p in content:
            if isinstance(p, dict) and p.get("type") == "text":
                parts.append(str(p.get("text", "")))
        return "".join(parts)
    return ""


class BadMedia(ValueError):
    """A content part the vendor would refuse (answered 400 in its shape)."""


IMAGE_TYPES = ("image/png", "image/jpeg", "image/gif", "image/webp")


def sniff(data):
    """The media type of `data` by its magic bytes, or None."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data.startswith((b"GIF87a", b"GIF89a")):
        return "image/gif"
    if len(data) >= 12 and data.startswith(b"RIFF") and data[8:12] == b"WEBP":
        return "image/webp"
    if data.startswith(b"%PDF-"):
        return "application/pdf"
    return None


def b64decode(text, where):
    if not isinstance(text, str) or not text:
        raise BadMedia("%s: expected a non-empty base64 string" % where)
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise BadMedia("%s: invalid base64 data" % where)


def checked(mime, data, allowed, where):
    """(mime, data) after the vendor's checks: a type it takes, matching the bytes."""
    if mime not in allowed:
        raise BadMedia("%s: unsupported media type %r (expected one of %s)" % (where, mime, ", ".join(allowed)))
    if sniff(data) != mime:
        raise BadMedia("%s: the data does not match the media type %r" % (where, mime))
    return mime, data


def data_url(url, allowed, where):
    m = re.match(r"^data:([a-z]+/[a-z0-9.+-]+);base64,(.*)$", url or "", re.S)
    if not m:
        raise BadMedia("%s: expected a data URL 'data:<type>;base64,<data>'" % where)
    return checked(m.group(1), b64decode(m.group(2), where), allowed, where)


def openai_media(part, where):
    """The (mime, bytes) of one OpenAI content part; None for text-like parts."""
    kind = part.get("type")
    if kind in ("text", "refusal", "input_audio"):
        return None
    if kind == "image_url":
        url = (part.get("image_url") or {}).get("url")
        if isinstance(url, str) and url.startswith(("http://", "https://")):
            return None  # a remote image: nothing to decode here
        return data_url(url, IMAGE_TYPES, where + ".image_url.url")
    if kind == "file":
        f = part.get("file") or {}
        if "file_id" in f:
            return None
        if not isinstance(f.get("filename"), str):
            raise BadMedia("%s.file.filename: expected a string" % where)
        return data_url(f.get("file_data"), ("application/pdf",), where + ".file.file_data")
    raise BadMedia("%s.type: invalid value %r (supported: 'text', 'image_url', 'input_audio', 'refusal', "
                   "'file')" % (where, kind))


def anthropic_media(block, where):
    """The (mime, bytes) of one Anthropic content block; None for text-like blocks."""
    kind = block.get("type")
    if kind in ("text", "tool_use", "tool_result", "thinking"):
        return None
    if kind not in ("image", "document"):
        raise BadMedia("%s.type: unknown content block type %r" % (where, kind))
    source = block.get("source") or {}
    stype = source.get("type")
    if stype == "url" or (kind == "document" and stype in ("text", "content")):
        return None
    if stype != "base64":
        raise BadMedia("%s.source.type: expected 'base64' or 'url', got %r" % (where, stype))
    allowed = IMAGE_TYPES if kind == "image" else ("application/pdf",)
    return checked(source.get("media_type"), b64decode(source.get("data"), where + ".source.data"), allowed,
                   where + ".source.media_type")


def media_of(body, vendor):
    """Every image/file the request carries, in order: [(mime, bytes)]; BadMedia when malformed."""
    found = []
    for i, m in enumerate(body.get("messages") or []):
        content = m.get("content") if isinstance(m, dict) else None
        if not isinstance(content, list):
            continue
        for j, part in enumerate(content):
            where = "messages[%d].content[%d]" % (i, j)
            if not isinstance(part, dict):
                raise BadMedia("%s: expected an object" % where)
            got = openai_media(part, where) if vendor == "openai" else anthropic_media(part, where)
            if got:
                found.append(got)
    return found


def media_note(media):
    """' [saw image/png 1234 bytes sha256=<12 hex>; …]' or ''."""
    if not media:
        return ""
    return " [saw %s]" % "; ".join("%s %d bytes sha256=%s" % (mime, len(data), hashlib.sha256(data).hexdigest()[:12])
                                   for mime, data in media)


# ------------------------------------------------------------------ tools
# What the fake does with tools (both wires, streamed and not), deterministic:
#   * the conversation ends with tool results (OpenAI: trailing role "tool"
#     messages; Anthropic: a last user message of tool_result blocks): the
#     reply is text, "Tool said: <result>; <result>";
#   * else, when the request offers tools and tool_choice is not "none": the
#     reply calls them (the named one of a forced tool_choice; only the first
#     when parallel calls are off; else each offered tool, in order) with the
#     arguments {"text": "<last user text>"}; finish tool_calls / tool_use.
#     Scenario `badargs`: the argument text is cut short (not valid JSON).
# The tool shapes are checked as the vendors do (400 in the vendor's shape):
# tool definitions, tool calls / tool_use blocks and that every tool result
# answers a call of the message before (Anthropic: and every tool_use is
# answered by the next message).

def result_text(content):
    """Text of a tool result: a string or a list of text blocks."""
    return text_of(content)


def tool_results(body, vendor):
    """The tool results the conversation ends with, in order ([] = none)."""
    msgs = [m for m in (body.get("messages") or []) if isinstance(m, dict)]
    if vendor == "openai":
        out = []
        for m in reversed(msgs):
            if m.get("role") != "tool":
                break
            out.insert(0, result_text(m.get("content")))
        return out
    if not msgs or msgs[-1].get("role") != "user" or not isinstance(msgs[-1].get("content"), list):
        return []
    return [result_text(b.get("content")) for b in msgs[-1]["content"]
            if isinstance(b, dict) and b.get("type") == "tool_result"]


def tools_to_call(body, vendor):
    """Names of the tools the fake's reply calls ([] = a text reply)."""
    tools = body.get("tools")
    if not isinstance(tools, list) or not tools:
        return []
    if vendor == "openai":
        names = [(t.get("function") or {}).get("name") for t in tools]
        choice = body.get("tool_choice")
        if choice == "none":
            return []
        if isinstance(choice, dict):
            return [(choice.get("function") or {}).get("name")]
        return names[:1] if body.get("parallel_tool_calls") is False else names
    names = [t.get("name") for t in tools]
    choice = body.get("tool_choice") if isinstance(body.get("tool_choice"), dict) else {}
    if choice.get("type") == "none":
        return []
    if choice.get("type") == "tool":
        return [choice.get("name")]
    return names[:1] if choice.get("disable_parallel_tool_use") is True else names


def call_id(prefix, body, index, name):
    """A tool call id, unique per conversation turn and call, deterministic."""
    turn = len(body.get("messages") or [])
    return prefix + hashlib.sha256(("%d:%d:%s" % (turn, index, name)).encode()).hexdigest()[:24]


def openai_tool_error(body):
    """What OpenAI would refuse in the tool parts of a request, or None."""
    tools = body.get("tools")
    if tools is not None:
        if not isinstance(tools, list):
            return "Invalid type for 'tools': expected an array."
        for i, t in enumerate(tools):
            fn = t.get("function") if isinstance(t, dict) else None
            if not isinstance(t, dict) or t.get("type") != "function" or not isinstance(fn, dict) \
                    or not isinstance(fn.get("name"), str):
                return "Invalid value for 'tools[%d]': expected {type: 'function', function: {name, ...}}." % i
            if fn.get("parameters") is not None and not isinstance(fn.get("parameters"), dict):
                return "Invalid schema for function '%s': schema must be a JSON Schema of 'type: \"object\"'." \
                    % fn["name"]
    choice = body.get("tool_choice")
    if choice is not None and choice not in ("auto", "none", "required") and not (
            isinstance(choice, dict) and choice.get("type") == "function"
            and isinstance((choice.get("function") or {}).get("name"), str)):
        return "Invalid value for 'tool_choice'."
    seen = set()
    for i, m in enumerate(body.get("messages") or []):
        if not isinstance(m, dict):
            continue
        if m.get("role") == "assistant" and m.get("tool_calls") is not None:
            for j, c in enumerate(m["tool_calls"] if isinstance(m["tool_calls"], list) else [None]):
                fn = c.get("function") if isinstance(c, dict) else None
                if not isinstance(c, dict) or not isinstance(c.get("id"), str) or c.get("type") != "function" \
                        or not isinstance(fn, dict) or not isinstance(fn.get("name"), str) \
                        or not isinstance(fn.get("arguments"), str):
                    return "Invalid value for 'messages[%d].tool_calls[%d]': expected {id, type: 'function', " \
                           "function: {name, arguments: string}}." % (i, j)
                seen.add(c["id"])
        if m.get("role") == "tool" and m.get("tool_call_id") not in seen:
            return "Invalid parameter: messages with role 'tool' must be a response to a preceeding message " \
                   "with 'tool_calls'."
    return None


def anthropic_tool_error(body):
    """What Anthropic would refuse in the tool and thinking parts of a request, or None."""
    for i, t in enumerate(body.get("tools") or []):
        if not isinstance(t, dict) or not isinstance(t.get("name"), str):
            return "tools.%d.name: Field required" % i
        if not isinstance(t.get("input_schema"), dict):
            return "tools.%d.custom.input_schema: Field required" % i
    choice = body.get("tool_choice")
    if choice is not None:
        if not isinstance(choice, dict) or choice.get("type") not in ("auto", "any", "tool", "none"):
            return "tool_choice: Input tag does not match any of the expected tags: 'auto', 'any', 'tool', 'none'"
        if choice["type"] == "tool" and not isinstance(choice.get("name"), str):
            return "tool_choice.tool.name: Field required"
    thinking = body.get("thinking")
    if thinking is not None:
        budget = thinking.get("budget_tokens") if isinstance(thinking, dict) else None
        if not isinstance(thinking, dict) or thinking.get("type") not in ("enabled", "disabled"):
            return "thinking: Input tag does not match any of the expected tags: 'enabled', 'disabled'"
        if thinking["type"] == "enabled" and (not isinstance(budget, int) or budget < 1024):
            return "thinking.enabled.budget_tokens: Input should be greater than or equal to 1024"
        if thinking["type"] == "enabled" and budget >= body.get("max_tokens", 0):
            return "`max_tokens` must be greater than `thinking.budget_tokens`"
    msgs = body.get("messages") or []
    for i, m in enumerate(msgs):
        blocks = m.get("content") if isinstance(m, dict) and isinstance(m.get("content"), list) else []
        if isinstance(m, dict) and m.get("role") not in ("user", "assistant"):
            return "messages.%d.role: Input should be 'user' or 'assistant'" % i
        previous = msgs[i - 1].get("content") if i > 0 and isinstance(msgs[i - 1], dict) else None
        asked = {b.get("id") for b in (previous if isinstance(previous, list) else [])
                 if isinstance(b, dict) and b.get("type") == "tool_use"}
        answered = set()
        for j, b in enumerate(blocks):
            where = "messages.%d.content.%d" % (i, j)
            kind = b.get("type") if isinstance(b, dict) else None
            if kind == "tool_use":
                if not isinstance(b.get("id"), str) or not isinstance(b.get("name"), str):
                    return "%s.tool_use.id: Field required" % where
                if not isinstance(b.get("input"), dict):
                    return "%s.tool_use.input: Input should be a valid dictionary" % where
            elif kind == "tool_result":
                if b.get("tool_use_id") not in asked:
                    return ("%s: unexpected `tool_use_id` found in `tool_result` blocks: %s. Each `tool_result` "
                            "block must have a corresponding `tool_use` block in the previous message."
                            % (where, b.get("tool_use_id")))
                answered.add(b.get("tool_use_id"))
            elif kind == "thinking" and not isinstance(b.get("signature"), str):
                return "%s.thinking.signature: Field required" % where
        if asked and i > 0 and asked - answered:
            return ("messages.%d: `tool_use` ids were found without `tool_result` blocks immediately after: %s. "
                    "Each `tool_use` block must have a corresponding `tool_result` block in the next message."
                    % (i - 1, ", ".join(sorted(asked - answered))))
    return None


def arg_pieces(text):
    """Argument text in fragments of at most 8 characters (as vendors stream it)."""
    return [text[i:i + 8] for i in range(0, len(text), 8)] or [""]


def word_pieces(text):
    """Each word with the whitespace after it; leading whitespace joins the first."""
    pieces = re.findall(r"\s*\S+\s*", text)
    if not pieces and text:
        pieces = [text]
    # re.findall above attaches leading whitespace of later words to the previous
    # piece's trailing part already; rebuild exactly to be safe
    if "".join(pieces) != text:
        pieces = [text]
    return pieces


def sse_json(obj):
    return json.dumps(obj, separators=(",", ":"))


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "fake-upstream/1.0"

    # ------------------------------------------------------------ plumbing
    def log_message(self, fmt, *args):  # quiet unless asked
        if os.environ.get("FAKE_UPSTREAM_VERBOSE") == "1":
            sys.stderr.write("fake_upstream: " + (fmt % args) + "\n")

    @property
    def state(self):
        return self.server.state

    def _read_body(self):
        length = self.headers.get("Content-Length")
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            data = b""
            while True:
                line = self.rfile.readline()
                size = int(line.strip().split(b";")[0] or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    break
                data += self.rfile.read(size)
                self.rfile.readline()
            return data
        return self.rfile.read(int(length)) if length else b""

    _entry = None  # the request being answered, once recorded

    def _mark_write(self):
        """Notes when this write began: the client cannot have the whole
        answer before then (see last_write in the module docstring)."""
        if self._entry is not None:
            self._entry["last_write"] = time.time()

    def _send(self, status, body, content_type="application/json", extra_headers=None):
        payload = body if isinstance(body, bytes) else body.encode("utf-8")
        self._mark_write()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        for k, v in (extra_headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(payload)
        self.wfile.flush()

    def _send_json(self, status, obj, extra_headers=None):
        self._send(status, json.dumps(obj), "application/json", extra_headers)

    def _start_stream(self, extra_headers=None):
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream; charset=utf-8")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        for k, v in (extra_headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.flush()

    def _chunk(self, text):
        data = text.encode("utf-8")
        self._mark_write()
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def _end_stream(self):
        self._mark_write()
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    _was_cut = False

    def _pause(self, seconds):
        """Wait `seconds` (the slow scenarios), watching the connection: a
        client that hangs up meanwhile ends the wait at once, as the write
        that follows would fail (outcome "client_closed"), so a test sees a
        cancelled request as soon as the gateway gives up on it."""
        end = time.monotonic() + seconds
        while True:
            left = end - time.monotonic()
            if left <= 0:
                return
            readable, _, _ = select.select([self.connection], [], [], min(left, 0.05))
            if not readable:
                continue
            try:
                peeked = self.connection.recv(1, socket.MSG_PEEK)
            except OSError:
                peeked = b""
            if not peeked:
                raise ConnectionResetError("the client closed the connection while the answer waited")
            time.sleep(min(left, 0.05))  # bytes of a next request (pipelined): not a hang-up

    def _cut(self):
        """Drop the connection at once (no terminating chunk, no FIN dance)."""
        self.close_connection = True
        self._was_cut = True
        try:
            self.wfile.flush()
        except OSError:
            pass
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        except OSError:
            pass
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    # ------------------------------------------------------------ routing
    def do_GET(self):
        self._dispatch("GET")

    def do_POST(self):
        self._dispatch("POST")

    def do_DELETE(self):
        self._dispatch("DELETE")

    def _dispatch(self, method):
        self._entry = None  # a kept-alive connection's previous request is answered
        parts = urlsplit(self.path)
        path = parts.path
        raw = self._read_body() if method in ("POST", "PUT", "PATCH") else b""
        if path == "/__requests":
            if method == "DELETE":
                self.state.reset()
                return self._send_json(200, {"ok": True})
            with self.state.lock:
                items = list(self.state.requests)
            return self._send_json(200, {"requests": items})
        if path == "/__health":
            return self._send_json(200, {"ok": True})

        try:
            body = json.loads(raw.decode("utf-8")) if raw else None
        except (ValueError, UnicodeDecodeError):
            body = None
        headers = {k.lower(): v for k, v in self.headers.items()}
        entry = {
            "outcome": None,
            "last_write": None,
            "method": method,
            "path": path,
            "query": {k: v[0] for k, v in parse_qs(parts.query).items()},
            "headers": headers,
            "body": body if body is not None else raw.decode("utf-8", "replace"),
            "time": time.time(),
        }
        vendor = None
        if path.endswith("/chat/completions") and method == "POST":
            vendor = "openai"
        elif path == "/v1/messages" and method == "POST":
            vendor = "anthropic"
        scenario = self._scenario(body if isinstance(body, dict) else {}, vendor)
        entry["scenario"] = scenario.text
        self.state.record(entry)
        self._entry = entry

        if method == "GET" and path == "/v1/models":
            if self.headers.get("anthropic-version"):
                data = [{"type": "model", "id": m, "display_name": m, "created_at": "2024-10-22T00:00:00Z"}
                        for m in ANTHROPIC_MODELS]
                return self._send_json(200, {"data": data, "has_more": False,
                                             "first_id": data[0]["id"], "last_id": data[-1]["id"]})
            return self._send_json(200, {"object": "list", "data": [
                {"id": m, "object": "model", "created": CREATED, "owned_by": "fake-upstream"}
                for m in OPENAI_MODELS]})
        if method == "GET" and path.startswith("/v1/models/"):
            mid = path[len("/v1/models/"):]
            return self._send_json(200, {"id": mid, "object": "model", "created": CREATED,
                                         "owned_by": "fake-upstream"})
        if vendor is None:
            if vendor is None and path.startswith("/v1/"):
                return self._send_json(404, {"error": {"message": "Unknown request URL: %s %s" % (method, path),
                                                       "type": "invalid_request_error", "param": None,
                                                       "code": "unknown_url"}})
            return self._send_json(404, {"error": "not found"})
        try:
            self._answer(vendor, body, scenario, path)
        except (ConnectionError, OSError):
            # A write failed: the client (the gateway) closed the connection
            # before the whole answer was sent, e.g. because it cancelled.
            self.state.finish(entry, "client_closed")
            raise
        self.state.finish(entry, "cut" if self._was_cut else "answered")

    def _answer(self, vendor, body, scenario, path):
        if not isinstance(body, dict):
            return self._error(vendor, 400, "invalid_request_error",
                               "We could not parse the JSON body of your request.")
        if not self._authorised(vendor):
            return
        if vendor == "anthropic" and not self.headers.get("anthropic-version"):
            return self._error(vendor, 400, "invalid_request_error", "anthropic-version: header is required")
        try:
            media = media_of(body, vendor)
        except BadMedia as e:
            return self._error(vendor, 400, "invalid_request_error", str(e))
        problem = openai_tool_error(body) if vendor == "openai" else anthropic_tool_error(body)
        if problem:
            return self._error(vendor, 400, "invalid_request_error", problem)
        self._serve(vendor, body, scenario, path, media)

    def _scenario(self, body, vendor):
        text = self.headers.get("X-Fake-Scenario")
        if not text:
            model = body.get("model") if isinstance(body.get("model"), str) else ""
            if model.startswith("fake-"):
                text = model[len("fake-"):]
        if not text:
            m = MARKER_RE.search(self._last_user_text(body, vendor) or "")
            if m:
                text = m.group(1)
        return Scenario(text or "ok")

    def _authorised(self, vendor):
        want = self.state.require_key
        if not want:
            return True
        auth = self.headers.get("Authorization", "")
        got = {auth[7:] if auth.startswith("Bearer ") else None, self.headers.get("x-api-key"),
               self.headers.get("api-key")}
        if want in got:
            return True
        if vendor == "openai":
            self._error(vendor, 401, "invalid_request_error",
                        "Incorrect API key provided. You can find your API key at https://example.invalid.",
                        code="invalid_api_key")
        else:
            self._error(vendor, 401, "authentication_error", "invalid x-api-key")
        return False

    # ------------------------------------------------------------ helpers
    @staticmethod
    def _last_user_text(body, vendor):
        msgs = body.get("messages") if isinstance(body, dict) else None
        if not isinstance(msgs, list):
            return ""
        for m in reversed(msgs):
            if isinstance(m, dict) and m.get("role") == "user":
                return text_of(m.get("content"))
        return ""

    @staticmethod
    def _prefill(body):
        msgs = body.get("messages")
        if isinstance(msgs, list) and msgs and isinstance(msgs[-1], dict) and msgs[-1].get("role") == "assistant":
            return text_of(msgs[-1].get("content"))
        return ""

    def _prompt_words(self, body, vendor):
        n = 0
        for m in body.get("messages") or []:
            if isinstance(m, dict):
                n += words(text_of(m.get("content")))
        if vendor == "anthropic":
            n += words(text_of(body.get("system")))
        return n

    def _error(self, vendor, status, etype, message, code=None, retry_after=None):
        headers = {}
        if retry_after is not None:
            headers["Retry-After"] = str(retry_after)
        if vendor == "anthropic":
            headers["request-id"] = "req_fake_%s" % uuid.uuid4().hex[:24]
            obj = {"type": "error", "error": {"type": etype, "message": message}}
        else:
            headers["x-request-id"] = "req_%s" % uuid.uuid4().hex
            obj = {"error": {"message": message, "type": etype, "param": None, "code": code}}
        self._send_json(status, obj, headers)

    def _status_error(self, vendor, status, retry_after):
        table = {
            400: ("invalid_request_error", "invalid_request_error", "fake: the request is invalid", None),
            401: ("invalid_request_error", "authentication_error", "fake: invalid API key", "invalid_api_key"),
            403: ("invalid_request_error", "permission_error", "fake: permission denied", None),
            404: ("invalid_request_error", "not_found_error", "fake: the model does not exist", "model_not_found"),
            429: ("requests", "rate_limit_error", "fake: rate limit reached, retry later", "rate_limit_exceeded"),
            500: ("server_error", "api_error", "fake: the server had an error", None),
            502: ("server_error", "api_error", "fake: bad gateway", None),
            503: ("server_error", "overloaded_error", "fake: the engine is currently overloaded", None),
            529: ("server_error", "overloaded_error", "fake: Overloaded", None),
        }
        otype, atype, message, code = table[status]
        if status == 401:  # like OpenAI, name the key that was presented (tests check it is scrubbed)
            auth = self.headers.get("Authorization", "")
            presented = self.headers.get("x-api-key") or self.headers.get("api-key") or auth.replace("Bearer ", "")
            message = "fake: Incorrect API key provided: %s" % presented
        self._error(vendor, status, otype if vendor == "openai" else atype, message, code=code,
                    retry_after=retry_after)

    # ------------------------------------------------------------ serving
    def _serve(self, vendor, body, scenario, path, media=()):
        stream = body.get("stream") is True
        name = scenario.name
        if scenario.times is not None:
            key = json.dumps([path, scenario.text, self._last_user_text(body, vendor)])
            if self.state.count(key) >= scenario.times:
                name = "ok"
        if name in ("429", "503"):
            return self._status_error(vendor, int(name), scenario.arg if scenario.arg is not None else 1)
        if name in ("400", "401", "403", "404", "500", "502", "529"):
            return self._status_error(vendor, int(name), None)
        if name == "reset":
            return self._cut()
        if name == "timeout":
            deadline = time.monotonic() + (scenario.arg if scenario.arg is not None else 60000) / 1000.0
            while time.monotonic() < deadline:
                time.sleep(0.05)
            return self._cut()
        if name == "slow":
            self._pause((scenario.arg if scenario.arg is not None else 2000) / 1000.0)
        if name == "garbage":
            if stream:
                self._start_stream()
                self._chunk("data: {this is not json\n\n<html>502 Bad Gateway</html>\n\n")
                self._end_stream()
            else:
                self._send(200, b"<html><body>502 Bad Gateway</body></html>", "application/json")
            return
        if name == "deep":
            nested = "[" * 100 + "]" * 100
            if stream:
                self._start_stream()
                self._chunk('data: {"id":"chatcmpl-deep","object":"chat.completion.chunk","choices":[{"index":0,'
                            '"delta":{"content":"deep","x":%s},"finish_reason":null}]}\n\n' % nested)
                self._chunk("data: [DONE]\n\n")
                self._end_stream()
            else:
                self._send(200, ('{"id":"chatcmpl-deep","object":"chat.completion","choices":[{"index":0,'
                                 '"message":{"role":"assistant","content":"deep","x":%s},"finish_reason":"stop"}]}'
                                 % nested).encode(), "application/json")
            return
        if name not in ("ok", "slow", "slowchunks", "disconnect", "streamerror", "badargs"):
            return self._error(vendor, 400, "invalid_request_error", "fake: unknown scenario %r" % scenario.text)

        prompt = self._last_user_text(body, vendor)
        reply = "You said: " + prompt + media_note(media)
        results = tool_results(body, vendor)
        calls = []
        if results:
            reply = "Tool said: " + "; ".join(results)
        else:
            for i, tool in enumerate(tools_to_call(body, vendor)):
                args = json.dumps({"text": prompt})
                if name == "badargs":
                    args = args[:-2]
                calls.append((call_id("call_" if vendor == "openai" else "toolu_", body, i, tool), tool, args))
        if calls:
            reply = "" if vendor == "openai" else "Calling %s." % ", ".join(c[1] for c in calls)
        prefill = self._prefill(body)
        if prefill and reply.startswith(prefill):
            reply = reply[len(prefill):]
        model = body.get("model") if isinstance(body.get("model"), str) else "fake"
        usage_in = self._prompt_words(body, vendor)
        usage_out = words(reply) + sum(words(c[2]) for c in calls)
        # caching asked for (OpenAI prompt_cache_key, Anthropic cache_control):
        # every message before the last counts as read from the cache
        cached = 0
        if "prompt_cache_key" in body or "cache_control" in json.dumps(body):
            msgs = [m for m in (body.get("messages") or []) if isinstance(m, dict)]
            cached = min(usage_in, sum(words(text_of(m.get("content"))) for m in msgs[:-1]))
        gap = (scenario.arg if scenario.arg is not None else 200) / 1000.0 if name == "slowchunks" else 0.0
        turn = {"calls": calls, "cached": cached, "prompt": prompt}
        if vendor == "openai":
            self._openai(body, model, reply, usage_in, usage_out, stream, name, gap, turn)
        else:
            self._anthropic(body, model, reply, usage_in, usage_out, stream, name, gap, turn)

    # ---------------------------------------------------------------- OpenAI
    def _openai(self, body, model, reply, usage_in, usage_out, stream, name, gap, turn):
        cid = "chatcmpl-fake%s" % uuid.uuid4().hex[:20]
        fingerprint = "fp_fake0001"
        max_tokens = body.get("max_tokens") or body.get("max_completion_tokens")
        calls = turn["calls"]
        finish = "tool_calls" if calls else "stop"
        if not calls:  # `stop` (a string or up to 4): the reply ends before it, finish_reason "stop"
            reply, seq = stop_at(reply, body.get("stop"))
            usage_out = words(reply) if seq is not None else usage_out
        if isinstance(max_tokens, int) and max_tokens > 0 and usage_out > max_tokens and not calls:
            reply = "".join(word_pieces(reply)[:max_tokens])
            usage_out = max_tokens
            finish = "length"
        # a reasoning model thinks a little before answering (counted, never shown)
        reasoning = 4 if isinstance(body.get("reasoning_effort"), str) else 0
        usage_out += reasoning
        usage = {"prompt_tokens": usage_in, "completion_tokens": usage_out,
                 "total_tokens": usage_in + usage_out,
                 "prompt_tokens_details": {"cached_tokens": turn["cached"], "audio_tokens": 0},
                 "completion_tokens_details": {"reasoning_tokens": reasoning, "audio_tokens": 0,
                                               "accepted_prediction_tokens": 0,
                                               "rejected_prediction_tokens": 0}}
        headers = {"x-request-id": "req_%s" % uuid.uuid4().hex, "openai-processing-ms": "1"}
        if not stream:
            message = {"role": "assistant", "content": reply if reply or not calls else None, "refusal": None,
                       "annotations": []}
            if calls:
                message["tool_calls"] = [{"id": i, "type": "function", "function": {"name": n, "arguments": a}}
                                         for i, n, a in calls]
            obj = {
                "id": cid, "object": "chat.completion", "created": CREATED, "model": model,
                "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish}],
                "usage": usage, "service_tier": "default", "system_fingerprint": fingerprint,
            }
            if name == "disconnect":
                return self._half_body(json.dumps(obj), headers)
            return self._send_json(200, obj, headers)

        include_usage = isinstance(body.get("stream_options"), dict) and body["stream_options"].get("include_usage") is True

        def chunk(delta, finish_reason=None, choices=True, usage_value=None):
            obj = {"id": cid, "object": "chat.completion.chunk", "created": CREATED, "model": model,
                   "service_tier": "default", "system_fingerprint": fingerprint,
                   "choices": [{"index": 0, "delta": delta, "logprobs": None,
                                "finish_reason": finish_reason}] if choices else []}
            if include_usage:
                obj["usage"] = usage_value
            return "data: %s\n\n" % sse_json(obj)

        self._start_stream(headers)
        self._chunk(chunk({"role": "assistant", "content": None if calls else "", "refusal": None}))
        pieces = word_pieces(reply)
        for i, piece in enumerate(pieces):
            if name in ("disconnect", "streamerror") and i == max(1, len(pieces) // 2):
                if name == "disconnect":
                    return self._cut()
                err = {"error": {"message": "fake: the server had an error while processing your request",
                                 "type": "server_error", "param": None, "code": None}}
                self._chunk("data: %s\n\n" % sse_json(err))
                return self._end_stream()
            if gap:
                self._pause(gap)
            self._chunk(chunk({"content": piece}))
        # each call: a first delta with id, type and name, then argument fragments
        for index, (ident, tool, args) in enumerate(calls):
            self._chunk(chunk({"tool_calls": [{"index": index, "id": ident, "type": "function",
                                               "function": {"name": tool, "arguments": ""}}]}))
            for piece in arg_pieces(args):
                if gap:
                    self._pause(gap)
                self._chunk(chunk({"tool_calls": [{"index": index, "function": {"arguments": piece}}]}))
        if name in ("disconnect", "streamerror"):  # replies of one piece
            return self._cut()
        self._chunk(chunk({}, finish_reason=finish))
        if include_usage:
            self._chunk(chunk(None, choices=False, usage_value=usage))
        self._chunk("data: [DONE]\n\n")
        self._end_stream()

    # ------------------------------------------------------------- Anthropic
    def _anthropic(self, body, model, reply, usage_in, usage_out, stream, name, gap, turn):
        mid = "msg_fake%s" % uuid.uuid4().hex[:20]
        max_tokens = body.get("max_tokens")
        if not isinstance(max_tokens, int) or max_tokens < 1:
            return self._error("anthropic", 400, "invalid_request_error", "max_tokens: Field required")
        calls = turn["calls"]
        stop = "tool_use" if calls else "end_turn"
        stop_sequence = None
        if not calls:  # stop_sequences: stop_reason "stop_sequence", stop_sequence the one matched
            reply, stop_sequence = stop_at(reply, body.get("stop_sequences"))
            if stop_sequence is not None:
                stop, usage_out = "stop_sequence", words(reply)
        if usage_out > max_tokens and not calls:
            reply = "".join(word_pieces(reply)[:max_tokens])
            usage_out = max_tokens
            stop, stop_sequence = "max_tokens", None
        thinking = None
        if isinstance(body.get("thinking"), dict) and body["thinking"].get("type") == "enabled":
            thinking = "Thinking about: " + turn["prompt"]
            usage_out += words(thinking)
        signature = "sig_fake_" + hashlib.sha256((thinking or "").encode()).hexdigest()[:32]
        # input_tokens counts what was not read from the cache (as Anthropic reports it)
        usage = {"input_tokens": usage_in - turn["cached"], "cache_creation_input_tokens": 0,
                 "cache_read_input_tokens": turn["cached"], "output_tokens": usage_out, "service_tier": "standard"}
        headers = {"request-id": "req_fake_%s" % uuid.uuid4().hex[:24]}
        blocks = []
        if thinking is not None:
            blocks.append({"type": "thinking", "thinking": thinking, "signature": signature})
        if reply or not calls:
            blocks.append({"type": "text", "text": reply})
        for ident, tool, args in calls:
            try:
                parsed = json.loads(args)
            except ValueError:
                parsed = {}  # the API itself always answers an object; only the stream shows badargs
            blocks.append({"type": "tool_use", "id": ident, "name": tool, "input": parsed, "_args": args})
        if not stream:
            content = [{k: v for k, v in b.items() if k != "_args"} for b in blocks]
            obj = {"id": mid, "type": "message", "role": "assistant", "model": model, "content": content,
                   "stop_reason": stop, "stop_sequence": stop_sequence, "usage": usage}
            if name == "disconnect":
                return self._half_body(json.dumps(obj), headers)
            return self._send_json(200, obj, headers)

        def event(etype, obj):
            return "event: %s\ndata: %s\n\n" % (etype, sse_json(obj))

        def delta(index, d):
            return event("content_block_delta", {"type": "content_block_delta", "index": index, "delta": d})

        self._start_stream(headers)
        start_usage = dict(usage, output_tokens=1)
        self._chunk(event("message_start", {"type": "message_start", "message": {
            "id": mid, "type": "message", "role": "assistant", "model": model, "content": [],
            "stop_reason": None, "stop_sequence": None, "usage": start_usage}}))
        for index, block in enumerate(blocks):
            kind = block["type"]
            start = {"text": {"type": "text", "text": ""},
                     "thinking": {"type": "thinking", "thinking": "", "signature": ""},
                     "tool_use": {"type": "tool_use", "id": block.get("id"), "name": block.get("name"),
                                  "input": {}}}[kind]
            self._chunk(event("content_block_start", {"type": "content_block_start", "index": index,
                                                      "content_block": start}))
            if index == 0:
                self._chunk(event("ping", {"type": "ping"}))
            if kind == "thinking":
                for piece in word_pieces(block["thinking"]):
                    self._chunk(delta(index, {"type": "thinking_delta", "thinking": piece}))
                self._chunk(delta(index, {"type": "signature_delta", "signature": block["signature"]}))
            elif kind == "tool_use":
                self._chunk(delta(index, {"type": "input_json_delta", "partial_json": ""}))
                for piece in arg_pieces(block["_args"]):
                    if gap:
                        self._pause(gap)
                    self._chunk(delta(index, {"type": "input_json_delta", "partial_json": piece}))
            else:
                pieces = word_pieces(block["text"])
                for i, piece in enumerate(pieces):
                    if name in ("disconnect", "streamerror") and i == max(1, len(pieces) // 2):
                        if name == "disconnect":
                            return self._cut()
                        self._chunk(event("error", {"type": "error", "error": {"type": "overloaded_error",
                                                                               "message": "Overloaded"}}))
                        return self._end_stream()
                    if gap:
                        self._pause(gap)
                    self._chunk(delta(index, {"type": "text_delta", "text": piece}))
                if name in ("disconnect", "streamerror"):
                    return self._cut()
            self._chunk(event("content_block_stop", {"type": "content_block_stop", "index": index}))
        self._chunk(event("message_delta", {"type": "message_delta",
                                            "delta": {"stop_reason": stop, "stop_sequence": stop_sequence},
                                            "usage": {"output_tokens": usage_out}}))
        self._chunk(event("message_stop", {"type": "message_stop"}))
        self._end_stream()

    def _half_body(self, text, headers):
        payload = text.encode("utf-8")
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        for k, v in headers.items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(payload[: len(payload) // 2])
        self._cut()


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address, state):
        super().__init__(address, Handler)
        self.state = state

    def handle_error(self, request, client_address):
        # Clients hanging up (timeouts, cancelled streams) are part of the tests.
        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionError, BrokenPipeError, TimeoutError)):
            return
        super().handle_error(request, client_address)


def make_server(host="127.0.0.1", port=0, require_key=None):
    """An unstarted server (call serve_forever, e.g. on a thread); .server_address[1] is the port."""
    return Server((host, port), State(require_key))


def main(argv=None):
    ap = argparse.ArgumentParser(description="Fake OpenAI / Anthropic upstream for tests")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0, help="0 = pick a free port")
    ap.add_argument("--port-file", help="write the chosen port to this file (atomically)")
    ap.add_argument("--require-key", help="only accept this API key (else any key is accepted)")
    args = ap.parse_args(argv)
    server = make_server(args.host, args.port, args.require_key)
    port = server.server_address[1]
    if args.port_file:
        tmp = args.port_file + ".tmp"
        with open(tmp, "w") as f:
            f.write("%d\n" % port)
        os.replace(tmp, args.port_file)
    print("fake_upstream listening on http://%s:%d" % (args.host, port), flush=True)
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
