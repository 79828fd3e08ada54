// The host event bus behind GET /v1/sessions/{id}/events.
#include "events/event_bus.hpp"

#include <catch2/catch.hpp>
#include <memory>
#include <string>
#include <vector>

using swh::EventBus;
using swh::SessionEvent;

namespace {

SessionEvent event(const std::string &session, const std::string &type) {
    SessionEvent e;
    e.session_id = session;
    e.type = type;
    return e;
}

} // namespace

TEST_CASE("event bus: listeners of a session get its events in order, others none", "[events]") {
    EventBus bus;
    std::vector<std::string> a, b, other;
    auto sa = bus.subscribe("s1", [&](const SessionEvent &e) { return a.push_back(e.type), true; });
    auto sb = bus.subscribe("s1", [&](const SessionEvent &e) { return b.push_back(e.type), true; });
    auto so = bus.subscribe("s2", [&](const SessionEvent &e) { return other.push_back(e.type), true; });
    bus.publish(event("s1", "one"));
    bus.publish(event("s1", "two"));
    CHECK(a == std::vector<std::string>{"one", "two"});
    CHECK(b == a);
    CHECK(other.empty());
    CHECK(bus.listeners("s1") == 2);
}

TEST_CASE("event bus: a listener returning false, or its subscription dying, stops delivery", "[events]") {
    EventBus bus;
    int calls = 0;
    auto once = bus.subscribe("s", [&](const SessionEvent &) { return ++calls, false; });
    bus.publish(event("s", "x"));
    bus.publish(event("s", "y"));
    CHECK(calls == 1);
    int kept = 0;
    auto sub = bus.subscribe("s", [&](const SessionEvent &) { return ++kept, true; });
    sub.reset();
    bus.publish(event("s", "z"));
    CHECK(kept == 0);
    CHECK(bus.listeners("s") == 0);
}

// Regression: a listener whose destruction releases the last reference to
// its own subscription (as an SSE connection's clean-up does) used to
// re-enter the bus's lock and deadlock.
TEST_CASE("event bus: a listener that unsubscribes while being destroyed does not deadlock", "[events]") {
    EventBus bus;
    auto holder = std::make_shared<std::unique_ptr<EventBus::Subscription>>();
    struct Cleanup {
        std::shared_ptr<std::unique_ptr<EventBus::Subscription>> subscription;
        ~Cleanup() {
            if (subscription) subscription->reset(); // unsubscribes: takes the bus's lock
        }
    };
    auto cleanup = std::make_shared<Cleanup>(Cleanup{holder});
    *holder = bus.subscribe("s", [cleanup](const SessionEvent &) { return false; });
    cleanup.reset();                 // the listener now holds the only reference
    bus.publish(event("s", "last")); // drops the listener -> ~Cleanup -> unsubscribe
    CHECK(bus.listeners("s") == 0);
}

TEST_CASE("event bus: close_all tells every listener 'shutdown' once and drops them", "[events]") {
    EventBus bus;
    std::vector<std::string> seen;
    auto s1 = bus.subscribe(
        "a", [&](const SessionEvent &e) { return seen.push_back(e.session_id + ":" + e.type), true; });
    auto s2 = bus.subscribe(
        "b", [&](const SessionEvent &e) { return seen.push_back(e.session_id + ":" + e.type), true; });
    bus.close_all();
    bus.publish(event("a", "after"));
    CHECK(seen == std::vector<std::string>{"a:shutdown", "b:shutdown"});
    CHECK(bus.listeners("a") == 0);
}
