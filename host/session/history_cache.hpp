// The newest messages of recently used sessions, kept in the host so that a
// send on a warm session reads no history from storage (issue 17).
//
// Sound with other writers on the same store (another daemon, the
// conversation doors): storage bumps a session's message_count in the same
// atomic step as each append and never removes one message, so an entry is
// served only while the session row a send has just read still shows the
// count (and creation time) the entry was built at. Every message this
// daemon stores is appended to the entry and counts one more; a write the
// cache did not see leaves the store's count ahead of the entry's for good,
// and the next send reads the store again. Appends that arrive out of
// timestamp order (concurrent sends on one session) drop the entry rather
// than guess the store's order.
//
// An entry's window is an immutable snapshot of shared, frozen messages: a
// lookup hands out a reference to it (no copy of the messages), and an
// append makes the next snapshot, touching the current one only while
// nobody else holds it.
#pragma once

#include "model/frozen_message.hpp"

#include <cstddef>
#include <cstdint>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

namespace swh {

// server.history_cache_mb bounds the bytes; the entry count is fixed.
struct HistoryCacheLimits {
    std::size_t max_sessions = 4096;
    std::size_t max_bytes = 64u << 20; // 0 = the cache is off
};

class HistoryCache {
  public:
    using Limits = HistoryCacheLimits;
    struct Stats {
        uint64_t hits = 0, misses = 0, entries = 0, bytes = 0;
    };

    // A session's newest messages, chronological; shared and never changed.
    using Snapshot = std::shared_ptr<const std::vector<MessageRef>>;

    explicit HistoryCache(Limits limits);

    // Bumped by clear(): what a send began under an earlier epoch (a
    // pipeline, and so a store, since replaced) no longer enters the cache.
    uint64_t epoch() const;

    // The newest `limit` messages of `row`'s session, chronological, if the
    // entry was built for this limit and the row (read from the store just
    // now) shows the count and creation time the entry has; null otherwise.
    Snapshot lookup(uint64_t epoch, const Session &row, uint32_t limit);
    // For a reader of the session's newest `limit` messages (0 = all): the
    // entry's snapshot, whatever limit it was built for, if the row (read
    // from the store just now) shows the entry's count and creation time and
    // the entry holds at least that many of the newest messages (or all of
    // them); null otherwise. Its last `limit` messages are the answer.
    Snapshot covering(uint64_t epoch, const Session &row, uint32_t limit);
    // Whether the session has an entry at all: a reader that finds none
    // goes to the store directly, without reading the row first.
    bool holds(const std::string &session_id) const;
    // The store's newest `limit` messages, read after `row` was; returns
    // them as a snapshot whether or not the cache keeps it.
    Snapshot fill(uint64_t epoch, const Session &row, uint32_t limit, std::vector<Message> messages);
    // This daemon stored `message` (add_message returned OK).
    void appended(uint64_t epoch, const MessageRef &message);
    // The session changed in a way the count does not show, or is gone.
    void forget(const std::string &session_id);
    void clear();

    Stats stats() const;

  private:
    struct Entry {
        uint64_t count = 0;
        int64_t created_at = 0;
        uint32_t limit = 0;
        // Ours alone while use_count() == 1 (every other copy is made from
        // it under the mutex), and then changed in place.
        std::shared_ptr<std::vector<MessageRef>> messages;
        std::size_t bytes = 0;
        std::list<std::string>::iterator lru; // position in lru_, most recent first
    };
    using Map = std::unordered_map<std::string, Entry>;

    void erase(Map::iterator it);
    void evict();

    const Limits limits_;
    mutable std::mutex mutex_;
    Map entries_;
    std::list<std::string> lru_;
    std::size_t bytes_ = 0;
    uint64_t epoch_ = 0, hits_ = 0, misses_ = 0;
};

// About how much memory a message takes in the cache.
std::size_t cached_bytes(const FrozenMessage &message);

} // namespace swh
