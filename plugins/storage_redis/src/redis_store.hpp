// The Redis session store behind the storage ABI (hiredis).
//
// Keys (P = key_prefix). Every key of one session carries the hash tag
// {session_id}, so a session lives in one Cluster slot and its Lua scripts
// touch one slot only:
//   P{sid}:session   hash  the session row (message_count, last_activity, ...)
//   P{sid}:messages  list  one element per message, chronological
//   P{sid}:ids       set   message ids of the session (duplicate check)
// Indexes (score = last_activity), updated after the session's own script:
//   P{user:<uid>}:sessions   zset  the user's sessions
//   P{sessions}:all          zset  every session (listing without user_id)
// A list element is "<timestamp> <role>\n<message JSON>", so the scripts can
// filter by time and role without decoding JSON. The message JSON's
// "structured" key (1.3 structured content, as text) is written only when the
// message has some, so elements from before 1.3 are read as plain messages.
//
// Concurrency: every public member may be called from many threads at once;
// each call leases one connection from a bounded pool (pool_size).
//
// Event carrier (ABI 1.4), keys of the session's slot too:
//   P{sid}:evseq   string  the session's last event number (INCR)
//   P{sid}:events  stream  one entry per event, id "<seq>-0", fields t (ms), p
// One script numbers, appends, trims (events_max_per_session, and entries
// older than events_retention_seconds) and PUBLISHes "<sid> <seq>" on channel
// P + "events"; a listener connection of its own SUBSCRIBEs to it. (On a
// Redis Cluster the sharded SPUBLISH/SSUBSCRIBE would fit the same layout:
// the channel could carry the slot's hash tag.)
#pragma once

#include <swarmhost/cpp/connection_pool.hpp>
#include <swarmhost/cpp/storage_plugin.hpp>

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace swh::redis {

using store::MessageInput;
using store::MessageQueryInput;
using store::MessageRow;
using store::SessionFilterInput;
using store::SessionInput;
using store::SessionRow;

struct Options {
    std::string host = "127.0.0.1";
    int64_t port = 6379;
    std::string password;
    int64_t db = 0;
    std::string key_prefix = "swarmhost:";
    int64_t ttl_hours = 168;
    int64_t ttl_seconds = 0; // > 0 overrides ttl_hours
    int64_t connect_timeout_ms = 2000;
    int64_t command_timeout_ms = 5000;
    int64_t pool_size = 8;
    int64_t events_retention_seconds = 3600;
    int64_t events_max_per_session = 1000;

    int64_t ttl() const noexcept { return ttl_seconds > 0 ? ttl_seconds : ttl_hours * 3600; }
};

class Connection;

class Store {
  public:
    // Connects once (fails fast on a wrong address or password), or throws.
    Store(Options options, edge::HostLog log);
    Store(cpp::Host host, const Options &options) : Store(options, edge::HostLog(host.raw())) {}
    ~Store();

    void create_session(const SessionInput &s);
    std::optional<SessionRow> get_session(std::string_view id);
    void update_session(const SessionInput &s, uint32_t fields);
    void delete_session(std::string_view id);
    std::vector<SessionRow> list_sessions(const SessionFilterInput &f);
    void add_message(const MessageInput &m);
    std::vector<MessageRow> get_messages(const MessageQueryInput &q);
    void describe(nlohmann::json &report) const;
    void health(nlohmann::json &report);

    uint64_t events_publish(std::string_view session_id, std::string_view payload);
    store::EventPage events_read(std::string_view session_id, uint64_t after_seq, uint32_t limit);
    void events_watch(store::EventWatcher watcher);
    void events_unwatch() noexcept;

  private:
    std::string event_channel() const;
    std::unique_ptr<Connection> connect();
    std::string session_key(std::string_view sid, const char *suffix) const;
    std::string user_index(std::string_view user_id) const;
    std::string all_index() const;
    // Index entries for a session whose last_activity is now `score`.
    void index(Connection &c, std::string_view sid, std::string_view user_id, int64_t score);

    Options options_;
    edge::HostLog log_;
    std::string where_;
    store::Pool<Connection> pool_;
    std::mutex watch_mutex_;
    // Last: stopped (joined) before anything it uses is destroyed.
    std::unique_ptr<store::ListenerThread> listener_;
};

} // namespace swh::redis
