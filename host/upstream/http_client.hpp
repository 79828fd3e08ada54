// The host's asynchronous HTTP client: what provider plugins reach through
// host->http_start. A plain-HTTP/1.1 request started on an I/O lane runs on
// that lane's own small client (upstream/lane_http1.hpp); everything else on
// libcurl's multi interface driven by socket events
// (curl_multi_socket_action on epoll), on a few shard threads: thousands of
// open streams cost memory, not threads, and a chunk costs the same whether
// ten or ten thousand streams are open. Connections to one upstream are
// reused across requests of a shard (and multiplexed with HTTP/2).
#pragma once

#include <boost/asio/io_context.hpp>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <swarmhost/abi.h>
#include <utility>
#include <vector>

namespace swh {

// The HTTP version spoken to an upstream; chosen per provider in the manifest
// (`http: { version: ... }`).
enum class HttpVersion {
    automatic,            // curl's default: HTTP/2 over TLS when ALPN agrees, else HTTP/1.1
    http1_1,              // HTTP/1.1 only: one connection per open stream
    http2,                // HTTP/2 over TLS (ALPN), HTTP/1.1 for plain http
    http2_prior_knowledge // HTTP/2 from the first byte, plain http included (h2c)
};

// "auto", "1.1", "2", "2-prior-knowledge"; nullopt for anything else.
std::optional<HttpVersion> parse_http_version(std::string_view text);
std::string_view http_version_name(HttpVersion version);

struct HttpRequest {
    std::string method = "GET";
    std::string url;
    std::vector<std::pair<std::string, std::string>> headers;
    std::string body;
    uint32_t timeout_ms = 0;
    uint32_t connect_timeout_ms = 10000;
    uint32_t idle_timeout_ms = 0;
    uint32_t delay_ms = 0;
    HttpVersion version = HttpVersion::automatic;
};

// A response header as the client read it: views into the client's own
// buffers, valid during on_response only (no copy per header: issue 17).
struct HeaderView {
    std::string_view name, value;
};
using HeaderViews = std::span<const HeaderView>;

// Called on a client thread (or the lane that started the request, see
// HttpClient::attach_loop), never concurrently for one request:
// on_response once, on_body zero or more times, on_done exactly once.
struct HttpCallbacks {
    std::function<void(int status, HeaderViews headers)> on_response;
    std::function<bool(std::string_view chunk)> on_body; // false = abort
    std::function<void(swh_status status, std::string error)> on_done;
};

// Inside an on_done, on the thread running it: the upstream's own share of
// that transfer in microseconds — from its request going out to its last
// byte in (curl's total less pretransfer time; the lane client's from the
// request written: the upstream's work and the wire, not connecting nor
// this client's own queueing). -1 anywhere else.
// A provider that reports done from within the HTTP done callback (the SDK's
// upstream::Client does) lets the send path subtract exactly this from its
// own time (X-Swarmhost-Overhead-Ms).
int64_t upstream_wire_us_in_done();

class HttpClient {
  public:
    // `threads` event loops (0 = one per core); each request lives on one.
    explicit HttpClient(std::size_t threads = 0);
    ~HttpClient(); // cancels what is still open (each gets on_done) and joins
    HttpClient(const HttpClient &) = delete;
    HttpClient &operator=(const HttpClient &) = delete;

    // Thread-safe, returns at once; callbacks never run inside start().
    uint64_t start(HttpRequest request, HttpCallbacks callbacks);
    void cancel(uint64_t id);
    std::size_t open_requests() const;
    std::size_t threads() const;
    // How many requests the lanes' plain-HTTP/1.1 client took so far
    // (upstream/lane_http1.hpp) rather than libcurl.
    uint64_t lane_plain_requests() const;

    // Called on a thread about to run `io` (an I/O lane of the HTTP server):
    // requests started on that thread from now on run on that loop too, so
    // a request that starts and ends on a lane never changes threads (no
    // hand-over, no wake-up), and their callbacks run there. Keep the result
    // while the loop runs; drop it on that thread after the loop has stopped
    // and before `io` goes (what is still open then ends cancelled).
    std::shared_ptr<void> attach_loop(boost::asio::io_context &io);

  private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

} // namespace swh
