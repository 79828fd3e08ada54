// The SQLite session store behind the storage ABI.
//
// Concurrency: every public member may be called from many threads at once.
//  - Writes go through one writer connection with GROUP COMMIT: a caller
//    queues its operation; whichever caller finds no commit in progress
//    becomes the leader, takes the queued operations (its own and others'),
//    runs each inside a SAVEPOINT of one BEGIN IMMEDIATE transaction and
//    commits once. Every caller returns only after the transaction holding
//    its operation committed (or with that operation's own error), so one
//    fsync acknowledges a whole batch.
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
};

// Owned copies of rows; view() borrows from the row for one sink call (the
// SDK's, as the other C++ stores use).
using SessionRow = swh::store::SessionRow;
using MessageRow = swh::store::MessageRow;

struct HealthInfo {
    std::string journal_mode;
    int64_t sessions = 0;
};

// Counters reported to the host after each commit (may be empty).
using CommitObserver = std::function<void(size_t operations)>;

class Store {
  public:
    // Opens (creating parent directories, the file and the schema) or throws
    // Failure.
    Store(StoreOptions options, edge::HostLog log, CommitObserver on_commit);
    ~Store();
    Store(const Store &) = delete;
    Store &operator=(const Store &) = delete;

    const StoreOptions &options() const noexcept { return options_; }
    size_t reader_count() const noexcept { return readers_total_; }

    void create_session(const swh_session &session);
    std::optional<SessionRow> get_session(std::string_view id);
    void update_session(const swh_session &session, uint32_t fields);
    void delete_session(std::string_view id);
    std::vector<SessionRow> list_sessions(std::string_view user_id, std::string_view status, uint32_t limit,
                                          uint32_t offset);
    void add_message(const swh_message &message);
    // Throws Failure(SWH_E_NOT_FOUND) when the session is absent.
    std::vector<MessageRow> get_messages(std::string_view session_id, std::string_view role, int64_t since,
                                         uint32_t limit);
    HealthInfo health();

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
