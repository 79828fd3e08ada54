// Lifecycle events to hook plugins, off the request path. Each hook has its
// own bounded queue and worker thread, so a slow hook delays neither a
// request nor the other hooks; when a queue is full the event is dropped for
// that hook, counted and logged.
#pragma once

#include "loader/instances.hpp"

#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

namespace swh {

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
    std::size_t queued = 0;
};

class HookBus {
  public:
    HookBus(std::vector<std::unique_ptr<loader::HookInstance>> hooks, std::size_t queue_capacity);
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
    // The hook instances, in manifest order (GET /v1/plugins lists them).
    std::vector<const loader::HookInstance *> instances() const;

  private:
    struct Lane; // one hook: its queue, worker and counters
    std::vector<std::unique_ptr<Lane>> lanes_;
};

} // namespace swh
