// swarmhost-plugin-host: the child process of `isolation: process`.
// (A .cc file on purpose: host/CMakeLists.txt puts every isolation/*.cpp
// into swarmhost_core, and a second main() must not land there.)
#include "isolation/plugin_host.hpp"

int main(int argc, char **argv) {
    return swh::isolation::run_plugin_host(argc, argv);
}
