// One session with all its messages — the unit `swarmhost migrate` copies
// and one line of `swarmhost export` — read from and written to a store
// through the storage ABI, and its JSON line form.
#pragma once

#include "loader/instances.hpp"
#include "model/model.hpp"

#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace swh::migrate {

struct SessionRecord {
    Session session;
    std::vector<Message> messages; // chronological, as the store returns them
};

// What a store listing says of one session, enough to plan a copy.
struct SessionEntry {
    std::string id;
    int64_t created_at = 0;
    uint64_t message_count = 0;
};

// A line that is not a record: the message names the field.
class RecordError : public std::runtime_error {
  public:
    using std::runtime_error::runtime_error;
};

// The target already holds something under a record's ids that is not that
// record (another session, or messages the record lacks): never overwritten.
class RecordConflict : public std::runtime_error {
  public:
    using std::runtime_error::runtime_error;
};

// {"messages":[…],"session":{…},"v":1} on one line, keys sorted, integers
// for times (microseconds): the same record always gives the same bytes.
std::string encode_record(const SessionRecord &record);
// Parses and checks one line (every field present with its type, no unknown
// field, messages belong to the session). Throws RecordError.
SessionRecord decode_record(std::string_view line);

// The storage instance of the manifest at `manifest_path` (its plugin_dirs
// plus `extra_plugin_dirs`), and nothing else of it. Throws ManifestError.
std::unique_ptr<loader::StorageInstance> open_storage(const std::string &manifest_path,
                                                      const std::vector<std::string> &extra_plugin_dirs);

// Every session of the store, oldest created first (then by id), so that an
// export is in the same order whatever store it comes from.
std::vector<SessionEntry> list_all(loader::StorageInstance &store);

// The session and its messages; nullopt when the store has no such session.
std::optional<SessionRecord> read_record(loader::StorageInstance &store, const std::string &session_id);

struct WriteOutcome {
    bool created = false;    // the session was not in the target yet
    std::size_t added = 0;   // messages written now
    std::size_t already = 0; // messages an earlier, interrupted run wrote
    std::string target_line; // the record as the target holds it afterwards
};

// Writes the record to `target` keeping every id, time and field, and
// resumes what an interrupted earlier write left: the session is created
// when absent, messages the target lacks are added in order, then status,
// metadata and last_activity are set as the record has them. Reads the
// result back (target_line) so that the caller can compare. Throws
// RecordConflict when the target holds something else under these ids,
// PluginError when the store fails. `after_message` runs after each message
// written (progress; the tests' interruption point).
WriteOutcome write_record(loader::StorageInstance &target, const SessionRecord &record,
                          const std::function<void()> &after_message = {});

} // namespace swh::migrate
