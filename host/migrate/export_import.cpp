#include "migrate/export_import.hpp"

#include "manifest/manifest.hpp"
#include "migrate/migrate.hpp"
#include "migrate/progress.hpp"
#include "migrate/records.hpp"

#include <cstring>
#include <filesystem>
#include <fstream>

namespace swh::migrate {

namespace {

// Bad lines listed in full before the rest are only counted.
constexpr std::size_t kListedProblems = 20;

// Writes every record of `store` to `out`; returns sessions and messages.
std::pair<uint64_t, uint64_t> write_all(loader::StorageInstance &store, std::ostream &out, bool quiet,
                                        std::ostream &err) {
    const auto entries = list_all(store);
    uint64_t total = 0;
    for (const auto &entry : entries)
        total += entry.message_count;
    Progress progress(err, Progress::stderr_is_terminal(), "export", entries.size(), total);
    uint64_t sessions = 0, messages = 0;
    for (const auto &entry : entries) {
        const auto record = read_record(store, entry.id);
        if (!record) continue; // deleted since the listing: not part of the export
        out << encode_record(*record) << '\n';
        ++sessions;
        messages += record->messages.size();
        if (!quiet) progress.update(sessions, messages);
    }
    if (!quiet) progress.finish();
    return {sessions, messages};
}

// The export file appears only when complete: written beside it, then renamed.
class OutputFile {
  public:
    explicit OutputFile(std::string path) : path_(std::move(path)), partial_(path_ + ".partial") {
        stream_.open(partial_, std::ios::binary | std::ios::trunc);
    }
    ~OutputFile() {
        if (!committed_) {
            stream_.close();
            std::error_code ignored;
            std::filesystem::remove(partial_, ignored);
        }
    }
    OutputFile(const OutputFile &) = delete;
    OutputFile &operator=(const OutputFile &) = delete;
    bool is_open() const { return stream_.is_open(); }
    std::ostream &stream() { return stream_; }
    const std::string &partial() const { return partial_; }
    // Flushes, closes and renames; false (errno set) when any of it failed.
    bool commit() {
        stream_.flush();
        const bool written = static_cast<bool>(stream_);
        stream_.close();
        if (!written || stream_.fail()) return false;
        std::error_code ec;
        std::filesystem::rename(partial_, path_, ec);
        committed_ = !ec;
        return committed_;
    }

  private:
    std::string path_, partial_;
    std::ofstream stream_;
    bool committed_ = false;
};

int export_to_file(loader::StorageInstance &store, const ExportOptions &options, std::ostream &err) {
    OutputFile file(options.out);
    if (!file.is_open()) {
        err << "swarmhost export: cannot write " << file.partial() << ": " << std::strerror(errno) << "\n";
        return 1;
    }
    const auto [sessions, messages] = write_all(store, file.stream(), options.quiet, err);
    if (!file.commit()) {
        err << "swarmhost export: writing " << options.out << " failed: " << std::strerror(errno) << "\n";
        return 1;
    }
    err << "exported " << sessions << " sessions, " << messages << " messages to " << options.out << "\n";
    return 0;
}

struct ImportTally {
    uint64_t lines = 0, sessions = 0, messages = 0, added = 0;
    std::vector<std::string> problems;
};

bool blank(const std::string &line) {
    return line.find_first_not_of(" \t\r") == std::string::npos;
}

void import_line(loader::StorageInstance &store, const std::string &line, ImportTally &tally,
                 KillSwitch &kill_switch) {
    const std::string where = "line " + std::to_string(tally.lines) + ": ";
    try {
        const SessionRecord record = decode_record(line);
        const WriteOutcome outcome = write_record(store, record, [&] { kill_switch.message_written(); });
        tally.added += outcome.added;
        if (outcome.target_line != encode_record(record))
            tally.problems.push_back(where + "session " + record.session.id +
                                     " reads back differently from the store");
        ++tally.sessions;
        tally.messages += record.messages.size();
    } catch (const RecordError &e) {
        tally.problems.push_back(where + e.what());
    } catch (const RecordConflict &e) {
        tally.problems.push_back(where + e.what());
    }
}

int import_from(loader::StorageInstance &store, std::istream &in, const ImportOptions &options,
                std::ostream &err) {
    ImportTally tally;
    Progress progress(err, Progress::stderr_is_terminal(), "import", 0, 0);
    KillSwitch kill_switch;
    try {
        for (std::string line; std::getline(in, line);) {
            ++tally.lines;
            if (blank(line)) continue;
            import_line(store, line, tally, kill_switch);
            if (!options.quiet) progress.update(tally.sessions, tally.messages);
        }
    } catch (const loader::PluginError &e) {
        err << "swarmhost import: stopped at line " << tally.lines << ": " << e.what()
            << "\nswarmhost import: run the same command again to resume (what is imported stays)\n";
        return 1;
    }
    if (!options.quiet) progress.finish();
    if (in.bad()) {
        err << "swarmhost import: reading " << options.in << " failed after line " << tally.lines << "\n";
        return 1;
    }
    err << "imported " << tally.sessions << " sessions, " << tally.messages << " messages (" << tally.added
        << " messages written now)\n";
    for (std::size_t i = 0; i < tally.problems.size() && i < kListedProblems; ++i)
        err << "swarmhost import: " << options.in << ": " << tally.problems[i] << "\n";
    if (tally.problems.size() > kListedProblems)
        err << "swarmhost import: … and " << tally.problems.size() - kListedProblems << " more\n";
    if (tally.problems.empty()) return 0;
    err << "swarmhost import: " << tally.problems.size()
        << " lines not imported; the others are, and importing the file again skips them\n";
    return 1;
}

} // namespace

int export_sessions(const ExportOptions &options, std::ostream &stdout_stream, std::ostream &err) {
    try {
        const auto store = open_storage(options.manifest, options.extra_plugin_dirs);
        if (options.out != "-") return export_to_file(*store, options, err);
        const auto [sessions, messages] = write_all(*store, stdout_stream, options.quiet, err);
        stdout_stream.flush();
        if (!stdout_stream) {
            err << "swarmhost export: writing to stdout failed\n";
            return 1;
        }
        err << "exported " << sessions << " sessions, " << messages << " messages\n";
        return 0;
    } catch (const manifest::ManifestError &e) {
        err << "swarmhost export: " << e.what() << "\n";
    } catch (const loader::PluginError &e) {
        err << "swarmhost export: " << e.what() << "\n";
    }
    return 1;
}

int import_sessions(const ImportOptions &options, std::istream &stdin_stream, std::ostream &err) {
    std::ifstream file;
    if (options.in != "-") {
        file.open(options.in, std::ios::binary);
        if (!file.is_open()) {
            err << "swarmhost import: cannot read " << options.in << ": " << std::strerror(errno) << "\n";
            return 1;
        }
    }
    try {
        const auto store = open_storage(options.manifest, options.extra_plugin_dirs);
        return import_from(*store, options.in == "-" ? stdin_stream : file, options, err);
    } catch (const manifest::ManifestError &e) {
        err << "swarmhost import: " << e.what() << "\n";
    }
    return 1;
}

} // namespace swh::migrate
