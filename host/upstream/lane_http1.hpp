// Plain-HTTP/1.1 upstream calls on an I/O lane's own event loop, without
// libcurl (issue 17). A stateless completion started on a lane spent a fifth
// of its instructions in libcurl's per-transfer work, and its socket cost two
// poll() calls (curl's check of a reused connection), epoll_ctl churn and a
// second epoll set per request. Here a request is one write and one read on a
// kept-alive socket the lane's loop already watches.
//
// Only what this client does exactly as curl would runs here: an `http://`
// URL, HTTP/1.1 (or "auto", which is HTTP/1.1 without TLS), no start delay,
// and no proxy named in the environment. Everything else (TLS, HTTP/2,
// proxies) stays with curl. SWARMHOST_UPSTREAM_CLIENT=curl turns this off.
#pragma once

#include "upstream/http_client.hpp"

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

namespace swh::upstream {

// Where a plain-HTTP request goes: what the lane client needs of its URL.
struct PlainTarget {
    std::string host;         // as written (no brackets for IPv6)
    unsigned short port = 80; // when the URL names none
    std::string target;       // path and query, "/" at least
    std::string origin;       // "host:port": what connections are shared by
    std::string host_header;
};

// Whether the lane client may be used at all in this process: no proxy in
// the environment (curl reads http_proxy/all_proxy; this client does not),
// and SWARMHOST_UPSTREAM_CLIENT is not "curl". Read once.
bool lane_client_enabled();

// Runs `on_done` the way HttpClient reports a transfer's end: with
// upstream_wire_us_in_done() answering `wire_us` meanwhile.
void report_done(const std::function<void(swh_status, std::string)> &on_done, swh_status status,
                 std::string error, int64_t wire_us);

class LaneHttp1 : public std::enable_shared_from_this<LaneHttp1> {
  public:
    // `open`: the client's count of open requests (decremented as each ends).
    LaneHttp1(boost::asio::io_context &io, std::atomic<std::size_t> &open);
    ~LaneHttp1();
    LaneHttp1(const LaneHttp1 &) = delete;
    LaneHttp1 &operator=(const LaneHttp1 &) = delete;

    // The target of `request` when this client can run it (plain http://,
    // HTTP/1.1, no delay), else nullopt. On the lane's thread: a lane's
    // requests go to the same few URLs, so the last URL's parse is kept.
    std::optional<PlainTarget> target_of(const HttpRequest &request);
    // On the lane's thread. Callbacks run on it too, never inside start().
    void start(uint64_t id, PlainTarget target, HttpRequest request, HttpCallbacks callbacks);
    // Any thread; an id this lane does not know is ignored.
    void cancel(uint64_t id);
    // On the lane's thread, its loop no longer running: every open request
    // ends cancelled, idle connections close.
    void close_all();

  private:
    struct Impl;
    Impl &impl();
    boost::asio::io_context &io_;
    std::atomic<std::size_t> &open_;
    std::mutex mutex_; // guards closed_ and impl_ against cancel() from other threads
    bool closed_ = false;
    std::unique_ptr<Impl> impl_; // created and destroyed on the lane's thread
    std::string last_url_;       // target_of's last URL and its parse (the lane's thread only)
    std::optional<PlainTarget> last_target_;
};

} // namespace swh::upstream
