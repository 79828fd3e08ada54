// The event carrier of a store (ABI 1.4, storage.h), through the real loader
// against the real server: numbering per session, order, the retained range,
// trimming, two instances (two daemons) on one server numbering one sequence,
// and the listener thread waking a watcher. A store without a carrier must
// say so (carries_events() false) and is checked for exactly that.
#include "conformance.hpp"

#include <condition_variable>
#include <mutex>
#include <set>
#include <thread>

using namespace swh;
using namespace swh::conformance;

namespace {

bool carrier_expected() {
    return backend().kind == "postgres" || backend().kind == "redis";
}

std::vector<uint64_t> seqs(const StorageInstance::EventPage &page) {
    std::vector<uint64_t> out;
    for (const auto &[seq, payload] : page.events)
        out.push_back(seq);
    return out;
}

// Collects wake-ups and link reports from the store's listener thread.
struct Watcher {
    std::mutex mutex;
    std::condition_variable changed;
    std::vector<std::pair<std::string, uint64_t>> wakes;
    int links_up = 0;
    swh_event_watcher raw{};

    Watcher() {
        raw.struct_size = sizeof raw;
        raw.ctx = this;
        raw.wake = [](void *ctx, swh_str sid, uint64_t seq) {
            auto &w = *static_cast<Watcher *>(ctx);
            std::lock_guard lock(w.mutex);
            w.wakes.emplace_back(std::string(sid.ptr, sid.len), seq);
            w.changed.notify_all();
        };
        raw.link = [](void *ctx, swh_status status, swh_str) {
            auto &w = *static_cast<Watcher *>(ctx);
            std::lock_guard lock(w.mutex);
            if (status == SWH_OK) ++w.links_up;
            w.changed.notify_all();
        };
    }
    // Bounded waits for a condition (the bound only ends a hung test).
    template <class Pred> bool wait(Pred pred) {
        std::unique_lock lock(mutex);
        return changed.wait_for(lock, std::chrono::seconds(30), pred);
    }
};

} // namespace

TEST_CASE("events: a store says whether it carries events") {
    auto store = open_store();
    CHECK(store->carries_events() == carrier_expected());
    if (!store->carries_events())
        CHECK(status_of([&] { store->events_publish("s", "{}"); }) == SWH_E_UNSUPPORTED);
}

TEST_CASE("events: numbered per session from 1, read back in order after a seq") {
    auto store = open_store();
    if (!store->carries_events()) return; // covered by the case above
    const std::string s1 = new_uuid(), s2 = new_uuid();
    CHECK(store->events_read(s1, 0, 10).last_seq == 0); // a session without events
    CHECK(store->events_publish(s1, R"({"n":1})") == 1);
    CHECK(store->events_publish(s1, R"({"n":2})") == 2);
    CHECK(store->events_publish(s2, "other session") == 1);
    CHECK(store->events_publish(s1, std::string(70000, 'x')) == 3); // far beyond a NOTIFY payload

    auto all = store->events_read(s1, 0, 10);
    CHECK(all.first_seq == 1);
    CHECK(all.last_seq == 3);
    CHECK(seqs(all) == std::vector<uint64_t>{1, 2, 3});
    CHECK(all.events[0].second == R"({"n":1})");
    CHECK(all.events[2].second.size() == 70000);
    CHECK(seqs(store->events_read(s1, 1, 1)) == std::vector<uint64_t>{2});
    CHECK(seqs(store->events_read(s1, 3, 10)).empty());
    auto range_only = store->events_read(s1, 0, 0);
    CHECK(range_only.events.empty());
    CHECK(range_only.last_seq == 3);
}

TEST_CASE("events: older events beyond events_max_per_session are trimmed") {
    auto store = open_store({{"events_max_per_session", 3}});
    if (!store->carries_events()) return;
    const std::string sid = new_uuid();
    for (int i = 1; i <= 5; ++i)
        CHECK(store->events_publish(sid, std::to_string(i)) == static_cast<uint64_t>(i));
    auto page = store->events_read(sid, 0, 10);
    CHECK(page.first_seq == 3);
    CHECK(page.last_seq == 5);
    CHECK(seqs(page) == std::vector<uint64_t>{3, 4, 5});
}

TEST_CASE("events: two instances number one sequence under concurrent publishers") {
    auto a = open_store();
    if (!a->carries_events()) return;
    auto b = open_store();
    const std::string sid = new_uuid();
    constexpr int kThreads = 4, kEach = 15;
    std::vector<std::vector<uint64_t>> got(kThreads);
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t)
        threads.emplace_back([&, t] {
            StorageInstance &store = t % 2 == 0 ? *a : *b;
            for (int i = 0; i < kEach; ++i)
                got[t].push_back(store.events_publish(sid, std::to_string(t) + ":" + std::to_string(i)));
        });
    for (auto &t : threads)
        t.join();
    std::set<uint64_t> all;
    for (const auto &mine : got) {
        CHECK(std::is_sorted(mine.begin(), mine.end())); // one publisher's events keep its order
        all.insert(mine.begin(), mine.end());
    }
    CHECK(all.size() == kThreads * kEach);
    CHECK(*all.begin() == 1);
    CHECK(*all.rbegin() == kThreads * kEach);
    auto page = b->events_read(sid, 0, 1000);
    CHECK(seqs(page).size() == kThreads * kEach);
}

TEST_CASE("events: a watcher on one instance is woken by a publish through the other") {
    auto a = open_store();
    if (!a->carries_events()) return;
    auto b = open_store();
    Watcher watcher;
    a->events_watch(watcher.raw);
    CHECK(status_of([&] { a->events_watch(watcher.raw); }) == SWH_E_CONFLICT);
    REQUIRE(watcher.wait([&] { return watcher.links_up > 0; }));
    const std::string sid = new_uuid();
    CHECK(b->events_publish(sid, "hello") == 1);
    CHECK(b->events_publish(sid, "again") == 2);
    REQUIRE(watcher.wait([&] {
        return std::count(watcher.wakes.begin(), watcher.wakes.end(), std::make_pair(sid, uint64_t{2})) == 1;
    }));
    a->events_unwatch();
    const size_t heard = [&] {
        std::lock_guard lock(watcher.mutex);
        return watcher.wakes.size();
    }();
    b->events_publish(sid, "after unwatch");
    a->events_read(sid, 0, 0); // a round trip on the server, after the publish
    std::lock_guard lock(watcher.mutex);
    CHECK(watcher.wakes.size() == heard); // no callback after unwatch returned
}
