#!/usr/bin/env python3
"""Plain sends per second through the real daemon, SQLite store in process
vs `isolation: process` (bench/isolation; see docs/benchmarks.md).

Each variant: a fresh daemon (sqlite store with its default config, echo
provider), CLIENTS threads with kept-alive connections, each posting plain
(non-streamed) messages to its own session for SECONDS; prints sends/s of
each and the ratio. A send makes four or more storage calls (get_session,
add_message for the question and the reply, get_messages for the history),
so the store's serialisation shows here. The Python client shares the
machine's cores with the daemon: compare the two rows, not with wrk numbers.

    python3 bench/isolation/send_rate.py [--build build] [--seconds 10] [--clients 4] [--synchronous full]
Speed is reported, never asserted."""

import argparse
import json
import os
import shutil
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "tests", "integration"))

from swh_harness import Client, Daemon, free_port, yaml_str  # noqa: E402


def manifest(port, workdir, plugins, isolated, synchronous):
    lines = ["server:", "  listen: %s" % yaml_str("127.0.0.1:%d" % port), "plugin_dirs:",
             "  - %s" % yaml_str(plugins), "storage:", "  plugin: sqlite"]
    if isolated:
        lines.append("  isolation: process")
    lines += ["  config:", "    path: %s" % yaml_str(os.path.join(workdir, "swarmhost.db")),
              "    synchronous: %s" % synchronous, "providers:",
              "  - %s" % json.dumps({"name": "echo", "plugin": "echo"})]
    return "\n".join(lines) + "\n"


def run(build, isolated, seconds, clients, synchronous):
    os.environ["SWH_BINARY"] = os.path.join(build, "host", "swarmhost")
    port = free_port()
    daemon = Daemon(port=port)  # owns a temporary workdir
    with open(daemon.manifest_path, "w") as f:
        f.write(manifest(port, daemon.workdir, os.path.join(build, "plugins"), isolated, synchronous))
    try:
        daemon.start()
        sessions = [daemon.client.create_session("bench-%d" % i)["id"] for i in range(clients)]
        counts, errors = [0] * clients, []
        stop = time.monotonic() + seconds

        def sender(i):
            client = Client(port, keep_alive=True)
            while time.monotonic() < stop:
                r = client.post("/v1/sessions/%s/messages" % sessions[i], {"content": "hello %d" % counts[i]})
                if r.status != 201:
                    errors.append(r)
                    return
                counts[i] += 1
            client.close()

        workers = [threading.Thread(target=sender, args=(i,)) for i in range(clients)]
        start = time.monotonic()
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        elapsed = time.monotonic() - start
        if errors:
            raise SystemExit("send failed: %r" % errors[0])
        return sum(counts) / elapsed
    finally:
        daemon.stop()
        daemon.cleanup()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--build", default=os.path.join(HERE, "..", "..", "build"))
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--synchronous", choices=("full", "normal"), default="full")
    args = parser.parse_args()
    build = os.path.abspath(args.build)
    if not shutil.which(os.path.join(build, "host", "swarmhost")):
        raise SystemExit("no %s/host/swarmhost (build it first)" % build)
    base = run(build, False, args.seconds, args.clients, args.synchronous)
    iso = run(build, True, args.seconds, args.clients, args.synchronous)
    print("plain sends, %d clients, %.0f s each, sqlite synchronous=%s"
          % (args.clients, args.seconds, args.synchronous))
    print("  in_process  %8.0f sends/s" % base)
    print("  process     %8.0f sends/s   (%.2fx)" % (iso, iso / base))


if __name__ == "__main__":
    main()
