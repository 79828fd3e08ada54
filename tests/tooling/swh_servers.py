"""Start and stop real storage servers for tests (Python 3 standard library only).

    RedisServer()     redis-server on a free 127.0.0.1 port, AOF with appendfsync always
    PostgresServer()  initdb + postgres on a free 127.0.0.1 port (as the `postgres`
                      user when run as root: initdb refuses root)
    RedisCluster()    three redis-server masters (cluster-enabled, no replicas) joined
                      by `redis-cli --cluster create`, ready when every node reports
                      cluster_state:ok with all 16384 slots and all nodes known
    MongoServer()     CongoDB, a MongoDB-wire emulator (Node.js), on a free 127.0.0.1
                      port in memory mode; installed on first use (see install_congodb)
    HAProxy(config)   haproxy (Debian package) on a free 127.0.0.1 port with the
                      configuration config(port) returns, checked by `haproxy -c`
                      first; servers() reads its view of the backends

Each server lives in its own temporary folder, runs as a child of this process
(and dies with it: PR_SET_PDEATHSIG), and is torn down by stop()/cleanup() or
the context manager, also when a test fails. Data survives stop() + start()
(same port, same folder), so a test can stop the server mid-run and bring it
back. Every wait is bounded.

As a supervisor for tests in other languages (the C++ conformance suite):

    python3 swh_servers.py serve redis|postgres|redis-cluster|mongodb

prints one JSON line {"port":…, "dir":…, "conninfo"?:…, "uri"?:…, "ports"?:[…], "durable"?:…}
once the server is ready, then obeys one command per stdin line — `stop`
(clean shutdown), `kill` (crash: SIGKILL for redis, immediate shutdown for
postgres), `start` (same port and data) — answering each with a JSON line.
For redis-cluster these act on every node, and `stop N` / `kill N` /
`start N` on node N only (0-based, the order of "ports"). On EOF (the test
process ended, however it ended) it tears everything down and exits.
"""

import ctypes
import fcntl
import hashlib
import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import tempfile
import time

PG_BIN = os.environ.get("SWH_PG_BIN", "/usr/lib/postgresql/15/bin")
REDIS_SERVER = os.environ.get("SWH_REDIS_SERVER", "redis-server")
REDIS_CLI = os.environ.get("SWH_REDIS_CLI", "redis-cli")
HAPROXY = os.environ.get("SWH_HAPROXY", "/usr/sbin/haproxy")
HERE = os.path.dirname(os.path.abspath(__file__))
CONGODB_PACKAGE = "@push.rocks/smartmongo@2.2.0"
CONGODB_DIR = os.environ.get("SWH_CONGODB_DIR") or os.path.join(
    os.path.expanduser("~"), ".cache", "swarmhost-test", "congodb-2.2.0")
NPM_DEADLINE_S = 300
READY_DEADLINE_S = 30.0
STOP_DEADLINE_S = 20.0

_PR_SET_PDEATHSIG = 1


def free_port():
    """A loopback port that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _die_with_parent(uid=None, gid=None):
    """preexec_fn: SIGKILL the child when this process dies; drop privileges."""
    def prepare():
        try:
            ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        except Exception:
            pass
        os.setsid()
        if gid is not None:
            os.setgroups([])
            os.setgid(gid)
        if uid is not None:
            os.setuid(uid)
    return prepare


def _wait_tcp(port, proc, deadline_s, what, log_path):
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("%s exited with %s while starting\n%s" % (what, proc.returncode, _tail(log_path)))
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("%s not listening on port %d within %.0f s\n%s" % (what, port, deadline_s, _tail(log_path)))


def _tail(path, lines=30):
    try:
        with open(path, "rb") as f:
            return "\n".join(f.read().decode("utf-8", "replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


class _Server:
    kind = "?"

    def __init__(self, base_dir=None):
        self.dir = tempfile.mkdtemp(prefix="swh-%s-" % self.kind, dir=base_dir)
        os.chmod(self.dir, 0o755)  # the postgres user must reach its data folder
        self.port = free_port()
        self.proc = None
        self.log_path = os.path.join(self.dir, "server.log")
        self._log = None

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.cleanup()

    def _spawn(self, argv, **kw):
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(argv, stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     close_fds=True, **kw)

    def _reap(self, sig, deadline_s=STOP_DEADLINE_S):
        if self.proc is None:
            return
        if self.proc.poll() is None:
            try:
                os.kill(self.proc.pid, sig)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout=deadline_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.proc = None
        if self._log is not None:
            self._log.close()
            self._log = None

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def _tree(self):
        """The server's pid and those of every process it forked (postgres: backends, workers)."""
        children = {}
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open("/proc/%s/stat" % entry) as f:
                    stat = f.read()
            except OSError:
                continue
            ppid = int(stat[stat.rindex(")") + 2:].split()[1])
            children.setdefault(ppid, []).append(int(entry))
        pids = [self.proc.pid]
        for pid in pids:  # grows while walked: breadth first
            pids.extend(children.get(pid, []))
        return pids

    def freeze(self):
        """SIGSTOP the server and all its processes: it keeps its sockets (the
        kernel still accepts and acknowledges) but answers nothing, like a
        hung or paused host. The parent stops first, so it forks nothing new
        while its children are stopped."""
        self._frozen = []
        while True:
            fresh = [pid for pid in self._tree() if pid not in self._frozen]
            if not fresh:
                return
            for pid in fresh:
                try:
                    os.kill(pid, signal.SIGSTOP)
                except ProcessLookupError:
                    pass
            self._frozen.extend(fresh)

    def frozen(self):
        """True while the server's main process is stopped (state T)."""
        with open("/proc/%d/stat" % self.proc.pid) as f:
            stat = f.read()
        return stat[stat.rindex(")") + 2] == "T"

    def thaw(self):
        """SIGCONT what freeze() stopped (children first). Safe to call twice."""
        for pid in reversed(getattr(self, "_frozen", [])):
            try:
                os.kill(pid, signal.SIGCONT)
            except ProcessLookupError:
                pass
        self._frozen = []

    def cleanup(self):
        """Stop (hard) and remove the folder. Safe to call twice."""
        try:
            self.thaw()  # a stopped child would not notice its parent's death
            self._reap(signal.SIGKILL)
        finally:
            if os.environ.get("SWH_KEEP_TMP") != "1":
                shutil.rmtree(self.dir, ignore_errors=True)

    def info(self):
        # durable: acknowledged data survives kill() + start() (a test that
        # needs that must skip, naming the missing feature, when it is False)
        return {"kind": self.kind, "port": self.port, "dir": self.dir, "durable": self.durable}

    durable = True


class RedisServer(_Server):
    """redis-server with the durable setting (appendonly yes, appendfsync always)."""
    kind = "redis"

    extra_args = []

    def start(self):
        argv = [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", self.dir,
                "--save", "", "--appendonly", "yes", "--appendfsync", "always", "--daemonize", "no",
                "--protected-mode", "no", "--logfile", ""] + self.extra_args
        self._spawn(argv, preexec_fn=_die_with_parent())
        _wait_tcp(self.port, self.proc, READY_DEADLINE_S, "redis-server", self.log_path)
        deadline = time.monotonic() + READY_DEADLINE_S
        while self.command("PING") != "+PONG":  # answers -LOADING while reading the AOF
            if time.monotonic() > deadline:
                raise RuntimeError("redis-server not ready\n" + _tail(self.log_path))
            time.sleep(0.05)
        return self

    def stop(self):
        self._reap(signal.SIGTERM)

    def kill(self):
        self._reap(signal.SIGKILL)

    def command(self, *args):
        """One command in RESP; returns the first reply line (e.g. '+PONG')."""
        payload = "*%d\r\n" % len(args) + "".join("$%d\r\n%s\r\n" % (len(a.encode()), a) for a in args)
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=5) as s:
                s.sendall(payload.encode())
                return s.recv(65536).decode("utf-8", "replace").split("\r\n", 1)[0]
        except OSError as e:
            return "-ERR %s" % e

    def text(self, *args):
        """One command whose reply is a bulk string (INFO, CLUSTER INFO); its text, or "" on error."""
        payload = "*%d\r\n" % len(args) + "".join("$%d\r\n%s\r\n" % (len(a.encode()), a) for a in args)
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=5) as s:
                s.sendall(payload.encode())
                data = b""
                while b"\r\n" not in data:
                    chunk = s.recv(65536)
                    if not chunk:
                        return ""
                    data += chunk
                header, rest = data.split(b"\r\n", 1)
                if not header.startswith(b"$") or int(header[1:]) < 0:
                    return ""
                size = int(header[1:])
                while len(rest) < size:
                    chunk = s.recv(65536)
                    if not chunk:
                        return ""
                    rest += chunk
                return rest[:size].decode("utf-8", "replace")
        except (OSError, ValueError):
            return ""


class ClusterNode(RedisServer):
    """One master of a RedisCluster: cluster-enabled, its nodes.conf in its own folder.
    cluster-require-full-coverage no: while one master is down the others keep serving
    their slots (the plugin's errors then name the missing node)."""
    kind = "redis-node"

    def __init__(self, base_dir=None):
        super().__init__(base_dir)
        # The bus port is given (default: port + 10000, which may be taken or above 65535).
        self.extra_args = ["--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
                           "--cluster-port", str(free_port()), "--cluster-node-timeout", "2000",
                           "--cluster-require-full-coverage", "no"]

    def cluster_ready(self, nodes):
        info = self.text("CLUSTER", "INFO")
        fields = dict(line.split(":", 1) for line in info.splitlines() if ":" in line)
        return (fields.get("cluster_state") == "ok" and fields.get("cluster_slots_assigned") == "16384"
                and fields.get("cluster_known_nodes") == str(nodes))


class RedisCluster:
    """Three masters, no replicas, slots spread by `redis-cli --cluster create`. Data and the
    cluster layout (nodes.conf) survive stop()/kill() + start(), of one node or of all."""
    kind = "redis-cluster"
    durable = True  # every node runs with appendfsync always

    def __init__(self, base_dir=None, masters=3):
        self.dir = tempfile.mkdtemp(prefix="swh-redis-cluster-", dir=base_dir)
        os.chmod(self.dir, 0o755)
        self.nodes = [ClusterNode(self.dir) for _ in range(masters)]
        self.port = self.nodes[0].port
        self._created = False

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.cleanup()

    def _selected(self, node):
        return self.nodes if node is None else [self.nodes[int(node)]]

    def start(self, node=None):
        for n in self._selected(node):
            if not n.running():
                n.start()
        if not self._created:
            argv = [REDIS_CLI, "--cluster", "create"] + ["127.0.0.1:%d" % n.port for n in self.nodes] + [
                "--cluster-replicas", "0", "--cluster-yes"]
            p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                               timeout=60)
            if p.returncode != 0:
                raise RuntimeError("redis-cli --cluster create failed:\n" + p.stdout.decode("utf-8", "replace"))
            self._created = True
        self.wait_ready()
        return self

    def wait_ready(self):
        """Until every running node sees the whole cluster healthy (bounded)."""
        deadline = time.monotonic() + READY_DEADLINE_S
        while not all(n.cluster_ready(len(self.nodes)) for n in self.nodes if n.running()):
            if time.monotonic() > deadline:
                raise RuntimeError("redis cluster not ready: " + "; ".join(
                    "%d: %s" % (n.port, n.text("CLUSTER", "INFO").replace("\r\n", " ")[:200]) for n in self.nodes))
            time.sleep(0.05)

    def stop(self, node=None):
        for n in self._selected(node):
            n.stop()

    def kill(self, node=None):
        for n in self._selected(node):
            n.kill()

    def running(self):
        return all(n.running() for n in self.nodes)

    def cleanup(self):
        try:
            for n in self.nodes:
                n.cleanup()
        finally:
            if os.environ.get("SWH_KEEP_TMP") != "1":
                shutil.rmtree(self.dir, ignore_errors=True)

    def info(self):
        return {"kind": self.kind, "port": self.port, "dir": self.dir, "durable": self.durable,
                "ports": [n.port for n in self.nodes]}


class PostgresServer(_Server):
    """A fresh PostgreSQL cluster (initdb -A trust -U swh) with database `swarmhost`."""
    kind = "postgres"
    user = "swh"
    database = "swarmhost"

    def __init__(self, base_dir=None):
        super().__init__(base_dir)
        self.data = os.path.join(self.dir, "data")
        self.uid = self.gid = None
        if os.geteuid() == 0:  # initdb and postgres refuse to run as root
            pw = pwd.getpwnam("postgres")
            self.uid, self.gid = pw.pw_uid, pw.pw_gid
            os.chown(self.dir, self.uid, self.gid)
        self._initialised = False

    def _run(self, argv, timeout):
        p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                           timeout=timeout, preexec_fn=_die_with_parent(self.uid, self.gid), cwd=self.dir)
        if p.returncode != 0:
            raise RuntimeError("%s failed (%d):\n%s" % (argv[0], p.returncode, p.stdout.decode("utf-8", "replace")))

    @property
    def conninfo(self):
        return "host=127.0.0.1 port=%d user=%s dbname=%s" % (self.port, self.user, self.database)

    def start(self):
        if not self._initialised:
            self._run([os.path.join(PG_BIN, "initdb"), "-D", self.data, "-A", "trust", "-U", self.user,
                       "-E", "UTF8", "--locale", "C", "--no-sync"], timeout=60)
        argv = [os.path.join(PG_BIN, "postgres"), "-D", self.data, "-p", str(self.port), "-k", self.dir,
                "-c", "listen_addresses=127.0.0.1", "-c", "max_connections=200", "-c", "shared_buffers=32MB"]
        self._spawn(argv, preexec_fn=_die_with_parent(self.uid, self.gid), cwd=self.dir)
        _wait_tcp(self.port, self.proc, READY_DEADLINE_S, "postgres", self.log_path)
        deadline = time.monotonic() + READY_DEADLINE_S
        while True:  # accepting TCP is not yet accepting queries (startup, recovery)
            p = subprocess.run([os.path.join(PG_BIN, "pg_isready"), "-q", "-h", "127.0.0.1", "-p", str(self.port),
                                "-U", self.user, "-d", "postgres"], timeout=10)
            if p.returncode == 0:
                break
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise RuntimeError("postgres not ready\n" + _tail(self.log_path))
            time.sleep(0.05)
        if not self._initialised:
            self._run([os.path.join(PG_BIN, "createdb"), "-h", "127.0.0.1", "-p", str(self.port), "-U", self.user,
                       self.database], timeout=30)
            self._initialised = True
        return self

    def stop(self):
        self._reap(signal.SIGINT)  # fast shutdown: clients are disconnected, data is checkpointed

    def kill(self):
        self._reap(signal.SIGQUIT)  # immediate shutdown: like a crash, recovery from WAL on the next start

    def info(self):
        d = super().info()
        d["conninfo"] = self.conninfo
        return d


def install_congodb(target=CONGODB_DIR):
    """Installs CongoDB into `target` once (a cache shared by test runs) and
    returns `target`. `npm install @push.rocks/smartmongo@2.2.0` fails on heavy
    dependencies CongoDB does not use, so: `npm pack` the package, unpack it to
    vendor/smartmongo, and `npm ci` only the six runtime packages CongoDB
    imports (pinned in congodb/package-lock.json), without install scripts.
    Raises RuntimeError with npm's output when that fails: the tests that need
    the server then fail, they never skip."""
    source = os.path.join(HERE, "congodb")
    with open(os.path.join(source, "package-lock.json"), "rb") as f:
        digest = hashlib.sha256(f.read() + CONGODB_PACKAGE.encode()).hexdigest()
    os.makedirs(target, exist_ok=True)
    stamp = os.path.join(target, ".installed-sha256")
    with open(os.path.join(target, ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # parallel tests: one installs, the others wait
        try:
            with open(stamp) as f:
                if f.read().strip() == digest:
                    return target
        except OSError:
            pass
        npm = shutil.which("npm")
        if not npm or not shutil.which("node"):
            raise RuntimeError("node/npm not found on PATH: the mongodb tests need Node >= 20 and npm to install "
                               "the CongoDB emulator (they do not skip)")
        for name in ("package.json", "package-lock.json"):
            shutil.copyfile(os.path.join(source, name), os.path.join(target, name))
        common = ["--no-audit", "--no-fund", "--no-update-notifier", "--cache", os.path.join(target, "npm-cache")]
        pack_dir = tempfile.mkdtemp(prefix="pack-", dir=target)
        try:
            out = _npm([npm, "pack", CONGODB_PACKAGE, "--pack-destination", pack_dir] + common, target)
            tgz = [n for n in os.listdir(pack_dir) if n.endswith(".tgz")]
            if len(tgz) != 1:
                raise RuntimeError("npm pack %s made no tarball:\n%s" % (CONGODB_PACKAGE, out))
            vendor = os.path.join(target, "vendor", "smartmongo")
            shutil.rmtree(vendor, ignore_errors=True)
            os.makedirs(vendor)
            with tarfile.open(os.path.join(pack_dir, tgz[0])) as tar:
                for member in tar.getmembers():  # package/<path> -> vendor/smartmongo/<path>
                    if not member.name.startswith("package/") or ".." in member.name.split("/"):
                        continue
                    if not (member.isfile() or member.isdir()):
                        continue
                    member.name = member.name[len("package/"):]
                    tar.extract(member, vendor)
        finally:
            shutil.rmtree(pack_dir, ignore_errors=True)
        _npm([npm, "ci", "--ignore-scripts"] + common, target)
        with open(stamp, "w") as f:
            f.write(digest + "\n")
    return target


def _npm(argv, cwd):
    try:
        p = subprocess.run(argv, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                           timeout=NPM_DEADLINE_S)
    except subprocess.TimeoutExpired:
        raise RuntimeError("%s did not finish within %d s (is the npm registry reachable?)"
                           % (" ".join(argv[:3]), NPM_DEADLINE_S))
    out = p.stdout.decode("utf-8", "replace")
    if p.returncode != 0:
        raise RuntimeError("installing the CongoDB emulator failed: %s exited with %d\n---- npm output ----\n%s"
                           % (" ".join(argv[:3]), p.returncode, out))
    return out


class MongoServer(_Server):
    """CongoDB (pure JavaScript, MongoDB wire protocol) in memory mode.

    What it is not, checked by hand: it does not enforce unique indexes,
    accepts only ObjectId `_id`s, commits and aborts transactions without
    effect, has no change streams, and in memory mode keeps nothing across
    kill() + start() (durable = False). Tests that need one of these skip and
    say which."""
    kind = "mongodb"
    durable = False

    @property
    def uri(self):
        return "mongodb://127.0.0.1:%d/?directConnection=true" % self.port

    def start(self):
        install_dir = install_congodb()
        argv = [shutil.which("node") or "node", os.path.join(HERE, "congodb", "server.mjs"), install_dir,
                str(self.port)]
        self._spawn(argv, preexec_fn=_die_with_parent())
        _wait_tcp(self.port, self.proc, READY_DEADLINE_S, "CongoDB", self.log_path)
        return self

    def stop(self):
        self._reap(signal.SIGTERM)

    def kill(self):
        self._reap(signal.SIGKILL)

    # Server features the emulator lacks (checked by hand); a test that needs
    # one says SKIP and names it. A real mongod would list none.
    missing = ["unique indexes (not enforced)", "multi-document transactions (commit/abort are no-ops)",
               "durability across a restart (memory mode)", "change streams", "non-ObjectId _id"]

    def info(self):
        d = super().info()
        d["uri"] = self.uri
        d["server"] = "CongoDB (@push.rocks/smartmongo 2.2.0), a MongoDB-wire emulator"
        d["missing"] = self.missing
        return d


class HAProxy(_Server):
    """haproxy in the foreground (-db) with the configuration `config(port)`
    returns (it must bind 127.0.0.1:port). A `global` section with a stats
    socket in the server's folder is put before it, so servers() can ask
    haproxy what it thinks of each backend server."""
    kind = "haproxy"
    durable = False

    def __init__(self, config, base_dir=None):
        super().__init__(base_dir)
        self.socket_path = os.path.join(self.dir, "admin.sock")
        self.config_path = os.path.join(self.dir, "haproxy.cfg")
        with open(self.config_path, "w") as f:
            f.write("global\n    stats socket %s mode 600 level admin\n\n" % self.socket_path)
            f.write(config(self.port))

    def start(self):
        check = subprocess.run([HAPROXY, "-c", "-f", self.config_path], stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, timeout=30)
        if check.returncode != 0:
            raise RuntimeError("haproxy -c refused the configuration:\n" + check.stdout.decode("utf-8", "replace"))
        self._spawn([HAPROXY, "-db", "-f", self.config_path], preexec_fn=_die_with_parent())
        _wait_tcp(self.port, self.proc, READY_DEADLINE_S, "haproxy", self.log_path)
        return self

    def stop(self):
        self._reap(signal.SIGTERM)

    def kill(self):
        self._reap(signal.SIGKILL)

    def servers(self, backend):
        """{server name: status} of `backend` ("UP", "DOWN", "UP 1/3", ...),
        from `show stat` on the stats socket; {} when haproxy does not answer."""
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                s.settimeout(5)
                s.connect(self.socket_path)
                s.sendall(b"show stat\n")
                data = b""
                while True:
                    chunk = s.recv(65536)
                    if not chunk:
                        break
                    data += chunk
        except OSError:
            return {}
        lines = data.decode("utf-8", "replace").splitlines()
        if not lines or not lines[0].startswith("# "):
            return {}
        fields = lines[0][2:].split(",")
        rows = [dict(zip(fields, line.split(","))) for line in lines[1:] if line]
        return {r["svname"]: r["status"] for r in rows
                if r.get("pxname") == backend and r.get("svname") not in ("FRONTEND", "BACKEND")}


SERVERS = {"redis": RedisServer, "postgres": PostgresServer, "redis-cluster": RedisCluster,
           "mongodb": MongoServer}


def serve(kind):
    """Supervisor mode (see the module docstring)."""
    server = SERVERS[kind](os.environ.get("SWH_SERVER_TMPDIR") or None)

    def reply(obj):
        sys.stdout.write(json.dumps(obj) + "\n")
        sys.stdout.flush()

    try:
        server.start()
        reply(server.info())
        for line in sys.stdin:
            cmd = line.strip()
            verb, _, node = cmd.partition(" ")
            try:
                if node and not isinstance(server, RedisCluster):
                    raise ValueError("only a cluster has nodes: %r" % cmd)
                args = (node,) if node else ()
                if verb == "stop":
                    server.stop(*args)
                elif verb == "kill":
                    server.kill(*args)
                elif verb == "start":
                    server.start(*args)
                elif cmd == "quit":
                    break
                else:
                    raise ValueError("unknown command %r" % cmd)
                reply({"ok": True, "command": cmd})
            except Exception as e:  # report, keep serving
                reply({"ok": False, "command": cmd, "error": str(e)})
    except Exception as e:
        reply({"error": str(e)})
        return 1
    finally:
        server.cleanup()
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] != "serve" or sys.argv[2] not in SERVERS:
        sys.stderr.write("usage: swh_servers.py serve %s\n" % "|".join(SERVERS))
        sys.exit(2)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    sys.exit(serve(sys.argv[2]))
