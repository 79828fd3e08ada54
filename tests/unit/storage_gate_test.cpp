// The storage gate (host/session/storage_gate.hpp): every call handed to a
// gate thread is run and answered, however callers and gate threads meet
// (a thread that has just finished a call takes the next one itself, so the
// gate wakes a sleeping thread only for the calls nobody is about to take);
// a call that does not return within the deadline answers 503; once every
// gate thread holds such a call, new calls fail at once.
#include "session/storage_gate.hpp"

#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <future>
#include <thread>
#include <vector>

using namespace std::chrono_literals;
using swh::ApiError;
using swh::ErrorKind;
using swh::StorageGate;

TEST_CASE("storage gate: every call of many callers is run once and answered", "[storage_gate]") {
    // A lost wake-up shows as a call that waits its whole deadline and
    // answers 503: the deadline is far above what any call here takes.
    for (const int gate_threads : {1, 2, 4}) {
        StorageGate gate(gate_threads, 20s);
        constexpr int callers = 8, calls_each = 3000;
        std::atomic<int> runs{0};
        std::vector<std::future<long>> sums;
        for (int c = 0; c < callers; ++c)
            sums.push_back(std::async(std::launch::async, [&gate, &runs, c] {
                long sum = 0;
                for (int i = 0; i < calls_each; ++i) {
                    // Some calls take a little while, so that callers queue
                    // behind busy gate threads as well as find idle ones.
                    sum += gate.run("call", [&runs, c, i] {
                        runs.fetch_add(1);
                        if (i % 97 == c) std::this_thread::sleep_for(50us);
                        return i;
                    });
                }
                return sum;
            }));
        for (auto &s : sums)
            CHECK(s.get() == static_cast<long>(calls_each) * (calls_each - 1) / 2);
        CHECK(runs.load() == callers * calls_each);
        const StorageGate::Stats stats = gate.stats();
        CHECK(stats.waiting == 0);
        CHECK(stats.timed_out == 0);
    }
}

TEST_CASE("storage gate: a call past its deadline answers 503, and a gate full of them fails at once",
          "[storage_gate]") {
    StorageGate gate(2, 1s);
    std::promise<void> release;
    std::shared_future<void> released = release.get_future().share();
    for (int i = 0; i < 2; ++i) {
        try {
            gate.run("stuck", [released] { released.wait(); });
            FAIL("a stuck call returned");
        } catch (const ApiError &e) {
            CHECK(e.kind() == ErrorKind::Unavailable);
            CHECK_THAT(e.what(), Catch::Contains("did not answer stuck within 1000 ms"));
        }
    }
    CHECK(gate.stats().overdue == 2);
    const auto before = std::chrono::steady_clock::now();
    try {
        gate.run("next", [] {});
        FAIL("a call was queued behind two overdue calls");
    } catch (const ApiError &e) {
        CHECK(e.kind() == ErrorKind::Unavailable);
        CHECK_THAT(e.what(), Catch::Contains("storage is not answering"));
    }
    CHECK(std::chrono::steady_clock::now() - before < 1s); // failed at once, not after the deadline
    release.set_value();
    // The overdue calls return (bounded wait: 5 s), and the gate serves again.
    for (int i = 0; i < 500 && gate.stats().overdue > 0; ++i)
        std::this_thread::sleep_for(10ms);
    CHECK(gate.stats().overdue == 0);
    CHECK(gate.run("after", [] { return true; }));
}
