#include "hooks/hook_bus.hpp"

#include "limits/shared_limits.hpp"
#include "loader/abi_convert.hpp"
#include "util/clock.hpp"

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

// One published event, shared by every lane that takes it. Its ABI struct
// (the session's and the message's JSON members as text) is made once, by
// the first lane to deliver it, and read by the others: a plugin gets it
// borrowed and const.
class Published {
  public:
    explicit Published(const HookEvent &event) : event_(event) {}
    const HookEvent &event() const { return event_; }
    // Throws what the conversion throws (then the next caller tries again).
    const swh_event &abi() const {
        std::call_once(once_, [this] {
            abi_ = std::make_unique<const loader::EventAbi>(event_.type, event_.time, event_.session,
                                                            event_.message ? &*event_.message : nullptr,
                                                            event_.details);
        });
        return *abi_->get();
    }

  private:
    HookEvent event_;
    mutable std::once_flag once_;
    mutable std::unique_ptr<const loader::EventAbi> abi_;
};

} // namespace

struct HookBus::Lane {
    std::unique_ptr<loader::HookInstance> hook;
    std::size_t capacity;
    bool once_per_fleet;
    const std::atomic<SharedLimits *> &shared;
    mutable std::mutex mutex;
    std::condition_variable wake;
    std::deque<std::shared_ptr<const Published>> queue;
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

    void offer(std::shared_ptr<const Published> event) {
        {
            std::lock_guard lock(mutex);
            if (queue.size() >= capacity) {
                // Log the first drop and then every 1000th, not every one.
                if (dropped++ % 1000 == 0)
                    spdlog::warn("hook '{}' queue full ({} events): dropped {} ({} dropped so far)",
                                 hook->name(), capacity, event_name(event->event().type), dropped);
                return;
            }
            queue.push_back(std::move(event));
        }
        wake.notify_one();
    }

    void run() {
        // A hook that asks for SWH_EVENT_QUEUE_IDLE gets one each time its
        // queue runs empty after other events (also when stopping, after the
        // drain), never two in a row: it may have put work off until events
        // it knew were queued, and this tells it none is left.
        const bool wants_idle = (hook->events() & SWH_EVENT_QUEUE_IDLE) != 0;
        bool owe_idle = false;
        while (true) {
            std::shared_ptr<const Published> event;
            {
                std::unique_lock lock(mutex);
                if (!(owe_idle && queue.empty())) wake.wait(lock, [&] { return stopping || !queue.empty(); });
                if (!queue.empty()) {
                    event = std::move(queue.front());
                    queue.pop_front();
                } else if (!owe_idle) {
                    return; // stopping and drained
                }
            }
            if (!event) {
                owe_idle = false;
                deliver_idle();
                continue;
            }
            deliver(*event);
            owe_idle = wants_idle;
        }
    }

    // Not an event of a session: not claimed across a fleet, not counted.
    void deliver_idle() {
        try {
            hook->on_event(SWH_EVENT_QUEUE_IDLE, now_us(), Session{}, nullptr, Json::object());
        } catch (const std::exception &e) {
            spdlog::warn("hook '{}' failed on queue_idle: {}", hook->name(), e.what());
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

    void deliver(const Published &published) {
        const HookEvent &event = published.event();
        if (!claimed(event)) return;
        bool ok = true;
        try {
            hook->on_event(published.abi());
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
    std::shared_ptr<const Published> shared; // one copy (and one ABI struct) shared by every lane
    for (auto &lane : lanes_) {
        if (!(lane->hook->events() & event.type)) continue;
        if (!shared) shared = std::make_shared<const Published>(event);
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
