// The MongoDB session store behind the storage ABI (libmongoc 1.23).
//
// Two collections in `database_name` (names from the config, so two
// deployments share a server by database or collection name):
//   <collection_name>     one document per session; our id in `session_id`
//   <message_collection>  one document per message; our id in `message_id`
// `_id` is an ObjectId (a session's from the server, a message's made by the
// writer): our ids are ordinary fields with unique indexes, and every create
// is an upsert on that field
// ($setOnInsert), so a duplicate is found by the upsert's outcome even on a
// server that does not enforce unique indexes (the CongoDB emulator).
//
// add_message writes the message first (the upsert, marked counted: false),
// then counts it on the session: $inc message_count and $push its id to
// counted_ids (the last kCountedWindow ids), matched only while the id is not
// there yet, so counting twice is impossible; then marks the message counted.
// A writer cut off between those steps (lost connection, killed daemon)
// leaves an uncounted message, which the next get_session counts. No
// multi-document transaction: they need a replica set, and the emulator's are
// no-ops (docs/storage.md says what that leaves open). Messages with equal
// timestamps are ordered by their ObjectId, made by the writer.
//
// Concurrency: every public member may be called from many threads at once;
// each call pops one client from the driver's pool (pool_size).
#pragma once

#include "bson_raii.hpp"

#include <swarmhost/cpp/storage_plugin.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace swh::mongodb {

using store::MessageInput;
using store::MessageQueryInput;
using store::MessageRow;
using store::SessionFilterInput;
using store::SessionInput;
using store::SessionRow;

struct Options {
    std::string connection_string = "mongodb://127.0.0.1:27017";
    std::string database_name = "swarmhost";
    std::string collection_name = "sessions";
    std::string message_collection = "messages";
    std::string write_concern = "majority"; // "majority" or a number of members
    bool journal = true;
    int64_t write_timeout_ms = 5000;
    std::string read_preference = "primary";
    int64_t pool_size = 8;
    int64_t connect_timeout_ms = 2000;
    int64_t server_selection_timeout_ms = 5000;
    int64_t socket_timeout_ms = 5000;
    int64_t operation_timeout_ms = 4000; // maxTimeMS, below socket_timeout_ms
    int64_t ttl_hours = 0;
    int64_t ttl_seconds = 0; // > 0 overrides ttl_hours

    int64_t ttl() const noexcept { return ttl_seconds > 0 ? ttl_seconds : ttl_hours * 3600; }
};

// How many of a session's last counted message ids it keeps (counted_ids):
// a message is counted at most once as long as its repair comes within this
// many messages of the session (the next get_session).
constexpr int32_t kCountedWindow = 256;

class Store {
  public:
    // Connects, creates the indexes (idempotent), or throws Failure.
    Store(Options options, edge::HostLog log);
    Store(cpp::Host host, const Options &options) : Store(options, edge::HostLog(host.raw())) {}

    void create_session(const SessionInput &s);
    std::optional<SessionRow> get_session(std::string_view id);
    void update_session(const SessionInput &s, uint32_t fields);
    void delete_session(std::string_view id);
    std::vector<SessionRow> list_sessions(const SessionFilterInput &f);
    void add_message(const MessageInput &m);
    std::vector<MessageRow> get_messages(const MessageQueryInput &q);
    void describe(nlohmann::json &report) const;
    void health(nlohmann::json &report);

  private:
    Collection sessions(const Lease &lease) const;
    Collection messages(const Lease &lease) const;
    void create_indexes();
    bool session_exists(const Lease &lease, std::string_view id);
    void insert_once(mongoc_collection_t *collection, const Doc &filter, const Doc &doc,
                     const std::string &what, const char *step);
    bool count(const Lease &lease, std::string_view sid, std::string_view mid, int64_t ts);
    void mark_counted(const Lease &lease, std::string_view mid);
    void count_stragglers(const Lease &lease, std::string_view sid);
    void expiry(Doc &set) const; // appends expires_at when a TTL is set
    [[noreturn]] void fail(const bson_error_t &error, const char *what) const;

    Options options_;
    edge::HostLog log_;
    std::string where_; // hosts and database, without credentials
    Uri uri_;
    ClientPool pool_;
};

} // namespace swh::mongodb
