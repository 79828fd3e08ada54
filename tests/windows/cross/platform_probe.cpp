// platform_probe.exe <file>...: runs the loader's Windows platform code
// (host/loader/plugin_platform.cpp, the real translation unit) on each file
// and prints one line per file, for tests/windows under wine64.
#include "loader/plugin_platform.hpp"

#include <cstdio>

int main(int argc, char **argv) {
    namespace platform = swh::loader::platform;
    for (int i = 1; i < argc; ++i) {
        const std::string file = argv[i];
        std::printf("%s | plugin_library=%d | unsafe=[%s] | load=[%s]\n", file.c_str(),
                    platform::is_plugin_library(file) ? 1 : 0, platform::unsafe_file_reason(file).c_str(),
                    platform::native_load_error(file, "loads").c_str());
    }
    return 0;
}
