// The MongoDB session store behind the storage ABI (libmongoc 1.23).
//
// Two collections in `database_name` (names from the config, so two
// deployments share a server by database or collection name):
//   <collection_name>     one document per session; our id in `session_id`
//   <message_collection>  one document per message; our id in `message_id`
// `_id` is left to the driver (an ObjectId): our ids are ordinary fields with
// unique indexes, and every create is an upsert on that field
// ($setOnInsert), so a duplicate is found by the upsert's outcome even on a
// server that does not enforce unique indexes (the CongoDB emulator).
//
// add_message is two single-document writes, each atomic: findAndModify on
// the session ($inc message_count and seq, $set last_activity; absent ->
// NOT_FOUND, nothing written), then the message upsert with the returned seq.
// A duplicate message id undoes the first step. The $inc on one document
// serialises the writers of a session like PostgreSQL's row lock; seq orders
// messages with equal timestamps. No multi-document transaction: they need a
// replica set, and the emulator's are no-ops (docs/storage.md says what that
// leaves open).
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
    void undo_count(const Lease &lease, std::string_view sid, int64_t seq, int64_t ts, int64_t old_activity);
    void expiry(Doc &set) const; // appends expires_at when a TTL is set
    [[noreturn]] void fail(const bson_error_t &error, const char *what) const;

    Options options_;
    edge::HostLog log_;
    std::string where_; // hosts and database, without credentials
    Uri uri_;
    ClientPool pool_;
};

} // namespace swh::mongodb
