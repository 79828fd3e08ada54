#include "upstream/lane_http1.hpp"

#include "util/arrival_stamps.hpp"
#include "util/clock.hpp"

#include <algorithm>
#include <array>
#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/beast/http/buffer_body.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/container/small_vector.hpp>
#include <chrono>
#include <cstdlib>
#include <limits>
#include <set>
#include <spdlog/spdlog.h>
#include <unordered_map>
#include <vector>

namespace swh::upstream {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;

namespace {

bool has_header(const HttpRequest &request, beast::string_view name) {
    for (const auto &[key, value] : request.headers)
        if (beast::iequals(key, name)) return true;
    return false;
}

bool env_set(const char *name) {
    const char *value = std::getenv(name);
    return value != nullptr && *value != '\0';
}

// Connections kept per origin and lane beyond that are closed; idle ones
// older than this are not reused (the upstream may have dropped them; curl's
// default is 118 s).
constexpr std::size_t kIdlePerOrigin = 256;
constexpr auto kIdleMaxAge = std::chrono::seconds(60);
// How often due deadlines are looked for: one timer per lane, not one timer
// (and one timerfd update) per request. Each tick reads only the deadlines
// that are due, in order, so thousands of long streams cost nothing per tick.
constexpr auto kSweep = std::chrono::milliseconds(50);
constexpr std::size_t kPieceBytes = 16384;
// A connection's reads start small (thousands of open streams each hold a
// read buffer) and double, up to the most, while reads come back full;
// full reads run up to kReadsPerTurn before the loop's other work.
constexpr std::size_t kReadLeast = 4096;
constexpr std::size_t kReadMost = 65536;
constexpr int kReadsPerTurn = 8;

} // namespace

namespace {

// Whether the lane client speaks what `request` asks for (its URL aside).
bool plain_request(const HttpRequest &request) {
    if (request.delay_ms != 0 || request.version == HttpVersion::http2 ||
        request.version == HttpVersion::http2_prior_knowledge)
        return false;
    return request.method == "GET" || request.method == "POST" || request.method == "PUT" ||
           request.method == "PATCH" || request.method == "DELETE";
}

// The target of an http:// URL the lane client can reach, else nullopt.
std::optional<PlainTarget> plain_url(std::string_view url) {
    if (!beast::iequals(beast::string_view(url.data(), std::min<std::size_t>(url.size(), 7)), "http://"))
        return std::nullopt;
    url.remove_prefix(7);
    const auto path_at = url.find_first_of("/?#");
    std::string_view authority = url.substr(0, path_at);
    std::string_view rest = path_at == std::string_view::npos ? std::string_view() : url.substr(path_at);
    if (const auto hash = rest.find('#'); hash != std::string_view::npos) rest = rest.substr(0, hash);
    if (authority.empty() || authority.find('@') != std::string_view::npos) return std::nullopt;
    PlainTarget t;
    std::string_view host = authority, port;
    if (authority.front() == '[') {
        const auto close = authority.find(']');
        if (close == std::string_view::npos) return std::nullopt;
        host = authority.substr(1, close - 1);
        const std::string_view after = authority.substr(close + 1);
        if (!after.empty()) {
            if (after.front() != ':') return std::nullopt;
            port = after.substr(1);
        }
    } else if (const auto colon = authority.rfind(':'); colon != std::string_view::npos) {
        host = authority.substr(0, colon);
        port = authority.substr(colon + 1);
    }
    if (host.empty() || port.size() > 5) return std::nullopt;
    for (char c : port)
        if (c < '0' || c > '9') return std::nullopt;
    for (char c : host)
        if (static_cast<unsigned char>(c) <= ' ' || c == '%') return std::nullopt; // zone ids, junk: curl's
    for (char c : rest)
        if (static_cast<unsigned char>(c) <= ' ' || static_cast<unsigned char>(c) >= 0x7f)
            return std::nullopt;
    const int number = port.empty() ? 80 : std::stoi(std::string(port));
    if (number == 0 || number > 65535) return std::nullopt;
    t.host = std::string(host);
    t.port = static_cast<unsigned short>(number);
    t.target = rest.empty() || rest.front() == '?' ? "/" + std::string(rest) : std::string(rest);
    t.origin = t.host + ":" + std::to_string(t.port);
    // As curl writes it: the port only when it is not the scheme's.
    t.host_header = std::string(authority.front() == '[' ? "[" + t.host + "]" : t.host);
    if (t.port != 80) t.host_header += ":" + std::to_string(t.port);
    return t;
}

} // namespace

bool lane_client_enabled() {
    static const bool enabled = [] {
        if (const char *choice = std::getenv("SWARMHOST_UPSTREAM_CLIENT");
            choice != nullptr && std::string_view(choice) == "curl")
            return false;
        for (const char *name : {"http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"})
            if (env_set(name)) return false;
        return true;
    }();
    return enabled;
}

namespace {

struct Connection {
    explicit Connection(asio::io_context &io, std::string origin) : socket(io), origin(std::move(origin)) {}
    tcp::socket socket;
    std::string origin;
    beast::flat_buffer buffer;
    std::size_t read_size = kReadLeast;
    int64_t arrived_us = 0; // when the kernel received the bytes last read (0: not known)
    bool reused = false;
    Clock::time_point idle_since{};
};

} // namespace

struct LaneHttp1::Impl {
    struct Call {
        uint64_t id = 0;
        PlainTarget target;
        HttpRequest request;
        HttpCallbacks callbacks;
        std::unique_ptr<Connection> connection;
        std::optional<tcp::resolver> resolver;
        std::optional<bhttp::response_parser<bhttp::buffer_body>> parser;
        std::string head;
        Clock::time_point deadline = Clock::time_point::max();         // the whole request
        Clock::time_point connect_deadline = Clock::time_point::max(); // while connecting
        Clock::time_point quiet_since{};                               // idle timeout: last bytes in
        Clock::time_point check_at = Clock::time_point::max();         // its entry in `checks`, if any
        int64_t wire_started_us = 0;
        unsigned attempt = 0; // which connection: handlers of an earlier one do nothing
        bool connecting = false, responded = false, done = false, retried = false;
        bool received = false; // bytes came back on this connection
        bool writing = false;  // the request is still going out
    };

    Impl(asio::io_context &io, std::atomic<std::size_t> &open, std::weak_ptr<LaneHttp1> owner)
        : io(io), open(open), owner(std::move(owner)), sweeper(io) {}

    asio::io_context &io;
    std::atomic<std::size_t> &open;
    std::weak_ptr<LaneHttp1> owner;
    asio::steady_timer sweeper;
    bool sweeping = false;
    std::unordered_map<uint64_t, std::shared_ptr<Call>> calls;
    // When each open call next needs a look: its earliest deadline. An idle
    // deadline moves later with every read without touching this; the tick
    // that finds it not yet reached files it again at its real time.
    std::set<std::pair<Clock::time_point, uint64_t>> checks;
    // Where body bytes land on their way to the plugin: one for the lane, as
    // each piece is parsed and handed over before anything else runs.
    std::unique_ptr<char[]> piece_ = std::make_unique_for_overwrite<char[]>(kPieceBytes);
    std::unordered_map<std::string, std::vector<std::unique_ptr<Connection>>> idle;

    // ------------------------------------------------------------ begin
    void begin(const std::shared_ptr<Call> &call) {
        if (call->done) return;
        const auto now = Clock::now();
        if (call->request.timeout_ms)
            call->deadline = now + std::chrono::milliseconds(call->request.timeout_ms);
        call->quiet_since = now;
        if (auto conn = take_idle(call->target.origin, now)) {
            call->connection = std::move(conn);
            call->connection->reused = true;
            schedule(*call);
            return send(call);
        }
        connect(call);
    }

    std::unique_ptr<Connection> take_idle(const std::string &origin, Clock::time_point now) {
        auto it = idle.find(origin);
        while (it != idle.end() && !it->second.empty()) {
            std::unique_ptr<Connection> conn = std::move(it->second.back());
            it->second.pop_back();
            if (now - conn->idle_since < kIdleMaxAge) return conn;
        }
        return nullptr;
    }

    void keep_idle(std::unique_ptr<Connection> conn) {
        auto &list = idle[conn->origin];
        if (list.size() >= kIdlePerOrigin) return; // closed as it goes
        conn->idle_since = Clock::now();
        conn->buffer.clear();
        list.push_back(std::move(conn));
    }

    // ---------------------------------------------------------- connect
    void connect(const std::shared_ptr<Call> &call) {
        call->connection = std::make_unique<Connection>(io, call->target.origin);
        call->connecting = true;
        call->connect_deadline =
            Clock::now() + std::chrono::milliseconds(
                               call->request.connect_timeout_ms ? call->request.connect_timeout_ms : 10000);
        schedule(*call);
        boost::system::error_code ec;
        const auto address = asio::ip::make_address(call->target.host, ec);
        if (!ec) {
            const tcp::endpoint endpoint(address, call->target.port);
            call->connection->socket.async_connect(
                endpoint, [this, call](const boost::system::error_code &error) { connected(call, error); });
            return;
        }
        call->resolver.emplace(io);
        call->resolver->async_resolve(
            call->target.host, std::to_string(call->target.port),
            [this, call](const boost::system::error_code &error, const tcp::resolver::results_type &results) {
                if (call->done) return;
                if (error)
                    return fail(call, SWH_E_UNAVAILABLE,
                                "Could not resolve host: " + call->target.host + " (" + error.message() +
                                    ")");
                asio::async_connect(call->connection->socket, results,
                                    [this, call](const boost::system::error_code &e, const tcp::endpoint &) {
                                        connected(call, e);
                                    });
            });
    }

    void connected(const std::shared_ptr<Call> &call, const boost::system::error_code &error) {
        if (call->done) return;
        call->connecting = false;
        schedule(*call); // the connect deadline is over; the idle one starts counting
        if (error)
            return fail(call, SWH_E_UNAVAILABLE,
                        "Failed to connect to " + call->target.host + " port " +
                            std::to_string(call->target.port) + ": " + error.message());
        boost::system::error_code ignored;
        call->connection->socket.set_option(tcp::no_delay(true), ignored); // as curl does
        call->connection->socket.non_blocking(true, ignored);              // read_available's reads
        stamp_arrivals(call->connection->socket.native_handle());
        send(call);
    }

    // ------------------------------------------------------------- send
    void build_head(Call &call) {
        const HttpRequest &r = call.request;
        std::string &head = call.head;
        head.reserve(256);
        head += r.method;
        head += ' ';
        head += call.target.target;
        head += " HTTP/1.1\r\n";
        if (!has_header(r, "host")) head += "Host: " + call.target.host_header + "\r\n";
        if (!has_header(r, "accept")) head += "Accept: */*\r\n";
        const bool with_body = r.method == "POST" || !r.body.empty();
        if (with_body) {
            if (!has_header(r, "content-type")) head += "Content-Type: application/x-www-form-urlencoded\r\n";
            if (!has_header(r, "content-length"))
                head += "Content-Length: " + std::to_string(r.body.size()) + "\r\n";
        }
        for (const auto &[name, value] : r.headers) {
            head += name;
            head += ": ";
            head += value;
            head += "\r\n";
        }
        head += "\r\n";
    }

    // The request is written at once on the non-blocking socket; only what
    // the upstream is not ready for waits for the loop. The wait for the
    // answer is queued after that write, off the request's way: queuing it
    // re-arms the socket with the kernel (epoll_ctl), which reports an answer
    // already there as well as one still to come.
    void send(const std::shared_ptr<Call> &call) {
        if (call->head.empty()) build_head(*call);
        call->parser.reset();
        call->received = false;
        std::array<asio::const_buffer, 2> buffers{asio::buffer(call->head), asio::buffer(call->request.body)};
        boost::system::error_code error;
        std::size_t wrote = call->connection->socket.write_some(buffers, error);
        // The upstream's share starts once the request is out (or most of
        // it): X-Swarmhost-Overhead-Ms subtracts only the share.
        call->wire_started_us = now_us();
        await_readable(call);
        if (!error && wrote == buffers[0].size() + buffers[1].size()) return;
        // The rest goes out from the loop; a failed write is tried there
        // again and reported by its handler, never from inside start().
        if (error) wrote = 0;
        for (asio::const_buffer &buffer : buffers) {
            const std::size_t skip = std::min(wrote, buffer.size());
            buffer += skip;
            wrote -= skip;
        }
        call->writing = true;
        asio::async_write(
            call->connection->socket, buffers,
            [this, call, attempt = call->attempt](const boost::system::error_code &e, std::size_t) {
                if (call->done || attempt != call->attempt) return;
                call->writing = false;
                if (e) lost(call, "Send failure: " + e.message());
            });
    }

    // ------------------------------------------------------------- read
    // The socket is read when the loop reports it readable, and a read that
    // returns less than it asked for means the socket was drained: the next
    // wait is queued there and then. Queuing a wait re-arms the socket with
    // the kernel (epoll_ctl), so bytes that came in between are reported too.
    // (Asio's reads instead try the socket at once after every piece: one
    // failed recv per streamed chunk where this spends that epoll_ctl.)
    void await_readable(const std::shared_ptr<Call> &call) {
        call->connection->socket.async_wait(
            tcp::socket::wait_read,
            [this, call, attempt = call->attempt](const boost::system::error_code &error) {
                if (call->done || attempt != call->attempt) return;
                if (error) return lost(call, "Recv failure: " + error.message());
                read_available(call);
            });
    }

    void read_available(const std::shared_ptr<Call> &call) {
        Connection &conn = *call->connection;
        for (int reads = 0; reads < kReadsPerTurn; ++reads) {
            boost::system::error_code error;
            const std::size_t asked = conn.read_size;
            const auto space = conn.buffer.prepare(asked);
            const std::size_t got = receive_stamped(conn.socket.native_handle(), space.data(), space.size(),
                                                    conn.arrived_us, error);
            if (error == asio::error::would_block) return await_readable(call);
            if (error == asio::error::eof) return ended_by_upstream(call);
            if (error) return lost(call, "Recv failure: " + error.message());
            conn.buffer.commit(got);
            call->received = true;
            call->quiet_since = Clock::now();
            if (!parse_buffered(call)) return; // the call ended
            if (got < asked) return await_readable(call);
            conn.read_size = std::min(asked * 2, kReadMost);
        }
        // More is waiting: the loop's other work first, then read on.
        asio::post(io, [this, call, attempt = call->attempt] {
            if (!call->done && attempt == call->attempt) read_available(call);
        });
    }

    // Feeds what was read to the parser and the body to the plugin; false
    // once the call ended (answered whole, failed, or the plugin stopped).
    bool parse_buffered(const std::shared_ptr<Call> &call) {
        Connection &conn = *call->connection;
        for (;;) {
            if (!call->parser) {
                call->parser.emplace();
                // Streams run long; the decoders bound what they keep.
                call->parser->body_limit(std::numeric_limits<std::uint64_t>::max());
                call->parser->header_limit(64 * 1024);
            }
            auto &parser = *call->parser;
            const bool had_header = parser.is_header_done();
            auto &body = parser.get().body();
            body.data = piece_.get();
            body.size = kPieceBytes;
            boost::system::error_code error;
            const std::size_t used = parser.put(conn.buffer.data(), error);
            conn.buffer.consume(used);
            if (error == bhttp::error::need_buffer) error = {};
            if (error && error != bhttp::error::need_more) {
                fail(call, SWH_E_UNAVAILABLE, "Invalid answer from the upstream: " + error.message());
                return false;
            }
            if (!had_header && parser.is_header_done()) {
                const unsigned status = parser.get().result_int();
                if (status >= 100 && status < 200 && status != 101) {
                    call->parser.reset(); // an interim answer: the real one follows
                    continue;
                }
            }
            const std::size_t piece = kPieceBytes - body.size;
            if (piece > 0 && !deliver(call, std::string_view(piece_.get(), piece))) return false;
            if (parser.is_done()) {
                finish(call);
                return false;
            }
            if (error == bhttp::error::need_more || (used == 0 && piece == 0)) return true;
        }
    }

    // The upstream closed its side: the end of a body read to the close, or
    // an answer cut short.
    void ended_by_upstream(const std::shared_ptr<Call> &call) {
        if (!call->parser || !call->parser->is_header_done())
            return lost(call, "Recv failure: the upstream closed the connection");
        boost::system::error_code error;
        call->parser->put_eof(error);
        if (!error && call->parser->is_done()) return finish(call);
        fail(call, SWH_E_UNAVAILABLE,
             "transfer closed with outstanding read data remaining (" +
                 (error ? error.message() : std::string("end of stream")) + ")");
    }

    void report_response(Call &call) {
        if (call.responded) return;
        call.responded = true;
        if (!call.callbacks.on_response) return;
        boost::container::small_vector<HeaderView, 16> headers;
        for (const auto &field : call.parser->get())
            headers.push_back({std::string_view(field.name_string().data(), field.name_string().size()),
                               std::string_view(field.value().data(), field.value().size())});
        call.callbacks.on_response(static_cast<int>(call.parser->get().result_int()),
                                   HeaderViews(headers.data(), headers.size()));
    }

    // One piece of the body to the plugin; false when the call ended here.
    bool deliver(const std::shared_ptr<Call> &call, std::string_view piece) {
        report_response(*call);
        if (call->done) return false;
        bool more = true;
        try {
            more = !call->callbacks.on_body || call->callbacks.on_body(piece);
        } catch (const std::exception &e) {
            spdlog::error("http body handler failed: {}", e.what());
            more = false;
        }
        if (call->done) return false;
        if (!more) fail(call, SWH_E_CANCELLED, "Failure writing output to destination");
        return more;
    }

    // A kept-alive connection the upstream closed before answering anything
    // is tried once more on a new one, as curl does; otherwise it failed.
    void lost(const std::shared_ptr<Call> &call, std::string error) {
        if (call->connection->reused && !call->retried && !call->received) {
            call->retried = true;
            ++call->attempt; // what the old connection still has queued is stale
            boost::system::error_code ignored;
            call->connection->socket.close(ignored);
            call->parser.reset();
            return connect(call);
        }
        fail(call, SWH_E_UNAVAILABLE, std::move(error));
    }

    // -------------------------------------------------------------- end
    void finish(const std::shared_ptr<Call> &call) {
        report_response(*call);
        if (call->done) return;
        // An answer that came before the whole request went out (an early
        // error) leaves the connection mid-write: not one to reuse.
        const bool reusable = call->parser->get().keep_alive() && !call->parser->need_eof() && !call->writing;
        // The upstream's share: from the request written to the last of the
        // answer received (by the kernel, when it says: stamp_arrivals).
        const int64_t now = now_us(), arrived = call->connection->arrived_us;
        const int64_t answered = arrived > call->wire_started_us && arrived <= now ? arrived : now;
        if (reusable) keep_idle(std::move(call->connection));
        end(call, SWH_OK, "", answered - call->wire_started_us);
    }

    void fail(const std::shared_ptr<Call> &call, swh_status status, std::string error) {
        if (call->done) return;
        if (call->connection) {
            boost::system::error_code ignored;
            call->connection->socket.close(ignored); // the upstream hears of it at once
        }
        if (call->resolver) call->resolver->cancel();
        end(call, status, std::move(error), -1);
    }

    void end(const std::shared_ptr<Call> &call, swh_status status, std::string error, int64_t wire_us) {
        call->done = true;
        unschedule(*call);
        calls.erase(call->id);
        open.fetch_sub(1); // counted closed before on_done, as the curl shards do
        report_done(call->callbacks.on_done, status, std::move(error), wire_us);
        call->callbacks = {};
    }

    // ------------------------------------------------------------ sweep
    static Clock::time_point next_check(const Call &call) {
        Clock::time_point at = call.deadline;
        if (call.connecting)
            at = std::min(at, call.connect_deadline);
        else if (call.request.idle_timeout_ms)
            at = std::min(at, call.quiet_since + std::chrono::milliseconds(call.request.idle_timeout_ms));
        return at;
    }

    void unschedule(Call &call) {
        if (call.check_at != Clock::time_point::max()) checks.erase({call.check_at, call.id});
        call.check_at = Clock::time_point::max();
    }

    void schedule(Call &call) {
        const Clock::time_point at = next_check(call);
        if (at == call.check_at) return;
        unschedule(call);
        if (at == Clock::time_point::max()) return; // no deadline: nothing to look at
        checks.emplace(at, call.id);
        call.check_at = at;
        arm_sweeper();
    }

    // `owner` keeps the check from touching an Impl that close_all let go
    // of, should the loop run once more after it.
    void arm_sweeper() {
        if (sweeping) return;
        sweeping = true;
        sweeper.expires_after(kSweep);
        sweeper.async_wait([owner = owner](const boost::system::error_code &error) {
            auto lane = owner.lock();
            Impl *self = lane ? lane->impl_.get() : nullptr;
            if (self == nullptr) return;
            self->sweeping = false;
            if (error) return;
            self->sweep();
            if (!self->checks.empty()) self->arm_sweeper();
        });
    }

    // Why the call is late at `now`, or empty while it is not.
    static std::string lateness(const Call &call, Clock::time_point now) {
        if (now >= call.deadline)
            return "Operation timed out after " + std::to_string(call.request.timeout_ms) + " milliseconds";
        if (call.connecting && now >= call.connect_deadline)
            return "Connection timed out after " + std::to_string(call.request.connect_timeout_ms) +
                   " milliseconds";
        if (call.request.idle_timeout_ms && !call.connecting &&
            now - call.quiet_since >= std::chrono::milliseconds(call.request.idle_timeout_ms))
            return "Operation too slow: nothing received for " +
                   std::to_string(call.request.idle_timeout_ms) + " milliseconds";
        return {};
    }

    void sweep() {
        const auto now = Clock::now();
        std::vector<std::shared_ptr<Call>> due;
        while (!checks.empty() && checks.begin()->first <= now) {
            const uint64_t id = checks.begin()->second;
            checks.erase(checks.begin());
            auto it = calls.find(id);
            if (it == calls.end()) continue;
            it->second->check_at = Clock::time_point::max();
            due.push_back(it->second);
        }
        for (const auto &call : due) { // open: end() takes a call out of `calls`
            std::string why = lateness(*call, now);
            if (why.empty())
                schedule(*call); // an idle deadline that reads pushed on
            else
                fail(call, SWH_E_TIMEOUT, std::move(why));
        }
    }
};

LaneHttp1::LaneHttp1(asio::io_context &io, std::atomic<std::size_t> &open) : io_(io), open_(open) {}

LaneHttp1::~LaneHttp1() = default;

LaneHttp1::Impl &LaneHttp1::impl() {
    // Made on the lane's first request: weak_from_this needs the shared_ptr.
    if (!impl_) impl_ = std::make_unique<Impl>(io_, open_, weak_from_this());
    return *impl_;
}

std::optional<PlainTarget> LaneHttp1::target_of(const HttpRequest &request) {
    if (!plain_request(request)) return std::nullopt;
    // Both start empty: nullopt is also what an empty URL parses to.
    if (request.url != last_url_) {
        last_target_ = plain_url(request.url);
        last_url_ = request.url;
    }
    return last_target_;
}

void LaneHttp1::start(uint64_t id, PlainTarget target, HttpRequest request, HttpCallbacks callbacks) {
    auto call = std::make_shared<Impl::Call>();
    call->id = id;
    call->target = std::move(target);
    call->request = std::move(request);
    call->callbacks = std::move(callbacks);
    {
        std::lock_guard lock(mutex_);
        if (closed_) {
            // The lane is going: ended as its open requests were.
            asio::post(io_, [this_open = &open_, call] {
                this_open->fetch_sub(1);
                report_done(call->callbacks.on_done, SWH_E_CANCELLED, "cancelled", -1);
            });
            return;
        }
        impl().calls.emplace(id, call);
    }
    // begin() calls no callback before it returns (every outcome comes
    // from the loop), so callbacks never run inside start() either way. The
    // lane's only request begins at once (a post costs it a turn of the
    // loop); with others open the loop's turn takes them together, which
    // costs less per request (see serving_alone in http/server.cpp).
    if (io_.get_executor().running_in_this_thread() && impl().calls.size() == 1) return impl().begin(call);
    asio::post(io_, [self = weak_from_this(), call] {
        auto lane = self.lock();
        if (lane && lane->impl_) lane->impl_->begin(call);
    });
}

void LaneHttp1::cancel(uint64_t id) {
    std::lock_guard lock(mutex_);
    if (closed_) return;
    asio::post(io_, [self = weak_from_this(), id] {
        auto lane = self.lock();
        if (!lane || !lane->impl_) return;
        Impl &impl = *lane->impl_;
        auto it = impl.calls.find(id);
        if (it == impl.calls.end()) return;
        const std::shared_ptr<Impl::Call> call = it->second;
        impl.fail(call, SWH_E_CANCELLED, "cancelled");
    });
}

void LaneHttp1::close_all() {
    std::unique_ptr<Impl> gone;
    {
        std::lock_guard lock(mutex_);
        closed_ = true;
        gone = std::move(impl_);
    }
    if (!gone) return;
    std::vector<std::shared_ptr<Impl::Call>> open_calls;
    for (const auto &[id, call] : gone->calls)
        open_calls.push_back(call);
    for (const auto &call : open_calls)
        gone->fail(call, SWH_E_CANCELLED, "cancelled");
    gone->idle.clear();
    gone->sweeper.cancel();
} // `gone` ends here, on the lane's thread, while its loop still exists

} // namespace swh::upstream
