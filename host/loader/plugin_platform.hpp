// What the plugin loader does differently per operating system, in one
// place: which files are plugin libraries, when a file is unsafe to load,
// and the native loader's own reason for a failed load. POSIX and Windows
// (mingw-w64) builds compile this; tests/windows cross-compiles it.
#pragma once

#include <filesystem>
#include <string>

namespace swh::loader::platform {

// .so, .dylib or .dll: one list on every platform, so a plugin folder reads
// the same everywhere (a library for another system then fails to load with
// the loader's reason, which is clearer than being silently ignored).
bool is_plugin_library(const std::filesystem::path &file);

// Why `file` must not be loaded ("" = fine).
// POSIX: the file or its folder is world-writable (a sticky folder such as
// /tmp is fine), or the file is owned by neither the daemon's user nor root.
// Windows: the file's or its folder's DACL grants write access (or the right
// to replace the file) to Everyone, Authenticated Users or Users.
std::string unsafe_file_reason(const std::string &file);

// The native loader's message for why `file` does not load (dlerror's
// "invalid ELF header" or a missing dependency by name; Windows'
// FormatMessage text for LoadLibrary's error), or `fallback` when it loads.
std::string native_load_error(const std::string &file, const std::string &fallback);

} // namespace swh::loader::platform
