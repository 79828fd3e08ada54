// `swarmhost new-plugin`: writes a buildable out-of-tree plugin folder
// (CMakeLists.txt using find_package(swarmhost-sdk), the source, a README with
// the config schema, and test/manifest.yaml that loads the plugin).
#pragma once

#include <ostream>
#include <string>

namespace swh::daemon {

struct ScaffoldOptions {
    std::string kind;       // "middleware" | "hook"
    std::string name;       // descriptor name, [a-z][a-z0-9_]{0,63}
    std::string lang = "c"; // "c" (C99) | "cpp" (C++20 with swarmhost/cpp/plugin.hpp)
    std::string dir;        // output folder; "" = ./<kind>_<name>
    // Folder holding the host's own plugins (sqlite, echo) for the test
    // manifest; "" = next to the running binary when found.
    std::string host_plugin_dir;
};

// Returns the process exit code; messages go to `out` / `err`.
int new_plugin(const ScaffoldOptions &options, std::ostream &out, std::ostream &err);

} // namespace swh::daemon
