#!/usr/bin/env python3
"""Streaming time to first byte, through the daemon vs straight to the upstream.

usage: ttfb.py DAEMON_URL DIRECT_URL MODEL N [WARMUP]
  DAEMON_URL  e.g. http://127.0.0.1:P/v1/chat/completions (model MODEL)
  DIRECT_URL  e.g. http://127.0.0.1:Q/stream/v1/chat/completions (nginx)

Sends N streamed requests ("stream": true) to each, sequentially and
alternating (daemon, direct, daemon, ...), so both see the same background
load. Each request opens its own connection, as `curl -N` would. Times taken
from just before connecting:
  first_line   the first `data:` line;
  first_token  the first data line whose delta carries non-empty content
               (the daemon sends a role-only chunk as soon as it has accepted
               the request, before the upstream has answered, so first_line
               through the daemon does not include the upstream at all);
  done         `data: [DONE]`.
Checks every stream (the text, [DONE]) and prints one line:
  TTFB key=value ...  (milliseconds; daemon_* and direct_* medians and p90s,
  failures, and the daemon's own gateway_overhead_ms from its last chunk)
Standard library only.
"""
import http.client
import json
import statistics
import sys
import time
import urllib.parse

EXPECTED_TEXT = "Hello! A fixed streamed reply."


def one(url, model):
    u = urllib.parse.urlparse(url)
    body = json.dumps({"model": model, "stream": True,
                       "messages": [{"role": "user", "content": "hello world"}]})
    t0 = time.perf_counter()
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=10)
    try:
        conn.request("POST", u.path, body=body, headers={"Content-Type": "application/json",
                                                         "Accept": "text/event-stream"})
        resp = conn.getresponse()
        if resp.status != 200:
            raise RuntimeError(f"HTTP {resp.status}: {resp.read(200)!r}")
        first_line = first_token = None
        text = []
        overhead = None
        while True:
            line = resp.readline()
            if not line:
                raise RuntimeError("stream ended without [DONE]")
            if not line.startswith(b"data:"):
                continue
            now = time.perf_counter()
            if first_line is None:
                first_line = now
            data = line[5:].strip()
            if data == b"[DONE]":
                done = now
                break
            chunk = json.loads(data)
            for choice in chunk.get("choices", []):
                content = choice.get("delta", {}).get("content")
                if content:
                    text.append(content)
                    if first_token is None:
                        first_token = now
            overhead = chunk.get("swarmhost", {}).get("gateway_overhead_ms", overhead)
        if "".join(text) != EXPECTED_TEXT:
            raise RuntimeError(f"unexpected text {''.join(text)!r}")
        ms = lambda t: (t - t0) * 1000.0
        return ms(first_line), ms(first_token), ms(done), overhead
    finally:
        conn.close()


def pct(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100.0 * (len(values) - 1))))]


def main():
    if len(sys.argv) < 5:
        sys.exit(__doc__)
    daemon_url, direct_url, model, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    warmup = int(sys.argv[5]) if len(sys.argv) > 5 else 10
    res = {"daemon": [], "direct": []}
    failures = {"daemon": 0, "direct": 0}
    errors = []
    for i in range(warmup + n):
        for name, url in (("daemon", daemon_url), ("direct", direct_url)):
            try:
                r = one(url, model)
            except Exception as e:  # counted and reported, the run goes on
                failures[name] += 1
                errors.append(f"{name}: {e}")
                continue
            if i >= warmup:
                res[name].append(r)
    for e in errors[:5]:
        print(f"ttfb.py: {e}", file=sys.stderr)
    out = [f"n={n}"]
    for name in ("daemon", "direct"):
        rows = res[name]
        if not rows:
            sys.exit(f"ttfb.py: no successful {name} stream")
        for idx, key in ((0, "first_line"), (1, "first_token"), (2, "done")):
            vals = [r[idx] for r in rows]
            out.append(f"{name}_{key}_p50={statistics.median(vals):.3f}")
            out.append(f"{name}_{key}_p90={pct(vals, 90):.3f}")
        out.append(f"{name}_failures={failures[name]}")
    gw = [r[3] for r in res["daemon"] if r[3] is not None]
    if gw:
        out.append(f"daemon_gateway_overhead_p50={statistics.median(gw):.3f}")
    # Paired differences (request i through the daemon minus request i direct).
    pairs = list(zip(res["daemon"], res["direct"]))
    for idx, key in ((1, "first_token"), (2, "done")):
        diffs = [a[idx] - b[idx] for a, b in pairs]
        out.append(f"diff_{key}_p50={statistics.median(diffs):.3f}")
    print("TTFB " + " ".join(out))


if __name__ == "__main__":
    main()
