"""The Debian packages, tested by installing them (tests/packaging/CMakeLists.txt).

cpack builds swarmhost_*.deb and swarmhost-sdk-dev_*.deb from this build
tree once (setUpClass); `dpkg -x` unpacks both into a scratch root ROOT, so
the test machine's /usr is never touched and maintainer scripts do not run
(they are checked with `sh -n` and by lintian). The installed files run from
ROOT: the dynamic loader resolves their libraries on this machine, which is
what an installed package does too.

Paths: the installed manifest names /usr/lib/swarmhost/plugins,
/var/lib/swarmhost/..., /usr/share/swarmhost/templates. The test makes a copy
in which every absolute /usr, /var, /etc path gets the ROOT prefix and
nothing else changes, and requires every /usr path it names to be in ROOT:
a manifest pointing at something the package does not ship fails.

Environment (set by CTest): SWH_BUILD_DIR, SWH_SOURCE_DIR, SWH_CPACK,
SWH_PLUGIN_DIR (the build tree's plugins: each must be in the package).
"""

import glob
import os
import re
import shutil
import socket
import stat
import subprocess
import time
import unittest

import swh_harness as h
from test_service_notify import NotifyingDaemon, fields

SOURCE_DIR = os.environ.get("SWH_SOURCE_DIR") or h.REPO_ROOT
BUILD_DIR = os.environ.get("SWH_BUILD_DIR") or os.path.join(SOURCE_DIR, "build")
CPACK = os.environ.get("SWH_CPACK") or "cpack"
STATE_DIR = "/var/lib/swarmhost"
UNIT = "lib/systemd/system/swarmhost.service"

# lintian tags the packages still carry, each with why it stays; any other
# error or warning fails the test. docs/deployment.md lists the same.
LINTIAN_ACCEPTED = {
    # The changelog closes no "intent to package" bug: these packages are
    # built from this tree for our own deployments, not uploaded to Debian.
    ("swarmhost", "initial-upload-closes-no-bugs"):
        "not uploaded to Debian, so there is no ITP bug to close",
    ("swarmhost-sdk-dev", "initial-upload-closes-no-bugs"):
        "not uploaded to Debian, so there is no ITP bug to close",
}


def run(cmd, timeout=300, check=True, **kw):
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                       timeout=timeout, **kw)
    text = p.stdout.decode("utf-8", "replace")
    if check and p.returncode != 0:
        raise AssertionError("command failed (%d): %s\n%s" % (p.returncode, " ".join(cmd), text[-6000:]))
    return p.returncode, text


def is_elf(path):
    with open(path, "rb") as f:
        return f.read(4) == b"\x7fELF"


def depends_names(field):
    """'libc6 (>= 2.34), a | b (>= 1)' -> {'libc6', 'a', 'b'}"""
    names = set()
    for alternative in re.split(r"[,|]", field):
        name = alternative.strip().split(" ")[0].split(":")[0]
        if name:
            names.add(name)
    return names


def owning_package(path):
    """The installed Debian package that holds `path` (dpkg -S), trying the
    /lib <-> /usr/lib spellings a merged-/usr system has for one file."""
    candidates = [path, os.path.realpath(path)]
    for p in list(candidates):
        if p.startswith("/usr/"):
            candidates.append(p[len("/usr"):])
        else:
            candidates.append("/usr" + p)
    for candidate in candidates:
        code, text = run(["dpkg", "-S", candidate], check=False)
        if code == 0:
            for line in text.splitlines():
                if ": " in line and not line.startswith("diversion"):
                    return line.split(": ", 1)[0].split(",")[0].strip().split(":")[0]
    return None


class DebianPackages(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = h.make_tmpdir("swh-deb-")
        try:
            cls.build_packages()
        except BaseException:
            cls.tearDownClass()  # a setUpClass that raises gets no tearDownClass
            raise

    @classmethod
    def build_packages(cls):
        cls.root = os.path.join(cls.tmp, "root")
        os.makedirs(os.path.join(cls.tmp, "control"))
        out = os.path.join(cls.tmp, "packages")
        started = time.monotonic()
        run([CPACK, "--config", os.path.join(BUILD_DIR, "CPackConfig.cmake"), "-B", out], timeout=540)
        cls.cpack_seconds = time.monotonic() - started
        print("cpack took %.1f s" % cls.cpack_seconds)
        cls.debs = {}
        for name in ("swarmhost", "swarmhost-sdk-dev"):
            found = glob.glob(os.path.join(out, "%s_*.deb" % name))
            if len(found) != 1:
                raise AssertionError("expected one %s_*.deb in %s, found %r" % (name, out, os.listdir(out)))
            cls.debs[name] = found[0]
            run(["dpkg", "-x", found[0], cls.root])
            run(["dpkg-deb", "-e", found[0], os.path.join(cls.tmp, "control", name)])
        # The harness's Daemon runs SWH_BINARY: the installed link.
        os.environ["SWH_BINARY"] = os.path.join(cls.root, "usr/bin/swarmhost")

    @classmethod
    def tearDownClass(cls):
        if os.environ.get("SWH_KEEP_TMP") != "1":
            shutil.rmtree(cls.tmp, ignore_errors=True)

    def in_root(self, path):
        return os.path.join(self.root, path.lstrip("/"))

    def field(self, package, name):
        return run(["dpkg-deb", "-f", self.debs[package], name])[1].strip()

    def package_files(self, package):
        """Paths (no leading ./) the .deb holds, with their type letter."""
        listing = run(["dpkg-deb", "-c", self.debs[package]])[1]
        files = {}
        for line in listing.splitlines():
            parts = line.split(None, 5)
            path = parts[5].split(" -> ")[0]
            files[path[2:].rstrip("/")] = parts[0][0]
        return files

    # ---- what the packages hold

    def test_daemon_package_files(self):
        files = self.package_files("swarmhost")
        expected = ["usr/lib/swarmhost/swarmhost", "usr/lib/swarmhost/swarmhost-plugin-host",
                    "etc/swarmhost/swarmhost.yaml", UNIT, "usr/share/man/man1/swarmhost.1.gz",
                    "usr/share/doc/swarmhost/copyright", "usr/share/doc/swarmhost/changelog.Debian.gz"]
        # Every plugin this build tree made is shipped.
        built = sorted(os.path.basename(p) for p in glob.glob(os.path.join(h.plugin_dir(), "*.so")))
        self.assertGreaterEqual(len(built), 10, "the build tree's plugins: %r" % built)
        expected += ["usr/lib/swarmhost/plugins/" + so for so in built]
        expected += ["usr/share/swarmhost/templates/" + os.path.basename(t)
                     for t in glob.glob(os.path.join(SOURCE_DIR, "configs/templates/*.yaml"))]
        for path in expected:
            self.assertEqual(files.get(path), "-", "%s is not a file of the package" % path)
        self.assertEqual(files.get("usr/bin/swarmhost"), "l")
        self.assertEqual(os.readlink(self.in_root("usr/bin/swarmhost")), "../lib/swarmhost/swarmhost")
        # Nothing of the SDK in the daemon package, and no state dir: the
        # unit's StateDirectory= makes it, owned by the service's user.
        self.assertFalse([f for f in files if f.startswith(("usr/include", "var/"))], sorted(files))
        for helper in ("swarmhost", "swarmhost-plugin-host"):
            mode = os.stat(self.in_root("usr/lib/swarmhost/" + helper)).st_mode
            self.assertTrue(mode & stat.S_IXOTH, helper)

    def test_sdk_package_files(self):
        files = self.package_files("swarmhost-sdk-dev")
        expected = ["usr/lib/cmake/swarmhost-sdk/swarmhost-sdkConfig.cmake",
                    "usr/lib/cmake/swarmhost-sdk/swarmhost-sdkConfigVersion.cmake",
                    "usr/lib/cmake/swarmhost-sdk/SwarmhostPlugin.cmake",
                    "usr/lib/cmake/swarmhost-sdk/swarmhost_exports.map",
                    "usr/share/pkgconfig/swarmhost-sdk.pc", "usr/share/doc/swarmhost-sdk-dev/copyright"]
        for header in glob.glob(os.path.join(SOURCE_DIR, "sdk/include/swarmhost/*.h")):
            expected.append("usr/include/swarmhost/" + os.path.basename(header))
        for header in glob.glob(os.path.join(SOURCE_DIR, "sdk/cpp/include/swarmhost/cpp/*.hpp")):
            expected.append("usr/include/swarmhost/cpp/" + os.path.basename(header))
        for path in expected:
            self.assertEqual(files.get(path), "-", "%s is not a file of the package" % path)
        self.assertFalse([f for f in files if f.endswith((".so", ".a"))], "the SDK links no library")
        self.assertEqual(self.field("swarmhost-sdk-dev", "Architecture"), "all")

    def test_control_files(self):
        control = os.path.join(self.tmp, "control", "swarmhost")
        with open(os.path.join(control, "conffiles")) as f:
            self.assertEqual(f.read().split(), ["/etc/swarmhost/swarmhost.yaml"])
        for script in ("postinst", "prerm", "postrm"):
            path = os.path.join(control, script)
            self.assertTrue(os.stat(path).st_mode & stat.S_IXUSR, script)
            run(["sh", "-n", path])
        self.assertEqual(self.field("swarmhost", "Package"), "swarmhost")
        self.assertRegex(self.field("swarmhost", "Version"), r"^\d+\.\d+\.\d+-1$")

    def test_depends_cover_every_loaded_library(self):
        """Each library an installed ELF file loads belongs to a package
        that Depends names (dpkg-shlibdeps' work, checked from the other
        side with ldd), and no ELF file carries an RPATH."""
        depends = depends_names(self.field("swarmhost", "Depends"))
        self.assertIn("libc6", depends)
        elves = [os.path.join(d, f) for d, _, fs in os.walk(self.in_root("usr/lib/swarmhost")) for f in fs]
        elves = [p for p in elves if os.path.isfile(p) and is_elf(p)]
        self.assertGreaterEqual(len(elves), 12, elves)
        owners = {}
        for elf in elves:
            _, dynamic = run(["readelf", "-d", elf])
            self.assertNotRegex(dynamic, r"\((RPATH|RUNPATH)\)", elf)
            # Only what the file names itself (NEEDED): the libraries those
            # load in turn are their own packages' Depends.
            needed = re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", dynamic)
            _, ldd = run(["ldd", elf])
            self.assertNotIn("not found", ldd, elf)
            resolved = dict(re.findall(r"^\s*(\S+) => (/\S+)", ldd, re.M))
            # The dynamic loader itself: "\t/lib64/ld-linux-x86-64.so.2 (0x…)".
            resolved.update((os.path.basename(p), p) for p in re.findall(r"^\s*(/\S+) \(", ldd, re.M))
            for soname in needed:
                self.assertIn(soname, resolved, "%s: ldd did not resolve %s\n%s" % (elf, soname, ldd))
                owners.setdefault(resolved[soname], set()).add(os.path.basename(elf))
        self.assertIn("libstdc++.so.6", {os.path.basename(p) for p in owners})
        missing = {}
        for library, users in sorted(owners.items()):
            package = owning_package(library)
            self.assertIsNotNone(package, "no installed package holds %s (loaded by %s)" % (library, users))
            # A shlibs file may name a virtual package the owner Provides
            # (libspdlog1.10 provides libspdlog1.10-fmt9).
            _, provides = run(["dpkg-query", "-W", "-f=${Provides}", package])
            if not ({package} | depends_names(provides)) & depends:
                missing[library] = (package, sorted(users))
        self.assertEqual(missing, {}, "libraries whose package is not in Depends (%s)" % sorted(depends))

    # ---- the installed programs

    def rooted_manifest(self, extra=""):
        """The installed manifest with ROOT before every absolute path."""
        with open(self.in_root("etc/swarmhost/swarmhost.yaml")) as f:
            text = f.read()
        paths = re.findall(r'"(/(?:usr|var|etc)/[^"]*)"', text)
        self.assertIn("/usr/lib/swarmhost/plugins", paths)
        self.assertIn(STATE_DIR + "/swarmhost.db", paths)
        for path in paths:
            if path.startswith("/usr/"):
                self.assertTrue(os.path.isdir(self.in_root(path)), "the manifest names %s, not shipped" % path)
            else:
                self.assertTrue(path.startswith(STATE_DIR + "/"), "%s: only the state dir is writable" % path)
        rooted = re.sub(r'"(/(?:usr|var|etc)/[^"]*)"', lambda m: '"%s"' % self.in_root(m.group(1)), text)
        return rooted + extra

    def test_installed_check(self):
        manifest = self.in_root("etc/swarmhost/swarmhost.yaml")
        # The installed manifest itself, its plugin dir given on the side.
        code, text = self.cli(["check", manifest, "--plugin-dir", self.in_root("usr/lib/swarmhost/plugins")])
        self.assertEqual(code, 0, text)
        self.assertIn("OK (storage sqlite, 1 providers", text)
        # The rooted copy, every instance created in a child process: the
        # installed swarmhost-plugin-host runs each one.
        copy = os.path.join(self.tmp, "check.yaml")
        with open(copy, "w") as f:
            f.write(self.rooted_manifest())
        os.makedirs(self.in_root(STATE_DIR), exist_ok=True)
        code, text = self.cli(["check", copy, "--try-create"])
        self.assertEqual(code, 0, text)
        for instance in ("sqlite", "echo", "templated", "collaborative", "multimodal"):
            self.assertRegex(text, r"ok: .*%s.* created and destroyed" % instance)

    def cli(self, args):
        code, text = run([self.in_root("usr/bin/swarmhost")] + args, check=False, timeout=60)
        return code, text

    def serve(self, manifest, extra_args=()):
        """The installed daemon on a free port, ready as systemd would see it
        (READY=1 on its NOTIFY_SOCKET), in ROOT's state dir."""
        os.makedirs(self.in_root(STATE_DIR), exist_ok=True)
        notify = os.path.join(self.tmp, "notify-%d.sock" % len(os.listdir(self.tmp)))
        sock = socket_bound(notify)
        self.addCleanup(sock.close)
        daemon = NotifyingDaemon(notify, extra_args=extra_args, manifest="")
        with open(daemon.manifest_path, "w") as f:
            f.write(manifest)
        self.addCleanup(daemon.cleanup)
        daemon.spawn()
        try:
            ready = fields(sock.recv(4096))
        except OSError:
            self.fail("the installed daemon sent no READY=1\n" + daemon.log_tail())
        self.assertEqual(ready.get("READY"), "1", ready)
        return daemon

    def test_installed_daemon_tour(self):
        daemon = self.serve(self.rooted_manifest())
        c = daemon.client
        self.assertEqual(daemon.healthz().status, 200)
        s = c.create_session("alice")
        self.assertEqual(s["provider"], "echo")
        r = c.send(s["id"], "hello world")
        self.assertIn(r.status, (200, 201), r)
        self.assertEqual(r.json["assistant_message"]["content"], "echo#1 hello world")
        stream = c.stream("/v1/sessions/%s/messages" % s["id"], {"content": "stream this", "stream": True})
        names = [e.event for e in stream.read_all()]
        self.assertEqual(names[0], "user_message", names)
        self.assertIn("chunk", names)
        self.assertEqual(names[-2:], ["assistant_message", "done"], names)
        history = c.messages(s["id"], "?limit=10&role=assistant")
        self.assertEqual([m["content"] for m in history], ["echo#1 hello world", "echo#2 stream this"])
        plugins = c.get("/v1/plugins")
        self.assertEqual(plugins.status, 200, plugins)
        for name in ("sqlite", "echo", "templated", "collaborative", "multimodal"):
            self.assertIn('"%s"' % name, plugins.raw.decode())
        self.assertEqual(c.post("/v1/sessions/%s/archive" % s["id"]).status, 200)
        self.assertIn(c.delete("/v1/sessions/%s" % s["id"]).status, (200, 204))
        # The web console is compiled into the installed binary (no files
        # outside it to ship).
        console = c.get("/console")
        self.assertEqual(console.status, 200, console)
        self.assertIn("text/html", console.content_type)
        # The store is where the manifest says: the state directory.
        self.assertTrue(os.path.isfile(self.in_root(STATE_DIR + "/swarmhost.db")))
        self.assertEqual(daemon.stop(), 0, daemon.log_tail())

    # ---- the SDK package

    def test_example_builds_against_installed_sdk(self):
        prefix = self.in_root("usr")
        example = os.path.join(SOURCE_DIR, "examples", "middleware_word_guard")
        build = os.path.join(self.tmp, "word_guard")
        # CMAKE_FIND_USE_*: only the scratch root, never this tree's sdk/ or
        # a /usr/local install, may satisfy find_package.
        run(["cmake", "-S", example, "-B", build, "-DCMAKE_BUILD_TYPE=Release", "-DCMAKE_PREFIX_PATH=" + prefix,
             "-DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF", "-DCMAKE_FIND_USE_SYSTEM_PACKAGE_REGISTRY=OFF"])
        with open(os.path.join(build, "CMakeCache.txt")) as f:
            self.assertIn("swarmhost-sdk_DIR:PATH=%s/lib/cmake/swarmhost-sdk" % prefix, f.read())
        run(["cmake", "--build", build, "-j", "2"])
        # pkg-config finds the same installed headers.
        env = dict(os.environ, PKG_CONFIG_PATH=os.path.join(prefix, "share", "pkgconfig"), PKG_CONFIG_LIBDIR="")
        _, cflags = run(["pkg-config", "--cflags", "swarmhost-sdk"], env=env)
        self.assertEqual([os.path.realpath(flag[2:]) for flag in cflags.split()], [os.path.join(prefix, "include")])
        out = os.path.join(self.tmp, "pc", "word_guard.so")
        os.makedirs(os.path.dirname(out))
        _, exports = run(["pkg-config", "--variable=exports_map", "swarmhost-sdk"], env=env)
        run(["cc", "-std=c99", "-Wall", "-Wextra", "-pedantic", "-Werror", "-shared", "-fPIC",
             "-fvisibility=hidden", "-Wl,--version-script=" + exports.strip()] + cflags.split() +
            [os.path.join(example, "word_guard.c"), "-o", out])
        code, text = self.cli(["plugins", "--plugin-dir", os.path.dirname(out)])
        self.assertEqual(code, 0, text)
        self.assertIn("word_guard", text)
        # The installed daemon runs it: the masking middleware rewrites a send.
        middleware = ('middleware:\n  - plugin: word_guard\n    config: { blocked_words: ["forbidden"], '
                      'mask_words: ["darn"], mask: "[masked]" }\n')
        daemon = self.serve(self.rooted_manifest(middleware), extra_args=["--plugin-dir", build])
        c = daemon.client
        s = c.create_session("sdk-user")
        self.assertIn(c.send(s["id"], "well DARN it").status, (200, 201))
        user = [m for m in c.messages(s["id"]) if m["role"] == "user"]
        self.assertEqual(user[-1]["content"], "well [masked] it")
        self.assertEqual(daemon.stop(), 0, daemon.log_tail())

    # ---- the Debian tools' verdicts

    def test_lintian(self):
        tags = {}
        for name, deb in sorted(self.debs.items()):
            _, text = run(["lintian", "--no-tag-display-limit", deb], check=False, timeout=300)
            for line in text.splitlines():
                match = re.match(r"^([EW]): (\S+?)(?: \w+)?: (\S+)(.*)$", line)
                if match:
                    tags.setdefault((name, match.group(3)), []).append(line)
            print("lintian %s:\n%s" % (os.path.basename(deb), text or "(clean)"))
        unexpected = {key: lines for key, lines in tags.items() if key not in LINTIAN_ACCEPTED}
        self.assertEqual(unexpected, {}, "lintian errors/warnings not accepted in LINTIAN_ACCEPTED")

    def test_systemd_analyze_verify(self):
        if shutil.which("systemd-analyze") is None:
            self.skipTest("systemd-analyze is not installed (package systemd; tools/install-deps.sh --test "
                          "installs it): the unit was not verified")
        # verify checks that ExecStart's program exists: the copy names the
        # scratch root's, nothing else changes. --root= would need a whole
        # systemd tree (sysinit.target…) inside the scratch root; --man=no:
        # the man page is checked as a file of the package, not installed here.
        with open(self.in_root(UNIT)) as f:
            unit = f.read()
        self.assertEqual(unit.count("ExecStart=/usr/bin/swarmhost "), 1)
        folder = os.path.join(self.tmp, "unit")
        os.makedirs(folder)
        with open(os.path.join(folder, "swarmhost.service"), "w") as f:
            f.write(unit.replace("ExecStart=/usr/bin/swarmhost ", "ExecStart=%s " % self.in_root("usr/bin/swarmhost")))
        code, text = run(["systemd-analyze", "verify", "--man=no", os.path.join(folder, "swarmhost.service")],
                         check=False, timeout=120)
        # systemd reports a bad line and goes on ("ignoring", exit 0): any
        # word about the unit is a failure.
        self.assertEqual([line for line in text.splitlines() if "swarmhost" in line], [], text)
        self.assertEqual(code, 0, text)


def socket_bound(path):
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(h.START_DEADLINE_S)
    return sock


if __name__ == "__main__":
    unittest.main()
