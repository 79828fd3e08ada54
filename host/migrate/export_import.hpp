// `swarmhost export` / `swarmhost import`: sessions as JSON lines, one session
// with its messages per line (records.hpp has the format), for backups and
// moving between machines. export → import → export gives the same bytes.
#pragma once

#include <istream>
#include <ostream>
#include <string>
#include <vector>

namespace swh::migrate {

struct ExportOptions {
    std::string manifest;
    std::string out = "-"; // a file (written whole, then renamed into place) or "-" = stdout
    std::vector<std::string> extra_plugin_dirs;
    bool quiet = false;
};

struct ImportOptions {
    std::string manifest;
    std::string in = "-"; // a file or "-" = stdin
    std::vector<std::string> extra_plugin_dirs;
    bool quiet = false;
};

// Exit code 0, or 1 (store, file, bad line, conflict); `err` says why.
// `stdout_stream` / `stdin_stream` serve "-".
int export_sessions(const ExportOptions &options, std::ostream &stdout_stream, std::ostream &err);
int import_sessions(const ImportOptions &options, std::istream &stdin_stream, std::ostream &err);

} // namespace swh::migrate
