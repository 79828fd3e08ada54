#include "session/history_cache.hpp"

#include "session/history_window.hpp"

#include <atomic>

namespace swh {

std::size_t cached_bytes(const FrozenMessage &f) {
    const Message &m = f.message;
    const std::size_t text = m.id.size() + m.session_id.size() + m.role.size() + m.content.size() +
                             m.provider_message_id.size() + f.metadata_json.size() +
                             f.provider_metadata_json.size() + f.structured_json.size();
    // The text once more for the API's rendering of it (FrozenMessage::api_json),
    // which a read of the session makes once.
    return sizeof(FrozenMessage) + 2 * text + json_bytes(m.metadata) + json_bytes(m.provider_metadata) +
           json_bytes(m.structured) + 128;
}

HistoryCache::HistoryCache(Limits limits) : limits_(limits) {}

uint64_t HistoryCache::epoch() const {
    std::lock_guard lock(mutex_);
    return epoch_;
}

HistoryCache::Snapshot HistoryCache::lookup(uint64_t epoch, const Session &row, uint32_t limit) {
    std::lock_guard lock(mutex_);
    const auto it = entries_.find(row.id);
    if (epoch != epoch_ || it == entries_.end() || it->second.count != row.message_count ||
        it->second.created_at != row.created_at || it->second.limit != limit) {
        ++misses_;
        return nullptr;
    }
    ++hits_;
    lru_.splice(lru_.begin(), lru_, it->second.lru);
    return it->second.messages;
}

HistoryCache::Snapshot HistoryCache::covering(uint64_t epoch, const Session &row, uint32_t limit) {
    std::lock_guard lock(mutex_);
    const auto it = entries_.find(row.id);
    const bool current = epoch == epoch_ && it != entries_.end() && it->second.count == row.message_count &&
                         it->second.created_at == row.created_at;
    const bool enough = current && ((limit != 0 && limit <= it->second.limit) ||
                                    it->second.messages->size() == it->second.count);
    if (!enough) {
        ++misses_;
        return nullptr;
    }
    ++hits_;
    lru_.splice(lru_.begin(), lru_, it->second.lru);
    return it->second.messages;
}

bool HistoryCache::holds(const std::string &session_id) const {
    std::lock_guard lock(mutex_);
    return entries_.count(session_id) > 0;
}

HistoryCache::Snapshot HistoryCache::fill(uint64_t epoch, const Session &row, uint32_t limit,
                                          std::vector<Message> messages) {
    auto frozen = std::make_shared<std::vector<MessageRef>>();
    frozen->reserve(messages.size());
    std::size_t bytes = 0;
    for (Message &m : messages) {
        frozen->push_back(freeze(std::move(m)));
        bytes += cached_bytes(*frozen->back());
    }
    std::lock_guard lock(mutex_);
    if (epoch != epoch_ || limits_.max_bytes == 0) return frozen;
    if (const auto it = entries_.find(row.id); it != entries_.end()) erase(it);
    if (bytes > limits_.max_bytes) return frozen;
    lru_.push_front(row.id);
    Entry &entry = entries_[row.id];
    entry.count = row.message_count;
    entry.created_at = row.created_at;
    entry.limit = limit;
    entry.messages = frozen;
    entry.bytes = bytes;
    entry.lru = lru_.begin();
    bytes_ += bytes;
    evict();
    return frozen;
}

void HistoryCache::appended(uint64_t epoch, const MessageRef &ref) {
    const Message &message = ref->message;
    const std::size_t added = cached_bytes(*ref);
    std::lock_guard lock(mutex_);
    const auto it = entries_.find(message.session_id);
    if (epoch != epoch_ || it == entries_.end()) return;
    Entry &entry = it->second;
    const std::vector<MessageRef> &old = *entry.messages;
    // The store orders a session by timestamp, then insertion: an append not
    // strictly after the newest cached message may belong before it.
    if (!old.empty() && message.timestamp <= old.back()->message.timestamp) return erase(it);
    // What falls out of the window at the front.
    const std::size_t keep = std::min<std::size_t>(old.size(), entry.limit > 0 ? entry.limit - 1 : 0);
    const std::size_t drop = old.size() - keep;
    std::size_t gone = 0;
    for (std::size_t i = 0; i < drop; ++i)
        gone += cached_bytes(*old[i]);
    if (entry.messages.use_count() == 1) {
        // Nobody reads this snapshot (a copy of it is only ever made under
        // the mutex, from this one): change it in place. The fence pairs
        // with the release of the last reader that let go of it.
        std::atomic_thread_fence(std::memory_order_acquire);
        std::vector<MessageRef> &own = *entry.messages;
        own.erase(own.begin(), own.begin() + static_cast<std::ptrdiff_t>(drop));
        if (entry.limit > 0) own.push_back(ref);
    } else {
        auto next = std::make_shared<std::vector<MessageRef>>();
        next->reserve(keep + 1);
        next->assign(old.begin() + static_cast<std::ptrdiff_t>(drop), old.end());
        if (entry.limit > 0) next->push_back(ref);
        entry.messages = std::move(next);
    }
    entry.count += 1;
    const std::size_t in = entry.limit > 0 ? added : 0;
    entry.bytes = entry.bytes + in - gone;
    bytes_ = bytes_ + in - gone;
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
