"""Libraries no pipeline uses any more are unloaded after a reload (seen in
/proc/<pid>/maps), and reloading them back maps them again. Reloads do not
pile up storage connections or threads."""

import os
import unittest

from swh_harness import Daemon
from reload_support import FILTER_SO, filter_section, manifest, mapped, reload_http, rewrite, wait_until


def db_descriptors(pid, db_path):
    """How many file descriptors of `pid` point at the SQLite file (or its -wal/-shm)."""
    count = 0
    for fd in os.listdir("/proc/%d/fd" % pid):
        try:
            if os.readlink("/proc/%d/fd/%s" % (pid, fd)).startswith(db_path):
                count += 1
        except OSError:  # closed meanwhile
            pass
    return count


def children(pid):
    """{child pid: state letter} of the processes whose parent is `pid`."""
    found = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % entry, encoding="utf-8") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:  # gone meanwhile
            continue
        if int(fields[1]) == pid:
            found[int(entry)] = fields[0]
    return found


def threads(pid):
    return len(os.listdir("/proc/%d/task" % pid))


class UnusedPluginsAreUnloaded(unittest.TestCase):
    def start(self, text_of):
        self.daemon = Daemon()
        self.addCleanup(self.daemon.cleanup)
        self.plain = manifest(self.daemon)
        self.filtered = manifest(self.daemon, tail=filter_section())
        rewrite(self.daemon, text_of(self))
        self.daemon.start()
        return self.daemon.proc.pid

    def tearDown(self):
        if self.daemon.proc is not None:
            self.assertEqual(self.daemon.stop(), 0, self.daemon.log_tail())

    def reload(self, text):
        rewrite(self.daemon, text)
        r = reload_http(self.daemon)
        self.assertEqual(r.status, 200, r)
        return r.json

    def assertUnmapped(self, pid, library):
        wait_until(lambda: not mapped(pid, library), 10,
                   what="%s to be unmapped from the daemon (pid %d)" % (library, pid))

    def test_a_middleware_of_the_starting_manifest_is_unloaded_when_removed(self):
        # the pipeline the daemon started with (generation 1) is released too
        pid = self.start(lambda t: t.filtered)
        self.assertTrue(mapped(pid, FILTER_SO))
        self.assertEqual(self.reload(self.plain)["middleware"], 0)
        self.assertUnmapped(pid, FILTER_SO)
        self.reload(self.filtered)
        self.assertTrue(mapped(pid, FILTER_SO))

    def test_a_middleware_added_by_a_reload_is_unloaded_when_removed(self):
        pid = self.start(lambda t: t.plain)
        self.assertFalse(mapped(pid, FILTER_SO))
        for _ in range(2):
            self.assertEqual(self.reload(self.filtered)["middleware"], 1)
            self.assertTrue(mapped(pid, FILTER_SO))
            # a message through the filter, so the instance has been used
            sid = self.daemon.client.create_session("unload")["id"]
            self.assertEqual(self.daemon.client.send(sid, "spam").json["user_message"]["content"], "[FILTERED]")
            self.assertEqual(self.reload(self.plain)["middleware"], 0)
            self.assertUnmapped(pid, FILTER_SO)

    def test_an_isolated_middleware_child_ends_when_the_middleware_is_removed(self):
        pid = self.start(lambda t: t.plain)
        isolated = self.filtered.replace("    plugin: content_filter\n",
                                         "    plugin: content_filter\n    isolation: process\n")
        self.reload(isolated)
        sid = self.daemon.client.create_session("unload")["id"]
        self.assertEqual(self.daemon.client.send(sid, "spam").json["user_message"]["content"], "[FILTERED]")
        child = children(pid)
        self.assertEqual(len(child), 1, child)
        self.reload(self.plain)
        # the child exits and is reaped (no zombie left behind)
        wait_until(lambda: not children(pid), 10, what="the plugin child %r to be gone" % child)
        self.assertEqual(self.daemon.client.send(sid, "spam").json["user_message"]["content"], "spam")

    def test_reloads_do_not_pile_up_storage_connections_or_threads(self):
        pid = self.start(lambda t: t.plain)
        sid = self.daemon.client.create_session("unload")["id"]

        def settle(rounds):
            for _ in range(rounds):
                self.reload(self.filtered)
                self.reload(self.plain)
            self.assertEqual(self.daemon.client.send(sid, "x").status, 201)
            self.assertUnmapped(pid, FILTER_SO)  # the previous pipelines are gone
            return db_descriptors(pid, self.daemon.db_path), threads(pid)

        first = settle(1)
        later = settle(5)
        self.assertGreater(first[0], 0, "no descriptor of the SQLite file found")
        self.assertEqual(later, first, "(SQLite descriptors, threads) after 2 reloads vs after 12")


if __name__ == "__main__":
    unittest.main()
