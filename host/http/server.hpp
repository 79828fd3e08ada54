// The HTTP/1.1 front end on Boost.Beast: accepts connections on a few I/O
// threads, reads one request at a time per connection (size and time
// limited) and hands it to a RequestHandler with an Exchange to answer on.
// An Exchange may be answered from any thread, once, either whole or as a
// server-sent-event stream.
#pragma once

#include "util/ip_networks.hpp"

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace swh::http {

// A request's deadline (server.deadlines; docs/reliability.md, "Deadlines");
// zero = no such limit. Each counts from when the request had been read.
struct DeadlineLimits {
    std::chrono::milliseconds request{0};     // until a whole (not streamed) answer is given
    std::chrono::milliseconds stream{0};      // once the answer streams: until the stream ends
    std::chrono::milliseconds stream_idle{0}; // once it streams: while the upstream produces nothing
    // The client's X-Swarmhost-Timeout-Ms set `request` / `stream` (shorter).
    bool request_by_client = false, stream_by_client = false;
    bool any() const { return request.count() > 0 || stream.count() > 0 || stream_idle.count() > 0; }
};

// Which limit passed, for the answer, the log and /metrics.
struct DeadlinePassed {
    std::string limit; // "request_ms", "stream_ms" or "stream_idle_ms"
    std::chrono::milliseconds after{0};
    bool streaming = false; // the answer had begun as a stream
    bool by_client = false; // the limit was the client's X-Swarmhost-Timeout-Ms
    std::string message() const;
};

// server.deadlines as the server hands it to each request: the global
// limits and each door's (http/deadlines.hpp names the doors).
struct DeadlinePolicy {
    DeadlineLimits global;
    std::map<std::string, DeadlineLimits, std::less<>> doors; // whole: overrides merged over `global`
    DeadlineLimits for_door(std::string_view door) const {
        const auto it = doors.find(door);
        return it == doors.end() ? global : it->second;
    }
};

struct Request {
    std::string method; // "GET", "POST", ...
    std::string path;   // the path as sent (not decoded), no query; for messages
    // The path split at '/' first, then each piece percent-decoded: an
    // encoded '/' (%2F) is part of a segment, never a separator. Empty
    // segments are dropped.
    std::vector<std::string> segments;
    std::map<std::string, std::string> query;
    std::string raw_query; // as sent, without the question mark
    std::string content_type;
    std::string session_header;  // X-Swarmhost-Session, "" if absent
    std::string idempotency_key; // Idempotency-Key, "" if absent
    // anthropic-version, "" if absent: Anthropic's clients always send it,
    // so routes both vendors' clients call (GET /v1/models) answer its shape.
    std::string anthropic_version;
    // Last-Event-ID, "" if absent: an SSE client reconnecting after the
    // last event it received (GET /v1/sessions/{id}/events replays after it).
    std::string last_event_id;
    // If-None-Match, "" if absent: the console's assets answer 304 to the
    // ETag they were served with.
    std::string if_none_match;
    // W3C traceparent, "" if absent: the client's trace (docs/tracing.md).
    std::string traceparent;
    // Who makes the request (docs/session-types.md, "The caller"): the
    // X-Swarmhost-User header until the daemon authenticates API keys.
    std::string caller_user_id;
    // Authorization and X-API-Key as sent; never logged, cleared once checked.
    std::string authorization;
    std::string api_key;
    std::string client_address; // the peer's IP address, e.g. "127.0.0.1"
    // X-Swarmhost-Timeout-Ms, "" if absent: a client's own deadline, which
    // can only shorten the door's (http/deadlines.hpp).
    std::string timeout_header;
    // The deadlines in force when the request was read (a reload's apply
    // from the next request on); null = none.
    std::shared_ptr<const DeadlinePolicy> deadlines;
    std::string body;
};

// One request's answer channel. Thread-safe; every call is posted to the
// connection's strand. After the answer (or end_stream) further calls are
// ignored.
class Exchange {
  public:
    virtual ~Exchange() = default;
    // A whole response; `extra_headers` e.g. {{"Allow","GET, POST"}}.
    virtual void respond(int status, std::string content_type, std::string body,
                         std::vector<std::pair<std::string, std::string>> extra_headers = {}) = 0;
    // Begin a text/event-stream response (status 200).
    virtual void start_stream() = 0;
    // Send one SSE event (with an `id:` line when `id` is not empty); false
    // once the client has gone away.
    virtual bool send_event(std::string_view event, std::string_view data, std::string_view id = {}) = 0;
    virtual void end_stream() = 0;
    virtual bool client_gone() const = 0;
    // Run `callback` once when a write to the client fails (it went away);
    // at once if it already has.
    virtual void on_client_gone(std::function<void()> callback) = 0;
    // While streaming, send an SSE comment whenever nothing was written for
    // `interval` (reasoning models think for minutes; proxies cut idle
    // streams). Zero = off.
    void keep_alive(std::chrono::milliseconds interval) { keep_alive(interval, {}, {}); }
    // The same with an event instead of the comment, for a door whose
    // vendor keeps streams alive with one (Anthropic's `ping`).
    virtual void keep_alive(std::chrono::milliseconds interval, std::string_view event,
                            std::string_view data) = 0;
    // Runs `work` on the thread that serves this exchange's connection (its
    // lane): at once when called there while this is the only request being
    // served, else queued to it. Work that ends in writing to this client goes
    // there instead of onto a shared thread.
    virtual void dispatch(std::function<void()> work) = 0;
    // When the whole request had been read (microseconds since the epoch):
    // where the daemon's own time on an exchange starts (X-Swarmhost-Overhead-Ms).
    virtual int64_t received_at_us() const = 0;
    // Arms this request's deadline. When a limit passes before the answer
    // ended, on this exchange's lane: `passed` runs once (it may answer, e.g.
    // 504, when nothing was sent yet); then the work behind the request is
    // cancelled (the on_client_gone callback runs, though the client is
    // still there); a stream its door has not ended a short grace later
    // gets a last generic `error` event and is closed. Once it streams the
    // stream limits replace the request limit. Call at most once.
    virtual void set_deadline(DeadlineLimits limits, std::function<void(const DeadlinePassed &)> passed) = 0;
    // Which limit passed; nullopt while none has.
    virtual std::optional<DeadlinePassed> deadline_passed() const = 0;
    // The upstream produced something (a piece of the reply): the idle limit
    // counts from now. False once the deadline has passed (stop relaying).
    virtual bool upstream_activity() = 0;
};

class RequestHandler {
  public:
    virtual ~RequestHandler() = default;
    // Called on an I/O thread: must not block. Answer on `exchange`, now or
    // later from another thread.
    virtual void handle(Request request, std::shared_ptr<Exchange> exchange) = 0;
};

struct ServerLimits {
    std::size_t max_body_bytes = 1024 * 1024;
    std::size_t max_header_bytes = 16 * 1024;
    int read_timeout_seconds = 30;   // idle keep-alive and slow request bodies
    int write_timeout_seconds = 300; // one response / one stream event
    // Connections open at once; more are answered 503 (Retry-After) and
    // closed. 0 = unlimited.
    std::size_t max_connections = 4096;
    // Bytes of a stream's events waiting to be written (the client reads
    // slower than they come, or not at all); past it the stream gets a last
    // `error` event and is closed.
    std::size_t max_stream_queue_bytes = 4 * 1024 * 1024;
    // Event loops of one thread each that the connections are spread over
    // (server.io_threads); 0 = connections run on the io_context the server
    // was given. A loop per thread means no lock shared by the I/O threads
    // and no hand-off between them: a request is read, routed and answered
    // on one thread.
    std::size_t io_lanes = 0;
    // Proxies whose X-Forwarded-For / Forwarded name the client
    // (http/forwarded.hpp); null or empty = the headers are ignored.
    std::shared_ptr<const IpNetworks> trusted_proxies;
    // server.deadlines, handed to each request (Request::deadlines).
    std::shared_ptr<const DeadlinePolicy> deadlines;
};

// The limits in force, replaced whole by a reload; each request reads the
// current ones when its head is read.
class LimitsCell {
  public:
    explicit LimitsCell(ServerLimits limits)
        : current_(std::make_shared<const ServerLimits>(std::move(limits))) {}
    std::shared_ptr<const ServerLimits> get() const { return current_.load(std::memory_order_acquire); }
    void set(ServerLimits limits) {
        current_.store(std::make_shared<const ServerLimits>(std::move(limits)), std::memory_order_release);
    }

  private:
    std::atomic<std::shared_ptr<const ServerLimits>> current_;
};

class Server {
  public:
    Server(boost::asio::io_context &io, const boost::asio::ip::tcp::endpoint &endpoint,
           RequestHandler &handler, ServerLimits limits);
    // The bound address (useful when listening on port 0).
    boost::asio::ip::tcp::endpoint local_endpoint() const;
    // Run on each lane's thread before its loop starts; what it returns is
    // kept while the loop runs and dropped on that thread after it stopped,
    // while the loop's io_context still exists (the daemon attaches the
    // upstream HTTP client: HttpClient::attach_loop). Set before start().
    using LaneHook = std::function<std::shared_ptr<void>(boost::asio::io_context &)>;
    void set_lane_hook(LaneHook hook) { lane_hook_ = std::move(hook); }
    // Starts the lanes' threads and accepting.
    void start();
    // New limits from a reload: requests read after it use them, on every
    // connection (io_lanes stays as it was started).
    void set_limits(ServerLimits limits);
    // Stops the lanes: their connections are served no more (a drained
    // shutdown calls it once nothing is in flight). Returns at once.
    void stop_serving();
    // Stops the lanes and joins their threads.
    ~Server();
    Server(const Server &) = delete;
    Server &operator=(const Server &) = delete;
    // Stop accepting; connections finish the request they are serving.
    void stop_accepting();
    // Requests read but not yet fully answered.
    std::size_t in_flight() const { return in_flight_->load(); }
    std::size_t open_connections() const { return open_connections_->load(); }
    // Connections answered 503 for being over server.max_connections.
    std::size_t refused_connections() const { return refused_connections_.load(); }

  private:
    struct Lane;
    void do_accept();
    void retry_accept(const boost::system::error_code &ec);
    boost::asio::any_io_executor next_connection_executor();
    boost::asio::io_context &io_;
    std::vector<std::unique_ptr<Lane>> lanes_;
    std::size_t next_lane_ = 0; // used on the acceptor's strand only
    boost::asio::ip::tcp::acceptor acceptor_;
    boost::asio::steady_timer accept_retry_;
    std::chrono::steady_clock::time_point last_accept_warning_{};
    RequestHandler &handler_;
    std::size_t io_lanes_;
    std::shared_ptr<LimitsCell> limits_;
    LaneHook lane_hook_;
    std::shared_ptr<std::atomic<std::size_t>> in_flight_ = std::make_shared<std::atomic<std::size_t>>(0);
    std::shared_ptr<std::atomic<std::size_t>> open_connections_ =
        std::make_shared<std::atomic<std::size_t>>(0);
    std::atomic<std::size_t> refused_connections_{0};
};

// The one place error bodies are made, for answers and stream `error`
// events: {"error":{"code":…,"message":…}}, invalid UTF-8 (echoed from a
// request) replaced, so the body is always JSON.
std::string error_json(std::string_view code, std::string_view message);

// "/v1/a%2Fb//c" -> {"v1", "a/b", "c"}: see Request::segments.
std::vector<std::string> path_segments(std::string_view raw_path);

// Split "a=1&b=x%20y" into a map (percent-decoded, '+' as space).
std::map<std::string, std::string> parse_query(std::string_view query);
std::string percent_decode(std::string_view text);

} // namespace swh::http
