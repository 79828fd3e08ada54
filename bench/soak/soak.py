"""Mixed load against one running daemon for a fixed time, sampling the
daemon's RSS, open file descriptors and threads (bench/soak/run.sh starts
the daemon and calls this; standard library only).

Workers, each in its own thread, loop until the time is up:
  send        POST /v1/sessions/{id}/messages on a few long-lived sessions
              and on fresh ones (created, used, archived, deleted); a
              long-lived session is archived and replaced by a new one once
              it holds --session-messages messages (a conversation does not
              grow for ever; 0 keeps the same four all run long)
  stream      POST .../messages with stream: true, read to the end
  disconnect  a stream, and an SSE listener (/events), dropped after the
              first bytes (the client goes away mid-answer)
  types       collaborative participants added/removed, a templated
              workflow walked, a multimodal upload and a message naming it
  compat      POST /v1/chat/completions, streamed and not
  reload      POST /v1/admin/reload every RELOAD_EVERY_S seconds

Each worker pauses --pace-ms between requests (0: flat out).
Every SAMPLE_S seconds: VmRSS, fd count and Threads from /proc/PID. At the
end: one line per sample (CSV in --samples), and a summary with the least
squares slope of each series over the samples after the warm-up (the first
fifth), per hour, with the start and end values; counts of requests and
errors per worker kind. Errors are any answer that is not the expected
status; they are counted, not fatal (a soak reports, it does not stop).
"""

import argparse
import base64
import http.client
import json
import os
import random
import socket
import sys
import threading
import time

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4


class Stats:
    def __init__(self):
        self.lock = threading.Lock()
        self.ok = {}
        self.errors = {}
        self.last_error = {}

    def count(self, kind, good, what=""):
        with self.lock:
            table = self.ok if good else self.errors
            table[kind] = table.get(kind, 0) + 1
            if not good:
                self.last_error[kind] = what[:300]


class Api:
    def __init__(self, port):
        self.port = port

    def call(self, method, path, body=None, raw=None, headers=None, timeout=30):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            hdrs = {"Content-Type": "application/json"}
            hdrs.update(headers or {})
            data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
            conn.request(method, path, body=data, headers=hdrs)
            r = conn.getresponse()
            payload = r.read()
            return r.status, payload
        finally:
            conn.close()

    def json(self, method, path, body=None, expect=(200, 201), headers=None):
        status, payload = self.call(method, path, body, headers=headers)
        if status not in expect:
            raise RuntimeError("%s %s -> %d %r" % (method, path, status, payload[:200]))
        return json.loads(payload) if payload else {}

    def drop_after_first_bytes(self, method, path, body):
        """Sends a request, reads a little of the answer, closes the socket."""
        s = socket.create_connection(("127.0.0.1", self.port), timeout=30)
        try:
            data = json.dumps(body).encode() if body is not None else b""
            head = ("%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                    "Content-Length: %d\r\n\r\n" % (method, path, len(data))).encode()
            s.sendall(head + data)
            return len(s.recv(512)) > 0
        finally:
            s.close()


class Sessions:
    """The long-lived sessions the send, stream and disconnect workers share.
    Once one holds about `max_messages` (counted here: two per answered
    send), it is archived and a fresh one takes its place."""

    def __init__(self, api, count, max_messages):
        self.api = api
        self.max_messages = max_messages
        self.lock = threading.Lock()
        self.ids = [api.json("POST", "/v1/sessions", {"user_id": "soak"})["id"] for _ in range(count)]
        self.counts = [0] * count
        self.replaced = 0

    def pick(self, rng):
        with self.lock:
            return rng.choice(self.ids)

    def sent(self, sid):
        if self.max_messages <= 0:
            return
        with self.lock:
            if sid not in self.ids:
                return
            i = self.ids.index(sid)
            self.counts[i] += 2
            if self.counts[i] < self.max_messages:
                return
            self.ids[i] = self.api.json("POST", "/v1/sessions", {"user_id": "soak"})["id"]
            self.counts[i] = 0
            self.replaced += 1
        self.api.json("POST", "/v1/sessions/%s/archive" % sid, expect=(200,))


def run_until(deadline, stats, kind, step, pace_s):
    rng = random.Random(hash(kind) & 0xffff)
    while time.monotonic() < deadline:
        try:
            step(rng)
            stats.count(kind, True)
        except Exception as e:  # a soak counts failures and goes on
            stats.count(kind, False, repr(e))
            time.sleep(0.05)
        time.sleep(pace_s)


def worker_send(api, sessions):
    def step(rng):
        if rng.random() < 0.1:
            sid = api.json("POST", "/v1/sessions", {"user_id": "soak"})["id"]
            api.json("POST", "/v1/sessions/%s/messages" % sid, {"content": "short-lived"})
            api.json("POST", "/v1/sessions/%s/archive" % sid, expect=(200,))
            api.json("DELETE", "/v1/sessions/%s" % sid, expect=(200, 204))
            return
        sid = sessions.pick(rng)
        api.json("POST", "/v1/sessions/%s/messages" % sid, {"content": "hello %d" % rng.randrange(10**6)})
        sessions.sent(sid)
        if rng.random() < 0.2:
            api.json("GET", "/v1/sessions/%s/messages?limit=50" % sid, expect=(200,))
    return step


def worker_stream(api, sessions):
    def step(rng):
        sid = sessions.pick(rng)
        status, payload = api.call("POST", "/v1/sessions/%s/messages" % sid,
                                   {"content": "stream please " * 8, "stream": True})
        sessions.sent(sid)
        if status != 200 or b"event: done" not in payload and b"[DONE]" not in payload and b"done" not in payload:
            raise RuntimeError("stream -> %d %r" % (status, payload[-200:]))
    return step


def worker_disconnect(api, sessions):
    def step(rng):
        sid = sessions.pick(rng)
        if rng.random() < 0.5:
            api.drop_after_first_bytes("POST", "/v1/sessions/%s/messages" % sid,
                                       {"content": "leave early " * 20, "stream": True})
        else:
            api.drop_after_first_bytes("GET", "/v1/sessions/%s/events" % sid, None)
    return step


def worker_types(api):
    def step(rng):
        choice = rng.randrange(3)
        if choice == 0:
            sid = api.json("POST", "/v1/sessions", {"user_id": "alice", "type": "collaborative"})["id"]
            api.call("POST", "/v1/sessions/%s/participants" % sid, {"user_id": "bob", "permissions": ["read"]},
                     headers={"X-Swarmhost-User": "alice"})
            api.call("DELETE", "/v1/sessions/%s/participants/bob" % sid, headers={"X-Swarmhost-User": "alice"})
            api.json("DELETE", "/v1/sessions/%s" % sid, expect=(200, 204), headers={"X-Swarmhost-User": "alice"})
        elif choice == 1:
            sid = api.json("POST", "/v1/sessions", {"user_id": "soak", "type": "templated",
                                                    "metadata": {"template": "customer_support"}})["id"]
            for route in ("workflow/start", "workflow/next", "workflow/complete"):
                api.json("POST", "/v1/sessions/%s/%s" % (sid, route), {}, expect=(200,))
            api.json("DELETE", "/v1/sessions/%s" % sid, expect=(200, 204))
        else:
            sid = api.json("POST", "/v1/sessions", {"user_id": "soak", "type": "multimodal"})["id"]
            data = PNG + rng.randbytes(16)  # a new file now and then, the same hash otherwise
            up = api.json("POST", "/v1/sessions/%s/attachments" % sid,
                          {"name": "x.png", "data_base64": base64.b64encode(data).decode()})
            api.json("POST", "/v1/sessions/%s/messages" % sid,
                     {"content": "look", "metadata": {"attachment_ids": [up["id"]]}})
            api.json("DELETE", "/v1/sessions/%s" % sid, expect=(200, 204))
    return step


def worker_compat(api):
    def step(rng):
        stream = rng.random() < 0.5
        status, payload = api.call("POST", "/v1/chat/completions",
                                   {"model": "echo", "stream": stream,
                                    "messages": [{"role": "user", "content": "hi %d" % rng.randrange(1000)}]})
        if status != 200:
            raise RuntimeError("chat/completions -> %d %r" % (status, payload[:200]))
    return step


def worker_reload(api, every_s):
    def step(rng):
        time.sleep(every_s)
        api.json("POST", "/v1/admin/reload", {}, expect=(200,))
    return step


def sample(pid):
    with open("/proc/%d/status" % pid) as f:
        fields = dict(line.split(":", 1) for line in f if ":" in line)
    kb = lambda name: int(fields.get(name, "0 kB").split()[0])  # noqa: E731
    threads = int(fields["Threads"].strip())
    fds = len(os.listdir("/proc/%d/fd" % pid))
    # Anonymous (heap, stacks) and file-backed (mapped libraries, files)
    # resident memory apart: they grow for different reasons.
    return kb("VmRSS"), fds, threads, kb("RssAnon"), kb("RssFile")


def slope_per_hour(points):
    """Least squares slope of (t seconds, v) per hour."""
    n = len(points)
    if n < 2:
        return 0.0
    mt = sum(t for t, _ in points) / n
    mv = sum(v for _, v in points) / n
    den = sum((t - mt) ** 2 for t, _ in points)
    return 0.0 if den == 0 else sum((t - mt) * (v - mv) for t, v in points) / den * 3600


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--pid", type=int, required=True)
    ap.add_argument("--seconds", type=int, default=1800)
    ap.add_argument("--sample-seconds", type=int, default=10)
    ap.add_argument("--reload-every", type=int, default=30)
    ap.add_argument("--pace-ms", type=float, default=0, help="pause of each worker between requests")
    ap.add_argument("--samples", required=True, help="CSV file for the samples")
    ap.add_argument("--session-messages", type=int, default=2000,
                    help="replace a long-lived session once it holds this many messages (0: never)")
    args = ap.parse_args()

    api = Api(args.port)
    sessions = Sessions(api, 4, args.session_messages)
    stats = Stats()
    start = time.monotonic()
    deadline = start + args.seconds
    workers = [("send", worker_send(api, sessions)), ("send", worker_send(api, sessions)),
               ("stream", worker_stream(api, sessions)), ("disconnect", worker_disconnect(api, sessions)),
               ("types", worker_types(api)), ("compat", worker_compat(api)),
               ("reload", worker_reload(api, args.reload_every))]
    threads = [threading.Thread(target=run_until, args=(deadline, stats, kind, step, args.pace_ms / 1000),
                                daemon=True)
               for kind, step in workers]
    for t in threads:
        t.start()

    rows = []
    with open(args.samples, "w") as out:
        out.write("seconds,rss_kb,fds,threads,rss_anon_kb,rss_file_kb\n")
        next_at = start
        while True:
            now = time.monotonic()
            if now >= next_at:
                try:
                    measured = sample(args.pid)
                except FileNotFoundError:
                    print("soak: the daemon exited %.0f s into the run" % (now - start))
                    return 1
                rows.append((now - start,) + measured)
                out.write("%.0f,%d,%d,%d,%d,%d\n" % rows[-1])
                out.flush()
                next_at += args.sample_seconds
            if now >= deadline:
                break
            time.sleep(min(1.0, max(0.0, next_at - now)))
    for t in threads:
        t.join(timeout=60)

    warm = rows[len(rows) // 5:]
    print("soak: %d s, %d samples every %d s (slopes over the %d after the first fifth)"
          % (args.seconds, len(rows), args.sample_seconds, len(warm)))
    for name, col, unit, scale in (("rss", 1, "MB", 1 / 1024), ("anon", 4, "MB", 1 / 1024),
                                   ("file", 5, "MB", 1 / 1024), ("fds", 2, "", 1), ("threads", 3, "", 1)):
        pts = [(r[0], r[col] * scale) for r in warm]
        print("soak: %-7s start %8.1f%s  after warm-up %8.1f%s  end %8.1f%s  min %8.1f  max %8.1f  "
              "slope %+.2f%s/hour" % (name, rows[0][col] * scale, unit, warm[0][col] * scale, unit,
                                      rows[-1][col] * scale, unit, min(v for _, v in pts), max(v for _, v in pts),
                                      slope_per_hour(pts), unit))
    print("soak: long-lived sessions replaced after %d messages: %d" % (args.session_messages, sessions.replaced))
    kinds = sorted(set(stats.ok) | set(stats.errors))
    print("soak: requests " + ", ".join("%s %d ok / %d errors" % (k, stats.ok.get(k, 0), stats.errors.get(k, 0))
                                        for k in kinds))
    for k, e in sorted(stats.last_error.items()):
        print("soak: last %s error: %s" % (k, e))
    return 0


if __name__ == "__main__":
    sys.exit(main())
