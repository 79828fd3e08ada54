"""A listener of GET /v1/sessions/{id}/events that stops reading is dropped
once server.max_stream_queue_bytes of its events wait unwritten: it gets a
final `error` event, then the stream ends and the connection closes. Its
events no longer pile up in the daemon (20 such listeners once held 311 MB).
A listener that reads, on the same session, gets every event.

The stuck listener's socket has a small receive buffer; the test sends more
than the kernel can hold for it (its send buffer's maximum, from
/proc/sys/net/ipv4/tcp_wmem) plus several times the cap, so the daemon's
own queue must pass the cap. The proof is by structure: events were left
out, the last event says why, and the stream ended.
"""

import json
import socket
import threading
import unittest

import swh_harness
from swh_harness import read_head, read_to_close, request_bytes

QUEUE_CAP = 64 * 1024
# Per send; the user and the echoed assistant message each carry it. Small
# next to the cap, and the sends wait for the reading listener (below), so
# that it is never behind by the cap however slow the machine: only the
# listener that does not read may be dropped.
CONTENT_BYTES = 8 * 1024


def kernel_send_buffer_max():
    try:
        with open("/proc/sys/net/ipv4/tcp_wmem") as f:
            return int(f.read().split()[2])
    except (OSError, ValueError, IndexError):
        return 4 * 1024 * 1024


class Dechunker:
    """The payload of a chunked body, fed as it arrives."""

    def __init__(self):
        self.raw, self.payload, self.ended = b"", b"", False

    def feed(self, data):
        self.raw += data
        while not self.ended:
            eol = self.raw.find(b"\r\n")
            if eol < 0:
                return
            size = int(self.raw[:eol].split(b";")[0], 16)
            if size == 0:
                self.ended = True
                return
            if len(self.raw) < eol + 2 + size + 2:
                return
            self.payload += self.raw[eol + 2:eol + 2 + size]
            self.raw = self.raw[eol + 2 + size + 2:]


def sse_events(payload):
    """[(event, data text)] of a text/event-stream payload (comments skipped)."""
    events = []
    for block in payload.decode("utf-8").split("\n\n"):
        lines = [line for line in block.split("\n") if line and not line.startswith(":")]
        if not lines:
            continue
        event = next((line[7:] for line in lines if line.startswith("event: ")), "message")
        data = "\n".join(line[6:] for line in lines if line.startswith("data: "))
        events.append((event, data))
    return events


class EventBacklogTests(swh_harness.DaemonTestCase):
    manifest_kw = {"server_lines": ["max_stream_queue_bytes: %d" % QUEUE_CAP]}

    def test_a_listener_that_stops_reading_is_dropped_with_a_final_error(self):
        session = self.client.create_session("backlog")
        path = "/v1/sessions/%s/events" % session["id"]
        sends = (kernel_send_buffer_max() + 8 * QUEUE_CAP) // (2 * CONTENT_BYTES) + 4

        # The reading listener, on its own thread: it must get every message.
        reader = self.client.stream(path, None, method="GET", deadline_s=100)
        got = {"messages": 0, "ready": threading.Event()}
        progress = threading.Condition()

        def read_all():
            for event in reader:
                if event.event == "ready":
                    got["ready"].set()
                elif event.event == "message":
                    with progress:
                        got["messages"] += 1
                        progress.notify_all()
                    if got["messages"] == 2 * sends:
                        return

        thread = threading.Thread(target=read_all, daemon=True)
        thread.start()
        self.assertTrue(got["ready"].wait(30), "no ready event")

        stuck = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        stuck.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connect: a small window
        stuck.settimeout(30)
        stuck.connect(("127.0.0.1", self.daemon.port))
        try:
            stuck.sendall(request_bytes("GET", path))
            status, headers, data = read_head(stuck)
            self.assertEqual(status, 200, headers)
            body = Dechunker()
            body.feed(data)
            while b"event: ready" not in body.payload:
                body.feed(stuck.recv(4096))
            # Now it reads nothing while the session gets busy.
            for i in range(sends):
                r = self.client.send(session["id"], "x" * CONTENT_BYTES)
                self.assertEqual(r.status, 201, r)
                with progress:
                    caught_up = progress.wait_for(lambda: got["messages"] >= 2 * (i + 1), timeout=30)
                self.assertTrue(caught_up, "the reading listener stopped getting events at send %d" % i)

            thread.join(100)
            self.assertEqual(got["messages"], 2 * sends, "the reading listener missed events")

            # Read what the stuck one was sent, until its stream ends or it
            # has had every message (an undropped stream stays open).
            while not body.ended and body.payload.count(b"event: message\n") < 2 * sends:
                chunk = stuck.recv(1 << 20)
                self.assertTrue(chunk, "closed without the last chunk")
                body.feed(chunk)
            events = sse_events(body.payload)
            self.assertTrue(body.ended, "the stream of a listener that did not read never ended")
            self.assertEqual(read_to_close(stuck), b"", "the connection stayed open after the stream")
        finally:
            stuck.close()
            reader.close()
        messages = [e for e in events if e[0] == "message"]
        self.assertLess(len(messages), 2 * sends, "every event was kept for a listener that did not read")
        last_event, last_data = events[-1]
        self.assertEqual(last_event, "error", events[-3:])
        err = json.loads(last_data)["error"]
        self.assertIn("max_stream_queue_bytes", err["message"])
        # The daemon still serves, the session is intact.
        r = self.client.get("/v1/sessions/%s" % session["id"])
        self.assertEqual((r.status, r.json["message_count"]), (200, 2 * sends), r)


if __name__ == "__main__":
    unittest.main()
