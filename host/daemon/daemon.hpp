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
// `try_create`: also create and destroy each instance, each in a child
// process (isolation/trial.hpp), and name each one that fails.
int check(const std::string &manifest_path, const std::vector<std::string> &extra_plugin_dirs,
          bool try_create = false);
int list_plugins(const std::string &manifest_path, const std::vector<std::string> &plugin_dirs);

} // namespace swh::daemon
