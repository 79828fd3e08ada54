#include "session/history_cache.hpp"

#include "session/history_window.hpp"

namespace swh {

std::size_t cached_bytes(const Message &m) {
    return sizeof(Message) + m.id.size() + m.session_id.size() + m.role.size() + m.content.size() +
           m.provider_message_id.size() + json_bytes(m.metadata) + json_bytes(m.provider_metadata) +
           json_bytes(m.structured);
}

HistoryCache::HistoryCache(Limits limits) : limits_(limits) {}

uint64_t HistoryCache::epoch() const {
    std::lock_guard lock(mutex_);
    return epoch_;
}

std::optional<std::vector<Message>> HistoryCache::lookup(uint64_t epoch, const Session &row, uint32_t limit) {
    std::lock_guard lock(mutex_);
    const auto it = entries_.find(row.id);
    if (epoch != epoch_ || it == entries_.end() || it->second.count != row.message_count ||
        it->second.created_at != row.created_at || it->second.limit != limit) {
        ++misses_;
        return std::nullopt;
    }
    ++hits_;
    lru_.splice(lru_.begin(), lru_, it->second.lru);
    return std::vector<Message>(it->second.messages.begin(), it->second.messages.end());
}

void HistoryCache::fill(uint64_t epoch, const Session &row, uint32_t limit,
                        const std::vector<Message> &messages) {
    std::size_t bytes = 0;
    for (const Message &m : messages)
        bytes += cached_bytes(m);
    std::lock_guard lock(mutex_);
    if (epoch != epoch_ || limits_.max_bytes == 0) return;
    if (const auto it = entries_.find(row.id); it != entries_.end()) erase(it);
    if (bytes > limits_.max_bytes) return;
    lru_.push_front(row.id);
    Entry &entry = entries_[row.id];
    entry.count = row.message_count;
    entry.created_at = row.created_at;
    entry.limit = limit;
    entry.messages.assign(messages.begin(), messages.end());
    entry.bytes = bytes;
    entry.lru = lru_.begin();
    bytes_ += bytes;
    evict();
}

void HistoryCache::appended(uint64_t epoch, const Message &message) {
    std::lock_guard lock(mutex_);
    const auto it = entries_.find(message.session_id);
    if (epoch != epoch_ || it == entries_.end()) return;
    Entry &entry = it->second;
    // The store orders a session by timestamp, then insertion: an append not
    // strictly after the newest cached message may belong before it.
    if (!entry.messages.empty() && message.timestamp <= entry.messages.back().timestamp) return erase(it);
    entry.messages.push_back(message);
    entry.count += 1;
    const std::size_t added = cached_bytes(message);
    entry.bytes += added;
    bytes_ += added;
    while (entry.messages.size() > entry.limit) {
        const std::size_t gone = cached_bytes(entry.messages.front());
        entry.bytes -= gone;
        bytes_ -= gone;
        entry.messages.pop_front();
    }
    evict();
}

void HistoryCache::forget(const std::string &session_id) {
    std::lock_guard lock(mutex_);
    if (const auto it = entries_.find(session_id); it != entries_.end()) erase(it);
}

void HistoryCache::clear() {
    std::lock_guard lock(mutex_);
    ++epoch_;
    entries_.clear();
    lru_.clear();
    bytes_ = 0;
}

HistoryCache::Stats HistoryCache::stats() const {
    std::lock_guard lock(mutex_);
    return {hits_, misses_, entries_.size(), bytes_};
}

// With the mutex held.
void HistoryCache::erase(Map::iterator it) {
    bytes_ -= it->second.bytes;
    lru_.erase(it->second.lru);
    entries_.erase(it);
}

// With the mutex held: the least recently used entries go first.
void HistoryCache::evict() {
    while (!lru_.empty() && (entries_.size() > limits_.max_sessions || bytes_ > limits_.max_bytes))
        erase(entries_.find(lru_.back()));
}

} // namespace swh
