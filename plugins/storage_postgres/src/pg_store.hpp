// The PostgreSQL session store behind the storage ABI (libpq).
//
// Concurrency: every public member may be called from many threads at once.
// Each call leases one connection from a bounded pool (pool_size); every
// statement is prepared once per connection. A message and its session
// counters change in ONE statement (a data-modifying CTE), i.e. one implicit
// transaction: the UPDATE of the session row takes its row lock, so
// concurrent add_message calls on one session serialise on that row, even
// from several daemons.
//
// Event carrier (ABI 1.4): events live in swh_events (session_id, seq) with a
// per-session counter row in swh_event_heads; publishing is one statement
// whose row lock on the counter orders one session's events fleet-wide, and
// whose pg_notify('swh_events', '<session> <seq>') reaches every listening
// daemon at commit (NOTIFY payloads are small, so the event itself is read
// from the table). The listener is a connection of its own, outside the pool.
#pragma once

#include <swarmhost/cpp/connection_pool.hpp>
#include <swarmhost/cpp/storage_plugin.hpp>

#include <libpq-fe.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace swh::postgres {

using store::MessageInput;
using store::MessageQueryInput;
using store::MessageRow;
using store::SessionFilterInput;
using store::SessionInput;
using store::SessionRow;

struct Options {
    std::string conninfo = "host=127.0.0.1 port=5432 dbname=swarmhost";
    int64_t pool_size = 8;
    int64_t connect_timeout_ms = 5000;
    int64_t statement_timeout_ms = 4000; // below call_timeout_ms: the server cancels first, the link stays
    int64_t call_timeout_ms = 5000;      // client side: held even when the server is silent
    int64_t events_retention_seconds = 3600;
    int64_t events_max_per_session = 1000;
};

// One libpq connection with the statements prepared.
class Connection;

class Store {
  public:
    // Connects, creates/migrates the schema, or throws Failure.
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
    void trim_limits_now_and_then();
    void trim_events(Connection &db);
    std::unique_ptr<Connection> connect();
    void migrate(Connection &db);
    Options options_;
    edge::HostLog log_;
    std::string where_; // "host:port/db" for messages, without the password
    store::Pool<Connection> pool_;
    int schema_version_ = 0;
    std::atomic<uint64_t> published_{0};   // every 256th publish trims old events
    std::atomic<uint64_t> limit_calls_{0}; // every 1024th limit call sweeps lapsed ones
    std::mutex watch_mutex_;
    // Last: stopped (joined) before anything it uses is destroyed.
    std::unique_ptr<store::ListenerThread> listener_;
};

} // namespace swh::postgres
