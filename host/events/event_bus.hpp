// Live session events for GET /v1/sessions/{id}/events: the host and session
// type plugins publish, every subscriber of that session receives, in
// publication order. Inside one daemon by default; with a fleet carrier
// attached (fleet_events.hpp) publish hands events to the carrier, and the
// carrier's thread delivers them back numbered, from every daemon.
#pragma once

#include "model/model.hpp"

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace swh {

// The payload is a message, a session, or a JSON object (plugin events); the
// HTTP layer renders the first two exactly as its other routes do.
struct SessionEvent {
    std::string session_id;
    std::string type; // "message", "session_updated", "participant_joined", ...
    std::optional<Message> message;
    std::optional<Session> session;
    Json data = Json::object();
    uint64_t sequence = 0; // per bus, increasing; set by publish (fleet: the session's carrier seq)
    std::string id;        // the SSE `id:` (fleet: the session's seq as text); "" = none
    // Fleet: publish only if the store holds no "message" event for this
    // message yet (a retry finishing what a dead daemon's attempt left).
    // Without a fleet such an event is not delivered: the daemon that
    // stored the message published it then.
    bool if_absent = false;
    // Held until the event is done with: handed to the local listeners, or
    // numbered by the fleet's carrier (or given up on). A send keeps its
    // answer in here (util/on_release.hpp), so that a client is answered
    // only once its messages' events are in the store.
    std::shared_ptr<void> hold;
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

    // `last_event_id`: the SSE Last-Event-ID the client reconnected with
    // (fleet only: the carrier replays what came after it).
    std::unique_ptr<Subscription> subscribe(const std::string &session_id, Listener listener,
                                            std::optional<uint64_t> last_event_id = std::nullopt);
    void publish(SessionEvent event);
    // True when an event of this session has anyone to go to (a local
    // listener, or the fleet: listeners on other daemons are not known here).
    bool wanted(const std::string &session_id) const;

    // ---- fleet mode (fleet_events.hpp). `forward` takes every published
    // event; `joined` is told of each new listener, which hears nothing until
    // the carrier thread start()s it. Attached before the first subscribe.
    struct Fleet {
        std::function<void(SessionEvent)> forward;
        std::function<void(const std::string &session_id, uint64_t listener,
                           std::optional<uint64_t> last_event_id)>
            joined;
    };
    void attach_fleet(Fleet fleet);
    void detach_fleet();
    bool in_fleet() const;
    // Called by the carrier thread only, so one order holds for everyone.
    // To each started listener that has not seen event.sequence yet:
    void deliver(const SessionEvent &event);
    // To one listener (its replay) before it starts:
    void deliver_to(const std::string &session_id, uint64_t listener, const SessionEvent &event);
    // From now on the listener hears events after `seen`.
    void start(const std::string &session_id, uint64_t listener, uint64_t seen);
    // Listeners that have seen less than `seen` get `notice` (events they
    // can no longer have: trimmed, or lost while the carrier was down) and
    // continue after `seen`; with `rewind`, listeners that have seen more
    // (the store lost its numbering) get it and continue after `seen` too.
    void skip_to(const std::string &session_id, uint64_t seen, const SessionEvent &notice,
                 bool rewind = false);
    // Every listener of the session, whatever it has seen.
    void notify(const SessionEvent &notice);
    // The least seq any started listener of the session has seen; none
    // when the session has no started listener.
    std::optional<uint64_t> low_water(const std::string &session_id) const;
    std::vector<std::string> sessions() const;
    // Sends every listener a last "shutdown" event and drops them all (the
    // daemon is stopping; open streams end instead of holding it up).
    void close_all();
    std::size_t listeners(const std::string &session_id) const;

  private:
    struct Entry {
        Listener listener;
        uint64_t seen = 0;   // fleet: the last seq it received
        bool started = true; // fleet: false until the carrier thread caught it up
    };
    void unsubscribe(const std::string &session_id, uint64_t id);
    // Calls the listeners of one session that `pick` chooses (with the lock
    // held); drops those that return false. Returns the dropped ones, to be
    // destroyed after the lock is released (see unsubscribe).
    template <class Pick>
    std::vector<Listener> dispatch(const std::string &session_id, const SessionEvent &event, Pick pick);

    // Delivery is serialised per bus so every listener sees one order.
    mutable std::mutex mutex_;
    std::map<std::string, std::map<uint64_t, Entry>> listeners_;
    std::shared_ptr<Fleet> fleet_; // set in fleet mode
    uint64_t next_id_ = 1;
    uint64_t next_sequence_ = 1;
    // Subscriptions may outlive the bus (a stream still open at shutdown).
    std::shared_ptr<EventBus *> self_ = std::make_shared<EventBus *>(this);
};

} // namespace swh
