#include "hooks/hook_bus.hpp"

#include "limits/shared_limits.hpp"

#include <swarmhost/cpp/names.hpp>

#include <spdlog/spdlog.h>

namespace swh {

using cpp::event_name;

namespace {

// How long a once_per_fleet claim is kept: a daemon that sees the same event
// later than this handles it again.
constexpr std::chrono::hours kClaimTime{1};

// One event's name across daemons: what happened, to which session or
// message. Two daemons that archive the same session make one name.
std::string event_identity(const HookEvent &event) {
    std::string id = std::string(event_name(event.type)) + "/" + event.session.id;
    if (event.message) id += "/" + event.message->id;
    // A provider error is an attempt of one daemon: its time keeps it apart.
    if (event.type == SWH_EVENT_PROVIDER_ERROR) id += "/" + std::to_string(event.time);
    return id;
}

} // namespace

struct HookBus::Lane {
    std::unique_ptr<loader::HookInstance> hook;
    std::size_t capacity;
    bool once_per_fleet;
    const std::atomic<SharedLimits *> &shared;
    mutable std::mutex mutex;
    std::condition_variable wake;
    std::deque<std::shared_ptr<const HookEvent>> queue;
    bool stopping = false;
    uint64_t delivered = 0, failed = 0, dropped = 0, elsewhere = 0;
    std::thread worker;

    Lane(std::unique_ptr<loader::HookInstance> h, std::size_t cap, bool once,
         const std::atomic<SharedLimits *> &s)
        : hook(std::move(h)), capacity(cap), once_per_fleet(once), shared(s) {
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

    // once_per_fleet: false when another daemon claimed the event. A store
    // that fails lets every daemon handle it (at least once, not at most).
    bool claimed(const HookEvent &event) {
        SharedLimits *fleet = shared.load();
        if (!once_per_fleet || fleet == nullptr) return true;
        const auto mine =
            fleet->claim_once("hook/" + hook->name() + "/" + event_identity(event),
                              std::chrono::duration_cast<std::chrono::milliseconds>(kClaimTime));
        if (mine.value_or(true)) return true;
        std::lock_guard lock(mutex);
        ++elsewhere;
        return false;
    }

    void deliver(const HookEvent &event) {
        if (!claimed(event)) return;
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

HookBus::HookBus(std::vector<std::unique_ptr<loader::HookInstance>> hooks, std::size_t queue_capacity,
                 std::set<std::string> once_per_fleet) {
    for (auto &hook : hooks) {
        const bool once = once_per_fleet.count(hook->name()) > 0;
        lanes_.push_back(std::make_unique<Lane>(std::move(hook), queue_capacity, once, shared_));
    }
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
        out.push_back({lane->hook->name(), lane->delivered, lane->failed, lane->dropped, lane->elsewhere,
                       lane->queue.size()});
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
