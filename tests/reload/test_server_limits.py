"""Server limits and trusted proxies change with a reload, no restart
(issue 22 item 6): server.max_body_bytes applies from the next request on,
keep-alive connections included; server.trusted_proxies decides whose
X-Forwarded-For / Forwarded is believed, so the key-guessing cut-off counts
the client behind a load balancer, not the balancer."""

import hashlib
import unittest

from swh_harness import Client, Daemon, manifest_text
from reload_support import reload_http, reload_sighup, rewrite

ADMIN_KEY = "limits-admin-key-0001"
CUT_OFF_AFTER = 3


def bearer(key):
    return {"Authorization": "Bearer %s" % key}


def auth_section():
    return ("auth:\n  mode: api_keys\n  max_failures_per_minute: %d\n  keys:\n"
            "    - { id: ops, user: ops, role: admin, sha256: %s }\n"
            % (CUT_OFF_AFTER, hashlib.sha256(ADMIN_KEY.encode()).hexdigest()))


class ServerLimitsReload(unittest.TestCase):
    def setUp(self):
        self.daemon = Daemon()
        self.addCleanup(self.daemon.cleanup)
        self.daemon.start()

    def tearDown(self):
        if self.daemon.proc is not None:
            self.assertEqual(self.daemon.stop(), 0, self.daemon.log_tail())

    def write_manifest(self, server_lines=(), tail=""):
        d = self.daemon
        rewrite(d, manifest_text(d.port, d.db_path, server_lines=server_lines, extra_providers=tail))

    def test_max_body_bytes_applies_from_the_next_request(self):
        keep_alive = Client(self.daemon.port, keep_alive=True)
        self.addCleanup(keep_alive.close)
        big = {"user_id": "u", "metadata": {"pad": "x" * 8000}}
        self.assertEqual(keep_alive.post("/v1/sessions", big).status, 201)
        self.write_manifest(server_lines=["max_body_bytes: 2048"])
        r = reload_http(self.daemon)
        self.assertEqual(r.status, 200, r)
        self.assertNotIn("max_body_bytes apply only after a restart", self.daemon.log())
        # the same keep-alive connection, and a new one
        for client in (keep_alive, Client(self.daemon.port)):
            r = client.post("/v1/sessions", big)
            self.assertEqual(r.status, 413, r)
            self.assertIn("2048", r.json["error"]["message"])
        self.assertEqual(self.daemon.client.post("/v1/sessions", {"user_id": "u"}).status, 201)
        self.write_manifest()
        outcome, line = reload_sighup(self.daemon)
        self.assertEqual(outcome, "reloaded", line)
        self.assertEqual(self.daemon.client.post("/v1/sessions", big).status, 201)

    def guess(self, forwarded_for):
        return self.daemon.client.get("/v1/sessions", headers={"Authorization": "Bearer wrong-guess",
                                                               "X-Forwarded-For": forwarded_for})

    def good(self, forwarded_for):
        headers = dict(bearer(ADMIN_KEY))
        headers["X-Forwarded-For"] = forwarded_for
        return self.daemon.client.get("/v1/sessions", headers=headers)

    def test_trusted_proxies_decide_whose_address_is_counted(self):
        # Not trusted: the header is the client's own word, ignored. Every
        # guess counts against the peer (127.0.0.1), whatever it claims.
        self.write_manifest(tail=auth_section())
        self.assertEqual(reload_http(self.daemon).status, 200)
        for i in range(CUT_OFF_AFTER):
            self.assertEqual(self.guess("198.51.100.%d" % (i + 1)).status, 401)
        r = self.good("203.0.113.50")
        self.assertEqual(r.status, 429, "a forged X-Forwarded-For escaped the cut-off: %r" % r)

        # The balancer (127.0.0.1 here) trusted: each client is counted by
        # the address the balancer appended, and a forged left-hand entry
        # changes nothing.
        self.write_manifest(server_lines=['trusted_proxies: ["127.0.0.1", "10.0.0.0/8"]'], tail=auth_section())
        # (by SIGHUP: this very address is cut off for HTTP now)
        outcome, line = reload_sighup(self.daemon)
        self.assertEqual(outcome, "reloaded", line)
        for _ in range(CUT_OFF_AFTER):
            self.assertEqual(self.guess("6.6.6.6, 192.0.2.1").status, 401)
        self.assertEqual(self.guess("7.7.7.7, 192.0.2.1").status, 429, "192.0.2.1 is cut off")
        self.assertEqual(self.good("192.0.2.2").status, 200, "another client behind the balancer")
        self.assertEqual(self.good("192.0.2.2, 10.1.1.1").status, 200, "through two trusted proxies")
        self.assertEqual(self.good("192.0.2.1").status, 429, "the cut-off client, whatever key")


if __name__ == "__main__":
    unittest.main()
