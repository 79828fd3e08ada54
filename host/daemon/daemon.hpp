// The `swarmhost` subcommands: serve, check, plugins.
#pragma once

#include <string>
#include <vector>

namespace swh::daemon {

struct ServeOptions {
    std::string manifest_path;
    std::string listen_override; // "" = the manifest's server.listen
    std::vector<std::string> extra_plugin_dirs;
};

// Each returns the process exit code.
int serve(const ServeOptions &options);
int check(const std::string &manifest_path, const std::vector<std::string> &extra_plugin_dirs);
int list_plugins(const std::string &manifest_path, const std::vector<std::string> &plugin_dirs);

} // namespace swh::daemon
