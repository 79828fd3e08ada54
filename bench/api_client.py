"""The daemon's HTTP API as the benchmark scripts' seeding steps call it.

Imported by the Python the scripts run inline (PYTHONPATH=bench): one
`call` instead of a copy per script. Standard library only.
"""
import http.client
import json
import sys
import urllib.parse


def connect(base, timeout=30):
    """A keep-alive connection to BASE (http://host:port)."""
    u = urllib.parse.urlparse(base)
    return http.client.HTTPConnection(u.hostname, u.port, timeout=timeout)


def call(conn, method, path, body=None):
    """METHOD PATH with a JSON body; the answer's bytes. Exits naming the
    request on any status other than 2xx (a seeding step cannot go on)."""
    conn.request(method, path, body=json.dumps(body) if body is not None else None,
                 headers={"Content-Type": "application/json"})
    r = conn.getresponse()
    data = r.read()
    if r.status // 100 != 2:
        sys.exit(f"{method} {path}: {r.status} {data[:200]!r}")
    return data
