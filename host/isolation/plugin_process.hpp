// The daemon's side of one isolated plugin instance: a child process
// (swarmhost-plugin-host) that runs the real plugin, and the request/reply
// exchange with it. Calls are serialised (one at a time per instance, under
// a mutex): the child runs one call at a time, like a [serial] plugin.
//
// Failures: the child died (EOF) -> SWH_E_UNAVAILABLE "plugin process for
// 'x' crashed (SIGSEGV)..."; no reply within the timeout -> SIGKILL,
// SWH_E_TIMEOUT. Either way the next call starts a new child and re-runs
// create with the same config, after a backoff (100 ms doubling to 10 s;
// calls during the backoff fail at once with SWH_E_UNAVAILABLE).
#pragma once

#include "isolation/child_process.hpp"
#include "isolation/wire.hpp"

#include <atomic>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <swarmhost/swarmhost.h>
#include <thread>

namespace swh::isolation {

struct ProcessOptions {
    std::string helper;   // the plugin host executable
    std::string file;     // the plugin's shared object
    std::string sha256;   // what the daemon hashed; the child checks it again
    std::string instance; // manifest instance name, for messages
    uint32_t kind = 0;    // SWH_KIND_STORAGE / _MIDDLEWARE / _HOOK / _SESSION_TYPE / _PROVIDER
    std::chrono::milliseconds timeout{5000};
    int http_version = 0; // providers: the child's HTTP client speaks this (HttpVersion)
};

constexpr std::chrono::milliseconds kFirstBackoff{100};
constexpr std::chrono::milliseconds kMaxBackoff{10'000};

// The child's fire-and-forget messages (log lines, metrics, events) passed
// on through `host`; false for any other message.
bool forward_notice(const swh_host_api *host, const Json &message);

// The last error text of each calling thread: what an error() of the ABI
// returns stays valid until that thread's next call.
class ThreadErrors {
  public:
    const char *get() {
        std::lock_guard lock(mutex_);
        return texts_[std::this_thread::get_id()].c_str();
    }
    void set(std::string text) {
        std::lock_guard lock(mutex_);
        texts_[std::this_thread::get_id()] = std::move(text);
    }

  private:
    std::mutex mutex_;
    std::map<std::thread::id, std::string> texts_;
};

class PluginProcess {
  public:
    // `host` is the instance's host table (log, metrics, events and
    // read_session requests of the child are answered through it).
    PluginProcess(ProcessOptions options, const swh_host_api *host, Json config);
    PluginProcess(const PluginProcess &) = delete;
    PluginProcess &operator=(const PluginProcess &) = delete;
    ~PluginProcess();

    // Starts the child and runs create in it (the instance's create).
    swh_status start();

    struct CallOptions {
        bool may_start = true;            // false: fail if no child runs now
        std::optional<uint64_t> in_child; // only in this child generation
    };
    // Sends `request`, waits for the reply (bounded by the timeout), and
    // answers the child's own requests meanwhile. On failure error() says why.
    swh_status call(const Json &request, Json &reply, CallOptions options, uint64_t *generation = nullptr);
    swh_status call(const Json &request, Json &reply) { return call(request, reply, CallOptions{}); }

    uint32_t mask() const { return mask_; } // stages / events, as create answered
    // This thread's last error (the ABI's last_error contract).
    const char *error();
    void set_error(std::string text);
    const std::string &instance() const { return options_.instance; }

  private:
    swh_status start_locked();
    swh_status exchange_locked(const Json &request, Json &reply, const char *operation);
    // Ends the child after a failure and schedules the restart.
    swh_status failed_locked(swh_status status, const std::string &what);
    void answer_child_locked(const Json &message, Clock::time_point deadline);

    ProcessOptions options_;
    const swh_host_api *host_;
    Json config_;
    std::mutex mutex_; // one call at a time
    ChildProcess child_;
    uint64_t generation_ = 0;
    unsigned failures_ = 0; // since the last good call
    Clock::time_point retry_at_{};
    std::string last_failure_;
    std::atomic<uint32_t> mask_{0};
    ThreadErrors errors_;
};

} // namespace swh::isolation
