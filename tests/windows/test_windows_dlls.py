"""Windows .dll plugins, cross-built with Debian's mingw-w64: configures
tests/windows/cross with cmake/toolchains/mingw-w64-x86_64.cmake, builds it,
and reads each DLL's export and import tables with the mingw `objdump -p`.

Environment (set by CTest, see CMakeLists.txt):
  SWH_SOURCE_DIR      the repository root
  SWH_MINGW_OBJDUMP   x86_64-w64-mingw32-objdump
  SWH_TEST_TMPDIR     where the cross build goes (removed unless SWH_KEEP_TMP=1)
"""

import os
import re
import shutil
import subprocess
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE_DIR = os.environ.get("SWH_SOURCE_DIR") or os.path.abspath(os.path.join(HERE, "..", ".."))
OBJDUMP = os.environ.get("SWH_MINGW_OBJDUMP") or "x86_64-w64-mingw32-objdump"
TOOLCHAIN = os.path.join(SOURCE_DIR, "cmake", "toolchains", "mingw-w64-x86_64.cmake")
# Debian's header-only trees the cross build may see (never all of /usr/include).
HEADER_TREES = ("boost", "nlohmann", "spdlog", "fmt", "yaml-cpp")
PLUGINS = ("swh_middleware_word_guard.dll", "swh_storage_memory.dll", "swh_provider_echo.dll")
# What a plugin DLL may import: Windows' own DLLs (msvcrt is mingw's C runtime).
SYSTEM_DLLS = {"kernel32.dll", "msvcrt.dll", "advapi32.dll", "user32.dll", "ws2_32.dll", "bcrypt.dll"}


def run(cmd):
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=840)
    text = p.stdout.decode("utf-8", "replace")
    if p.returncode != 0:
        raise AssertionError("command failed (%d): %s\n%s" % (p.returncode, " ".join(cmd), text[-6000:]))
    return text


def pe_tables(dll):
    """(exported names, imported DLL names) from `objdump -p`."""
    text = run([OBJDUMP, "-p", dll])
    is_pe = "file format pei-x86-64" in text
    exports = []
    if "[Ordinal/Name Pointer] Table" in text:
        table = text.split("[Ordinal/Name Pointer] Table", 1)[1]
        for line in table.splitlines()[1:]:
            m = re.match(r"\s+\[\s*\d+\]\s+(\S+)\s*$", line)
            if not m:
                break
            exports.append(m.group(1))
    imports = [m.group(1) for m in re.finditer(r"DLL Name: (\S+)", text)]
    return is_pe, exports, imports


class WindowsCrossBuild(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        # A fixed path (not mkdtemp's random one): the compile commands then
        # repeat from run to run, so ccache can serve the second cold build.
        cls.tmp = os.path.join(os.environ.get("SWH_TEST_TMPDIR") or tempfile.gettempdir(), "swh-win-cross")
        shutil.rmtree(cls.tmp, ignore_errors=True)
        os.makedirs(cls.tmp)
        shim = os.path.join(cls.tmp, "header-shim")
        os.makedirs(shim)
        for tree in HEADER_TREES:
            os.symlink(os.path.join("/usr/include", tree), os.path.join(shim, tree))
        cls.build = os.path.join(cls.tmp, "build")
        configure = ["cmake", "-S", os.path.join(HERE, "cross"), "-B", cls.build, "-DCMAKE_BUILD_TYPE=Release",
                     "-DCMAKE_TOOLCHAIN_FILE=" + TOOLCHAIN, "-DSWH_SOURCE_DIR=" + SOURCE_DIR,
                     "-DSWH_HEADER_SHIM=" + shim]
        if shutil.which("ninja"):
            configure += ["-G", "Ninja"]
        if shutil.which("ccache"):
            configure += ["-DCMAKE_C_COMPILER_LAUNCHER=ccache", "-DCMAKE_CXX_COMPILER_LAUNCHER=ccache"]
        run(configure)
        cls.log = run(["cmake", "--build", cls.build, "-j", "2"])

    @classmethod
    def tearDownClass(cls):
        if os.environ.get("SWH_KEEP_TMP") != "1":
            shutil.rmtree(cls.tmp, ignore_errors=True)

    def test_plugins_export_only_the_entry_point(self):
        for name in PLUGINS:
            with self.subTest(dll=name):
                is_pe, exports, _ = pe_tables(os.path.join(self.build, "plugins", name))
                self.assertTrue(is_pe, name + " is not a PE32+ x86-64 image")
                # Exactly one name: no C++ symbol (mangled _Z..., libstdc++
                # instantiations) and no helper leaks into the export table.
                self.assertEqual(exports, ["swh_plugin_entry"], name)

    def test_plugins_need_only_windows_dlls(self):
        # libgcc, libstdc++ and winpthreads are linked in (-static), so the
        # DLL loads on a Windows without mingw's runtime DLLs.
        for name in PLUGINS:
            with self.subTest(dll=name):
                _, _, imports = pe_tables(os.path.join(self.build, "plugins", name))
                self.assertIn("kernel32.dll", [i.lower() for i in imports], name)
                self.assertEqual([i for i in imports if i.lower() not in SYSTEM_DLLS], [], name)

    def test_entry_without_swh_export_is_not_exported(self):
        # The negative control: ld's auto-export is off, so the check above
        # can fail, and a plugin that forgot SWH_EXPORT exports nothing.
        _, exports, _ = pe_tables(os.path.join(self.build, "control", "swh_win_no_export.dll"))
        self.assertEqual(exports, [])

    def test_loader_compiles_its_windows_branch(self):
        objects = {}
        for root, _, files in os.walk(os.path.join(self.build, "CMakeFiles", "swh_win_loader.dir")):
            for f in files:
                if f.endswith(".obj"):
                    objects[f] = os.path.join(root, f)
        self.assertEqual(sorted(objects), ["plugin_library.cpp.obj", "plugin_platform.cpp.obj"])
        symbols = run([OBJDUMP, "-t", objects["plugin_platform.cpp.obj"]])
        # The _WIN32 branch was compiled: the Windows calls, not the POSIX ones.
        for call in ("GetNamedSecurityInfoA", "LoadLibraryA", "FormatMessageA"):
            self.assertIn(call, symbols)
        for call in ("dlopen", "geteuid"):
            self.assertNotIn(call, symbols)

    def wine(self, *args):
        """Runs a program of the cross build under wine64 (stretch goal: the
        DLLs and the loader's platform code run on Windows). Skips without it."""
        wine = shutil.which("wine64") or "/usr/lib/wine/wine64"  # Debian's wine64 is not on PATH
        if not os.access(wine, os.X_OK):
            self.skipTest("wine64 not installed (apt-get install wine64): built and inspected, not run")
        env = dict(os.environ, WINEPREFIX=os.path.join(self.tmp, "wineprefix"), WINEDEBUG="-all")
        p = subprocess.run([wine] + list(args), env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           timeout=300)
        out = p.stdout.decode("utf-8", "replace").replace("\r\n", "\n")
        self.assertEqual(p.returncode, 0, out)
        return out

    def test_plugins_load_under_wine(self):
        # The daemon has no Windows build, so load_probe.exe stands in for the
        # host: LoadLibrary, the descriptor, and word_guard driven through a
        # small host table.
        probe = os.path.join(self.build, "load_probe.exe")
        expected = {"swh_middleware_word_guard.dll": "name=word_guard version=0.1.0 kind=3 abi=1.0 fields=3",
                    "swh_storage_memory.dll": "name=memory version=0.1.0 kind=1",
                    "swh_provider_echo.dll": "name=echo version="}
        for name in PLUGINS:
            with self.subTest(dll=name):
                out = self.wine(probe, os.path.join(self.build, "plugins", name))
                self.assertIn(expected[name], out)
                if name == "swh_middleware_word_guard.dll":
                    for line in ("set_content: well *** it", 'merge_metadata: {"word_guard":{"masked":1}}',
                                 "reject: contains a blocked word: forbidden", "destroyed"):
                        self.assertIn(line, out)

    def test_loader_platform_code_under_wine(self):
        # wine maps Unix modes to DACLs: o+w becomes write access for
        # Everyone, which the Windows branch must refuse.
        root = os.path.join(self.tmp, "perm")
        ok, shared = os.path.join(root, "ok"), os.path.join(root, "shared")
        os.makedirs(ok)
        os.makedirs(shared)
        os.chmod(ok, 0o755)
        os.chmod(shared, 0o777)  # not sticky: anyone may replace files
        dll = os.path.join(self.build, "plugins", "swh_middleware_word_guard.dll")
        files = {"good": os.path.join(ok, "good.dll"), "open_file": os.path.join(ok, "open.dll"),
                 "open_folder": os.path.join(shared, "swapped.dll"), "garbage": os.path.join(ok, "garbage.dll"),
                 "missing": os.path.join(ok, "missing.dll"), "text": os.path.join(ok, "notes.txt")}
        for key in ("good", "open_file", "open_folder"):
            shutil.copy(dll, files[key])
        os.chmod(files["open_file"], 0o666)
        for key in ("garbage", "text"):
            with open(files[key], "w") as f:
                f.write("not a PE image\n")
        win = {k: "Z:" + v.replace("/", "\\") for k, v in files.items()}
        out = self.wine(os.path.join(self.build, "platform_probe.exe"), *[win[k] for k in files])
        lines = {k: next(l for l in out.splitlines() if l.startswith(win[k] + " |")) for k in files}
        self.assertIn("| plugin_library=1 | unsafe=[] | load=[loads]", lines["good"])
        self.assertIn("refusing a plugin file that Everyone may modify", lines["open_file"])
        self.assertIn("where Everyone may replace files", lines["open_folder"])
        self.assertNotIn("load=[loads]", lines["garbage"])  # LoadLibrary's own reason instead
        self.assertNotIn("load=[loads]", lines["missing"])
        self.assertIn("plugin_library=0", lines["text"])
        self.assertIn("plugin_library=1", lines["missing"])

    def test_headers_compile_as_c99_and_cxx20(self):
        for obj in ("headers.c.obj", "headers.cpp.obj"):
            self.assertTrue(os.path.exists(os.path.join(self.build, "CMakeFiles", "swh_win_headers.dir", obj)), obj)


if __name__ == "__main__":
    unittest.main()
