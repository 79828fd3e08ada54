// The event carrier of a C++ storage plugin (ABI 1.4, storage.h): the rows
// events_read hands back, the host's watcher as a small value, and the
// listener thread every carrier needs (a link of its own that waits for
// wake-ups, reconnects with back-off when the server goes away, and stops
// promptly). Header-only, part of the optional C++ layer of the SDK.
//
// A Store carries events when it provides (all may throw swh::edge::Failure):
//   uint64_t events_publish(std::string_view session_id, std::string_view payload);
//   EventPage events_read(std::string_view session_id, uint64_t after_seq, uint32_t limit);
//   void events_watch(EventWatcher watcher);   // CONFLICT when already watching
//   void events_unwatch() noexcept;
// storage_plugin.hpp then fills the 1.4 members of the table; a Store
// without them leaves them NULL.
#pragma once

#include <swarmhost/cpp/edge.hpp>
#include <swarmhost/storage.h>

#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace swh::store {

struct EventRow {
    uint64_t seq = 0;
    std::string payload;
};

// first_seq: the oldest retained (last_seq + 1 when every event was
// trimmed); last_seq: the newest assigned; both 0 for a session without any.
struct EventPage {
    uint64_t first_seq = 0, last_seq = 0;
    std::vector<EventRow> events;
};

// The host's swh_event_watcher, copied (its callbacks and ctx stay valid
// until events_unwatch returns, which joins the thread that calls them).
class EventWatcher {
  public:
    EventWatcher() = default;
    explicit EventWatcher(const swh_event_watcher &w) : raw_(w) {}
    void wake(std::string_view session_id, uint64_t seq) const noexcept {
        if (raw_.wake) raw_.wake(raw_.ctx, edge::to_str(session_id), seq);
    }
    void link(swh_status status, std::string_view reason) const noexcept {
        if (raw_.link) raw_.link(raw_.ctx, status, edge::to_str(reason));
    }

  private:
    swh_event_watcher raw_{};
};

// A notification "<session_id> <seq>" (both carriers send this text).
inline bool parse_wake(std::string_view text, std::string &session_id, uint64_t &seq) {
    const size_t space = text.rfind(' ');
    if (space == std::string_view::npos || space == 0 || space + 1 == text.size()) return false;
    uint64_t value = 0;
    for (char c : text.substr(space + 1)) {
        if (c < '0' || c > '9') return false;
        value = value * 10 + static_cast<uint64_t>(c - '0');
    }
    session_id.assign(text.substr(0, space));
    seq = value;
    return true;
}

inline std::string wake_text(std::string_view session_id, uint64_t seq) {
    return std::string(session_id) + " " + std::to_string(seq);
}

// The listener thread. A backend gives it two functions:
//   connect(): open the listening link (LISTEN / SUBSCRIBE) and return its
//              socket; throw Failure when the server cannot be reached;
//   drain():   read what the socket has and report wake-ups; throw Failure
//              when the link is lost. It runs on this thread only.
// Between failures it waits (100 ms doubling to 5 s) and tries again; every
// change of the link is reported through watcher.link (the host re-reads its
// sessions when the link comes back: NOTIFY and PUBLISH are not replayed).
class ListenerThread {
  public:
    using Connect = std::function<int()>;
    using Drain = std::function<void()>;
    using Close = std::function<void()>;

    ListenerThread(EventWatcher watcher, Connect connect, Drain drain, Close close)
        : watcher_(watcher), connect_(std::move(connect)), drain_(std::move(drain)), close_(std::move(close)),
          stop_fd_(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {
        if (stop_fd_ < 0) throw edge::Failure(SWH_E_INTERNAL, "event listener: eventfd failed");
        thread_ = std::thread([this] { run(); });
    }
    ListenerThread(const ListenerThread &) = delete;
    ListenerThread &operator=(const ListenerThread &) = delete;
    // Stops and joins: no watcher callback runs after this returns.
    ~ListenerThread() {
        const uint64_t one = 1;
        [[maybe_unused]] ssize_t n = ::write(stop_fd_, &one, sizeof one);
        if (thread_.joinable()) thread_.join();
        ::close(stop_fd_);
    }

  private:
    void run() noexcept {
        std::chrono::milliseconds backoff(100);
        bool was_up = false;
        std::string last_reason;
        while (!stopping()) {
            try {
                const int fd = connect_();
                watcher_.link(SWH_OK, "");
                was_up = true;
                last_reason.clear();
                backoff = std::chrono::milliseconds(100);
                for (;;) {
                    pollfd fds[2] = {{fd, POLLIN, 0}, {stop_fd_, POLLIN, 0}};
                    if (::poll(fds, 2, -1) < 0) continue; // EINTR
                    if (fds[1].revents != 0) break;
                    drain_();
                }
            } catch (const std::exception &e) {
                // Said once per outage, not once per attempt.
                if (was_up || last_reason.empty()) watcher_.link(SWH_E_UNAVAILABLE, e.what());
                was_up = false;
                last_reason = e.what();
            }
            close_();
            if (wait(backoff)) break;
            backoff = std::min<std::chrono::milliseconds>(backoff * 2, std::chrono::seconds(5));
        }
    }

    bool stopping() const noexcept {
        pollfd p{stop_fd_, POLLIN, 0};
        return ::poll(&p, 1, 0) > 0;
    }
    // true when asked to stop during the wait
    bool wait(std::chrono::milliseconds how_long) const noexcept {
        pollfd p{stop_fd_, POLLIN, 0};
        return ::poll(&p, 1, static_cast<int>(how_long.count())) > 0;
    }

    EventWatcher watcher_;
    Connect connect_;
    Drain drain_;
    Close close_;
    int stop_fd_;
    std::thread thread_; // last: started once everything above exists
};

} // namespace swh::store
