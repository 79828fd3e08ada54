"""Wrong API keys per client address (docs/security.md, "Guessing keys"):
with auth.max_failures_per_minute N, an address gets N 401s for unknown keys
a minute; past that every keyed request from it gets 429 rate_limited with
Retry-After - a right key too, or the wait would tell a right guess from a
wrong one. No key at all is not a guess: still 401, and /healthz still
answers the anonymous probe. Other addresses are not affected, and the
allowance refills at N a minute."""

import http.client
import json
import time
import unittest

from auth_fixture import AuthTestCase, Key, auth_section

ALLOWED = 60  # a minute's failures; refills at one a second
ALICE = Key("alice-laptop", "alice")
OPS = Key("ops", "ops", role="admin")
REFILL_DEADLINE_S = 30.0


def request(port, path, headers=None, source="127.0.0.1"):
    """GET `path` from the source address `source` (any 127.x address reaches
    the daemon on 127.0.0.1): (status, headers, parsed JSON body)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30, source_address=(source, 0))
    try:
        conn.request("GET", path, headers=headers or {})
        resp = conn.getresponse()
        body = resp.read()
        return resp.status, resp.headers, json.loads(body.decode("utf-8")) if body else None
    finally:
        conn.close()


class FailedKeyTests(AuthTestCase):
    manifest_kw = {"extra_providers": auth_section([ALICE, OPS], max_failures_per_minute=ALLOWED)}

    def counter(self, series):
        text = self.as_key(OPS).get("/metrics").raw.decode()
        for line in text.splitlines():
            if line.startswith(series + " "):
                return int(float(line.split()[-1]))
        self.fail("%s not in /metrics:\n%s" % (series, text))

    def test_guessing_is_cut_off_per_address_and_the_allowance_refills(self):
        port = self.daemon.port
        guesser = "127.0.0.3"
        statuses = []
        # One more than a minute's allowance; a token trickles back each
        # second meanwhile, so on a slow machine it takes more (bounded).
        for i in range(3 * ALLOWED):
            status, headers, body = request(port, "/v1/sessions", {"Authorization": "Bearer wrong-%d" % i},
                                            source=guesser)
            statuses.append(status)
            if status == 429:
                break
        self.assertEqual(statuses[-1], 429, statuses)
        self.assertGreaterEqual(statuses.count(401), ALLOWED, statuses)
        self.assertEqual(set(statuses[:-1]), {401}, statuses)
        self.assertEqual(body["error"]["code"], "rate_limited", body)
        self.assertIn("max_failures_per_minute", body["error"]["message"])
        self.assertRegex(headers.get("Retry-After") or "", r"^[1-9][0-9]*$")

        # While cut off, the right key from that address waits too.
        status, _, body = request(port, "/v1/sessions", ALICE.bearer(), source=guesser)
        self.assertEqual(status, 429, body)
        # No key is no guess: 401, and the anonymous health probe is answered.
        self.assertEqual(request(port, "/v1/sessions", source=guesser)[0], 401)
        status, _, body = request(port, "/healthz", source=guesser)
        self.assertEqual((status, body), (200, {"status": "healthy"}))
        # Other addresses are served, with the key and without a wait.
        status, _, body = request(port, "/v1/sessions", ALICE.bearer(), source="127.0.0.4")
        self.assertEqual(status, 200, body)
        status, _, body = request(port, "/v1/sessions", {"Authorization": "Bearer wrong-x"}, source="127.0.0.4")
        self.assertEqual(status, 401, body)

        # The allowance refills at ALLOWED a minute: the right key gets in again.
        deadline = time.monotonic() + REFILL_DEADLINE_S
        polls_refused = 0
        while True:
            status, _, body = request(port, "/v1/sessions", ALICE.bearer(), source=guesser)
            if status != 429 or time.monotonic() > deadline:
                break
            polls_refused += 1
            time.sleep(0.2)
        self.assertEqual(status, 200, body)

        # /metrics counts each unknown key and each cut-off 429 seen here.
        unknown = statuses.count(401) + 1  # and the one from 127.0.0.4
        cut_off = 2 + polls_refused        # the wrong and the right key, then the polls
        self.assertEqual(self.counter("swarmhost_auth_unknown_keys_total"), unknown)
        self.assertEqual(self.counter('swarmhost_auth_rate_limited_total{reason="unknown_keys_from_address"}'),
                         cut_off)


class FailuresUnlimitedTests(AuthTestCase):
    """max_failures_per_minute: 0 turns the cut-off off."""

    manifest_kw = {"extra_providers": auth_section([ALICE], max_failures_per_minute=0)}

    def test_zero_means_every_wrong_key_is_a_401(self):
        statuses = {request(self.daemon.port, "/v1/sessions", {"Authorization": "Bearer wrong-%d" % i})[0]
                    for i in range(3 * ALLOWED)}
        self.assertEqual(statuses, {401})
        self.assertEqual(request(self.daemon.port, "/v1/sessions", ALICE.bearer())[0], 200)


if __name__ == "__main__":
    unittest.main()
