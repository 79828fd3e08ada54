#include "session/send_guards.hpp"

#include "limits/shared_limits.hpp"
#include "model/errors.hpp"

#include <algorithm>
#include <functional>

namespace swh {

std::mutex &SessionLocks::of(const std::string &session_id) {
    return locks_[std::hash<std::string>{}(session_id) % locks_.size()];
}

std::shared_ptr<MessageReservations::Reservation>
MessageReservations::reserve(const std::string &session_id, uint64_t stored, uint64_t cap, uint64_t count,
                             std::optional<FleetLease> fleet) {
    std::lock_guard lock(mutex_);
    const auto found = reserved_.find(session_id);
    const uint64_t in_flight = fleet                      ? fleet->held - std::min(fleet->held, count)
                               : found == reserved_.end() ? 0
                                                          : found->second;
    if (stored + in_flight + count > cap) {
        throw ApiError(ErrorKind::Conflict, "session '" + session_id + "' holds " + std::to_string(stored) +
                                                " messages (" + std::to_string(in_flight) +
                                                " more on the way); "
                                                "server.max_messages_per_session allows " +
                                                std::to_string(cap) +
                                                " (start a new session or archive this one)");
    }
    reserved_[session_id] += count;
    return std::make_shared<Reservation>(*this, session_id, count, fleet ? fleet->hold : nullptr);
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

namespace {
ApiError still_answered() {
    return ApiError(ErrorKind::Conflict,
                    "a request with this Idempotency-Key is still being answered; retry later");
}
} // namespace

std::shared_ptr<void> IdempotencyClaims::claim(const std::string &session_id, const std::string &key) {
    std::string slot = session_id + '\n' + key;
    {
        std::lock_guard lock(mutex_);
        if (!in_flight_.insert(slot).second) throw still_answered();
    }
    auto here = std::make_shared<Claim>(*this, slot); // let go again if the fleet refuses below
    if (!shared_) return here;
    // Given back at once when the send ends: a retry right after the answer
    // must find the stored exchange, not this claim.
    auto fleet = shared_->take("idempotency/" + slot, 1, 1, true);
    if (!fleet) return here; // the store failed: this daemon's claim is all there is
    if (!fleet->taken) throw still_answered();
    struct Both {
        std::shared_ptr<void> here, fleet;
    };
    return std::make_shared<Both>(Both{std::move(here), std::move(fleet->hold)});
}

} // namespace swh
