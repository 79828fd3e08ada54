"""systemd readiness (Type=notify, host/daemon/service_notify.hpp): the real
daemon sends READY=1 to $NOTIFY_SOCKET once it listens, RELOADING=1 ...
READY=1 around a SIGHUP reload (refused or not), and STOPPING=1 on SIGTERM.
The test plays systemd: it binds the AF_UNIX datagram socket itself and reads
what arrives. packaging/debian/swarmhost.service relies on this."""

import os
import shutil
import signal
import socket
import unittest

from swh_harness import Daemon, make_tmpdir

RECV_TIMEOUT_S = 20.0  # bounded wait for each datagram


class NotifyingDaemon(Daemon):
    """A Daemon started with NOTIFY_SOCKET in its environment."""

    def __init__(self, notify_socket, **kw):
        super().__init__(**kw)
        self.notify_socket = notify_socket

    def spawn(self):
        before = os.environ.get("NOTIFY_SOCKET")
        os.environ["NOTIFY_SOCKET"] = self.notify_socket
        try:
            return super().spawn()
        finally:
            if before is None:
                del os.environ["NOTIFY_SOCKET"]
            else:
                os.environ["NOTIFY_SOCKET"] = before


def fields(datagram):
    """b"READY=1\\nSTATUS=x" -> {"READY": "1", "STATUS": "x"}"""
    return dict(line.split("=", 1) for line in datagram.decode("utf-8").split("\n") if line)


class ServiceNotifyTest(unittest.TestCase):
    def bind(self, name):
        """The listening end, like systemd's: a path, or '@name' (abstract)."""
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.addCleanup(sock.close)
        sock.bind("\0" + name[1:] if name.startswith("@") else name)
        sock.settimeout(RECV_TIMEOUT_S)
        return sock

    def socket_path(self, name):
        folder = make_tmpdir("swh-notify-")
        self.addCleanup(shutil.rmtree, folder, True)
        return os.path.join(folder, name)

    def start(self, notify_socket):
        daemon = NotifyingDaemon(notify_socket)
        self.addCleanup(daemon.cleanup)
        daemon.spawn()
        return daemon

    def receive(self, sock, daemon):
        try:
            return fields(sock.recv(4096))
        except socket.timeout:
            self.fail("no datagram on the notify socket within %.0f s\n%s" % (RECV_TIMEOUT_S, daemon.log_tail()))

    def test_ready_reload_stopping(self):
        path = self.socket_path("notify.sock")
        sock = self.bind(path)
        daemon = self.start(path)

        ready = self.receive(sock, daemon)
        self.assertEqual(ready.get("READY"), "1", ready)
        self.assertEqual(ready.get("STATUS"), "listening on 127.0.0.1:%d" % daemon.port)
        # READY=1 means listening: the first request after it is answered
        # at once, with no retry loop (that is what Type=notify promises).
        self.assertEqual(daemon.healthz().status, 200)

        daemon.proc.send_signal(signal.SIGHUP)
        reloading = self.receive(sock, daemon)
        self.assertEqual(reloading.get("RELOADING"), "1", reloading)
        self.assertRegex(reloading.get("MONOTONIC_USEC", ""), r"^[0-9]+$")
        self.assertEqual(self.receive(sock, daemon), {"READY": "1"})

        # A refused reload (broken manifest) still ends with READY=1: the old
        # pipeline keeps serving, so the service is ready.
        with open(daemon.manifest_path, "a", encoding="utf-8") as f:
            f.write("no_such_top_level_key: 1\n")
        daemon.proc.send_signal(signal.SIGHUP)
        self.assertEqual(self.receive(sock, daemon).get("RELOADING"), "1")
        self.assertEqual(self.receive(sock, daemon), {"READY": "1"})
        self.assertIn("reload refused", daemon.log())
        self.assertEqual(daemon.healthz().status, 200)

        daemon.proc.send_signal(signal.SIGTERM)
        self.assertEqual(self.receive(sock, daemon), {"STOPPING": "1"})
        self.assertEqual(daemon.wait_exit(20), 0, daemon.log_tail())

    def test_abstract_socket(self):
        name = "@swh-notify-test-%d" % os.getpid()
        sock = self.bind(name)
        daemon = self.start(name)
        self.assertEqual(self.receive(sock, daemon).get("READY"), "1")
        self.assertEqual(daemon.stop(), 0, daemon.log_tail())

    def test_unreachable_socket_is_only_a_warning(self):
        missing = self.socket_path("nobody-listens.sock")
        notifying = self.start(missing)
        notifying.wait_healthy()
        self.assertIn("could not notify the service manager", notifying.log())
        self.assertEqual(notifying.stop(), 0, notifying.log_tail())


if __name__ == "__main__":
    unittest.main()
