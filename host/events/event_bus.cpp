#include "events/event_bus.hpp"

#include <spdlog/spdlog.h>
#include <vector>

namespace swh {

EventBus::Subscription::~Subscription() {
    if (auto bus = bus_.lock()) (*bus)->unsubscribe(session_id_, id_);
}

std::unique_ptr<EventBus::Subscription> EventBus::subscribe(const std::string &session_id,
                                                            Listener listener) {
    std::lock_guard lock(mutex_);
    const uint64_t id = next_id_++;
    listeners_[session_id].emplace(id, std::move(listener));
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
        doomed = std::move(found->second);
        it->second.erase(found);
    }
    if (it->second.empty()) listeners_.erase(it);
}

void EventBus::publish(SessionEvent event) {
    std::vector<Listener> doomed; // destroyed after the lock is released (see unsubscribe)
    std::lock_guard lock(mutex_);
    event.sequence = next_sequence_++;
    auto it = listeners_.find(event.session_id);
    if (it == listeners_.end()) return;
    // Listeners only queue the event, so holding the lock keeps one order for
    // all of them without slowing the publisher down.
    std::vector<uint64_t> finished;
    for (auto &[id, listener] : it->second) {
        bool keep = false;
        try {
            keep = listener(event);
        } catch (const std::exception &e) {
            spdlog::warn("event listener failed: {}", e.what());
        }
        if (!keep) finished.push_back(id);
    }
    for (uint64_t id : finished) {
        doomed.push_back(std::move(it->second[id]));
        it->second.erase(id);
    }
    if (it->second.empty()) listeners_.erase(it);
}

void EventBus::close_all() {
    std::map<std::string, std::map<uint64_t, Listener>> doomed; // destroyed after the lock is released
    std::lock_guard lock(mutex_);
    for (auto &[session_id, listeners] : listeners_) {
        SessionEvent event;
        event.session_id = session_id;
        event.type = "shutdown";
        event.sequence = next_sequence_++;
        for (auto &[id, listener] : listeners) {
            try {
                listener(event);
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
