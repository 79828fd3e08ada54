// The SQLite session store behind the storage ABI.
//
// Concurrency: every public member may be called from many threads at once.
//  - Writes go through one writer connection with GROUP COMMIT: a caller
//    queues its operation; whichever caller finds no commit in progress
//    becomes the leader, takes the queued operations (its own and others'),
//    runs each inside a SAVEPOINT of one BEGIN IMMEDIATE transaction and
//    commits once. Every caller returns only after the transaction holding
//    its operation committed (or with that operation's own error), so one
//    fsync acknowledges a whole batch. `group_commit: false` makes every
//    batch one operation (a commit and an fsync per write).
//  - Reads use a pool of `pool_size` reader connections (WAL lets them run
//    beside the writer). With pool_size 0 (and always for ":memory:") reads
//    run through the writer queue instead.
//  - Results are copied out of SQLite before any host callback runs, so a
//    sink never executes while a connection is held.
#pragma once

#include "sqlite_db.hpp"
#include <swarmhost/cpp/edge.hpp>
#include <swarmhost/cpp/storage_plugin.hpp>

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace swh::sqlite {

struct StoreOptions {
    std::string path = "./data/swarmhost.db";
    int64_t busy_timeout_ms = 5000;
    std::string synchronous = "full"; // "full" | "normal"
    int64_t pool_size = 4;
    // Concurrent writes share one transaction and one fsync (see above);
    // false: every write commits (and fsyncs) on its own.
    bool group_commit = true;
    // Most operations one commit carries; later callers wait for the next.
    int64_t group_commit_max_batch = 256;
};

// The SDK's rows and checked inputs (swarmhost/cpp/storage_plugin.hpp), as
// the other C++ stores use.
using store::MessageInput;
using store::MessageQueryInput;
using store::MessageRow;
using store::SessionFilterInput;
using store::SessionInput;
using store::SessionRow;

// Counters reported to the host after each commit (may be empty).
using CommitObserver = std::function<void(size_t operations)>;

// The Store of the SDK storage template (SWH_CPP_STORAGE in plugin.cpp).
class Store {
  public:
    // Opens (creating parent directories, the file and the schema) or throws
    // Failure.
    Store(StoreOptions options, edge::HostLog log, CommitObserver on_commit);
    // As the template creates it: logs through the host, and counts commits
    // in the host's metrics.
    Store(cpp::Host host, const StoreOptions &options);
    ~Store();
    Store(const Store &) = delete;
    Store &operator=(const Store &) = delete;

    void create_session(const SessionInput &session);
    std::optional<SessionRow> get_session(std::string_view id);
    void update_session(const SessionInput &session, uint32_t fields);
    void delete_session(std::string_view id);
    std::vector<SessionRow> list_sessions(const SessionFilterInput &filter);
    void add_message(const MessageInput &message);
    // Throws Failure(SWH_E_NOT_FOUND) when the session is absent.
    std::vector<MessageRow> get_messages(const MessageQueryInput &query);
    // Health report: the static facts, then the live ones (throws Failure
    // when the database cannot be read).
    int64_t counter_add(std::string_view key, int64_t delta, uint32_t window_ms);
    store::LeaseOutcome lease_acquire(const store::LeaseInput &lease);
    void lease_release(std::string_view key, std::string_view owner);
    void describe(nlohmann::json &report) const;
    void health(nlohmann::json &report);

  private:
    using Operation = std::function<void(Connection &)>;
    struct WriteRequest;
    class ReaderLease;

    void open_writer();
    // Queues `op` and returns once it committed; rethrows its Failure.
    void write(const Operation &op);
    void commit_batch(const std::vector<WriteRequest *> &batch) noexcept;
    // Runs `op` on a reader connection inside a read transaction (one
    // snapshot), or through the writer when there are no readers.
    void read(const Operation &op);

    StoreOptions options_;
    edge::HostLog log_;
    CommitObserver on_commit_;
    size_t max_batch_ = 1; // operations per commit: group_commit_max_batch, or 1 without group commit

    // Writer: used only by the current commit leader.
    std::unique_ptr<Connection> writer_;
    std::mutex write_mutex_;
    std::condition_variable write_cv_;
    std::deque<WriteRequest *> write_queue_;
    bool leader_active_ = false;

    // Reader pool.
    std::mutex read_mutex_;
    std::condition_variable read_cv_;
    std::vector<std::unique_ptr<Connection>> idle_readers_;
    size_t readers_total_ = 0;
};

} // namespace swh::sqlite
