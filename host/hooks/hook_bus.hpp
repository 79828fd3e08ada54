// Lifecycle events to hook plugins, off the request path. Each hook has its
// own bounded queue and worker thread, so a slow hook delays neither a
// request nor the other hooks; when a queue is full the event is dropped for
// that hook, counted and logged.
#pragma once

#include "loader/instances.hpp"

#include <atomic>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

namespace swh {

class SharedLimits;

struct HookEvent {
    uint32_t type = 0; // SWH_EVENT_*
    int64_t time = 0;
    Session session;
    std::optional<Message> message;
    Json details = Json::object();
};

struct HookStats {
    std::string name;
    uint64_t delivered = 0, failed = 0, dropped = 0;
    uint64_t elsewhere = 0; // once_per_fleet: events another daemon claimed
    std::size_t queued = 0;
};

class HookBus {
  public:
    // `once_per_fleet`: names of hooks whose events one daemon of the fleet
    // handles (a claim in the store, see share()).
    HookBus(std::vector<std::unique_ptr<loader::HookInstance>> hooks, std::size_t queue_capacity,
            std::set<std::string> once_per_fleet = {});
    // Delivers what is queued (each hook finishes its backlog), then stops.
    ~HookBus();
    HookBus(const HookBus &) = delete;
    HookBus &operator=(const HookBus &) = delete;

    // Never blocks on a hook: copies the event into each interested queue.
    void publish(const HookEvent &event);
    std::vector<HookStats> stats() const;
    // Prometheus text from every hook that renders metrics.
    std::string render_metrics() const;
    bool empty() const { return lanes_.empty(); }
    // Where once_per_fleet hooks claim events (null: every daemon handles
    // its own, as without the flag). Set before events flow; outlives the bus.
    void share(SharedLimits *shared) { shared_ = shared; }
    // The hook instances, in manifest order (GET /v1/plugins lists them).
    std::vector<const loader::HookInstance *> instances() const;

  private:
    struct Lane; // one hook: its queue, worker and counters
    std::atomic<SharedLimits *> shared_{nullptr};
    std::vector<std::unique_ptr<Lane>> lanes_; // last: their workers read shared_
};

} // namespace swh
