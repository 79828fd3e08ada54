// Limits that hold across a fleet of daemons on one store (manifest
// `limits: { shared: storage }`, docs/fleet.md): fixed-window counters and
// leases kept by the storage plugin (ABI 1.5 counter_add / lease_acquire /
// lease_release), each through a StorageGate of its own with the data
// calls' deadline (server.storage_timeout_ms), so a store that hangs is a
// failed call after that deadline, not a request that hangs with it.
// The users of this class (Authenticator, IdempotencyClaims,
// MessageReservations, HookBus) keep their per-daemon rule and use it when
// the store fails: a failing store never refuses a request by itself.
//
// A lease is held through the handle `take` returns. A thread of its own
// renews every held lease each third of the lease time and gives leases back
// when their handle dies, so neither a destructor nor an I/O thread waits on
// the store; a daemon killed -9 stops renewing and its leases lapse after
// `lease_seconds`.
#pragma once

#include "loader/instances.hpp"
#include "session/storage_gate.hpp"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

namespace swh {

class SharedLimits {
  public:
    // `metric(name, labels, delta)` counts outcomes (swarmhost_limits_*).
    using Metric = std::function<void(std::string_view name, std::string_view labels, double value)>;

    // `gate_threads`, `timeout`: the bulkhead and deadline of the store calls
    // (as server.storage_threads and server.storage_timeout_ms; 0 = no deadline).
    SharedLimits(std::shared_ptr<loader::StorageInstance> store, std::chrono::seconds lease_time,
                 Metric metric = {}, int gate_threads = 2,
                 std::chrono::milliseconds timeout = std::chrono::milliseconds(0));
    // Stops the renewal thread and gives every lease still held back.
    ~SharedLimits();
    SharedLimits(const SharedLimits &) = delete;
    SharedLimits &operator=(const SharedLimits &) = delete;

    // counter_add on the store; nullopt when the store failed (logged once
    // per outage): the caller applies its per-daemon rule instead.
    std::optional<int64_t> add(const std::string &key, int64_t delta, std::chrono::milliseconds window);

    struct Lease {
        bool taken = false;
        uint64_t held = 0;          // units the key's live leases hold
        std::shared_ptr<void> hold; // while alive (and taken) the lease is renewed; dropping it releases
    };
    // A lease of `weight` units on `key` under `limit` (0 = none); nullopt
    // when the store failed. `give_back_at_once`: dropping the hold gives the
    // lease back before it returns (a store call on that thread), so whoever
    // asks next finds it free; otherwise the renewal thread gives it back.
    std::optional<Lease> take(const std::string &key, uint64_t weight, uint64_t limit,
                              bool give_back_at_once = false);
    // Claims `key` for `ttl` without a renewal or release: the first daemon
    // to ask gets true, every later one false until it lapses. nullopt when
    // the store failed.
    std::optional<bool> claim_once(const std::string &key, std::chrono::milliseconds ttl);

    std::chrono::milliseconds lease_time() const { return lease_time_; }
    const std::string &daemon_id() const { return daemon_id_; }

  private:
    struct Held {
        std::string key;
        uint64_t weight = 1, limit = 0;
    };
    class Hold;
    // Runs `call` through the gate; on a failure (the store's, or no answer
    // within the deadline) logs once and returns nullopt. `call` owns what it
    // uses: a call past its deadline outlives its caller.
    template <class Call> auto guarded(const char *what, Call &&call) -> std::optional<decltype(call())>;
    void run();
    void renew_all();
    void release_queued();
    void forget(const std::string &owner, bool at_once); // a Hold died: give its lease back

    std::shared_ptr<loader::StorageInstance> store_;
    std::chrono::milliseconds lease_time_;
    Metric metric_;
    std::string daemon_id_; // unique per daemon run, the prefix of every owner
    std::mutex mutex_;
    std::condition_variable wake_;
    std::map<std::string, Held> held_;                           // owner -> lease, renewed by the thread
    std::deque<std::pair<std::string, std::string>> to_release_; // (key, owner)
    uint64_t next_owner_ = 0;
    bool stopping_ = false;
    std::atomic<bool> closed_{false}; // destroyed: answer every call with nullopt
    StorageGate gate_;
    bool failing_ = false; // the last call failed (the next failure is not logged again)
    std::thread thread_;   // last: started once everything above exists
};

} // namespace swh
