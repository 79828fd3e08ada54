// `isolation: process` for storage, middleware, hook and session type
// plugins: the daemon keeps a stand-in library whose kind table forwards
// every call to a child process (swarmhost-plugin-host) that loads the real
// plugin. A crash or a hang of the plugin costs the call (SWH_E_UNAVAILABLE /
// SWH_E_TIMEOUT) and a restart of the child, never the daemon. Providers are
// not covered: they answer through asynchronous callbacks long after their
// call returned, and the wire is one request, one reply.
// See docs/reliability.md.
#pragma once

#include "loader/plugin_library.hpp"

#include <memory>
#include <string>

namespace swh::isolation {

// The kinds isolate() accepts, as the manifest error names them.
inline constexpr const char *kIsolatedKinds = "storage, middleware, hook and session type";
bool supports_isolation(uint32_t kind);
// Why `isolation: process` is refused for `kind` (the manifest error).
std::string isolation_refusal(uint32_t kind);

// The plugin host executable: $SWH_PLUGIN_HOST when set, else
// swarmhost-plugin-host next to the running executable.
std::string plugin_host_path();

// A stand-in for `real` (same name, kind, schema, file, sha256) whose
// instances each run in their own child process; every call waits at most
// `timeout_ms` for its answer. Throws loader::LoadError when the kind is a
// provider (see above), or the plugin host executable is missing.
std::shared_ptr<loader::PluginLibrary> isolate(std::shared_ptr<loader::PluginLibrary> real, int timeout_ms);

} // namespace swh::isolation
