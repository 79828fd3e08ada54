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

std::vector<int64_t> times(const std::vector<Message> &messages) {
    std::vector<int64_t> out;
    for (const Message &m : messages)
        out.push_back(m.timestamp);
    return out;
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
    c.appended(e, message("s", 3));
    c.appended(e, message("s", 4));
    CHECK_FALSE(c.lookup(e, row("s", 2), 3));
    REQUIRE(c.lookup(e, row("s", 4), 3));
    CHECK(times(*c.lookup(e, row("s", 4), 3)) == std::vector<int64_t>{2, 3, 4});
    // An append for a session it does not hold does nothing.
    c.appended(e, message("t", 1));
    CHECK(c.stats().entries == 1);
}

TEST_CASE("history cache: an append out of timestamp order drops the entry") {
    HistoryCache c = cache();
    const uint64_t e = c.epoch();
    c.fill(e, row("s", 1), 10, {message("s", 5)});
    c.appended(e, message("s", 5)); // the same timestamp: the store's order is unknown
    CHECK_FALSE(c.lookup(e, row("s", 2), 10));
    CHECK(c.stats().entries == 0);
    c.fill(e, row("s", 2), 10, {message("s", 5), message("s", 7)});
    c.appended(e, message("s", 6)); // belongs before the newest
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

    const std::size_t one = swh::cached_bytes(message("x", 1, 1000));
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
