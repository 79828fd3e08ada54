"""Daemons on a real storage server, for the daemon-level storage tests
(tests/conformance, tests/durability, tests/migrate) and the fleet test
(tests/fleet): start_daemons() starts N daemons on one store at once.

Builds on tests/integration/swh_harness.py (the daemon) and
tests/tooling/swh_servers.py (the servers): the manifest is the harness's,
with the storage block pointing at a redis, postgres or mongodb server.
"""

import os
import re
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
sys.path.insert(0, HERE)

import swh_harness  # noqa: E402
import swh_servers  # noqa: E402


def storage_block(server, **config):
    """The manifest's storage block for a started RedisServer/PostgresServer/RedisCluster/MongoServer;
    `config` adds or overrides plugin config keys (integers)."""
    if server.kind in ("redis", "redis-cluster"):
        keys = {"host": '"127.0.0.1"', "port": server.port, "connect_timeout_ms": 1000, "command_timeout_ms": 5000}
        if server.kind == "redis-cluster":
            keys["cluster"] = "true"
    elif server.kind == "mongodb":
        keys = {"connection_string": swh_harness.yaml_str(server.uri), "connect_timeout_ms": 1000,
                "server_selection_timeout_ms": 1500}
    else:
        keys = {"conninfo": swh_harness.yaml_str(server.conninfo), "connect_timeout_ms": 2000}
    keys.update(config)
    return ("storage:\n  plugin: %s\n  config:\n" % plugin_of(server) +
            "".join("    %s: %s\n" % (k, v) for k, v in keys.items()))


def plugin_of(server):
    """The storage plugin that serves `server` (a Redis Cluster is the redis plugin's)."""
    return "redis" if server.kind == "redis-cluster" else server.kind


def daemon_on(server, storage_config=None, extra_yaml="", **manifest_kw):
    """A swh_harness.Daemon (not started) whose storage is `server`
    (`storage_config`: plugin config keys to add or override; `extra_yaml`:
    top-level manifest blocks appended, e.g. "events:\n  carrier: storage\n")."""
    port = swh_harness.free_port()
    workdir = swh_harness.make_tmpdir("swh-storage-")
    text = swh_harness.manifest_text(port, os.path.join(workdir, "unused.db"), **manifest_kw)
    text, n = re.subn(r"storage:\n  plugin: sqlite\n  config:\n    path: [^\n]*\n", storage_block(server, **(storage_config or {})), text)
    if n != 1:
        raise AssertionError("unexpected harness manifest layout:\n" + text)
    text += extra_yaml
    d = swh_harness.Daemon(workdir=workdir, port=port, manifest=text)
    d.owns_workdir = True
    return d


def make_server(kind):
    """A RedisServer/PostgresServer/RedisCluster/MongoServer (not started) in its own /tmp folder."""
    return swh_servers.SERVERS[kind]()


def start_daemons(servers, *daemons):
    """Start `servers` (not yet started), then daemons made by the callables
    in `daemons` (each returns a daemon_on(...)), all at once; returns the
    daemons. On failure everything started is cleaned up and the error
    raised."""
    started = []
    try:
        for server in servers:
            server.start()
        started = [make() for make in daemons]
        for d in started:  # at once: the schema migration runs under a lock
            d.spawn()
        for d in started:
            d.wait_healthy()
        return started
    except BaseException:
        stop_daemons(started, servers)
        raise


def stop_daemons(daemons, servers):
    """Stop the daemons (printing a log tail when one exits non-zero), then
    remove the servers."""
    for d in daemons:
        if d is not None:
            if d.proc is not None and d.stop() != 0:
                print(d.log_tail(30))
            d.cleanup()
    for server in servers:
        server.cleanup()
