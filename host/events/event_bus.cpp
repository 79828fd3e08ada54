#include "events/event_bus.hpp"

#include <spdlog/spdlog.h>
#include <vector>

namespace swh {

EventBus::Subscription::~Subscription() {
    if (auto bus = bus_.lock()) (*bus)->unsubscribe(session_id_, id_);
}

std::unique_ptr<EventBus::Subscription> EventBus::subscribe(const std::string &session_id, Listener listener,
                                                            std::optional<uint64_t> last_event_id) {
    std::shared_ptr<Fleet> fleet;
    uint64_t id = 0;
    {
        std::lock_guard lock(mutex_);
        id = next_id_++;
        fleet = fleet_;
        listeners_[session_id].emplace(id, Entry{std::move(listener), 0, fleet == nullptr});
    }
    // Outside the lock: the carrier thread takes it to start the listener.
    if (fleet) fleet->joined(session_id, id, last_event_id);
    return std::unique_ptr<Subscription>(new Subscription(self_, session_id, id));
}

// Listeners are destroyed after the lock is released: destroying one may
// drop the last reference to its connection, whose clean-up unsubscribes
// again (a self-deadlock if the lock were still held).
void EventBus::unsubscribe(const std::string &session_id, uint64_t id) {
    Listener doomed;
    std::lock_guard lock(mutex_);
    auto it = listeners_.find(session_id);
    if (it == listeners_.end()) return;
    if (auto found = it->second.find(id); found != it->second.end()) {
        doomed = std::move(found->second.listener);
        it->second.erase(found);
    }
    if (it->second.empty()) listeners_.erase(it);
}

// Listeners only queue the event, so holding the lock keeps one order for
// all of them without slowing the publisher down.
template <class Pick>
std::vector<EventBus::Listener> EventBus::dispatch(const std::string &session_id, const SessionEvent &event,
                                                   Pick pick) {
    std::vector<Listener> doomed;
    auto it = listeners_.find(session_id);
    if (it == listeners_.end()) return doomed;
    std::vector<uint64_t> finished;
    for (auto &[id, entry] : it->second) {
        if (!pick(id, entry)) continue;
        bool keep = false;
        try {
            keep = entry.listener(event);
        } catch (const std::exception &e) {
            spdlog::warn("event listener failed: {}", e.what());
        }
        if (!keep) finished.push_back(id);
    }
    for (uint64_t id : finished) {
        doomed.push_back(std::move(it->second[id].listener));
        it->second.erase(id);
    }
    if (it->second.empty()) listeners_.erase(it);
    return doomed;
}

void EventBus::publish(SessionEvent event) {
    std::shared_ptr<Fleet> fleet;
    {
        std::lock_guard lock(mutex_);
        fleet = fleet_;
    }
    if (fleet) return fleet->forward(std::move(event)); // numbered and delivered by the carrier
    if (event.if_absent) return;
    // Let go once delivered here, not with the listeners' copies (a slow
    // listener must not hold up whatever waits on it).
    const std::shared_ptr<void> hold = std::move(event.hold);
    std::vector<Listener> doomed; // destroyed after the lock is released (see unsubscribe)
    std::lock_guard lock(mutex_);
    event.sequence = next_sequence_++;
    doomed = dispatch(event.session_id, event, [](uint64_t, const Entry &) { return true; });
}

bool EventBus::wanted(const std::string &session_id) const {
    std::lock_guard lock(mutex_);
    return fleet_ != nullptr || listeners_.count(session_id) > 0;
}

void EventBus::attach_fleet(Fleet fleet) {
    std::lock_guard lock(mutex_);
    fleet_ = std::make_shared<Fleet>(std::move(fleet));
}

bool EventBus::in_fleet() const {
    std::lock_guard lock(mutex_);
    return fleet_ != nullptr;
}

void EventBus::detach_fleet() {
    std::lock_guard lock(mutex_);
    fleet_.reset();
}

void EventBus::deliver(const SessionEvent &event) {
    std::vector<Listener> doomed;
    std::lock_guard lock(mutex_);
    doomed = dispatch(event.session_id, event, [&](uint64_t, Entry &entry) {
        if (!entry.started || entry.seen >= event.sequence) return false;
        entry.seen = event.sequence;
        return true;
    });
}

void EventBus::deliver_to(const std::string &session_id, uint64_t listener, const SessionEvent &event) {
    std::vector<Listener> doomed;
    std::lock_guard lock(mutex_);
    doomed = dispatch(session_id, event, [&](uint64_t id, Entry &) { return id == listener; });
}

void EventBus::start(const std::string &session_id, uint64_t listener, uint64_t seen) {
    std::lock_guard lock(mutex_);
    auto it = listeners_.find(session_id);
    if (it == listeners_.end()) return;
    if (auto found = it->second.find(listener); found != it->second.end()) {
        found->second.seen = seen;
        found->second.started = true;
    }
}

void EventBus::skip_to(const std::string &session_id, uint64_t seen, const SessionEvent &notice,
                       bool rewind) {
    std::vector<Listener> doomed;
    std::lock_guard lock(mutex_);
    doomed = dispatch(session_id, notice, [&](uint64_t, Entry &entry) {
        if (!entry.started || !(entry.seen < seen || (rewind && entry.seen > seen))) return false;
        entry.seen = seen;
        return true;
    });
}

void EventBus::notify(const SessionEvent &notice) {
    std::vector<Listener> doomed;
    std::lock_guard lock(mutex_);
    doomed = dispatch(notice.session_id, notice, [](uint64_t, const Entry &) { return true; });
}

std::optional<uint64_t> EventBus::low_water(const std::string &session_id) const {
    std::lock_guard lock(mutex_);
    auto it = listeners_.find(session_id);
    if (it == listeners_.end()) return std::nullopt;
    std::optional<uint64_t> low;
    for (const auto &[id, entry] : it->second)
        if (entry.started && (!low || entry.seen < *low)) low = entry.seen;
    return low;
}

std::vector<std::string> EventBus::sessions() const {
    std::lock_guard lock(mutex_);
    std::vector<std::string> ids;
    ids.reserve(listeners_.size());
    for (const auto &[id, entries] : listeners_)
        ids.push_back(id);
    return ids;
}

void EventBus::close_all() {
    std::map<std::string, std::map<uint64_t, Entry>> doomed; // destroyed after the lock is released
    std::lock_guard lock(mutex_);
    for (auto &[session_id, listeners] : listeners_) {
        SessionEvent event;
        event.session_id = session_id;
        event.type = "shutdown";
        event.sequence = next_sequence_++;
        for (auto &[id, entry] : listeners) {
            try {
                entry.listener(event);
            } catch (const std::exception &e) {
                spdlog::warn("event listener failed: {}", e.what());
            }
        }
    }
    doomed.swap(listeners_);
}

std::size_t EventBus::listeners(const std::string &session_id) const {
    std::lock_guard lock(mutex_);
    auto it = listeners_.find(session_id);
    return it == listeners_.end() ? 0 : it->second.size();
}

} // namespace swh
