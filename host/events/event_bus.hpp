// Live session events for GET /v1/sessions/{id}/events: the host and session
// type plugins publish, every subscriber of that session receives, in
// publication order. Local to one daemon for now; the interface is what a
// later multi-daemon bus (PostgreSQL LISTEN/NOTIFY, Redis pub/sub) would
// implement: publish one event, deliver it to the session's listeners.
#pragma once

#include "model/model.hpp"

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

namespace swh {

// The payload is a message, a session, or a JSON object (plugin events); the
// HTTP layer renders the first two exactly as its other routes do.
struct SessionEvent {
    std::string session_id;
    std::string type; // "message", "session_updated", "participant_joined", ...
    std::optional<Message> message;
    std::optional<Session> session;
    Json data = Json::object();
    uint64_t sequence = 0; // per bus, increasing; set by publish
};

class EventBus {
  public:
    // Called on the publishing thread; must not block (hand off, e.g. to a
    // connection's write queue). Returning false unsubscribes the listener.
    using Listener = std::function<bool(const SessionEvent &)>;

    // Unsubscribes on destruction.
    class Subscription {
      public:
        Subscription(const Subscription &) = delete;
        Subscription &operator=(const Subscription &) = delete;
        ~Subscription();

      private:
        friend class EventBus;
        Subscription(std::weak_ptr<EventBus *> bus, std::string session_id, uint64_t id)
            : bus_(std::move(bus)), session_id_(std::move(session_id)), id_(id) {}
        std::weak_ptr<EventBus *> bus_;
        std::string session_id_;
        uint64_t id_;
    };

    EventBus() = default;
    EventBus(const EventBus &) = delete;
    EventBus &operator=(const EventBus &) = delete;

    std::unique_ptr<Subscription> subscribe(const std::string &session_id, Listener listener);
    void publish(SessionEvent event);
    // Sends every listener a last "shutdown" event and drops them all (the
    // daemon is stopping; open streams end instead of holding it up).
    void close_all();
    std::size_t listeners(const std::string &session_id) const;

  private:
    void unsubscribe(const std::string &session_id, uint64_t id);

    // Delivery is serialised per bus so every listener sees one order.
    mutable std::mutex mutex_;
    std::map<std::string, std::map<uint64_t, Listener>> listeners_;
    uint64_t next_id_ = 1;
    uint64_t next_sequence_ = 1;
    // Subscriptions may outlive the bus (a stream still open at shutdown).
    std::shared_ptr<EventBus *> self_ = std::make_shared<EventBus *>(this);
};

} // namespace swh
