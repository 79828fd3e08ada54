// The C ABI edge of a C++ plugin: a status-carrying exception, the per-handle
// per-thread last_error slot, the catch-everything guard every exported
// function runs its body in, and small helpers over the host table.
// Header-only, part of the optional C++ layer of the SDK (sdk/cpp/): it adds
// no ABI, it only builds on the C one.
#pragma once

#include <swarmhost/swarmhost.h>

#include <cstddef>
#include <cstdint>
#include <mutex>
#include <new>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>

// SWH_HAS_MEMBER(ptr, type, member) lives in swarmhost/abi.h (C and C++).

namespace swh::edge {

// A failure with a status: thrown inside the plugin, turned into the return
// status and last_error at the edge.
class Failure : public std::runtime_error {
  public:
    Failure(swh_status status, const std::string &message) : std::runtime_error(message), status_(status) {}
    swh_status status() const noexcept { return status_; }

  private:
    swh_status status_;
};

// A borrowed swh_str as a string_view (rejects a NULL pointer with a length).
inline std::string_view view(swh_str s, const char *what) {
    if (s.len == 0) return {};
    if (s.ptr == nullptr)
        throw Failure(SWH_E_INVALID, std::string(what) + ": NULL pointer with non-zero length");
    return {s.ptr, s.len};
}

inline swh_str to_str(std::string_view s) noexcept {
    return swh_str{s.data(), s.size()};
}

// last_error storage: one string per calling thread. Only touched on failure
// and by last_error(), so successful calls never contend on it. Elements of an
// unordered_map never move, so a returned c_str() stays valid until the same
// thread's next failure on this handle (the contract's lifetime).
class ErrorSlot {
  public:
    void set(std::string message) noexcept {
        try {
            std::lock_guard lock(mutex_);
            by_thread_[std::this_thread::get_id()] = std::move(message);
        } catch (...) {
            // Out of memory while recording an error: keep the status only.
        }
    }
    const char *get() const noexcept {
        try {
            std::lock_guard lock(mutex_);
            auto it = by_thread_.find(std::this_thread::get_id());
            return it == by_thread_.end() ? "" : it->second.c_str();
        } catch (...) {
            return "";
        }
    }

  private:
    mutable std::mutex mutex_;
    std::unordered_map<std::thread::id, std::string> by_thread_;
};

// Runs `body` (returning swh_status) and converts any exception into a status
// plus last_error. Nothing escapes.
template <class Body> swh_status guarded(ErrorSlot &errors, Body &&body) noexcept {
    try {
        swh_status status = body();
        return status;
    } catch (const Failure &e) {
        errors.set(e.what());
        return e.status();
    } catch (const std::bad_alloc &) {
        errors.set("out of memory");
        return SWH_E_INTERNAL;
    } catch (const std::exception &e) {
        errors.set(std::string("internal error: ") + e.what());
        return SWH_E_INTERNAL;
    } catch (...) {
        errors.set("internal error: unknown exception");
        return SWH_E_INTERNAL;
    }
}

// Logging through the host table (a no-op when the host offers no log).
class HostLog {
  public:
    HostLog() = default;
    explicit HostLog(const swh_host_api *host) noexcept
        : host_(SWH_HAS_MEMBER(host, swh_host_api, log) && host->log != nullptr ? host : nullptr) {}
    void operator()(int32_t level, std::string_view message) const noexcept {
        if (host_ != nullptr) host_->log(host_->host_ctx, level, to_str(message));
    }

  private:
    const swh_host_api *host_ = nullptr;
};

} // namespace swh::edge
