// `isolation: process` for storage, middleware, hook, session type and
// provider plugins: the daemon keeps a stand-in library whose kind table
// forwards every call to a child process (swarmhost-plugin-host) that loads
// the real plugin. A crash or a hang of the plugin costs the call
// (SWH_E_UNAVAILABLE / SWH_E_TIMEOUT) and a restart of the child, never the
// daemon. A provider's calls stream: its channel is multiplexed
// (provider_process.hpp), every other kind's is one request, one reply
// (plugin_process.hpp). See docs/reliability.md.
#pragma once

#include "loader/plugin_library.hpp"

#include <memory>
#include <string>

namespace swh::isolation {

// The kinds isolate() accepts, as the manifest error names them.
inline constexpr const char *kIsolatedKinds = "storage, middleware, hook, session type and provider";
bool supports_isolation(uint32_t kind);
// Why `isolation: process` is refused for `kind` (the manifest error).
std::string isolation_refusal(uint32_t kind);

// The plugin host executable: $SWH_PLUGIN_HOST when set, else
// swarmhost-plugin-host next to the running executable.
std::string plugin_host_path();

// A stand-in for `real` (same name, kind, schema, file, sha256) whose
// instances each run in their own child process; every call waits at most
// `timeout_ms` for its answer (a provider's stream: for any frame, see
// provider_process.hpp). Throws loader::LoadError when the plugin host
// executable is missing.
std::shared_ptr<loader::PluginLibrary> isolate(std::shared_ptr<loader::PluginLibrary> real, int timeout_ms);

} // namespace swh::isolation
