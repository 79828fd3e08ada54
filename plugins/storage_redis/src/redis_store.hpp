// The Redis session store behind the storage ABI (hiredis).
//
// Keys (P = key_prefix). Every key of one session carries the hash tag
// {session_id}, so a session lives in one Cluster slot and its Lua scripts
// touch one slot only:
//   P{sid}:session   hash  the session row (message_count, last_activity, ...)
//   P{sid}:messages  list  one element per message, chronological
//   P{sid}:ids       set   message ids of the session (duplicate check)
// Indexes (score = last_activity, lagging it by at most index_lag_ms), each
// written by its own command (other slots than the session's):
//   P{user:<uid>}:sessions   zset  the user's sessions
//   P{sessions}:all          zset  every session (listing without user_id)
// A list element is "<timestamp> <role>\n<message JSON>", so the scripts can
// filter by time and role without decoding JSON. The message JSON's
// "structured" key (1.3 structured content, as text) is written only when the
// message has some, so elements from before 1.3 are read as plain messages.
//
// Concurrency: every public member may be called from many threads at once;
// each command leases one connection from its node's bounded pool
// (pool_size). Router sends every command to the node serving its key's slot
// (one node, or the masters of a Redis Cluster).
//
// Event carrier (ABI 1.4), keys of the session's slot too:
//   P{sid}:evseq   string  the session's last event number (INCR)
//   P{sid}:events  stream  one entry per event, id "<seq>-0", fields t (ms), p
// One script numbers, appends, trims (events_max_per_session, and entries
// older than events_retention_seconds) and PUBLISHes "<sid> <seq>" on channel
// P + "events"; a listener connection of its own SUBSCRIBEs to it. (On a
// Redis Cluster a classic PUBLISH reaches every node's subscribers; the
// sharded SPUBLISH/SSUBSCRIBE would fit the same layout with the channel
// carrying the slot's hash tag.)
//
// Shared limits (ABI 1.5), one slot per limit (hash tag {limit:<key>}):
//   P{limit:<key>}:n       string  a fixed-window counter (INCRBY, PEXPIRE
//                                  set by the window's first add)
//   P{limit:<key>}:lease   zset    owner -> expiry (ms, the server's TIME)
//   P{limit:<key>}:weight  hash    owner -> units held
// One script drops lapsed owners, sums the weights, checks the limit and
// takes or renews the lease; both keys expire with the last lease.
#pragma once

#include "cluster.hpp"

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

    int64_t counter_add(std::string_view key, int64_t delta, uint32_t window_ms);
    store::LeaseOutcome lease_acquire(const store::LeaseInput &lease);
    void lease_release(std::string_view key, std::string_view owner);

  private:
    // P{limit:<key>}:<suffix>: the keys of one limit share a hash tag (slot).
    std::string limit_key(std::string_view key, const char *suffix) const;
    std::string event_channel() const;
    std::string session_key(std::string_view sid, const char *suffix) const;
    std::string user_index(std::string_view user_id) const;
    std::string all_index() const;
    // Index entries for a session whose last_activity is now `score`. For a
    // `create` (before the session is written): ZADD NX, and a failure
    // throws. Otherwise the session's write is already applied: a failure is
    // logged, and list_sessions repairs the entry.
    void index(std::string_view sid, std::string_view user_id, int64_t score, bool create = false);
    // Commands after an applied write: failures are logged, not returned.
    void best_effort(const std::vector<Keyed> &commands, const char *what);

    Options options_;
    edge::HostLog log_;
    std::string where_;
    Router router_;
    std::mutex watch_mutex_;
    // Last: stopped (joined) before anything it uses is destroyed.
    std::unique_ptr<store::ListenerThread> listener_;
};

} // namespace swh::redis
