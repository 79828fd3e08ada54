"""Shared pieces of the pipeline tests: manifests with middleware and hooks,
/metrics parsing, and polling helpers. The daemon harness itself is
tests/integration/swh_harness.py, imported (not copied)."""

import json
import math
import os
import re
import sys
import time
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))

import swh_harness  # noqa: E402  (after the sys.path change)
from swh_harness import Daemon, DaemonTestCase, free_port, make_tmpdir, plugin_dir, yaml_str  # noqa: E402,F401

POLL_DEADLINE_S = 30.0  # upper bound for background work to show up; never asserted on


def fixture_dir():
    return os.environ.get("SWH_FIXTURE_PLUGIN_DIR") or os.path.join(
        swh_harness.REPO_ROOT, "build", "tests", "fixture_plugins")


def uid(prefix="u"):
    return "%s-%s" % (prefix, uuid.uuid4().hex[:12])


def pipeline_manifest(port, workdir, middleware=(), hooks=(), echo_config=None, extra_providers=(),
                      fixtures=True):
    """A manifest with the sqlite store, the echo provider (plus `extra_providers`,
    each a dict), and the given middleware / hook entries (dicts, written as
    JSON flow mappings, which YAML reads as they are)."""
    dirs = [plugin_dir()] + ([fixture_dir()] if fixtures else [])
    lines = ["server:", "  listen: %s" % yaml_str("127.0.0.1:%d" % port), "  shutdown_grace_seconds: 5",
             "plugin_dirs:"]
    lines += ["  - %s" % yaml_str(os.path.abspath(d)) for d in dirs]
    lines += ["storage:", "  plugin: sqlite", "  config:",
              "    path: %s" % yaml_str(os.path.join(workdir, "swarmhost.db")), "providers:"]
    echo = {"name": "echo", "plugin": "echo", "config": dict({"fail_on": swh_harness.FAIL_TOKEN},
                                                             **(echo_config or {}))}
    for p in [echo] + list(extra_providers):
        lines.append("  - %s" % json.dumps(p))
    if middleware:
        lines.append("middleware:")
        lines += ["  - %s" % json.dumps(m) for m in middleware]
    if hooks:
        lines.append("hooks:")
        lines += ["  - %s" % json.dumps(h) for h in hooks]
    return "\n".join(lines) + "\n"


class PipelineTestCase(DaemonTestCase):
    """One daemon per class, started from `middleware` / `hooks` (lists of
    manifest entries, may use the {workdir} placeholder in strings)."""

    middleware = ()
    hooks = ()
    echo_config = None
    extra_providers = ()

    @classmethod
    def setUpClass(cls):
        workdir = make_tmpdir("swh-pipeline-")
        port = free_port()
        cls.workdir = workdir

        def fill(value):
            if isinstance(value, str):
                return value.replace("{workdir}", workdir)
            if isinstance(value, list):
                return [fill(v) for v in value]
            if isinstance(value, dict):
                return {k: fill(v) for k, v in value.items()}
            return value

        manifest = pipeline_manifest(port, workdir, fill(list(cls.middleware)), fill(list(cls.hooks)),
                                     cls.echo_config, cls.extra_providers)
        cls.daemon = Daemon(workdir=workdir, port=port, manifest=manifest)
        cls.daemon.owns_workdir = True
        cls.daemon.start_or_cleanup()
        cls.client = cls.daemon.client

    # ---- helpers
    def session(self, user_type=None, user_id=None, **fields):
        context = fields.pop("context", {"user_context": {}})
        if user_type is not None:
            context.setdefault("user_context", {})["type"] = user_type
        return self.client.create_session(user_id or uid(), context=context, **fields)

    def send_ok(self, sid, content, **fields):
        r = self.client.send(sid, content, **fields)
        self.assertEqual(r.status, 201, r)
        return r.json

    def metrics_text(self):
        r = self.client.get("/metrics")
        self.assertEqual(r.status, 200, r)
        return r.raw.decode("utf-8")

    def metrics(self):
        return parse_prometheus(self.metrics_text())

    def wait_for(self, what, predicate, deadline_s=POLL_DEADLINE_S):
        """Polls `predicate()` until it returns a truthy value (returned) or the
        deadline passes (the test fails with `what`). For background work only;
        no assertion depends on how long it took."""
        end = time.monotonic() + deadline_s
        last = None
        while time.monotonic() < end:
            last = predicate()
            if last:
                return last
            time.sleep(0.05)
        self.fail("timed out waiting for %s (last: %r)\n%s" % (what, last, self.daemon.log_tail(30)))

    def wait_hooks_idle(self, hook_names):
        """Until every named hook has an empty queue and nothing new arrived
        between two reads (the daemon publishes before answering, so after
        our requests returned, all their events are queued)."""
        def idle():
            m = self.metrics()
            for name in hook_names:
                if sample(m, "swarmhost_hook_queue_length", hook=name) != 0:
                    return False
            return m
        return self.wait_for("hooks %s to drain" % (hook_names,), idle)


# ---------------------------------------------------------------- /metrics

_NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
_LABEL = r'[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\\\|\\"|\\n)*"'
SAMPLE_RE = re.compile(r"^(%s)(\{(?:%s(?:,%s)*)?,?\})? (\S+)(?: (-?\d+))?$" % (_NAME, _LABEL, _LABEL))
LABEL_RE = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\\\|\\"|\\n)*)"')


def parse_float(text):
    if text in ("+Inf", "Inf"):
        return math.inf
    if text == "-Inf":
        return -math.inf
    if text == "NaN":
        return math.nan
    return float(text)  # ValueError for anything else


class PrometheusError(AssertionError):
    pass


def parse_prometheus(text):
    """Prometheus text format 0.0.4: every line is empty, a comment (# ...), or
    `name{labels} value [timestamp]` with a float value. Returns
    {"samples": [(name, {labels}, value)], "types": {name: type}}; raises
    PrometheusError naming the first bad line."""
    samples, types = [], {}
    for number, line in enumerate(text.split("\n"), 1):
        if line == "":
            continue
        if line.startswith("#"):
            parts = line.split(None, 3)
            if len(parts) >= 2 and parts[1] == "TYPE":
                if len(parts) != 4 or parts[3] not in ("counter", "gauge", "histogram", "summary", "untyped"):
                    raise PrometheusError("line %d: bad TYPE comment: %r" % (number, line))
                if parts[2] in types:
                    raise PrometheusError("line %d: second TYPE line for %s" % (number, parts[2]))
                types[parts[2]] = parts[3]
            continue
        m = SAMPLE_RE.match(line)
        if not m:
            raise PrometheusError("line %d is neither a comment nor `name{labels} value`: %r" % (number, line))
        try:
            value = parse_float(m.group(3))
        except ValueError:
            raise PrometheusError("line %d: value %r is not a float: %r" % (number, m.group(3), line))
        labels = {}
        if m.group(2):
            for k, v in LABEL_RE.findall(m.group(2)):
                if k in labels:
                    raise PrometheusError("line %d: label %s twice: %r" % (number, k, line))
                labels[k] = v.replace('\\"', '"').replace("\\n", "\n").replace("\\\\", "\\")
        samples.append((m.group(1), labels, value))
    return {"samples": samples, "types": types}


def sample(parsed, name, **labels):
    """The value of the one sample `name` whose labels include `labels`, else None."""
    for n, ls, v in parsed["samples"]:
        if n == name and all(ls.get(k) == str(val) for k, val in labels.items()):
            return v
    return None


SSEStreamType = swh_harness.SSEStream
