#include "hooks/hook_bus.hpp"

#include <swarmhost/cpp/names.hpp>

#include <spdlog/spdlog.h>

namespace swh {

using cpp::event_name;

struct HookBus::Lane {
    std::unique_ptr<loader::HookInstance> hook;
    std::size_t capacity;
    mutable std::mutex mutex;
    std::condition_variable wake;
    std::deque<std::shared_ptr<const HookEvent>> queue;
    bool stopping = false;
    uint64_t delivered = 0, failed = 0, dropped = 0;
    std::thread worker;

    Lane(std::unique_ptr<loader::HookInstance> h, std::size_t cap) : hook(std::move(h)), capacity(cap) {
        worker = std::thread([this] { run(); });
    }
    ~Lane() {
        {
            std::lock_guard lock(mutex);
            stopping = true;
        }
        wake.notify_all();
        worker.join();
    }

    void offer(std::shared_ptr<const HookEvent> event) {
        {
            std::lock_guard lock(mutex);
            if (queue.size() >= capacity) {
                // Log the first drop and then every 1000th, not every one.
                if (dropped++ % 1000 == 0)
                    spdlog::warn("hook '{}' queue full ({} events): dropped {} ({} dropped so far)",
                                 hook->name(), capacity, event_name(event->type), dropped);
                return;
            }
            queue.push_back(std::move(event));
        }
        wake.notify_one();
    }

    void run() {
        while (true) {
            std::shared_ptr<const HookEvent> event;
            {
                std::unique_lock lock(mutex);
                wake.wait(lock, [&] { return stopping || !queue.empty(); });
                if (queue.empty()) return; // stopping and drained
                event = std::move(queue.front());
                queue.pop_front();
            }
            deliver(*event);
        }
    }

    void deliver(const HookEvent &event) {
        bool ok = true;
        try {
            hook->on_event(event.type, event.time, event.session, event.message ? &*event.message : nullptr,
                           event.details);
        } catch (const std::exception &e) {
            ok = false;
            spdlog::warn("hook '{}' failed on {} for session {}: {}", hook->name(), event_name(event.type),
                         event.session.id, e.what());
        }
        std::lock_guard lock(mutex);
        ++(ok ? delivered : failed);
    }
};

HookBus::HookBus(std::vector<std::unique_ptr<loader::HookInstance>> hooks, std::size_t queue_capacity) {
    for (auto &hook : hooks)
        lanes_.push_back(std::make_unique<Lane>(std::move(hook), queue_capacity));
}

HookBus::~HookBus() = default; // each Lane drains and joins its worker

void HookBus::publish(const HookEvent &event) {
    std::shared_ptr<const HookEvent> shared; // one copy shared by every lane
    for (auto &lane : lanes_) {
        if (!(lane->hook->events() & event.type)) continue;
        if (!shared) shared = std::make_shared<const HookEvent>(event);
        lane->offer(shared);
    }
}

std::vector<HookStats> HookBus::stats() const {
    std::vector<HookStats> out;
    for (const auto &lane : lanes_) {
        std::lock_guard lock(lane->mutex);
        out.push_back({lane->hook->name(), lane->delivered, lane->failed, lane->dropped, lane->queue.size()});
    }
    return out;
}

std::vector<const loader::HookInstance *> HookBus::instances() const {
    std::vector<const loader::HookInstance *> out;
    for (const auto &lane : lanes_)
        out.push_back(lane->hook.get());
    return out;
}

std::string HookBus::render_metrics() const {
    std::string text;
    for (const auto &lane : lanes_)
        text += lane->hook->render_metrics();
    return text;
}

} // namespace swh
