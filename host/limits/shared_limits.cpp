#include "limits/shared_limits.hpp"

#include "util/ids.hpp"

#include <algorithm>
#include <spdlog/spdlog.h>

namespace swh {

// Dropping the handle gives the lease back: at once, or through the thread.
class SharedLimits::Hold {
  public:
    Hold(SharedLimits &owner, std::string id, bool at_once)
        : owner_(owner), id_(std::move(id)), at_once_(at_once) {}
    ~Hold() { owner_.forget(id_, at_once_); }
    Hold(const Hold &) = delete;
    Hold &operator=(const Hold &) = delete;

  private:
    SharedLimits &owner_;
    std::string id_;
    bool at_once_;
};

SharedLimits::SharedLimits(std::shared_ptr<loader::StorageInstance> store, std::chrono::seconds lease_time,
                           Metric metric, int gate_threads, std::chrono::milliseconds timeout)
    : store_(std::move(store)), lease_time_(lease_time), metric_(std::move(metric)), daemon_id_(new_uuid()),
      gate_(gate_threads, timeout) {
    thread_ = std::thread([this] { run(); });
}

SharedLimits::~SharedLimits() {
    {
        std::lock_guard lock(mutex_);
        stopping_ = true;
        for (auto &[owner, held] : held_) // whatever is still held goes back now
            to_release_.emplace_back(held.key, owner);
        held_.clear();
    }
    wake_.notify_all();
    thread_.join();
    // The store may hold the last reference to a pipeline whose hooks still
    // drain and ask here: from now on they are answered "store failed".
    closed_ = true;
    store_.reset();
}

template <class Call>
auto SharedLimits::guarded(const char *what, Call &&call) -> std::optional<decltype(call())> {
    if (closed_) return std::nullopt;
    try {
        auto result = gate_.run(what, std::forward<Call>(call));
        std::lock_guard lock(mutex_);
        if (failing_) spdlog::info("limits: the store answers again; limits hold fleet-wide");
        failing_ = false;
        return result;
    } catch (const std::exception &e) {
        {
            std::lock_guard lock(mutex_);
            if (!failing_)
                spdlog::warn("limits: {} on store '{}' failed ({}); limits hold per daemon until it answers",
                             what, store_->name(), e.what());
            failing_ = true;
        }
        if (metric_) metric_("swarmhost_limits_store_errors_total", "", 1);
        return std::nullopt;
    }
}

std::optional<int64_t> SharedLimits::add(const std::string &key, int64_t delta,
                                         std::chrono::milliseconds window) {
    const auto ms = static_cast<uint32_t>(std::max<int64_t>(1, window.count()));
    return guarded("counter_add",
                   [store = store_, key, delta, ms] { return store->counter_add(key, delta, ms); });
}

std::optional<SharedLimits::Lease> SharedLimits::take(const std::string &key, uint64_t weight, uint64_t limit,
                                                      bool give_back_at_once) {
    std::string owner;
    {
        std::lock_guard lock(mutex_);
        owner = daemon_id_ + ":" + std::to_string(++next_owner_);
    }
    const auto ttl = static_cast<uint32_t>(lease_time_.count());
    auto got = guarded("lease_acquire", [store = store_, key, owner, weight, limit, ttl] {
        return store->lease_acquire(key, owner, weight, limit, ttl);
    });
    if (!got) return std::nullopt;
    Lease lease;
    lease.taken = got->taken;
    lease.held = got->held;
    if (!lease.taken) return lease;
    {
        std::lock_guard lock(mutex_);
        held_[owner] = Held{key, weight, limit};
    }
    lease.hold = std::make_shared<Hold>(*this, owner, give_back_at_once);
    return lease;
}

std::optional<bool> SharedLimits::claim_once(const std::string &key, std::chrono::milliseconds ttl) {
    const auto ms = static_cast<uint32_t>(std::max<int64_t>(1, ttl.count()));
    std::string owner;
    {
        std::lock_guard lock(mutex_);
        owner = daemon_id_ + ":" + std::to_string(++next_owner_); // a second ask, here too, is refused
    }
    auto got = guarded("lease_acquire", [store = store_, key, owner, ms] {
        return store->lease_acquire(key, owner, 1, 1, ms);
    });
    if (!got) return std::nullopt;
    return got->taken;
}

void SharedLimits::forget(const std::string &owner, bool at_once) {
    std::string key;
    {
        std::lock_guard lock(mutex_);
        const auto it = held_.find(owner);
        if (it == held_.end()) return;
        key = std::move(it->second.key);
        held_.erase(it);
        if (!at_once) to_release_.emplace_back(key, owner);
    }
    if (!at_once) return wake_.notify_all();
    guarded("lease_release", [store = store_, key, owner] {
        store->lease_release(key, owner);
        return 0;
    });
}

void SharedLimits::run() {
    const auto period = lease_time_ / 3;
    auto next_renewal = std::chrono::steady_clock::now() + period;
    std::unique_lock lock(mutex_);
    while (true) {
        wake_.wait_until(lock, next_renewal, [&] { return stopping_ || !to_release_.empty(); });
        lock.unlock();
        release_queued();
        if (std::chrono::steady_clock::now() >= next_renewal) {
            renew_all();
            next_renewal = std::chrono::steady_clock::now() + period;
        }
        lock.lock();
        if (stopping_ && to_release_.empty()) return;
    }
}

void SharedLimits::release_queued() {
    while (true) {
        std::pair<std::string, std::string> next;
        {
            std::lock_guard lock(mutex_);
            if (to_release_.empty()) return;
            next = std::move(to_release_.front());
            to_release_.pop_front();
        }
        // A release the store misses costs capacity until the lease lapses.
        guarded("lease_release", [store = store_, next] {
            store->lease_release(next.first, next.second);
            return 0;
        });
    }
}

void SharedLimits::renew_all() {
    std::map<std::string, Held> snapshot;
    {
        std::lock_guard lock(mutex_);
        snapshot = held_;
    }
    const auto ttl = static_cast<uint32_t>(lease_time_.count());
    for (const auto &[owner, held] : snapshot) {
        auto got = guarded("lease renewal", [store = store_, owner = owner, held = held, ttl] {
            return store->lease_acquire(held.key, owner, held.weight, held.limit, ttl);
        });
        // Lapsed while the store was away and taken by others meanwhile: it
        // is held in this daemon still; the fleet sees one more until it ends.
        if (got && !got->taken) {
            spdlog::warn(
                "limits: a lease on '{}' lapsed and the limit is reached; it counts again when freed",
                held.key);
            if (metric_) metric_("swarmhost_limits_lapsed_total", "", 1);
        }
    }
}

} // namespace swh
