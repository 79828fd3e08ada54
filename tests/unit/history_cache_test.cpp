// The history cache (host/session/history_cache.hpp): served only while the
// session row shows what the cache saw, kept current by this daemon's own
// appends, bounded, and never guessing an order it did not see.
#include "session/history_cache.hpp"

#include <catch2/catch.hpp>
#include <string>
#include <vector>

using swh::HistoryCache;
using swh::Message;
using swh::Session;

namespace {

Session row(const std::string &id, uint64_t count, int64_t created_at = 1) {
    Session s;
    s.id = id;
    s.message_count = count;
    s.created_at = created_at;
    return s;
}

Message message(const std::string &session, int64_t timestamp, std::size_t size = 8) {
    Message m;
    m.id = session + "/" + std::to_string(timestamp);
    m.session_id = session;
    m.role = "user";
    m.content = std::string(size, 'x');
    m.timestamp = timestamp;
    return m;
}

std::vector<int64_t> times(const std::vector<swh::MessageRef> &messages) {
    std::vector<int64_t> out;
    for (const swh::MessageRef &m : messages)
        out.push_back(m->message.timestamp);
    return out;
}

swh::MessageRef frozen(const std::string &session, int64_t timestamp, std::size_t size = 8) {
    return swh::freeze(message(session, timestamp, size));
}

HistoryCache cache(std::size_t sessions = 16, std::size_t bytes = 1 << 20) {
    swh::HistoryCacheLimits limits;
    limits.max_sessions = sessions;
    limits.max_bytes = bytes;
    return HistoryCache(limits);
}

} // namespace

TEST_CASE("history cache: served while the row's count is the one it saw") {
    HistoryCache c = cache();
    const uint64_t e = c.epoch();
    CHECK_FALSE(c.lookup(e, row("s", 2), 10));
    c.fill(e, row("s", 2), 10, {message("s", 1), message("s", 2)});
    REQUIRE(c.lookup(e, row("s", 2), 10));
    CHECK(times(*c.lookup(e, row("s", 2), 10)) == std::vector<int64_t>{1, 2});
    // Another writer stored a message: the row's count is ahead.
    CHECK_FALSE(c.lookup(e, row("s", 3), 10));
    // A session of the same id created again.
    CHECK_FALSE(c.lookup(e, row("s", 2, 99), 10));
    // Another window.
    CHECK_FALSE(c.lookup(e, row("s", 2), 20));
    CHECK(c.stats().hits == 2);
}

TEST_CASE("history cache: this daemon's appends keep it current, within its window") {
    HistoryCache c = cache();
    const uint64_t e = c.epoch();
    c.fill(e, row("s", 2), 3, {message("s", 1), message("s", 2)});
    c.appended(e, frozen("s", 3));
    c.appended(e, frozen("s", 4));
    CHECK_FALSE(c.lookup(e, row("s", 2), 3));
    REQUIRE(c.lookup(e, row("s", 4), 3));
    CHECK(times(*c.lookup(e, row("s", 4), 3)) == std::vector<int64_t>{2, 3, 4});
    // An append for a session it does not hold does nothing.
    c.appended(e, frozen("t", 1));
    CHECK(c.stats().entries == 1);
}

TEST_CASE("history cache: an append out of timestamp order drops the entry") {
    HistoryCache c = cache();
    const uint64_t e = c.epoch();
    c.fill(e, row("s", 1), 10, {message("s", 5)});
    c.appended(e, frozen("s", 5)); // the same timestamp: the store's order is unknown
    CHECK_FALSE(c.lookup(e, row("s", 2), 10));
    CHECK(c.stats().entries == 0);
    c.fill(e, row("s", 2), 10, {message("s", 5), message("s", 7)});
    c.appended(e, frozen("s", 6)); // belongs before the newest
    CHECK(c.stats().entries == 0);
}

TEST_CASE("history cache: forget, clear and a stale epoch") {
    HistoryCache c = cache();
    uint64_t e = c.epoch();
    c.fill(e, row("s", 1), 10, {message("s", 1)});
    c.forget("s");
    CHECK_FALSE(c.lookup(e, row("s", 1), 10));
    c.fill(e, row("s", 1), 10, {message("s", 1)});
    c.clear();
    CHECK_FALSE(c.lookup(e, row("s", 1), 10));
    // A send that began before the clear caches nothing.
    c.fill(e, row("s", 1), 10, {message("s", 1)});
    CHECK(c.stats().entries == 0);
    e = c.epoch();
    c.fill(e, row("s", 1), 10, {message("s", 1)});
    CHECK(c.lookup(e, row("s", 1), 10));
}

TEST_CASE("history cache: bounded in sessions and bytes, least recently used out first") {
    HistoryCache c = cache(2, 1 << 20);
    const uint64_t e = c.epoch();
    c.fill(e, row("a", 1), 10, {message("a", 1)});
    c.fill(e, row("b", 1), 10, {message("b", 1)});
    CHECK(c.lookup(e, row("a", 1), 10)); // a is now the most recent
    c.fill(e, row("c", 1), 10, {message("c", 1)});
    CHECK(c.stats().entries == 2);
    CHECK_FALSE(c.lookup(e, row("b", 1), 10));
    CHECK(c.lookup(e, row("a", 1), 10));

    const std::size_t one = swh::cached_bytes(*frozen("x", 1, 1000));
    HistoryCache small = cache(100, 2 * one + one / 2);
    const uint64_t s = small.epoch();
    small.fill(s, row("a", 1), 10, {message("a", 1, 1000)});
    small.fill(s, row("b", 1), 10, {message("b", 1, 1000)});
    small.fill(s, row("c", 1), 10, {message("c", 1, 1000)});
    CHECK(small.stats().entries == 2);
    CHECK(small.stats().bytes <= 2 * one + one / 2);
    // An entry larger than the whole cache is not kept.
    small.fill(s, row("d", 3), 10, {message("d", 1, 1000), message("d", 2, 1000), message("d", 3, 1000)});
    CHECK_FALSE(small.lookup(s, row("d", 3), 10));

    HistoryCache off = cache(100, 0);
    off.fill(off.epoch(), row("a", 1), 10, {message("a", 1)});
    CHECK(off.stats().entries == 0);
}

TEST_CASE("history cache: a snapshot handed out never changes, and its messages are shared, not copied") {
    HistoryCache c = cache();
    const uint64_t e = c.epoch();
    c.fill(e, row("s", 2), 3, {message("s", 1), message("s", 2)});
    const HistoryCache::Snapshot held = c.lookup(e, row("s", 2), 3);
    REQUIRE(held);
    // Two sends on a warm session see the same messages, not copies of them.
    const HistoryCache::Snapshot again = c.lookup(e, row("s", 2), 3);
    REQUIRE(again);
    CHECK(held->at(0).get() == again->at(0).get());
    const swh::MessageRef third = frozen("s", 3);
    c.appended(e, third);
    c.appended(e, frozen("s", 4));
    // What a send holds is the conversation as it found it.
    CHECK(times(*held) == std::vector<int64_t>{1, 2});
    const HistoryCache::Snapshot now = c.lookup(e, row("s", 4), 3);
    REQUIRE(now);
    CHECK(times(*now) == std::vector<int64_t>{2, 3, 4});
    CHECK(now->at(0).get() == held->at(1).get());
    CHECK(now->at(1).get() == third.get());
}

TEST_CASE("history cache: appends with no reader left keep the window and the byte count right") {
    HistoryCache c = cache();
    const uint64_t e = c.epoch();
    c.fill(e, row("s", 1), 2, {message("s", 1, 100)});
    std::vector<swh::MessageRef> stored;
    for (int64_t t = 2; t <= 6; ++t) {
        stored.push_back(frozen("s", t, static_cast<std::size_t>(10 * t)));
        c.appended(e, stored.back());
        // A send looks, and lets go before the next append (the common case).
        const HistoryCache::Snapshot seen = c.lookup(e, row("s", static_cast<uint64_t>(t)), 2);
        REQUIRE(seen);
        CHECK(seen->back().get() == stored.back().get());
    }
    const HistoryCache::Snapshot last = c.lookup(e, row("s", 6), 2);
    REQUIRE(last);
    CHECK(times(*last) == std::vector<int64_t>{5, 6});
    CHECK(c.stats().bytes == swh::cached_bytes(*stored[3]) + swh::cached_bytes(*stored[4]));
}

TEST_CASE("history cache: fill hands back what it was given, also when it keeps nothing") {
    HistoryCache off = cache(100, 0);
    const HistoryCache::Snapshot got =
        off.fill(off.epoch(), row("a", 2), 10, {message("a", 1), message("a", 2)});
    REQUIRE(got);
    CHECK(times(*got) == std::vector<int64_t>{1, 2});
    HistoryCache c = cache();
    const uint64_t stale = c.epoch();
    c.clear();
    const HistoryCache::Snapshot late = c.fill(stale, row("a", 1), 10, {message("a", 1)});
    REQUIRE(late);
    CHECK(late->size() == 1);
    CHECK(c.stats().entries == 0);
}

TEST_CASE("frozen message: its JSON text is what the ABI would have been given") {
    Message m = message("s", 1);
    m.metadata = {{"b", 1}, {"a", "x"}};
    m.provider_metadata = {{"usage", {{"input_tokens", 3}}}};
    const swh::MessageRef plain = swh::freeze(m);
    CHECK(plain->metadata_json == m.metadata.dump());
    CHECK(plain->provider_metadata_json == m.provider_metadata.dump());
    CHECK(plain->structured_json.empty());
    m.structured = {{"tool_call_id", "c1"}};
    CHECK(swh::freeze(m)->structured_json == m.structured.dump());
}

TEST_CASE("a reader is covered by an entry holding at least the newest messages it asks for, while current",
          "[history_cache]") {
    HistoryCache cache({});
    const uint64_t epoch = cache.epoch();
    std::vector<Message> stored;
    for (int64_t t = 1; t <= 5; ++t)
        stored.push_back(message("s", t));
    CHECK_FALSE(cache.holds("s"));
    cache.fill(epoch, row("s", 10), 5, stored); // a window of 5 of the session's 10

    CHECK(cache.holds("s"));
    // Up to the window's 5 are covered; more would need what the entry lacks.
    REQUIRE(cache.covering(epoch, row("s", 10), 3));
    CHECK(times(*cache.covering(epoch, row("s", 10), 5)) == std::vector<int64_t>{1, 2, 3, 4, 5});
    CHECK_FALSE(cache.covering(epoch, row("s", 10), 6));
    CHECK_FALSE(cache.covering(epoch, row("s", 10), 0)); // all 10: the entry has 5
    // A row the entry has not seen (another writer appended) is not covered.
    CHECK_FALSE(cache.covering(epoch, row("s", 11), 3));
    CHECK_FALSE(cache.covering(epoch, row("s", 10, 2), 3));
    cache.clear();
    CHECK_FALSE(cache.covering(epoch, row("s", 10), 3)); // an older epoch
}

TEST_CASE("an entry holding a whole session covers a reader of any length", "[history_cache]") {
    HistoryCache cache({});
    const uint64_t epoch = cache.epoch();
    cache.fill(epoch, row("s", 2), 100, {message("s", 1), message("s", 2)});
    CHECK(times(*cache.covering(epoch, row("s", 2), 0)) == std::vector<int64_t>{1, 2});
    CHECK(times(*cache.covering(epoch, row("s", 2), 500)) == std::vector<int64_t>{1, 2});
}
