"""A stream in flight finishes on the pipeline it started on.

The session's provider `gated` (openai plugin, tools/fake_upstream with a
gate) streams its first word and then waits. While it waits, the manifest
loses that provider (and with it the only user of the openai plugin) and is
reloaded. The stream then completes with the old provider's answer, is stored,
and the openai library stays mapped until the stream ends, then is unloaded.

The daemon starts without `gated`; a reload brings it in, so the stream runs
on generation 2. (Generation 1 is covered by test_unload.)"""

import unittest

from swh_harness import Daemon
from reload_support import (OPENAI_SO, GatedUpstream, manifest, mapped, openai_provider, reload_http,
                            rewrite, wait_until)


class InFlightStreamsKeepTheirPipeline(unittest.TestCase):
    def setUp(self):
        self.upstream = GatedUpstream()
        self.addCleanup(self.upstream.close)
        self.daemon = Daemon()
        self.addCleanup(self.daemon.cleanup)
        self.with_gated = manifest(self.daemon, providers=openai_provider("gated", self.upstream.base_url))
        self.daemon.start()
        self.client = self.daemon.client
        self.assertFalse(mapped(self.daemon.proc.pid, OPENAI_SO))
        rewrite(self.daemon, self.with_gated)
        r = reload_http(self.daemon)
        self.assertEqual((r.status, r.json["providers"]), (200, 2), r)

    def tearDown(self):
        if self.daemon.proc is not None:
            self.assertEqual(self.daemon.stop(), 0, self.daemon.log_tail())

    def hold_a_stream(self, prompt):
        """Open a streamed message on `gated`; returns (session id, stream,
        events so far) once the first chunk arrived and the upstream waits."""
        sid = self.client.post("/v1/sessions", {"user_id": "inflight", "provider": "gated"}).json["id"]
        stream = self.client.stream("/v1/sessions/%s/messages" % sid, {"content": prompt, "stream": True},
                                    deadline_s=40)
        self.assertEqual(stream.status, 200, stream)
        self.addCleanup(stream.close)
        events = []
        for event in stream:
            events.append(event)
            if event.event == "chunk":
                break
        self.assertEqual([e.event for e in events], ["user_message", "chunk"], events)
        self.assertTrue(self.upstream.held.is_set())
        return sid, stream, events

    def test_stream_completes_on_the_old_provider_and_its_plugin_unloads_after(self):
        pid = self.daemon.proc.pid
        prompt = "%s tell me about reloads in five words" % GatedUpstream.MARKER
        sid, stream, events = self.hold_a_stream(prompt)

        rewrite(self.daemon, manifest(self.daemon))  # echo only: `gated` and openai are gone
        r = reload_http(self.daemon)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json["providers"], 1, r)
        # new requests see the new pipeline ...
        refused = self.client.post("/v1/sessions", {"user_id": "inflight", "provider": "gated"})
        self.assertUnknownProvider(refused)
        # ... while the stream still holds the old one, and with it the plugin
        self.assertFalse(self.upstream.gate.is_set())
        self.assertTrue(mapped(pid, OPENAI_SO), "openai unloaded under a running stream")

        self.upstream.gate.set()
        events += list(stream)
        stream.close()
        names = [e.event for e in events]
        self.assertEqual(names[-2:], ["assistant_message", "done"], events)
        self.assertNotIn("error", names, events)
        reply = "You said: " + prompt
        chunks = "".join(e.json["text"] for e in events if e.event == "chunk")
        self.assertEqual(chunks, reply)
        assistant = events[-2].json
        self.assertEqual(assistant["content"], reply)
        self.assertEqual(assistant["metadata"].get("provider"), "gated", assistant)

        stored = self.client.messages(sid)
        self.assertEqual([(m["role"], m["content"]) for m in stored], [("user", prompt), ("assistant", reply)])
        self.assertEqual(stored[1]["id"], assistant["id"])

        # the old pipeline's last request ended: the library goes
        wait_until(lambda: not mapped(pid, OPENAI_SO), 10, what="%s unmapped" % OPENAI_SO)
        self.assertIsNone(self.daemon.proc.poll())
        self.assertEqual(self.daemon.healthz().status, 200)

        # and reloading the provider back maps it again and it answers
        rewrite(self.daemon, self.with_gated)
        r = reload_http(self.daemon)
        self.assertEqual(r.status, 200, r)
        self.assertTrue(mapped(pid, OPENAI_SO))
        again = self.client.post("/v1/sessions", {"user_id": "inflight", "provider": "gated"})
        self.assertEqual(again.status, 201, again)
        r = self.client.send(again.json["id"], "back again")
        self.assertEqual(r.status, 201, r)
        self.assertEqual(r.json["assistant_message"]["content"], "You said: back again")

    def test_stream_survives_a_changed_provider_config(self):
        prompt = "%s changed under me" % GatedUpstream.MARKER
        sid, stream, events = self.hold_a_stream(prompt)
        # same provider name, other settings: a new instance in a new pipeline
        changed = manifest(self.daemon, providers=openai_provider("gated", self.upstream.base_url).replace(
            "timeout_ms: 20000", "timeout_ms: 15000"))
        rewrite(self.daemon, changed)
        r = reload_http(self.daemon)
        self.assertEqual(r.status, 200, r)
        self.upstream.gate.set()
        events += list(stream)
        stream.close()
        self.assertEqual([e.event for e in events][-2:], ["assistant_message", "done"], events)
        self.assertEqual(events[-2].json["content"], "You said: " + prompt)
        self.assertEqual([m["content"] for m in self.client.messages(sid)], [prompt, "You said: " + prompt])

    def assertUnknownProvider(self, resp):
        self.assertEqual(resp.status, 400, resp)
        self.assertIn("unknown provider", resp.json["error"]["message"], resp)


if __name__ == "__main__":
    unittest.main()
