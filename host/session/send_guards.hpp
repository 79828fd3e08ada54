// What keeps concurrent sends to one session honest: striped per-session
// locks, reservations under server.max_messages_per_session, and claims on
// Idempotency-Keys being answered. Each is held by a send (SendPath) while it
// runs and let go before its client hears the outcome.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>

namespace swh {

class SharedLimits;

// Route calls, metadata writes and cap checks of one session are serialised.
class SessionLocks {
  public:
    std::mutex &of(const std::string &session_id);

  private:
    std::array<std::mutex, 64> locks_;
};

// Room for messages that sends have yet to store. Each stored message uses
// one up; the rest goes back when the reservation dies.
class MessageReservations {
  public:
    class Reservation {
      public:
        Reservation(MessageReservations &owner, std::string session_id, uint64_t count,
                    std::shared_ptr<void> fleet)
            : owner_(owner), session_id_(std::move(session_id)), remaining_(count), fleet_(std::move(fleet)) {
        }
        ~Reservation() { give_back(remaining_); }
        Reservation(const Reservation &) = delete;
        Reservation &operator=(const Reservation &) = delete;
        void give_back(uint64_t count);

      private:
        MessageReservations &owner_;
        std::string session_id_;
        uint64_t remaining_;          // guarded by owner_.mutex_
        std::shared_ptr<void> fleet_; // the lease of limits: { shared: storage }, whole until the end
    };

    // ApiError 409 when `stored` + what sends in flight reserved + `count`
    // would pass `cap`. Call under the session's lock, with `stored` read
    // under it, so the check never counts a message twice nor not at all.
    // `fleet`: the send's lease on the session's messages across daemons
    // (SharedLimits), taken BEFORE `stored` was read; its `held` (all sends
    // in flight in the fleet, this one included) replaces this daemon's count.
    struct FleetLease {
        uint64_t held = 0;
        std::shared_ptr<void> hold;
    };
    std::shared_ptr<Reservation> reserve(const std::string &session_id, uint64_t stored, uint64_t cap,
                                         uint64_t count, std::optional<FleetLease> fleet = std::nullopt);

  private:
    std::mutex mutex_;
    std::map<std::string, uint64_t> reserved_; // session -> messages of sends in flight
};

// Idempotency keys being answered right now: a retry that races its first
// attempt gets 409 instead of a second message. With limits: { shared:
// storage } the claim is also a lease in the store, so a retry through
// another daemon gets the 409 too; a claim of a daemon that died lapses.
class IdempotencyClaims {
  public:
    void share(SharedLimits *shared) { shared_ = shared; }
    // Held until released (the outcome is stored by then); ApiError 409 while
    // another request with the same key on the session holds it.
    std::shared_ptr<void> claim(const std::string &session_id, const std::string &key);

  private:
    class Claim;
    std::mutex mutex_;
    std::set<std::string> in_flight_; // "session\nkey"
    SharedLimits *shared_ = nullptr;
};

} // namespace swh
