// Every storage call of the host passes here (docs/reliability.md, "A
// storage that does not answer"). The call runs on one of the gate's own
// threads, and the caller waits for it at most `timeout`:
//
// - a bulkhead: at most `threads` calls are inside the storage plugin at once,
//   whatever the number of requests waiting on it;
// - a deadline that holds for any plugin (a frozen server, a store stuck in a
//   lock): the caller gets ApiError 503 `unavailable` and goes on, the call
//   is left to finish on its thread (its result is dropped);
// - once every gate thread holds such an overdue call, new calls fail at
//   once instead of queueing behind them, until one of them returns.
//
// A call owns what it uses (its closure is copied into the task), because an
// abandoned call outlives its caller.
#pragma once

#include "loader/instances.hpp"
#include "model/errors.hpp"

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

namespace swh {

class StorageGate {
  public:
    // timeout 0 = no deadline (wait as long as the plugin takes).
    StorageGate(int threads, std::chrono::milliseconds timeout);
    ~StorageGate(); // runs what is queued, then joins (a call still stuck delays it)
    StorageGate(const StorageGate &) = delete;
    StorageGate &operator=(const StorageGate &) = delete;

    // Runs fn() on a gate thread and returns its result, or rethrows what it
    // threw; ApiError 503 when it did not return within the deadline.
    template <class F> auto run(const char *what, F fn) -> decltype(fn()) {
        using R = decltype(fn());
        if constexpr (std::is_void_v<R>) {
            wait_for(what, std::move(fn));
        } else {
            auto result = std::make_shared<std::optional<R>>();
            wait_for(what, [fn = std::move(fn), result]() mutable { result->emplace(fn()); });
            return std::move(**result);
        }
    }

    struct Stats {
        uint64_t waiting = 0;   // callers waiting for a call right now
        uint64_t overdue = 0;   // calls still running after their caller gave up
        uint64_t timed_out = 0; // calls whose caller gave up, since start
    };
    Stats stats() const;
    std::chrono::milliseconds timeout() const { return timeout_; }

  private:
    struct Task;
    void wait_for(const char *what, std::function<void()> body);
    void wait_untraced(const char *what, std::function<void()> body);
    void serve();
    void abandon(Task &task); // with the mutex held

    const int threads_;
    const std::chrono::milliseconds timeout_;
    mutable std::mutex mutex_;
    std::condition_variable work_;
    std::deque<std::shared_ptr<Task>> queue_;
    uint64_t waiting_ = 0, overdue_ = 0, timed_out_ = 0;
    size_t looking_ = 0; // gate threads between a finished call and their next look at the queue
    bool stopping_ = false;
    std::vector<std::thread> pool_;
};

// Runs a storage call through the gate (a bulkhead with a deadline: see
// storage_gate.hpp) and turns its PluginError into the ApiError the client
// should see (a store that is down is a 503, not a 500). `f` owns what it
// uses, the pipeline included: an abandoned call outlives its caller.
template <class F> auto storage_call(StorageGate &gate, const char *what, F f) -> decltype(f()) {
    try {
        return gate.run(what, std::move(f));
    } catch (const loader::PluginError &e) {
        throw ApiError(kind_for_storage_status(e.status()), e.what());
    }
}

// storage_call for a call addressed by a session id: the store's NOT_FOUND is
// the client's 404 with the same text as GET /v1/sessions/{id}, not the
// store's wording ("<instance>: <call> failed (not_found): ...").
template <class F>
auto session_call(StorageGate &gate, const char *what, const std::string &session_id, F f) -> decltype(f()) {
    try {
        return storage_call(gate, what, std::move(f));
    } catch (const ApiError &e) {
        if (e.kind() != ErrorKind::NotFound) throw;
        throw ApiError(ErrorKind::NotFound, "session '" + session_id + "' not found");
    }
}

} // namespace swh
