// Session events across a fleet of daemons on one store (manifest `events:`,
// docs/fleet-events.md). A store plugin that carries events (ABI 1.4,
// storage.h) numbers each session's events fleet-wide, keeps them for a
// retention window and wakes every daemon; this class is the daemon's side:
//
//   publish (any thread) -> queue -> carrier thread: events_publish, then
//                                    read back and deliver locally; the
//                                    event's `hold` is let go after that
//   the store's listener thread: wake(session, seq) -> queue -> read the
//                                    session's events after what its local
//                                    listeners have seen, deliver in order
//   a new SSE listener (with or without Last-Event-ID) -> queue -> replay
//                                    from the store, then start it
//
// One thread does all carrier calls (they block on the store), so no I/O or
// worker thread waits on it and every local listener sees one order: the
// carrier's. A daemon's own events come back through the store like anyone
// else's and are told apart by sequence, so nobody hears one twice.
#pragma once

#include "events/event_bus.hpp"
#include "loader/instances.hpp"

#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <variant>

namespace swh {

class FleetEvents {
  public:
    // How an event's payload is rendered (the JSON the SSE `data:` carries).
    using Render = std::function<Json(const SessionEvent &)>;
    // A counter: name, labels (JSON object text), value.
    using Metric = std::function<void(std::string_view, std::string_view, double)>;

    struct Settings {
        uint32_t page = 200;           // events per read
        std::size_t max_queue = 10000; // publishes waiting beyond this are dropped (and said so)
    };

    // Attaches to `bus` and starts watching; `carrier` must carry events.
    FleetEvents(EventBus &bus, std::shared_ptr<loader::StorageInstance> carrier, Render render, Metric metric,
                Settings settings);
    FleetEvents(EventBus &bus, std::shared_ptr<loader::StorageInstance> carrier, Render render, Metric metric)
        : FleetEvents(bus, std::move(carrier), std::move(render), std::move(metric), Settings{}) {}
    FleetEvents(const FleetEvents &) = delete;
    FleetEvents &operator=(const FleetEvents &) = delete;
    // Detaches from the bus, stops watching and drops what is still queued
    // (the daemon is stopping; its streams have ended).
    ~FleetEvents();

  private:
    struct Publish {
        SessionEvent event;
    };
    struct Wake {
        std::string session_id;
        uint64_t seq;
    };
    struct Join {
        std::string session_id;
        uint64_t listener;
        std::optional<uint64_t> last_event_id;
    };
    struct Resync {};
    using Job = std::variant<Publish, Wake, Join, Resync>;

    void push(Job job);
    void run();
    void handle(Publish &job);
    void handle(Wake &job);
    void handle(Join &job);
    void handle(Resync &job);
    void catch_up(const std::string &session_id);
    bool holds_message_event(const std::string &session_id, const std::string &message_id);
    bool join(Join &job); // false: the store could not be read (retried on resync)
    SessionEvent decode(const std::string &session_id, uint64_t seq, const std::string &payload) const;
    SessionEvent missed(const std::string &session_id, uint64_t after, std::string reason) const;
    void failed(const char *operation, const std::string &why);

    static void on_wake(void *ctx, swh_str session_id, uint64_t seq);
    static void on_link(void *ctx, swh_status status, swh_str reason);

    EventBus &bus_;
    std::shared_ptr<loader::StorageInstance> carrier_;
    Render render_;
    Metric metric_;
    Settings settings_;
    swh_event_watcher watcher_{};

    std::mutex mutex_;
    std::condition_variable ready_;
    std::deque<Job> queue_;
    std::size_t queued_publishes_ = 0;
    bool stopping_ = false;
    // Carrier thread only: listeners waiting for a store that could not be read.
    std::deque<Join> unjoined_;
    bool failing_ = false; // the last carrier call failed (logged once until one succeeds)
    std::thread thread_;   // last: started once everything above exists
};

} // namespace swh
