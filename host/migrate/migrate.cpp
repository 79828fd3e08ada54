#include "migrate/migrate.hpp"

#include "manifest/manifest.hpp"
#include "migrate/progress.hpp"
#include "migrate/records.hpp"
#include "util/sha256.hpp"

#include <csignal>
#include <cstdlib>
#include <map>

namespace swh::migrate {

namespace {

// Differences listed in full before the rest are only counted.
constexpr std::size_t kListedProblems = 20;

struct Tally {
    uint64_t sessions = 0, messages = 0, created = 0, resumed = 0, added = 0, already = 0;
    std::vector<std::string> problems; // conflicts and differences, one line each
    Sha256 source_digest, target_digest;
};

void note_problem(Tally &tally, std::string problem) {
    tally.problems.push_back(std::move(problem));
}

// One session: read, write, compare what the target now holds.
void copy_session(loader::StorageInstance &source, loader::StorageInstance &target, const SessionEntry &entry,
                  Tally &tally, const std::function<void()> &after_message) {
    const auto record = read_record(source, entry.id);
    if (!record) {
        note_problem(tally,
                     "session " + entry.id + " was listed by the source but is gone (deleted meanwhile?)");
        return;
    }
    const std::string source_line = encode_record(*record);
    tally.source_digest.update(source_line.data(), source_line.size());
    try {
        const WriteOutcome outcome = write_record(target, *record, after_message);
        tally.target_digest.update(outcome.target_line.data(), outcome.target_line.size());
        ++(outcome.created ? tally.created : tally.resumed);
        tally.added += outcome.added;
        tally.already += outcome.already;
        if (outcome.target_line != source_line)
            note_problem(tally, "session " + entry.id + " differs in the target after the copy (" +
                                    std::to_string(record->messages.size()) + " messages in the source)");
    } catch (const RecordConflict &e) {
        note_problem(tally, "session " + entry.id + " not copied: " + e.what());
    }
    ++tally.sessions;
    tally.messages += record->messages.size();
}

// Counts as each store's own listing reports them, for every source session.
void verify_counts(loader::StorageInstance &target, const std::vector<SessionEntry> &planned, Tally &tally) {
    std::map<std::string, uint64_t> held;
    for (const auto &entry : list_all(target))
        held.emplace(entry.id, entry.message_count);
    for (const auto &entry : planned) {
        const auto it = held.find(entry.id);
        if (it == held.end())
            note_problem(tally, "count check: session " + entry.id + " is missing from the target");
        else if (it->second != entry.message_count)
            note_problem(tally, "count check: session " + entry.id + " has " + std::to_string(it->second) +
                                    " messages in the target, " + std::to_string(entry.message_count) +
                                    " in the source");
    }
}

void report(const Tally &tally, std::ostream &out, std::ostream &err) {
    out << "migrated " << tally.sessions << " sessions, " << tally.messages << " messages (" << tally.created
        << " sessions created, " << tally.resumed << " already there or resumed; " << tally.added
        << " messages written now, " << tally.already << " written by an earlier run)\n";
    for (std::size_t i = 0; i < tally.problems.size() && i < kListedProblems; ++i)
        err << "swarmhost migrate: " << tally.problems[i] << "\n";
    if (tally.problems.size() > kListedProblems)
        err << "swarmhost migrate: … and " << tally.problems.size() - kListedProblems << " more\n";
}

uint64_t total_messages(const std::vector<SessionEntry> &entries) {
    uint64_t total = 0;
    for (const auto &entry : entries)
        total += entry.message_count;
    return total;
}

} // namespace

KillSwitch::KillSwitch() {
    if (const char *value = std::getenv("SWARMHOST_TEST_KILL_AFTER_MESSAGES"))
        after_ = std::strtoull(value, nullptr, 10);
}

void KillSwitch::message_written() {
    if (after_ > 0 && ++written_ == after_) std::raise(SIGKILL);
}

int migrate(const MigrateOptions &options, std::ostream &out, std::ostream &err) {
    std::unique_ptr<loader::StorageInstance> source, target;
    try {
        source = open_storage(options.from, options.extra_plugin_dirs);
        target = open_storage(options.to, options.extra_plugin_dirs);
    } catch (const manifest::ManifestError &e) {
        err << "swarmhost migrate: " << e.what() << "\n";
        return 1;
    }
    Tally tally;
    try {
        const auto planned = list_all(*source);
        Progress progress(err, Progress::stderr_is_terminal(), "migrate", planned.size(),
                          total_messages(planned));
        KillSwitch kill_switch;
        uint64_t written = 0;
        const auto after_message = [&] {
            kill_switch.message_written();
            ++written;
            if (!options.quiet) progress.update(tally.sessions, tally.messages + written);
        };
        for (const auto &entry : planned) {
            written = 0;
            copy_session(*source, *target, entry, tally, after_message);
            if (!options.quiet) progress.update(tally.sessions, tally.messages);
        }
        if (!options.quiet) progress.finish();
        verify_counts(*target, planned, tally);
    } catch (const loader::PluginError &e) {
        report(tally, out, err);
        err << "swarmhost migrate: stopped: " << e.what()
            << "\nswarmhost migrate: run the same command again to resume (what is copied stays)\n";
        return 1;
    }
    report(tally, out, err);
    if (!tally.problems.empty()) {
        err << "swarmhost migrate: verification FAILED: " << tally.problems.size() << " problems\n";
        return 1;
    }
    out << "verified: " << tally.sessions << " sessions and " << tally.messages
        << " messages equal in both stores (content sha256 " << tally.source_digest.hex()
        << " in the source, " << tally.target_digest.hex() << " in the target)\n";
    return 0;
}

} // namespace swh::migrate
