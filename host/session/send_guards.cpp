#include "session/send_guards.hpp"

#include "model/errors.hpp"

#include <algorithm>
#include <functional>

namespace swh {

std::mutex &SessionLocks::of(const std::string &session_id) {
    return locks_[std::hash<std::string>{}(session_id) % locks_.size()];
}

std::shared_ptr<MessageReservations::Reservation>
MessageReservations::reserve(const std::string &session_id, uint64_t stored, uint64_t cap, uint64_t count) {
    std::lock_guard lock(mutex_);
    const auto found = reserved_.find(session_id);
    const uint64_t in_flight = found == reserved_.end() ? 0 : found->second;
    if (stored + in_flight + count > cap) {
        throw ApiError(ErrorKind::Conflict, "session '" + session_id + "' holds " + std::to_string(stored) +
                                                " messages (" + std::to_string(in_flight) +
                                                " more on the way); "
                                                "server.max_messages_per_session allows " +
                                                std::to_string(cap) +
                                                " (start a new session or archive this one)");
    }
    reserved_[session_id] += count;
    return std::make_shared<Reservation>(*this, session_id, count);
}

void MessageReservations::Reservation::give_back(uint64_t count) {
    std::lock_guard release(owner_.mutex_);
    count = std::min(count, remaining_);
    if (count == 0) return;
    remaining_ -= count;
    if (auto it = owner_.reserved_.find(session_id_);
        it != owner_.reserved_.end() && (it->second -= count) == 0)
        owner_.reserved_.erase(it);
}

class IdempotencyClaims::Claim {
  public:
    Claim(IdempotencyClaims &owner, std::string slot) : owner_(owner), slot_(std::move(slot)) {}
    ~Claim() {
        std::lock_guard lock(owner_.mutex_);
        owner_.in_flight_.erase(slot_);
    }
    Claim(const Claim &) = delete;
    Claim &operator=(const Claim &) = delete;

  private:
    IdempotencyClaims &owner_;
    std::string slot_;
};

std::shared_ptr<void> IdempotencyClaims::claim(const std::string &session_id, const std::string &key) {
    std::string slot = session_id + '\n' + key;
    std::lock_guard lock(mutex_);
    if (!in_flight_.insert(slot).second)
        throw ApiError(ErrorKind::Conflict,
                       "a request with this Idempotency-Key is still being answered; retry later");
    return std::make_shared<Claim>(*this, std::move(slot));
}

} // namespace swh
