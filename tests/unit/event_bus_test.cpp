// The host event bus behind GET /v1/sessions/{id}/events.
#include "events/event_bus.hpp"

#include <catch2/catch.hpp>
#include <memory>
#include <optional>
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

// Fleet mode (fleet_events.hpp): the bus forwards what is published and
// delivers what the carrier thread hands back, by sequence.
namespace {

SessionEvent numbered(const std::string &session, uint64_t seq) {
    SessionEvent e = event(session, "message");
    e.sequence = seq;
    e.id = std::to_string(seq);
    return e;
}

struct FleetProbe {
    std::vector<SessionEvent> forwarded;
    std::vector<std::pair<uint64_t, std::optional<uint64_t>>> joined; // listener, Last-Event-ID
    EventBus::Fleet fleet() {
        EventBus::Fleet f;
        f.forward = [this](SessionEvent e) { forwarded.push_back(std::move(e)); };
        f.joined = [this](const std::string &, uint64_t id, std::optional<uint64_t> last) {
            joined.emplace_back(id, last);
        };
        return f;
    }
};

} // namespace

TEST_CASE("event bus, fleet: publish forwards, and a listener hears nothing until started", "[events]") {
    EventBus bus;
    FleetProbe probe;
    bus.attach_fleet(probe.fleet());
    CHECK(bus.in_fleet());
    CHECK(bus.wanted("nobody-listens")); // other daemons may
    std::vector<std::string> heard;
    auto sub = bus.subscribe(
        "s1", [&](const SessionEvent &e) { return heard.push_back(e.id), true; }, 4);
    REQUIRE(probe.joined.size() == 1);
    CHECK(probe.joined[0].second == std::optional<uint64_t>(4));
    bus.publish(event("s1", "message"));
    CHECK(probe.forwarded.size() == 1);
    CHECK(heard.empty()); // not delivered locally: it comes back numbered
    bus.deliver(numbered("s1", 5));
    CHECK(heard.empty()); // not started
    CHECK_FALSE(bus.low_water("s1"));
    bus.deliver_to("s1", probe.joined[0].first, numbered("s1", 5)); // its replay
    bus.start("s1", probe.joined[0].first, 5);
    CHECK(bus.low_water("s1") == std::optional<uint64_t>(5));
    bus.deliver(numbered("s1", 5)); // already had it
    bus.deliver(numbered("s1", 6));
    bus.deliver(numbered("s1", 6)); // twice from the carrier: once to the listener
    CHECK(heard == std::vector<std::string>{"5", "6"});
}

TEST_CASE("event bus, fleet: each listener takes only the events it lacks", "[events]") {
    EventBus bus;
    FleetProbe probe;
    bus.attach_fleet(probe.fleet());
    std::vector<std::string> early, late;
    auto a = bus.subscribe("s1", [&](const SessionEvent &e) { return early.push_back(e.id), true; });
    auto b = bus.subscribe("s1", [&](const SessionEvent &e) { return late.push_back(e.id), true; });
    bus.start("s1", probe.joined[0].first, 2);
    bus.start("s1", probe.joined[1].first, 4);
    CHECK(bus.low_water("s1") == std::optional<uint64_t>(2));
    for (uint64_t seq = 3; seq <= 5; ++seq)
        bus.deliver(numbered("s1", seq));
    CHECK(early == std::vector<std::string>{"3", "4", "5"});
    CHECK(late == std::vector<std::string>{"5"});
}

TEST_CASE("event bus, fleet: skip_to tells listeners behind what they missed", "[events]") {
    EventBus bus;
    FleetProbe probe;
    bus.attach_fleet(probe.fleet());
    std::vector<std::string> behind, ahead;
    auto a = bus.subscribe("s1", [&](const SessionEvent &e) { return behind.push_back(e.type), true; });
    auto b = bus.subscribe("s1", [&](const SessionEvent &e) { return ahead.push_back(e.type), true; });
    bus.start("s1", probe.joined[0].first, 1);
    bus.start("s1", probe.joined[1].first, 9);
    bus.skip_to("s1", 7, event("s1", "events_missed"));
    CHECK(behind == std::vector<std::string>{"events_missed"});
    CHECK(ahead.empty());
    CHECK(bus.low_water("s1") == std::optional<uint64_t>(7));
    bus.skip_to("s1", 3, event("s1", "events_missed"), true); // the store lost its numbering
    CHECK(ahead == std::vector<std::string>{"events_missed"});
    CHECK(bus.low_water("s1") == std::optional<uint64_t>(3));
    bus.detach_fleet();
    CHECK_FALSE(bus.in_fleet());
}
