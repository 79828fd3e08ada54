#include "http/server.hpp"

#include "http/forwarded.hpp"
#include "util/arrival_stamps.hpp"
#include "util/clock.hpp"

#include <algorithm>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <charconv>
#include <list>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <spdlog/spdlog.h>
#include <thread>
#include <unistd.h>

namespace swh::http {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = net::ip::tcp;

namespace {

// RAII count: of requests being served (graceful shutdown) and of open
// connections (server.max_connections).
class ScopedCount {
  public:
    explicit ScopedCount(std::shared_ptr<std::atomic<std::size_t>> counter) : counter_(std::move(counter)) {
        ++*counter_;
    }
    ~ScopedCount() { --*counter_; }
    const std::atomic<std::size_t> &counter() const { return *counter_; }
    ScopedCount(const ScopedCount &) = delete;
    ScopedCount &operator=(const ScopedCount &) = delete;

  private:
    std::shared_ptr<std::atomic<std::size_t>> counter_;
};

// Whether this request is the only one the daemon is serving. Then the next
// step of its answer runs at once: a queued step costs a turn of the loop,
// a poll, on the request's latency. With others in flight the step is
// queued, so the loop's turns take many connections' work together, which
// costs less per request: at 64 connections, doing these steps at once cost
// 8-10 us more CPU per proxied request (bench/proxy, A/B of one build).
bool serving_alone(const std::atomic<std::size_t> &in_flight) {
    return in_flight.load(std::memory_order_relaxed) <= 1;
}

// A connection over server.max_connections is read (briefly) and answered
// 503: reading the request first lets the close be clean, so the client sees
// the answer instead of a reset.
constexpr int kRefusedReadSeconds = 5;

// Set once when writing to the client fails; runs the registered callback.
class GoneSignal {
  public:
    bool gone() const { return gone_.load(); }
    void fire() {
        std::function<void()> callback;
        {
            std::lock_guard lock(mutex_);
            if (gone_.exchange(true)) return;
            callback = std::move(callback_);
        }
        if (callback) callback();
    }
    void on_fire(std::function<void()> callback) {
        {
            std::lock_guard lock(mutex_);
            if (!gone_) {
                callback_ = std::move(callback);
                return;
            }
        }
        callback();
    }

  private:
    std::atomic<bool> gone_{false};
    std::mutex mutex_;
    std::function<void()> callback_;
};

// One callback two signals may run (the client went away, the deadline
// passed): whichever fires first runs it, once.
class OnceCall {
  public:
    explicit OnceCall(std::function<void()> call) : call_(std::move(call)) {}
    void run() {
        if (!done_.exchange(true) && call_) call_();
    }

  private:
    std::atomic<bool> done_{false};
    std::function<void()> call_;
};

// A stream whose deadline passed has this long for its door to end it with
// its own last event (the work's cancel makes the door report the error);
// after it the stream gets a generic `error` event and is closed.
constexpr std::chrono::seconds kDeadlineStreamGrace{2};

// The peer's IP address as text ("" if the socket has none any more).
std::string peer_address(beast::tcp_stream &stream) {
    beast::error_code ec;
    const auto peer = stream.socket().remote_endpoint(ec);
    return ec ? std::string() : peer.address().to_string();
}

// Every line of a header field, joined with commas as RFC 9110 5.3 allows
// (a proxy may append its own X-Forwarded-For line instead of extending one).
template <class Message> std::string joined_field(const Message &message, std::string_view name) {
    std::string joined;
    for (auto [it, end] = message.equal_range(beast::string_view(name.data(), name.size())); it != end;
         ++it) {
        if (!joined.empty()) joined += ',';
        joined.append(it->value().data(), it->value().size());
    }
    return joined;
}

using Headers = std::vector<std::pair<std::string, std::string>>;

// A response's head, written as Beast would serialize it (status line,
// Server, Content-Type, the extra headers, Connection as the version and
// keep-alive need it, Content-Length or chunked) but straight into one
// string: the head and body of an answer are one allocation, not a message
// object and an ostringstream.
struct Head {
    int status = 200;
    unsigned version = 11;
    bool keep_alive = true;
    std::string_view content_type;
    const Headers *extra = nullptr;
    std::optional<std::size_t> content_length; // nullopt: chunked
    bool event_stream = false;                 // Cache-Control / X-Accel-Buffering of a stream
};

void append_head(std::string &out, const Head &head) {
    out.append(head.version == 10 ? "HTTP/1.0 " : "HTTP/1.1 ");
    char number[24];
    out.append(number, std::to_chars(number, number + sizeof number, head.status).ptr);
    out.push_back(' ');
    const auto reason = bhttp::obsolete_reason(static_cast<bhttp::status>(head.status));
    out.append(reason.data(), reason.size());
    out.append("\r\nServer: swarmhost\r\n");
    if (!head.content_type.empty()) out.append("Content-Type: ").append(head.content_type).append("\r\n");
    if (head.event_stream) out.append("Cache-Control: no-cache\r\nX-Accel-Buffering: no\r\n");
    bool connection_set = false;
    if (head.extra)
        for (const auto &[name, value] : *head.extra) {
            connection_set = connection_set || beast::iequals(name, "connection");
            out.append(name).append(": ").append(value).append("\r\n");
        }
    if (!connection_set) {
        if (!head.keep_alive && head.version >= 11) out.append("Connection: close\r\n");
        if (head.keep_alive && head.version < 11) out.append("Connection: keep-alive\r\n");
    }
    if (head.content_length) {
        out.append("Content-Length: ");
        out.append(number, std::to_chars(number, number + sizeof number, *head.content_length).ptr);
        out.append("\r\n");
    } else {
        out.append("Transfer-Encoding: chunked\r\n");
    }
    out.append("\r\n");
}

// Runs once per streamed event: one allocation, no ostringstream.
std::string chunk_frame(std::string_view data) {
    char size[2 * sizeof(std::size_t)];
    const auto end = std::to_chars(size, size + sizeof size, data.size(), 16).ptr;
    std::string out;
    out.reserve(static_cast<std::size_t>(end - size) + data.size() + 4);
    out.append(size, end).append("\r\n").append(data).append("\r\n");
    return out;
}

std::string sse_frame(std::string_view event, std::string_view data, std::string_view id = {}) {
    std::string frame;
    frame.reserve(event.size() + data.size() + id.size() + 20);
    if (!id.empty()) frame.append("id: ").append(id).append("\n");
    if (!event.empty()) frame.append("event: ").append(event).append("\n");
    // A data value with newlines becomes several data: lines (SSE framing).
    std::size_t start = 0;
    while (true) {
        const std::size_t end = data.find('\n', start);
        frame.append("data: ")
            .append(data.substr(start, end == std::string_view::npos ? end : end - start))
            .append("\n");
        if (end == std::string_view::npos) break;
        start = end + 1;
    }
    frame.append("\n");
    return frame;
}

class Connection;

// Answers one request of a Connection; see Exchange.
class ExchangeImpl : public Exchange, public std::enable_shared_from_this<ExchangeImpl> {
  public:
    ExchangeImpl(std::shared_ptr<Connection> connection, bool keep_alive, unsigned version, bool head,
                 std::size_t max_queue_bytes, std::shared_ptr<std::atomic<std::size_t>> in_flight,
                 int64_t received_at_us)
        : connection_(std::move(connection)), keep_alive_(keep_alive), version_(version), head_(head),
          max_queue_bytes_(max_queue_bytes), in_flight_(std::make_shared<ScopedCount>(std::move(in_flight))),
          received_at_us_(received_at_us),
          received_at_(std::chrono::steady_clock::now() -
                       std::chrono::microseconds(std::max<int64_t>(0, now_us() - received_at_us))) {}

    void respond(int status, std::string content_type, std::string body,
                 std::vector<std::pair<std::string, std::string>> extra_headers) override;
    void start_stream() override;
    bool send_event(std::string_view event, std::string_view data, std::string_view id = {}) override;
    void end_stream() override;
    bool client_gone() const override { return gone_->gone(); }
    void on_client_gone(std::function<void()> callback) override {
        // The deadline cancels the work as a client that went away does.
        auto once = std::make_shared<OnceCall>(std::move(callback));
        gone_->on_fire([once] { once->run(); });
        expired_->on_fire([once] { once->run(); });
    }
    using Exchange::keep_alive;
    void keep_alive(std::chrono::milliseconds interval, std::string_view event,
                    std::string_view data) override;
    void dispatch(std::function<void()> work) override;
    int64_t received_at_us() const override { return received_at_us_; }
    void set_deadline(DeadlineLimits limits, std::function<void(const DeadlinePassed &)> passed) override;
    std::optional<DeadlinePassed> deadline_passed() const override {
        std::lock_guard lock(mutex_);
        return passed_;
    }
    bool upstream_activity() override {
        last_activity_ = std::chrono::steady_clock::now().time_since_epoch().count();
        return !expired_->gone();
    }

  private:
    void drop_lagging_stream();
    // The deadline's timer, on the connection's loop thread only.
    void arm_deadline();
    void on_deadline_timer();
    void deadline_passed_now(DeadlinePassed passed);
    void end_stream_after_grace();
    // The answer ended: the deadline's timer goes (not left waiting for
    // minutes, one per request).
    void stop_deadline();

    std::shared_ptr<Connection> connection_;
    bool keep_alive_;
    unsigned version_;
    bool head_;                   // a HEAD request: headers only, never a body
    std::size_t max_queue_bytes_; // server.max_stream_queue_bytes
    std::shared_ptr<ScopedCount> in_flight_;
    int64_t received_at_us_;
    std::chrono::steady_clock::time_point received_at_; // the same instant on the steady clock
    mutable std::mutex mutex_;
    bool answered_ = false; // a respond or start_stream happened
    bool ended_ = false;
    bool streaming_ = false; // start_stream happened
    std::atomic<std::chrono::steady_clock::rep> last_write_{0};

    std::shared_ptr<GoneSignal> gone_ = std::make_shared<GoneSignal>();
    // The deadline (set_deadline): its limits and callback are set once,
    // under mutex_; `passed_` too. The timer lives on the loop thread.
    DeadlineLimits deadline_;
    std::function<void(const DeadlinePassed &)> on_passed_;
    std::optional<DeadlinePassed> passed_;
    std::shared_ptr<boost::asio::steady_timer> deadline_timer_;
    std::atomic<std::chrono::steady_clock::rep> last_activity_{0};
    std::shared_ptr<GoneSignal> expired_ = std::make_shared<GoneSignal>(); // fired when the deadline passed
};

class Connection : public std::enable_shared_from_this<Connection> {
  public:
    Connection(tcp::socket socket, RequestHandler &handler, std::shared_ptr<const LimitsCell> limits,
               std::shared_ptr<std::atomic<std::size_t>> in_flight,
               std::shared_ptr<std::atomic<std::size_t>> open_connections, bool refuse)
        : stream_(std::move(socket)), handler_(handler), cell_(std::move(limits)), limits_(cell_->get()),
          in_flight_(std::move(in_flight)), open_(std::move(open_connections)), refuse_(refuse),
          client_address_(peer_address(stream_)),
          // Bounded: a chunk header line (size and extensions) or a trailer
          // section must fit in it, as the request head must; more is 431,
          // not memory (a 512 MiB chunk extension was read whole).
          buffer_(limits_->max_header_bytes) {}

    void start() {
        net::dispatch(stream_.get_executor(), [self = shared_from_this()] {
            beast::error_code ignored;
            self->stream_.socket().non_blocking(true, ignored); // write_next's first try
            stamp_arrivals(self->stream_.socket().native_handle());
            self->do_read();
        });
    }
    auto executor() { return stream_.get_executor(); }
    // Bytes queued for this connection and not yet written.
    std::size_t unwritten() const { return unwritten_.load(); }

    // Queue bytes for writing in order. `then_read` resumes reading the next
    // request after this write (end of a keep-alive response); `close_after`
    // shuts the socket after it. `gone` is set when writing fails.
    // `token` lives until the bytes are written (or the write failed): the
    // last write of a response carries the request's in-flight count, so a
    // draining shutdown waits for the bytes, not just for the handler.
    //
    // Any thread. The order of the bytes is the order of the calls: they go
    // into one locked queue, not into one post each -- posts made by the
    // connection's own loop thread run after posts other threads made
    // meanwhile (Asio keeps a single-threaded loop's own posts in a private
    // queue until its handler returns), which put a stream's first events
    // ahead of its head when an exchange started on the loop thread and went
    // on from an upstream thread.
    void enqueue(std::string bytes, bool last, bool keep_alive, std::shared_ptr<GoneSignal> gone,
                 std::shared_ptr<void> token = nullptr) {
        unwritten_ += bytes.size();
        bool kick;
        {
            std::lock_guard lock(incoming_mutex_);
            incoming_.push_back({std::move(bytes), last, keep_alive, std::move(gone), std::move(token)});
            kick = !kick_posted_;
            kick_posted_ = true;
        }
        if (!kick) return; // a drain is already on its way and takes this too
        // Runs at once when called on the connection's own loop thread.
        net::dispatch(stream_.get_executor(), [self = shared_from_this()] { self->drain_incoming(); });
    }

  private:
    struct Pending {
        std::string bytes;
        bool last;
        bool keep_alive;
        std::shared_ptr<GoneSignal> gone;
        std::shared_ptr<void> token;
    };

    void do_read() {
        limits_ = cell_->get(); // a reload's limits apply from the next request on
        parser_.emplace();
        parser_->eager(true); // the body with the head, as bhttp::async_read parses
        parser_->body_limit(limits_->max_body_bytes);
        parser_->header_limit(static_cast<std::uint32_t>(limits_->max_header_bytes));
        chunked_bytes_ = 0;
        parser_->on_chunk_header(on_chunk_header_);
        reading_ = true;
        read_deadline_ =
            std::chrono::steady_clock::now() +
            std::chrono::seconds(refuse_ ? std::min(kRefusedReadSeconds, limits_->read_timeout_seconds)
                                         : limits_->read_timeout_seconds);
        arm_read_timer();
        // Bytes may be there already (a new connection's request, a
        // pipelined one in the buffer): they are read and parsed on the next
        // turn of the loop, never inside this call, whose caller (the end of
        // the last response's write) is not done with the connection yet.
        if (buffer_.size() > 0 || try_read_now_) {
            net::post(stream_.get_executor(), [self = shared_from_this()] {
                if (!self->reading_) return;
                if (self->buffer_.size() > 0 && !self->parse_buffered()) return;
                self->read_available();
            });
            return;
        }
        await_readable();
    }

    // The request is read here, not by bhttp::async_read: each recvmsg also
    // brings the kernel's receive time of its bytes (arrival_stamps.hpp),
    // from which the request's time in the daemon is counted
    // (X-Swarmhost-Overhead-Ms, issue 17 target 7). Reads follow the
    // loop's reports as Asio's would: after a read that found less than it
    // asked for, the next one waits for the socket to become readable.
    void await_readable() {
        stream_.socket().async_wait(tcp::socket::wait_read,
                                    [self = shared_from_this()](const beast::error_code &ec) {
                                        if (!self->reading_) return;
                                        if (ec) return self->end_read(ec);
                                        self->read_available();
                                    });
    }

    void read_available() {
        for (int reads = 0; reads < kReadsPerTurn; ++reads) {
            const std::size_t asked = beast::read_size(buffer_, kReadMost);
            if (asked == 0) return end_read(bhttp::error::buffer_overflow);
            beast::error_code ec;
            const auto space = buffer_.prepare(asked);
            const std::size_t got = receive_stamped(stream_.socket().native_handle(), space.data(),
                                                    space.size(), arrived_us_, ec);
            if (ec == net::error::would_block) {
                try_read_now_ = false;
                return await_readable();
            }
            if (ec == net::error::eof) return end_of_input();
            if (ec) return end_read(ec);
            buffer_.commit(got);
            try_read_now_ = got == asked;
            if (!parse_buffered()) return;
            if (!try_read_now_) return await_readable();
        }
        // More is waiting: the loop's other work first, then read on.
        net::post(stream_.get_executor(), [self = shared_from_this()] {
            if (self->reading_) self->read_available();
        });
    }

    // Feeds the buffered bytes to the parser: false once the request is read
    // whole or reading failed (end_read ran), true when it needs more.
    bool parse_buffered() {
        beast::error_code ec;
        const std::size_t used = parser_->put(buffer_.data(), ec);
        buffer_.consume(used);
        if (ec == bhttp::error::need_more) return true;
        if (ec) {
            end_read(ec);
            return false;
        }
        if (parser_->is_done()) {
            end_read({});
            return false;
        }
        return true;
    }

    // The peer closed its side: the end of a request read to the close, or
    // the end of the connection (as bhttp::async_read reports them).
    void end_of_input() {
        beast::error_code ec = bhttp::error::end_of_stream;
        if (parser_->got_some()) {
            ec = {};
            parser_->put_eof(ec);
        }
        end_read(ec);
    }

    void end_read(beast::error_code ec) {
        reading_ = false;
        on_read(ec);
    }

    // One timer per connection for read_timeout_seconds, armed once and
    // moved on by each request's read_deadline_ (not re-armed per request).
    void arm_read_timer() {
        if (read_timer_armed_) return;
        read_timer_armed_ = true;
        read_timer_.expires_at(read_deadline_);
        read_timer_.async_wait([self = shared_from_this()](const beast::error_code &ec) {
            self->read_timer_armed_ = false;
            if (ec || !self->reading_) return;
            if (std::chrono::steady_clock::now() < self->read_deadline_) return self->arm_read_timer();
            self->end_read(beast::error::timeout);
        });
    }

    void on_read(beast::error_code ec) {
        if (ec == bhttp::error::end_of_stream || ec == net::error::eof || ec == beast::error::timeout ||
            ec == net::error::connection_reset || ec == net::error::operation_aborted) {
            close();
            return;
        }
        if (ec == bhttp::error::body_limit) {
            reply_and_close(413, "payload_too_large",
                            "request body is larger than server.max_body_bytes (" +
                                std::to_string(limits_->max_body_bytes) + " bytes)");
            return;
        }
        if (ec == bhttp::error::header_limit) {
            reply_and_close(431, "invalid_request", "request headers are too large");
            return;
        }
        if (ec == bhttp::error::buffer_overflow) {
            reply_and_close(
                431, "invalid_request",
                "a chunk extension or the trailer section is larger than server.max_header_bytes (" +
                    std::to_string(limits_->max_header_bytes) + " bytes)");
            return;
        }
        if (ec) {
            reply_and_close(400, "invalid_request", "malformed HTTP request: " + ec.message());
            return;
        }
        if (const std::string problem = framing_problem(); !problem.empty()) {
            reply_and_close(400, "invalid_request", problem);
            return;
        }
        if (refuse_) {
            reply_and_close(503, "unavailable",
                            "too many open connections (server.max_connections is " +
                                std::to_string(limits_->max_connections) + "); retry shortly",
                            {{"Retry-After", "1"}});
            return;
        }
        auto message = parser_->release();
        // Nothing of the next request read yet: the buffer goes until it is
        // read (an open stream can last minutes; issue 17, target 6).
        if (buffer_.size() == 0) buffer_.shrink_to_fit();
        // A reload may have come while this request waited on a keep-alive
        // connection: its limits hold from here on (a smaller body limit too).
        if (auto now = cell_->get(); now != limits_) {
            limits_ = std::move(now);
            if (message.body().size() > limits_->max_body_bytes)
                return reply_and_close(413, "payload_too_large",
                                       "request body is larger than server.max_body_bytes (" +
                                           std::to_string(limits_->max_body_bytes) + " bytes)");
        }
        // When the request's last bytes reached the kernel, else now; not
        // before the connection was accepted: the listen queue's wait is
        // the accepting any server pays (the direct upstream's included), so
        // a new connection's request counts from its accept.
        const int64_t now = now_us();
        const int64_t received_at =
            arrived_us_ > 0 ? std::clamp(arrived_us_, std::min(accepted_us_, now), now) : now;
        arrived_us_ = 0;
        Request request;
        request.method = std::string(message.method_string());
        const std::string_view target(message.target().data(), message.target().size());
        const auto qpos = target.find('?');
        request.path = std::string(target.substr(0, qpos));
        request.segments = path_segments(request.path);
        if (qpos != std::string_view::npos) {
            request.raw_query = std::string(target.substr(qpos + 1));
            request.query = parse_query(request.raw_query);
        }
        take_headers(message, request);
        request.deadlines = limits_->deadlines;
        request.client_address = client_address_;
        if (limits_->trusted_proxies && !limits_->trusted_proxies->empty())
            request.client_address =
                http::client_address(client_address_, joined_field(message, "Forwarded"),
                                     joined_field(message, "X-Forwarded-For"), *limits_->trusted_proxies);
        request.body = std::move(message.body());
        stream_.expires_never(); // the handler may take as long as the provider does
        auto exchange = std::make_shared<ExchangeImpl>(
            shared_from_this(), message.keep_alive(), message.version(),
            message.method() == bhttp::verb::head, limits_->max_stream_queue_bytes, in_flight_, received_at);
        try {
            handler_.handle(std::move(request), exchange);
        } catch (const std::exception &e) {
            spdlog::error("request handler threw: {}", e.what());
            exchange->respond(500, "application/json", error_json("internal", "internal error"), {});
        }
    }

    // The header fields a Request carries, in one pass over the request's
    // few fields instead of a lookup per name (issue 17). The first of a
    // repeated field counts, as message[name] would give it.
    template <class Message> static void take_headers(const Message &message, Request &request) {
        struct Wanted {
            bhttp::field known; // field::unknown: matched by name
            std::string_view name;
            std::string Request::*member;
        };
        static constexpr Wanted kWanted[] = {
            {bhttp::field::content_type, "", &Request::content_type}, // known to Beast: by enum
            {bhttp::field::authorization, "", &Request::authorization},
            {bhttp::field::if_none_match, "", &Request::if_none_match},
            {bhttp::field::unknown, "X-Swarmhost-Session", &Request::session_header}, // by name
            {bhttp::field::unknown, "Idempotency-Key", &Request::idempotency_key},
            {bhttp::field::unknown, "anthropic-version", &Request::anthropic_version},
            {bhttp::field::unknown, "Last-Event-ID", &Request::last_event_id},
            {bhttp::field::unknown, "traceparent", &Request::traceparent},
            {bhttp::field::unknown, "X-Swarmhost-User", &Request::caller_user_id},
            {bhttp::field::unknown, "X-API-Key", &Request::api_key},
            {bhttp::field::unknown, "X-Swarmhost-Timeout-Ms", &Request::timeout_header},
        };
        std::uint32_t taken = 0; // bit i: kWanted[i] was seen
        for (const auto &field : message) {
            const bhttp::field known = field.name();
            const beast::string_view name = field.name_string();
            for (std::size_t i = 0; i < std::size(kWanted); ++i) {
                const Wanted &wanted = kWanted[i];
                const bool match =
                    wanted.known != bhttp::field::unknown
                        ? wanted.known == known
                        : beast::iequals(name, beast::string_view(wanted.name.data(), wanted.name.size()));
                if (!match) continue;
                if ((taken & (1u << i)) == 0) {
                    taken |= 1u << i;
                    request.*wanted.member = std::string(field.value().data(), field.value().size());
                }
                break;
            }
        }
    }

    // RFC 9112 6.3: a request whose Transfer-Encoding does not end in
    // `chunked` has no knowable length; reading on would take its body as
    // the next request (request smuggling). Answered 400, then closed.
    std::string framing_problem() const {
        const auto &message = parser_->get();
        const auto coding = message.find(bhttp::field::transfer_encoding);
        if (coding == message.end()) return {};
        if (message.version() < 11) return "Transfer-Encoding is not allowed in an HTTP/1.0 request";
        if (!parser_->chunked())
            return "Transfer-Encoding must end in 'chunked' (got '" + std::string(coding->value()) + "')";
        // Beast merges trailer fields into the header: a trailer could then
        // supply Authorization or X-API-Key after a proxy in front checked
        // the header. No client of this API needs request trailers.
        if (field_count() > header_fields_) return "trailer fields are not accepted in a request";
        return {};
    }

    std::size_t field_count() const {
        const auto &message = parser_->get();
        return static_cast<std::size_t>(std::distance(message.begin(), message.end()));
    }

    // Errors found while reading: answer and close, the stream is unusable.
    void reply_and_close(int status, const std::string &code, const std::string &message,
                         const std::vector<std::pair<std::string, std::string>> &extra_headers = {}) {
        const std::string body = error_json(code, message);
        const bool head =
            parser_ && parser_->is_header_done() && parser_->get().method() == bhttp::verb::head;
        std::string out;
        out.reserve(256 + body.size());
        append_head(out, {.status = status,
                          .keep_alive = false,
                          .content_type = "application/json",
                          .extra = &extra_headers,
                          .content_length = body.size(),
                          .event_stream = false});
        if (!head) out.append(body);
        enqueue(std::move(out), true, false, std::make_shared<GoneSignal>());
    }

    // On the loop thread: what other threads queued joins the write queue.
    void drain_incoming() {
        const bool idle = queue_.empty();
        std::vector<Pending> taken; // incoming_ is left holding no memory
        {
            std::lock_guard lock(incoming_mutex_);
            kick_posted_ = false;
            taken.swap(incoming_);
        }
        for (auto &pending : taken)
            queue_.push_back(std::move(pending));
        if (idle && !queue_.empty()) write_next();
    }

    // One write for everything queued up to the end of a response: a stream's
    // events that arrived together cost one system call, not one each. When
    // the request is served alone (serving_alone) the write is tried right
    // here on the non-blocking socket, so a reply that fits in the socket's
    // buffer needs no completion handler (a turn of the loop); otherwise, and
    // for what the client is not ready for, the loop writes it.
    void write_next() {
        while (writing_ == 0 && !queue_.empty()) { // once per batch; each pass takes one off
            buffers_.clear();
            std::size_t bytes = 0;
            for (const Pending &pending : queue_) {
                buffers_.emplace_back(pending.bytes.data(), pending.bytes.size());
                bytes += pending.bytes.size();
                ++writing_;
                if (pending.last || writing_ == kMaxWriteBatch) break;
            }
            beast::error_code ec;
            std::size_t wrote = 0;
            if (serving_alone(*in_flight_)) wrote = stream_.socket().write_some(buffers_, ec);
            if (ec == net::error::would_block || ec == net::error::try_again) {
                ec = {};
                wrote = 0;
            }
            if (ec || wrote == bytes) {
                if (!written(ec)) return;
                continue;
            }
            skip_written(wrote);
            stream_.expires_after(std::chrono::seconds(limits_->write_timeout_seconds));
            net::async_write(stream_, buffers_,
                             [self = shared_from_this()](beast::error_code e, std::size_t) {
                                 if (self->written(e)) self->write_next();
                             });
            return;
        }
    }

    // Drops the first `bytes` (fewer than all) from buffers_.
    void skip_written(std::size_t bytes) {
        auto first = buffers_.begin();
        while (bytes >= first->size()) {
            bytes -= first->size();
            ++first;
        }
        buffers_.erase(buffers_.begin(), first);
        buffers_.front() += bytes;
    }

    // The batch of writing_ entries went out (or failed): false once the
    // connection is closed or waits for the next request.
    bool written(beast::error_code ec) {
        bool last = false, keep_alive = false;
        for (std::size_t i = 0; i < writing_; ++i) {
            Pending &front = queue_.front();
            unwritten_ -= front.bytes.size();
            last = front.last; // only the batch's last can end a response
            keep_alive = front.keep_alive;
            if (ec) front.gone->fire();
            queue_.pop_front();
        }
        writing_ = 0;
        if (ec) {
            auto pending = std::move(queue_);
            queue_.clear();
            for (auto &p : pending)
                p.gone->fire();
            close();
            return false;
        }
        if (last) {
            if (!keep_alive) {
                close();
                return false;
            }
            stream_.expires_never();
            do_read();
        }
        return true;
    }

    void close() {
        reading_ = false;
        read_timer_.cancel(); // it holds the connection
        beast::error_code ignored;
        stream_.socket().shutdown(tcp::socket::shutdown_both, ignored);
        stream_.socket().close(ignored);
    }

    beast::tcp_stream stream_;
    RequestHandler &handler_;
    std::shared_ptr<const LimitsCell> cell_;
    std::shared_ptr<const ServerLimits> limits_; // this request's
    std::shared_ptr<std::atomic<std::size_t>> in_flight_;
    ScopedCount open_;
    bool refuse_;                // over server.max_connections: answer 503 and close
    std::string client_address_; // the peer, asked once per connection, not per request
    beast::flat_buffer buffer_;
    bool reading_ = false;           // a request is being read (the read timer may end it)
    bool try_read_now_ = true;       // the last read filled what it asked: read again before waiting
    int64_t arrived_us_ = 0;         // the kernel's receive time of the last bytes read (0: not known)
    int64_t accepted_us_ = now_us(); // when this connection was accepted
    std::chrono::steady_clock::time_point read_deadline_{};
    net::steady_timer read_timer_{stream_.get_executor()};
    bool read_timer_armed_ = false;
    static constexpr std::size_t kReadMost = 65536; // as bhttp::async_read asks
    static constexpr int kReadsPerTurn = 8;         // full reads before the loop's other work
    // Chunk sizes and extension bytes of the request being read: Beast counts
    // only the sizes against the body limit, so extensions would be free.
    std::uint64_t chunked_bytes_ = 0;
    std::size_t header_fields_ = 0; // fields before the trailer section of a chunked body
    // Held by reference by the parser: declared before it, so it outlives it.
    std::function<void(std::uint64_t, beast::string_view, beast::error_code &)> on_chunk_header_ =
        [this](std::uint64_t size, beast::string_view extensions, beast::error_code &ec) {
            chunked_bytes_ += size + extensions.size();
            if (chunked_bytes_ > limits_->max_body_bytes) ec = bhttp::error::body_limit;
            // The last chunk: the fields so far are the header's; Beast adds
            // any trailer fields after it to the same set.
            if (size == 0) header_fields_ = field_count();
        };
    std::optional<bhttp::request_parser<bhttp::string_body>> parser_;
    // The loop thread's; its first writing_ entries are being written. A list,
    // not a deque: the buffers being written point into its entries (so they
    // must not move), and an empty list holds no memory where an empty deque
    // keeps a block (about 570 bytes): thousands of open streams wait empty
    // between their chunks (issue 17, target 6).
    std::list<Pending> queue_;
    std::size_t writing_ = 0;
    std::vector<net::const_buffer> buffers_;
    static constexpr std::size_t kMaxWriteBatch = 64;
    std::mutex incoming_mutex_;
    std::vector<Pending> incoming_; // queued by any thread, not yet taken by the loop thread
    bool kick_posted_ = false;
    std::atomic<std::size_t> unwritten_{0}; // bytes in queue_ and incoming_
};

void ExchangeImpl::respond(int status, std::string content_type, std::string body,
                           std::vector<std::pair<std::string, std::string>> extra_headers) {
    {
        std::lock_guard lock(mutex_);
        if (answered_) return;
        answered_ = ended_ = true;
    }
    std::string out;
    out.reserve(256 + body.size());
    append_head(out, {.status = status,
                      .version = version_,
                      .keep_alive = keep_alive_,
                      .content_type = content_type,
                      .extra = &extra_headers,
                      .content_length = body.size(),
                      .event_stream = false});
    if (!head_) out.append(body); // a HEAD gets the Content-Length GET would have, no body
    connection_->enqueue(std::move(out), true, keep_alive_, gone_, in_flight_);
    stop_deadline();
}

void ExchangeImpl::start_stream() {
    bool armed = false;
    {
        std::lock_guard lock(mutex_);
        if (answered_) return;
        answered_ = true;
        streaming_ = true;
        ended_ = head_; // a HEAD gets the stream's head only
        armed = static_cast<bool>(on_passed_);
    }
    // From here the stream's limits hold (and the idle one counts from now).
    last_activity_ = std::chrono::steady_clock::now().time_since_epoch().count();
    if (armed && !head_)
        net::dispatch(connection_->executor(), [self = shared_from_this()] { self->arm_deadline(); });
    else if (armed)
        stop_deadline();
    std::string out;
    append_head(out, {.version = version_,
                      .keep_alive = keep_alive_,
                      .content_type = "text/event-stream",
                      .extra = nullptr,
                      .content_length = std::nullopt,
                      .event_stream = true});
    if (head_)
        connection_->enqueue(std::move(out), true, keep_alive_, gone_, in_flight_);
    else
        connection_->enqueue(std::move(out), false, keep_alive_, gone_);
}

bool ExchangeImpl::send_event(std::string_view event, std::string_view data, std::string_view id) {
    {
        std::lock_guard lock(mutex_);
        if (!answered_ || ended_) return false;
    }
    if (gone_->gone()) return false;
    if (connection_->unwritten() > max_queue_bytes_) {
        drop_lagging_stream();
        return false;
    }
    last_write_ = std::chrono::steady_clock::now().time_since_epoch().count();
    connection_->enqueue(chunk_frame(sse_frame(event, data, id)), false, keep_alive_, gone_);
    return true;
}

// The client reads slower than events come (or not at all): instead of
// queueing without bound, end the stream with a last `error` event and
// close the connection once what is queued is written (or the write times
// out).
void ExchangeImpl::drop_lagging_stream() {
    {
        std::lock_guard lock(mutex_);
        if (ended_) return;
        ended_ = true;
    }
    spdlog::warn("dropped a stream whose client fell behind by more than {} bytes", max_queue_bytes_);
    const std::string data = error_json(
        "unavailable", "this stream fell behind: more than server.max_stream_queue_bytes (" +
                           std::to_string(max_queue_bytes_) +
                           " bytes) of its events were waiting for the client to read them; it is closed");
    connection_->enqueue(chunk_frame(sse_frame("error", data)) + "0\r\n\r\n", true, false, gone_, in_flight_);
    stop_deadline();
}

void ExchangeImpl::keep_alive(std::chrono::milliseconds interval, std::string_view event,
                              std::string_view data) {
    if (interval.count() <= 0) return;
    std::string frame = chunk_frame(event.empty() ? std::string(": keep-alive\n\n") : sse_frame(event, data));
    auto timer = std::make_shared<net::steady_timer>(connection_->executor());
    {
        std::lock_guard lock(mutex_);
        if (ended_) return;
    }
    last_write_ = std::chrono::steady_clock::now().time_since_epoch().count();
    // Weak: the timer must not keep a finished exchange (and its in-flight
    // count) alive.
    auto tick = std::make_shared<std::function<void(const boost::system::error_code &)>>();
    *tick = [weak = std::weak_ptr<ExchangeImpl>(shared_from_this()), timer, interval,
             frame = std::move(frame),
             tick_weak = std::weak_ptr<std::function<void(const boost::system::error_code &)>>(tick)](
                const boost::system::error_code &ec) {
        auto self = weak.lock();
        auto next = tick_weak.lock();
        if (ec || !self || !next) return;
        {
            std::lock_guard lock(self->mutex_);
            if (self->ended_ || self->gone_->gone()) return;
        }
        const auto idle =
            std::chrono::steady_clock::now().time_since_epoch().count() - self->last_write_.load();
        if (std::chrono::steady_clock::duration(idle) >= interval) {
            self->last_write_ = std::chrono::steady_clock::now().time_since_epoch().count();
            self->connection_->enqueue(frame, false, self->keep_alive_, self->gone_);
        }
        timer->expires_after(interval);
        timer->async_wait([next](const boost::system::error_code &e) { (*next)(e); });
    };
    timer->expires_after(interval);
    timer->async_wait([tick](const boost::system::error_code &ec) { (*tick)(ec); });
}

void ExchangeImpl::dispatch(std::function<void()> work) {
    if (!serving_alone(in_flight_->counter())) return net::post(connection_->executor(), std::move(work));
    net::dispatch(connection_->executor(), std::move(work));
}

void ExchangeImpl::end_stream() {
    {
        std::lock_guard lock(mutex_);
        if (!answered_ || ended_) return;
        ended_ = true;
    }
    connection_->enqueue("0\r\n\r\n", true, keep_alive_, gone_, in_flight_);
    stop_deadline();
}

void ExchangeImpl::set_deadline(DeadlineLimits limits, std::function<void(const DeadlinePassed &)> passed) {
    if (!limits.any()) return;
    {
        std::lock_guard lock(mutex_);
        if (ended_ || on_passed_) return;
        deadline_ = limits;
        on_passed_ = std::move(passed);
    }
    last_activity_ = std::chrono::steady_clock::now().time_since_epoch().count();
    net::dispatch(connection_->executor(), [self = shared_from_this()] { self->arm_deadline(); });
}

// (Re)arms the timer for the nearest limit that applies now: the request's
// until the answer streams, then the stream's total and idle ones. The idle
// limit's timer is not moved on each piece of the reply: when it fires
// early (activity since), it is armed again for the new instant.
void ExchangeImpl::arm_deadline() {
    using clock = std::chrono::steady_clock;
    std::optional<clock::time_point> due;
    {
        std::lock_guard lock(mutex_);
        if (ended_ || passed_) return;
        const auto earliest = [&due](clock::time_point at) {
            if (!due || at < *due) due = at;
        };
        if (!streaming_) {
            if (deadline_.request.count() > 0) earliest(received_at_ + deadline_.request);
        } else {
            if (deadline_.stream.count() > 0) earliest(received_at_ + deadline_.stream);
            if (deadline_.stream_idle.count() > 0)
                earliest(clock::time_point(clock::duration(last_activity_.load())) + deadline_.stream_idle);
        }
    }
    if (!deadline_timer_) deadline_timer_ = std::make_shared<net::steady_timer>(connection_->executor());
    if (!due) {
        deadline_timer_->cancel();
        // Streaming without a stream limit: nothing can pass any more.
        std::function<void(const DeadlinePassed &)> dropped; // let go outside the lock
        if (std::lock_guard lock(mutex_); streaming_) std::swap(dropped, on_passed_);
        return;
    }
    deadline_timer_->expires_at(*due);
    // Weak: a pending deadline must not keep a finished exchange alive;
    // the timer itself lives until its wait ends.
    deadline_timer_->async_wait([weak = std::weak_ptr<ExchangeImpl>(shared_from_this()),
                                 timer = deadline_timer_](const boost::system::error_code &ec) {
        auto self = weak.lock();
        if (ec || !self) return;
        self->on_deadline_timer();
    });
}

void ExchangeImpl::on_deadline_timer() {
    using clock = std::chrono::steady_clock;
    const auto now = clock::now();
    DeadlinePassed passed;
    {
        std::lock_guard lock(mutex_);
        if (ended_ || passed_) return;
        passed.streaming = streaming_;
        if (!streaming_ && deadline_.request.count() > 0 && now >= received_at_ + deadline_.request) {
            passed.limit = "request_ms";
            passed.after = deadline_.request;
            passed.by_client = deadline_.request_by_client;
        } else if (streaming_ && deadline_.stream.count() > 0 && now >= received_at_ + deadline_.stream) {
            passed.limit = "stream_ms";
            passed.after = deadline_.stream;
            passed.by_client = deadline_.stream_by_client;
        } else if (streaming_ && deadline_.stream_idle.count() > 0 &&
                   now >= clock::time_point(clock::duration(last_activity_.load())) + deadline_.stream_idle) {
            passed.limit = "stream_idle_ms";
            passed.after = deadline_.stream_idle;
        }
        if (!passed.limit.empty()) passed_ = passed;
    }
    if (passed.limit.empty()) return arm_deadline(); // the reply moved on since: wait for the new instant
    deadline_passed_now(std::move(passed));
}

void ExchangeImpl::deadline_passed_now(DeadlinePassed passed) {
    spdlog::warn("a request passed its deadline: {}", passed.message());
    std::function<void(const DeadlinePassed &)> callback;
    {
        std::lock_guard lock(mutex_);
        callback = on_passed_;
    }
    if (callback) callback(passed); // e.g. the door's 504
    expired_->fire();               // the provider call (on_client_gone's callback) is cancelled
    if (!passed.streaming) return;
    // The cancel makes the send report its error: the door ends the stream
    // with its own last event. A door that does not gets the generic one.
    deadline_timer_->expires_after(kDeadlineStreamGrace);
    deadline_timer_->async_wait([weak = std::weak_ptr<ExchangeImpl>(shared_from_this()),
                                 timer = deadline_timer_](const boost::system::error_code &ec) {
        auto self = weak.lock();
        if (ec || !self) return;
        self->end_stream_after_grace();
    });
}

void ExchangeImpl::end_stream_after_grace() {
    std::string message;
    {
        std::lock_guard lock(mutex_);
        if (ended_ || !passed_) return;
        ended_ = true;
        message = passed_->message();
    }
    const std::string data = error_json("upstream_timeout", message);
    connection_->enqueue(chunk_frame(sse_frame("error", data)) + "0\r\n\r\n", true, false, gone_, in_flight_);
    stop_deadline();
}

void ExchangeImpl::stop_deadline() {
    std::function<void(const DeadlinePassed &)> dropped; // may hold the exchange that wraps this one
    {
        std::lock_guard lock(mutex_);
        if (!on_passed_) return;
        dropped = std::move(on_passed_);
        on_passed_ = nullptr;
    }
    net::dispatch(connection_->executor(), [self = shared_from_this()] {
        if (self->deadline_timer_) self->deadline_timer_->cancel();
    });
}

} // namespace

// One event loop on one thread; the loop runs until the server goes.
struct Server::Lane {
    net::io_context io{1};
    net::executor_work_guard<net::io_context::executor_type> work{io.get_executor()};
    std::thread thread;
};

Server::Server(net::io_context &io, const tcp::endpoint &endpoint, RequestHandler &handler,
               ServerLimits limits)
    : io_(io), acceptor_(net::make_strand(io)), accept_retry_(acceptor_.get_executor()), handler_(handler),
      io_lanes_(limits.io_lanes), limits_(std::make_shared<LimitsCell>(std::move(limits))) {
    acceptor_.open(endpoint.protocol());
    acceptor_.set_option(net::socket_base::reuse_address(true));
    acceptor_.bind(endpoint);
    acceptor_.listen(net::socket_base::max_listen_connections);
    for (std::size_t i = 0; i < io_lanes_; ++i)
        lanes_.push_back(std::make_unique<Lane>());
}

void Server::set_limits(ServerLimits limits) {
    limits.io_lanes = io_lanes_;
    limits_->set(std::move(limits));
}

void Server::stop_serving() {
    for (auto &lane : lanes_) {
        lane->work.reset();
        lane->io.stop();
    }
}

Server::~Server() {
    stop_serving();
    for (auto &lane : lanes_)
        if (lane->thread.joinable()) lane->thread.join();
}

// Connections go round the lanes; without lanes, each gets a strand of the
// shared io_context.
net::any_io_executor Server::next_connection_executor() {
    if (lanes_.empty()) return net::make_strand(io_);
    return lanes_[next_lane_++ % lanes_.size()]->io.get_executor();
}

tcp::endpoint Server::local_endpoint() const {
    return acceptor_.local_endpoint();
}

void Server::start() {
    for (auto &lane : lanes_)
        if (!lane->thread.joinable())
            lane->thread = std::thread([&io = lane->io, hook = lane_hook_] {
                std::shared_ptr<void> attached;
                try {
                    if (hook) attached = hook(io);
                } catch (const std::exception &e) {
                    spdlog::error("an I/O lane could not attach its helpers (it serves without): {}",
                                  e.what());
                }
                // A handler that throws must not end the daemon: the lane
                // logs it and goes on serving its other connections.
                for (;;) {
                    try {
                        io.run();
                        break;
                    } catch (const std::exception &e) {
                        spdlog::error("an I/O lane's handler threw (the lane goes on): {}", e.what());
                    }
                }
                attached.reset(); // on this thread, before the loop's io_context goes
            });
    do_accept();
}

void Server::stop_accepting() {
    net::post(acceptor_.get_executor(), [this] {
        beast::error_code ignored;
        accept_retry_.cancel();
        acceptor_.close(ignored);
    });
}

void Server::do_accept() {
    // Accepted on the main loop, then handed to a lane: a pending accept
    // then never holds a socket of a lane, which a shutdown destroys first
    // (an accept op still queued on the stopped main loop would otherwise
    // free its lane socket after that lane's socket service is gone).
    acceptor_.async_accept([this](beast::error_code ec, tcp::socket accepted) {
        if (ec == net::error::operation_aborted || !acceptor_.is_open()) return;
        if (ec) return retry_accept(ec);
        tcp::socket socket(next_connection_executor());
        const auto handle = accepted.release(ec);
        if (!ec) socket.assign(acceptor_.local_endpoint().protocol(), handle, ec);
        if (ec) {
            spdlog::warn("could not hand an accepted connection to an I/O lane: {}", ec.message());
            if (handle >= 0 && !socket.is_open()) ::close(handle);
            return do_accept();
        }
        socket.set_option(tcp::no_delay(true), ec);
        const auto limits = limits_->get();
        const bool refuse =
            limits->max_connections != 0 && open_connections_->load() >= limits->max_connections;
        if (refuse) ++refused_connections_;
        std::make_shared<Connection>(std::move(socket), handler_, limits_, in_flight_, open_connections_,
                                     refuse)
            ->start();
        do_accept();
    });
}

// Out of file descriptors (EMFILE/ENFILE) accept fails at once, again and
// again: pause before the next try instead of spinning and flooding the log.
void Server::retry_accept(const boost::system::error_code &ec) {
    const auto now = std::chrono::steady_clock::now();
    if (now - last_accept_warning_ >= std::chrono::seconds(1)) {
        spdlog::warn("accept failed: {} (open connections: {}); retrying", ec.message(),
                     open_connections_->load());
        last_accept_warning_ = now;
    }
    accept_retry_.expires_after(std::chrono::milliseconds(50));
    accept_retry_.async_wait([this](const boost::system::error_code &waited) {
        if (!waited && acceptor_.is_open()) do_accept();
    });
}

std::string DeadlinePassed::message() const {
    const std::string ms = std::to_string(after.count()) + " ms";
    const std::string source =
        by_client ? "the client's X-Swarmhost-Timeout-Ms" : "server.deadlines " + limit;
    if (limit == "stream_idle_ms")
        return "the upstream sent nothing for " + ms + " (" + source + "); the reply is cancelled";
    if (limit == "stream_ms")
        return "the streamed reply did not end within " + ms + " (" + source + "); it is cancelled";
    return "the request was not answered within " + ms + " (" + source + "); it is cancelled";
}

std::string error_json(std::string_view code, std::string_view message) {
    const nlohmann::json body{{"error", {{"code", code}, {"message", message}}}};
    return body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::vector<std::string> path_segments(std::string_view raw_path) {
    std::vector<std::string> segments;
    std::size_t start = 0;
    while (start < raw_path.size()) {
        std::size_t end = raw_path.find('/', start);
        if (end == std::string_view::npos) end = raw_path.size();
        if (end > start) segments.push_back(percent_decode(raw_path.substr(start, end - start)));
        start = end + 1;
    }
    return segments;
}

std::string percent_decode(std::string_view text) {
    std::string out;
    out.reserve(text.size());
    auto hex = [](char c) -> int {
        if (c >= '0' && c <= '9') return c - '0';
        if (c >= 'a' && c <= 'f') return c - 'a' + 10;
        if (c >= 'A' && c <= 'F') return c - 'A' + 10;
        return -1;
    };
    for (std::size_t i = 0; i < text.size(); ++i) {
        if (text[i] == '%' && i + 2 < text.size() && hex(text[i + 1]) >= 0 && hex(text[i + 2]) >= 0) {
            out.push_back(static_cast<char>(hex(text[i + 1]) * 16 + hex(text[i + 2])));
            i += 2;
        } else {
            out.push_back(text[i]);
        }
    }
    return out;
}

std::map<std::string, std::string> parse_query(std::string_view query) {
    std::map<std::string, std::string> out;
    std::size_t start = 0;
    while (start <= query.size()) {
        std::size_t end = query.find('&', start);
        if (end == std::string_view::npos) end = query.size();
        std::string_view pair = query.substr(start, end - start);
        if (!pair.empty()) {
            const auto eq = pair.find('=');
            std::string key(pair.substr(0, eq));
            std::string value(eq == std::string_view::npos ? std::string_view() : pair.substr(eq + 1));
            for (auto *s : {&key, &value})
                for (char &c : *s)
                    if (c == '+') c = ' ';
            out[percent_decode(key)] = percent_decode(value);
        }
        start = end + 1;
    }
    return out;
}

} // namespace swh::http
