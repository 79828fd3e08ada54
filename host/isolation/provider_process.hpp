// The daemon's side of one isolated provider instance: a child process
// (swarmhost-plugin-host) that runs the real provider, and a multiplexed,
// streaming channel to it. Unlike PluginProcess (one request, one reply,
// under a mutex), any number of calls are open at once over one child:
//
//   daemon -> child   {"op":"provider_start","rid","id",...}  (the request)
//                     {"op":"provider_cancel","rid","id"}
//                     {"op":"get_metadata"|"update_config"|"health_check"|"ping","rid",...}
//   child -> daemon   {"op":"reply","rid",...}                (one per request)
//                     {"op":"chunk","id"} + bytes {"t": text}
//                     {"op":"metadata","id","mid","metadata"}
//                     {"op":"reply_event","id","e":[type,index,id,name,4 token counts]}
//                       + bytes {"t": text}
//                     {"op":"done","id","status","error"}
//                     log / metric / event notices, as for every kind
//
// `id` is the daemon's call id (swh_provider_request.call_id), `rid` the
// request's own. One reader thread per child reads every frame and calls
// the daemon's sinks; senders take a short send mutex per frame only, so
// streams interleave.
//
// Failures: the child dies (EOF), or sends nothing for `timeout` while a
// call is open (the reader pings it after half of that; the child's main
// thread answers pings whatever the upstream is doing, so only a hung or
// stopped child stays silent) -> SIGKILL if needed, reaped, and every open
// call ends with done(SWH_E_UNAVAILABLE / SWH_E_TIMEOUT, "plugin process for
// 'x' crashed (SIGKILL) ...") exactly like an upstream failure, so the send
// path's failover continues on the manifest's fallback after the partial
// answer. The next call starts a new child after a backoff (100 ms doubling
// to 10 s; calls during the backoff fail at once with SWH_E_UNAVAILABLE).
#pragma once

#include "isolation/child_process.hpp"
#include "isolation/plugin_process.hpp"
#include "isolation/wire.hpp"

#include <atomic>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <swarmhost/swarmhost.h>
#include <thread>
#include <vector>

namespace swh::isolation {

// Held by a shared_ptr: each reader thread holds one too, so a reader that
// is still returning from a sink when the instance is destroyed (stop() on
// its own thread) never runs on freed state.
class ProviderProcess : public std::enable_shared_from_this<ProviderProcess> {
  public:
    // `host` is the instance's host table (log, metric and event notices of
    // the child go through it), valid until stop() returns.
    ProviderProcess(ProcessOptions options, const swh_host_api *host, Json config);
    ProviderProcess(const ProviderProcess &) = delete;
    ProviderProcess &operator=(const ProviderProcess &) = delete;
    ~ProviderProcess();

    // Ends every child (EOF first: the plugin's destroy runs in the child)
    // and joins their readers. The instance's destroy calls it, after every
    // call has reported done.
    void stop();

    // Starts the child and runs create in it (the instance's create).
    swh_status start();

    // swh_provider_v1.start: sends the request and waits for the child's
    // start to answer (a refusal comes back as its status, the sink
    // untouched). On SWH_OK `sink` gets the call's frames and exactly one
    // done, from the reader thread, possibly before this returns.
    swh_status start_call(uint64_t call_id, const Json &request, const swh_provider_sink *sink);
    // swh_provider_v1.cancel: fire and forget.
    void cancel(uint64_t call_id);
    // One request, one reply (get_metadata, update_config, health_check).
    swh_status call(Json request, Json &reply);

    // This thread's last error (the ABI's last_error contract).
    const char *error();
    void set_error(std::string text);

  private:
    struct Waiter;
    struct Stream;
    struct Link;

    // The live child, started (after the backoff) when there is none.
    // Returns nullptr with the error set when it cannot.
    std::shared_ptr<Link> ensure_child_locked();
    swh_status start_child_locked();
    // What one request gets: its reply, or the failure that ended its child.
    swh_status exchange(const std::shared_ptr<Link> &link, uint64_t rid, Json request,
                        const std::shared_ptr<Waiter> &waiter, Json &reply);
    bool send(Link &link, const Json &message, Clock::time_point deadline);
    static void read_loop(std::shared_ptr<ProviderProcess> self, std::shared_ptr<Link> link);
    void dispatch(Link &link, Json &message);
    void child_lost(Link &link, swh_status status, const std::string &why);
    std::string record_failure_locked(const std::string &what);

    ProcessOptions options_;
    const swh_host_api *host_;
    Json config_;
    std::mutex mutex_; // link_, retired_, the backoff, every Link's maps
    std::shared_ptr<Link> link_;
    bool stopped_ = false;
    std::vector<std::shared_ptr<Link>> retired_; // dead children whose reader may still run
    uint64_t next_rid_ = 1;
    unsigned failures_ = 0;
    Clock::time_point retry_at_{};
    std::string last_failure_;
    ThreadErrors errors_;
};

} // namespace swh::isolation
