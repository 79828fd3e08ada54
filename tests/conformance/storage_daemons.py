"""Daemons on a real storage server, for the daemon-level storage tests.

Builds on tests/integration/swh_harness.py (the daemon) and
tests/tooling/swh_servers.py (the servers): the manifest is the harness's,
with the storage block pointing at a redis or postgres server.
"""

import os
import re
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
sys.path.insert(0, os.path.join(HERE, "..", "tooling"))

import swh_harness  # noqa: E402
import swh_servers  # noqa: E402


def storage_block(server):
    """The manifest's storage block for a started RedisServer/PostgresServer."""
    if server.kind == "redis":
        return ("storage:\n  plugin: redis\n  config:\n    host: \"127.0.0.1\"\n    port: %d\n"
                "    connect_timeout_ms: 1000\n    command_timeout_ms: 5000\n" % server.port)
    return ("storage:\n  plugin: postgres\n  config:\n    conninfo: %s\n    connect_timeout_ms: 2000\n"
            % swh_harness.yaml_str(server.conninfo))


def daemon_on(server, **manifest_kw):
    """A swh_harness.Daemon (not started) whose storage is `server`."""
    port = swh_harness.free_port()
    workdir = swh_harness.make_tmpdir("swh-storage-")
    text = swh_harness.manifest_text(port, os.path.join(workdir, "unused.db"), **manifest_kw)
    text, n = re.subn(r"storage:\n  plugin: sqlite\n  config:\n    path: [^\n]*\n", storage_block(server), text)
    if n != 1:
        raise AssertionError("unexpected harness manifest layout:\n" + text)
    d = swh_harness.Daemon(workdir=workdir, port=port, manifest=text)
    d.owns_workdir = True
    return d


def make_server(kind):
    """A RedisServer/PostgresServer (not started) in its own /tmp folder."""
    return swh_servers.SERVERS[kind]()
