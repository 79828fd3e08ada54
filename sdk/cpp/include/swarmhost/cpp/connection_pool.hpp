// A bounded pool of client connections for a storage plugin that talks to a
// server (one connection per concurrent call, made lazily, dropped when
// broken). Header-only, part of the optional C++ layer of the SDK.
//
//   Pool<Conn> pool(size, [&] { return connect(); });   // factory throws Failure
//   auto lease = pool.acquire();   // waits while `size` connections are in use
//   lease->query(...);             // on a connection error: lease.discard()
//
// A connection that failed is discarded and, because a server restart or a
// network cut breaks every connection at once, so are the idle ones: the next
// call connects afresh ("reconnect on the next call").
#pragma once

#include <poll.h>

#include <condition_variable>
#include <cstddef>
#include <functional>
#include <memory>
#include <mutex>
#include <utility>
#include <vector>

namespace swh::store {

// An idle client socket has nothing to read. When it is readable (EOF, a
// reset, or the server's goodbye message), the server closed it: reconnect
// instead of sending a command into it.
inline bool idle_socket_open(int fd) noexcept {
    if (fd < 0) return false;
    pollfd p{fd, POLLIN, 0};
    return ::poll(&p, 1, 0) == 0;
}

// A connection that hit its client-side deadline (Conn::timed_out(), when it
// has one): the server is silent, not gone, so a fresh connection would only
// wait out the same deadline again.
template <class Conn> bool timed_out(const Conn &c) noexcept {
    if constexpr (requires { c.timed_out(); })
        return c.timed_out();
    else
        return false;
}

template <class Conn> class Pool {
  public:
    using Factory = std::function<std::unique_ptr<Conn>()>;

    Pool(size_t size, Factory factory) : size_(size == 0 ? 1 : size), factory_(std::move(factory)) {
        idle_.reserve(size_);
    }
    Pool(const Pool &) = delete;
    Pool &operator=(const Pool &) = delete;

    class Lease {
      public:
        Lease(Pool &pool, std::unique_ptr<Conn> conn) : pool_(&pool), conn_(std::move(conn)) {}
        Lease(Lease &&other) noexcept
            : pool_(std::exchange(other.pool_, nullptr)), conn_(std::move(other.conn_)) {}
        Lease(const Lease &) = delete;
        Lease &operator=(const Lease &) = delete;
        Lease &operator=(Lease &&) = delete;
        ~Lease() {
            if (pool_ != nullptr) pool_->give_back(std::move(conn_));
        }
        Conn &operator*() const noexcept { return *conn_; }
        Conn *operator->() const noexcept { return conn_.get(); }
        // The connection is broken: close it, and the idle ones with it.
        void discard() noexcept {
            conn_.reset();
            if (pool_ != nullptr) pool_->drop_idle();
        }

      private:
        Pool *pool_;
        std::unique_ptr<Conn> conn_;
    };

    // A connected lease: an idle connection that `alive` accepts, or a new
    // one from the factory (whose Failure propagates, freeing the slot).
    template <class Alive> Lease acquire(Alive &&alive) {
        std::unique_ptr<Conn> conn;
        {
            std::unique_lock lock(mutex_);
            cv_.wait(lock, [this] { return !idle_.empty() || in_use_ + idle_.size() < size_; });
            if (!idle_.empty()) {
                conn = std::move(idle_.back());
                idle_.pop_back();
            }
            ++in_use_;
        }
        try {
            if (conn && !alive(*conn)) conn.reset();
            if (!conn) conn = factory_();
        } catch (...) {
            give_back(nullptr);
            throw;
        }
        return Lease(*this, std::move(conn));
    }
    Lease acquire() {
        return acquire([](Conn &) { return true; });
    }

    // Runs body(conn) on a live connection (Conn has `bool broken() const` and
    // `int socket() const`). When the connection broke during the call it is
    // dropped with the idle ones; a `retryable` call (a read) then runs once
    // more on a fresh connection, unless it broke by its deadline (a silent
    // server: retrying would double the wait). A write is never repeated: it
    // may have been applied before the connection broke.
    template <class Body> auto run(bool retryable, Body &&body) {
        for (int attempt = 0;; ++attempt) {
            auto lease = acquire([](Conn &c) { return !c.broken() && idle_socket_open(c.socket()); });
            try {
                return body(*lease);
            } catch (...) {
                if (!lease->broken()) throw;
                const bool silent = timed_out(*lease);
                lease.discard();
                if (!retryable || attempt > 0 || silent) throw;
            }
        }
    }

    size_t size() const noexcept { return size_; }
    size_t open_connections() const {
        std::lock_guard lock(mutex_);
        return idle_.size() + in_use_;
    }

  private:
    void give_back(std::unique_ptr<Conn> conn) noexcept {
        {
            std::lock_guard lock(mutex_);
            --in_use_;
            if (conn) {
                try {
                    idle_.push_back(std::move(conn));
                } catch (...) { // out of memory: close it instead
                }
            }
        }
        cv_.notify_one();
    }
    void drop_idle() noexcept {
        std::vector<std::unique_ptr<Conn>> dropped;
        {
            std::lock_guard lock(mutex_);
            dropped.swap(idle_);
            try {
                idle_.reserve(size_);
            } catch (...) {
            }
        }
        cv_.notify_all();
    }

    const size_t size_;
    Factory factory_;
    mutable std::mutex mutex_;
    std::condition_variable cv_;
    std::vector<std::unique_ptr<Conn>> idle_;
    size_t in_use_ = 0;
};

} // namespace swh::store
