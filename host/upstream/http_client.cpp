#include "upstream/http_client.hpp"

#include "upstream/lane_http1.hpp"

#include <algorithm>
#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <cerrno>
#include <chrono>
#include <climits>
#include <cstring>
#include <curl/curl.h>
#include <fcntl.h>
#include <mutex>
#include <queue>
#include <spdlog/spdlog.h>
#include <stdexcept>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <thread>
#include <unistd.h>
#include <unordered_map>

namespace swh {

std::optional<HttpVersion> parse_http_version(std::string_view text) {
    if (text == "auto") return HttpVersion::automatic;
    if (text == "1.1") return HttpVersion::http1_1;
    if (text == "2") return HttpVersion::http2;
    if (text == "2-prior-knowledge") return HttpVersion::http2_prior_knowledge;
    return std::nullopt;
}

std::string_view http_version_name(HttpVersion version) {
    switch (version) {
    case HttpVersion::http1_1:
        return "1.1";
    case HttpVersion::http2:
        return "2";
    case HttpVersion::http2_prior_knowledge:
        return "2-prior-knowledge";
    default:
        return "auto";
    }
}

namespace {

// upstream_wire_us_in_done(): set around each on_done call on this thread.
thread_local int64_t wire_us_in_done = -1;

using Clock = std::chrono::steady_clock;

// curl_global_init is not thread-safe: do it once, before any client exists.
void global_init_once() {
    static std::once_flag once;
    std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

swh_status status_of(CURLcode code) {
    switch (code) {
    case CURLE_OK:
        return SWH_OK;
    case CURLE_OPERATION_TIMEDOUT:
        return SWH_E_TIMEOUT;
    case CURLE_WRITE_ERROR:
    case CURLE_ABORTED_BY_CALLBACK:
        return SWH_E_CANCELLED;
    case CURLE_COULDNT_CONNECT:
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
        return SWH_E_UNAVAILABLE;
    default:
        return SWH_E_UPSTREAM;
    }
}

struct EasyCleanup {
    void operator()(CURL *easy) const { curl_easy_cleanup(easy); }
};
using Easy = std::unique_ptr<CURL, EasyCleanup>;

struct SlistFree {
    void operator()(curl_slist *list) const { curl_slist_free_all(list); }
};
using Slist = std::unique_ptr<curl_slist, SlistFree>;

struct MultiCleanup {
    void operator()(CURLM *multi) const { curl_multi_cleanup(multi); }
};

class UniqueFd {
  public:
    explicit UniqueFd(int fd) : fd_(fd) {
        if (fd_ < 0) throw std::runtime_error(std::string("http client: ") + std::strerror(errno));
    }
    ~UniqueFd() { ::close(fd_); }
    UniqueFd(const UniqueFd &) = delete;
    UniqueFd &operator=(const UniqueFd &) = delete;
    int get() const { return fd_; }

  private:
    int fd_;
};

// One exchange: the easy handle and everything its options point into.
struct Transfer {
    uint64_t id = 0;
    HttpRequest request;
    HttpCallbacks callbacks;
    Clock::time_point due;
    Slist header_list; // declared before `easy`: outlives the handle that points at it
    Easy easy;
    bool in_multi = false;
    std::string h2c_origin; // counted in Shard::h2c_streams_ while open
    std::vector<std::pair<std::string, std::string>> response_headers;
    bool response_reported = false;
    bool aborted_by_plugin = false;
    char error_buffer[CURL_ERROR_SIZE] = {0};

    void report_response() {
        if (response_reported) return;
        response_reported = true;
        long status = 0;
        if (easy) curl_easy_getinfo(easy.get(), CURLINFO_RESPONSE_CODE, &status);
        // Told once, then let go: a stream keeps its transfer open for as
        // long as it runs (issue 17, target 6: 10,000 open streams).
        const auto headers = std::move(response_headers);
        response_headers = {};
        if (!callbacks.on_response) return;
        std::vector<HeaderView> views;
        views.reserve(headers.size());
        for (const auto &[name, value] : headers)
            views.push_back({name, value});
        callbacks.on_response(static_cast<int>(status), views);
    }

    static size_t on_header(char *data, size_t size, size_t count, void *user) {
        auto &t = *static_cast<Transfer *>(user);
        std::string_view line(data, size * count);
        if (line.starts_with("HTTP/")) {
            t.response_headers.clear(); // a new response (after 100-continue or a redirect)
        } else if (auto colon = line.find(':'); colon != std::string_view::npos) {
            auto value = line.substr(colon + 1);
            while (!value.empty() && (value.front() == ' ' || value.front() == '\t'))
                value.remove_prefix(1);
            while (!value.empty() && (value.back() == '\r' || value.back() == '\n'))
                value.remove_suffix(1);
            t.response_headers.emplace_back(std::string(line.substr(0, colon)), std::string(value));
        }
        return size * count;
    }

    // The plugin stops the exchange. Like a cancel (see Shard::close), the
    // connection is not kept for reuse if this was its last user, so the
    // upstream hears of it at once also over HTTP/2.
    size_t abort() {
        aborted_by_plugin = true;
        curl_easy_setopt(easy.get(), CURLOPT_FORBID_REUSE, 1L);
        return 0;
    }

    static size_t on_write(char *data, size_t size, size_t count, void *user) {
        auto &t = *static_cast<Transfer *>(user);
        t.report_response();
        try {
            if (t.callbacks.on_body && !t.callbacks.on_body(std::string_view(data, size * count)))
                return t.abort(); // makes curl stop with CURLE_WRITE_ERROR
        } catch (const std::exception &e) {
            spdlog::error("http body handler failed: {}", e.what());
            return t.abort();
        }
        return size * count;
    }

    // `curl_version`: CURLOPT_HTTP_VERSION as the shard decided it (see
    // Shard::activate); `fresh`: open a new connection rather than reuse one.
    void configure(Easy handle, long curl_version, bool fresh) {
        easy = std::move(handle);
        CURL *e = easy.get();
        curl_easy_setopt(e, CURLOPT_URL, request.url.c_str());
        curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(e, CURLOPT_ERRORBUFFER, error_buffer);
        curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
        if (request.method == "POST" || !request.body.empty()) {
            curl_easy_setopt(e, CURLOPT_POSTFIELDS, request.body.data());
            curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(request.body.size()));
        }
        if (request.method != "GET" && request.method != "POST")
            curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, request.method.c_str());
        curl_slist *list = nullptr;
        for (const auto &[name, value] : request.headers)
            list = curl_slist_append(list, (name + ": " + value).c_str());
        list = curl_slist_append(list, "Expect:"); // no 100-continue round trip
        header_list.reset(list);
        curl_easy_setopt(e, CURLOPT_HTTPHEADER, list);
        curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, &Transfer::on_header);
        curl_easy_setopt(e, CURLOPT_HEADERDATA, this);
        curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, &Transfer::on_write);
        curl_easy_setopt(e, CURLOPT_WRITEDATA, this);
        if (request.timeout_ms)
            curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, static_cast<long>(request.timeout_ms));
        curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS,
                         static_cast<long>(request.connect_timeout_ms ? request.connect_timeout_ms : 10000));
        if (request.idle_timeout_ms) {
            // "Fewer than 1 byte/s for N seconds" is curl's idle timeout.
            curl_easy_setopt(e, CURLOPT_LOW_SPEED_LIMIT, 1L);
            curl_easy_setopt(e, CURLOPT_LOW_SPEED_TIME,
                             std::max(1L, static_cast<long>(request.idle_timeout_ms / 1000)));
        }
        const bool https = request.url.starts_with("https:") || request.url.starts_with("HTTPS:");
        if (curl_version != CURL_HTTP_VERSION_NONE) curl_easy_setopt(e, CURLOPT_HTTP_VERSION, curl_version);
        if (fresh) curl_easy_setopt(e, CURLOPT_FRESH_CONNECT, 1L);
        // Where HTTP/2 is possible, a new request waits for a connection being
        // set up to learn whether it multiplexes, instead of opening its own:
        // a burst of streams then shares one connection, not one fd each.
        if (request.version == HttpVersion::http2_prior_knowledge ||
            (https && request.version != HttpVersion::http1_1))
            curl_easy_setopt(e, CURLOPT_PIPEWAIT, 1L);
        curl_easy_setopt(e, CURLOPT_PRIVATE, this);
    }

    void finish(swh_status status, std::string error) {
        if (status == SWH_OK) report_response();
        if (aborted_by_plugin) status = SWH_E_CANCELLED;
        curl_off_t total = 0, pretransfer = 0;
        int64_t wire_us = -1;
        if (easy && curl_easy_getinfo(easy.get(), CURLINFO_TOTAL_TIME_T, &total) == CURLE_OK &&
            curl_easy_getinfo(easy.get(), CURLINFO_PRETRANSFER_TIME_T, &pretransfer) == CURLE_OK &&
            total >= pretransfer && pretransfer > 0)
            wire_us = static_cast<int64_t>(total - pretransfer);
        upstream::report_done(callbacks.on_done, status, std::move(error), wire_us);
    }
};

// "http://host:port" of a URL: what connections are shared by.
std::string origin_of(std::string_view url) {
    const auto scheme = url.find("://");
    const auto path = url.find_first_of("/?#", scheme == std::string_view::npos ? 0 : scheme + 3);
    return std::string(url.substr(0, path));
}

// One event loop: a multi handle driven by curl_multi_socket_action on its own
// epoll set, so each wake-up costs what its ready sockets cost, not what the
// number of open transfers costs. Other threads hand it work through a queue
// and an eventfd.
class Shard {
  public:
    // `own_thread`: the shard runs its loop on a thread of its own; else
    // whoever drives it calls step() (an I/O lane, see LaneDriver).
    Shard(std::atomic<std::size_t> &open, bool own_thread)
        : open_(open), epoll_(::epoll_create1(EPOLL_CLOEXEC)),
          wake_(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)), multi_(curl_multi_init()) {
        if (!multi_) throw std::runtime_error("curl_multi_init failed");
        CURLM *m = multi_.get();
        curl_multi_setopt(m, CURLMOPT_SOCKETFUNCTION, &Shard::on_socket);
        curl_multi_setopt(m, CURLMOPT_SOCKETDATA, this);
        curl_multi_setopt(m, CURLMOPT_TIMERFUNCTION, &Shard::on_timer);
        curl_multi_setopt(m, CURLMOPT_TIMERDATA, this);
        // curl's default of 100 streams per HTTP/2 connection would open a
        // connection (an fd) per hundred streams, and on libcurl < 8 a
        // request past the limit of an h2c connection would try an HTTP/1.1
        // upgrade (see activate); the server's own limit still applies.
        curl_multi_setopt(m, CURLMOPT_MAX_CONCURRENT_STREAMS, 10000L);
        epoll_event ev{};
        ev.events = EPOLLIN;
        ev.data.fd = wake_.get();
        if (::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, wake_.get(), &ev) != 0)
            throw std::runtime_error(std::string("http client: epoll_ctl: ") + std::strerror(errno));
        if (own_thread) thread_ = std::thread([this] { run(); });
    }

    ~Shard() {
        stop();
        if (thread_.joinable()) thread_.join();
    }
    Shard(const Shard &) = delete;
    Shard &operator=(const Shard &) = delete;

    void submit(std::unique_ptr<Transfer> t) {
        {
            std::lock_guard lock(mutex_);
            if (stopping_) throw std::runtime_error("http client is shutting down");
            incoming_.push_back(std::move(t));
        }
        wake();
    }

    void cancel(uint64_t id) {
        {
            std::lock_guard lock(mutex_);
            cancels_.push_back(id);
        }
        wake();
    }

    void stop() {
        {
            std::lock_guard lock(mutex_);
            stopping_ = true;
        }
        signal_eventfd();
    }
    void join() {
        if (thread_.joinable()) thread_.join();
    }

  private:
    // One write per batch of hand-overs: while the loop has not yet taken
    // the queue, further starts only append to it.
    void wake() {
        {
            std::lock_guard lock(mutex_);
            if (signalled_) return;
            signalled_ = true;
        }
        signal_eventfd();
    }
    void signal_eventfd() {
        const uint64_t one = 1;
        [[maybe_unused]] auto n = ::write(wake_.get(), &one, sizeof one);
    }

    static int on_socket(CURL *, curl_socket_t s, int what, void *userp, void *socketp) {
        auto &self = *static_cast<Shard *>(userp);
        if (what == CURL_POLL_REMOVE) {
            ::epoll_ctl(self.epoll_.get(), EPOLL_CTL_DEL, s, nullptr);
            return 0;
        }
        epoll_event ev{};
        ev.data.fd = s;
        ev.events = ((what & CURL_POLL_IN) ? uint32_t{EPOLLIN} : 0u) |
                    ((what & CURL_POLL_OUT) ? uint32_t{EPOLLOUT} : 0u);
        // socketp marks a socket already in the epoll set (curl forgets it on REMOVE).
        int op = socketp ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
        if (::epoll_ctl(self.epoll_.get(), op, s, &ev) != 0) {
            op = op == EPOLL_CTL_ADD ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
            if (::epoll_ctl(self.epoll_.get(), op, s, &ev) != 0)
                spdlog::error("http client: epoll_ctl({}) failed: {}", s, std::strerror(errno));
        }
        if (!socketp) curl_multi_assign(self.multi_.get(), s, &self);
        return 0;
    }

    static int on_timer(CURLM *, long timeout_ms, void *userp) {
        auto &self = *static_cast<Shard *>(userp);
        if (timeout_ms < 0)
            self.curl_due_.reset();
        else
            self.curl_due_ = Clock::now() + std::chrono::milliseconds(timeout_ms);
        return 0;
    }

    Easy take_easy() {
        if (!spare_.empty()) {
            Easy easy = std::move(spare_.back());
            spare_.pop_back();
            return easy;
        }
        return Easy(curl_easy_init());
    }
    // A finished handle keeps its buffers for the next request; a bounded
    // number wait, the rest are freed.
    void recycle(Easy easy) {
        if (!easy || spare_.size() >= kMaxSpare) return;
        curl_easy_reset(easy.get());
        spare_.push_back(std::move(easy));
    }

    // Ends one transfer: out of the multi handle, counted closed, told once.
    void close(uint64_t id, swh_status status, std::string error) {
        auto it = transfers_.find(id);
        if (it == transfers_.end()) return;
        std::unique_ptr<Transfer> t = std::move(it->second);
        transfers_.erase(it);
        if (!t->h2c_origin.empty()) {
            if (auto count = h2c_streams_.find(t->h2c_origin);
                count != h2c_streams_.end() && --count->second <= 0)
                h2c_streams_.erase(count);
        }
        if (t->in_multi) {
            // Cut short, an HTTP/2 stream is reset, but curl sends the reset
            // only when it next services the connection, which it never does
            // once no transfer uses it: the upstream would stream on into
            // the void. Left by its last user, such a connection is closed.
            if (status != SWH_OK) curl_easy_setopt(t->easy.get(), CURLOPT_FORBID_REUSE, 1L);
            curl_multi_remove_handle(multi_.get(), t->easy.get());
            t->in_multi = false;
        }
        // Counted as closed before on_done runs, so whoever on_done wakes
        // sees a consistent count.
        open_.fetch_sub(1);
        t->finish(status, std::move(error));
        recycle(std::move(t->easy));
    }

    void activate(Transfer &t) {
        Easy easy = take_easy();
        if (!easy) return close(t.id, SWH_E_INTERNAL, "curl_easy_init failed");
        long curl_version = CURL_HTTP_VERSION_NONE; // curl's default: HTTP/2 when TLS's ALPN agrees
        bool fresh = false;
        switch (t.request.version) {
        case HttpVersion::http1_1:
            curl_version = CURL_HTTP_VERSION_1_1;
            break;
        case HttpVersion::http2:
            curl_version = CURL_HTTP_VERSION_2TLS;
            break;
        case HttpVersion::http2_prior_knowledge:
            curl_version = CURL_HTTP_VERSION_2_PRIOR_KNOWLEDGE;
            if (prior_knowledge_reuse_broken_) {
                // libcurl before 8.0 breaks a prior-knowledge request that
                // reuses an h2c connection: it switches the connection to
                // HTTP/2 a second time ("Error in the HTTP2 framing layer",
                // curl issue #10634). So a request for an origin that has
                // h2c streams open on this loop asks for plain HTTP/2, which
                // joins their connection (PIPEWAIT waits for one being set
                // up) without switching again; otherwise it opens a fresh
                // prior-knowledge connection instead of reusing an idle one.
                t.h2c_origin = origin_of(t.request.url);
                int &open_streams = h2c_streams_[t.h2c_origin];
                if (open_streams > 0)
                    curl_version = CURL_HTTP_VERSION_2_0;
                else
                    fresh = true;
                ++open_streams;
            }
            break;
        case HttpVersion::automatic:
            break;
        }
        try {
            t.configure(std::move(easy), curl_version, fresh);
        } catch (const std::exception &e) {
            return close(t.id, SWH_E_INTERNAL, e.what());
        }
        if (const CURLMcode rc = curl_multi_add_handle(multi_.get(), t.easy.get()); rc != CURLM_OK)
            return close(t.id, SWH_E_INTERNAL, curl_multi_strerror(rc));
        t.in_multi = true;
    }

    void admit(std::unique_ptr<Transfer> t) {
        Transfer &ref = *t;
        transfers_.emplace(ref.id, std::move(t));
        if (ref.request.delay_ms > 0)
            delays_.emplace(ref.due, ref.id);
        else
            activate(ref);
    }

    void collect_finished() {
        int pending = 0;
        while (CURLMsg *msg = curl_multi_info_read(multi_.get(), &pending)) {
            if (msg->msg != CURLMSG_DONE) continue;
            Transfer *raw = nullptr;
            curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &raw);
            const CURLcode code = msg->data.result;
            std::string error =
                code == CURLE_OK ? "" : (raw->error_buffer[0] ? raw->error_buffer : curl_easy_strerror(code));
            close(raw->id, status_of(code), std::move(error));
        }
    }

    void run() {
        while (step(wait_ms()) >= 0) {
        }
        close_all();
    }

  public:
    // The loop's epoll set: readable while a socket or a hand-over is ready.
    int epoll_fd() const { return epoll_.get(); }

    // One turn of the loop: waits up to `timeout_ms` (-1: no limit) for
    // sockets and hand-overs, serves them and what is due. Returns how many
    // events it served, -1 once stopped. Only on the loop's thread.
    int step(int timeout_ms) {
        const int n =
            ::epoll_wait(epoll_.get(), events_.data(), static_cast<int>(events_.size()), timeout_ms);
        bool woken = false;
        for (int i = 0; i < n; ++i) {
            const int fd = events_[i].data.fd;
            if (fd == wake_.get()) {
                uint64_t count;
                [[maybe_unused]] auto r = ::read(fd, &count, sizeof count);
                woken = true;
                continue;
            }
            const uint32_t e = events_[i].events;
            int flags = 0;
            if (e & (EPOLLIN | EPOLLHUP)) flags |= CURL_CSELECT_IN;
            if (e & EPOLLOUT) flags |= CURL_CSELECT_OUT;
            if (e & EPOLLERR) flags |= CURL_CSELECT_ERR;
            curl_multi_socket_action(multi_.get(), fd, flags, &running_);
        }
        bool stop = false;
        if (woken) {
            {
                std::lock_guard lock(mutex_);
                signalled_ = false;
                starts_.swap(incoming_);
                cancel_ids_.swap(cancels_);
                stop = stopping_;
            }
            for (auto &t : starts_)
                admit(std::move(t));
            starts_.clear();
            for (uint64_t id : cancel_ids_)
                close(id, SWH_E_CANCELLED, "cancelled");
            cancel_ids_.clear();
        }
        const auto now = Clock::now();
        while (!delays_.empty() && delays_.top().first <= now) {
            const uint64_t id = delays_.top().second;
            delays_.pop();
            if (auto it = transfers_.find(id); it != transfers_.end() && !it->second->in_multi)
                activate(*it->second);
        }
        if (curl_due_ && *curl_due_ <= Clock::now()) {
            curl_due_.reset();
            curl_multi_socket_action(multi_.get(), CURL_SOCKET_TIMEOUT, 0, &running_);
        }
        collect_finished();
        return stop ? -1 : std::max(n, 0);
    }

    // Milliseconds until something is due (-1: nothing).
    int wait_ms() const {
        std::optional<Clock::time_point> next = curl_due_;
        if (!delays_.empty() && (!next || delays_.top().first < *next)) next = delays_.top().first;
        if (!next) return -1;
        const auto left = std::chrono::ceil<std::chrono::milliseconds>(*next - Clock::now()).count();
        return static_cast<int>(std::clamp<long long>(left, 0, 60'000));
    }

    // Shutting down: everything still open is cancelled, each told so.
    void close_all() {
        std::vector<uint64_t> open_ids;
        open_ids.reserve(transfers_.size());
        for (const auto &[id, t] : transfers_)
            open_ids.push_back(id);
        for (uint64_t id : open_ids)
            close(id, SWH_E_CANCELLED, "cancelled");
    }

  private:
    static constexpr std::size_t kMaxSpare = 256;
    const bool prior_knowledge_reuse_broken_ = curl_version_info(CURLVERSION_NOW)->version_num < 0x080000;

    std::atomic<std::size_t> &open_;
    UniqueFd epoll_;
    UniqueFd wake_;
    std::unique_ptr<CURLM, MultiCleanup> multi_;

    std::mutex mutex_; // guards the hand-over below
    std::vector<std::unique_ptr<Transfer>> incoming_;
    std::vector<uint64_t> cancels_;
    bool stopping_ = false;
    bool signalled_ = false;

    // The loop thread's own state.
    std::unordered_map<uint64_t, std::unique_ptr<Transfer>> transfers_; // delayed and active
    using Due = std::pair<Clock::time_point, uint64_t>;
    std::priority_queue<Due, std::vector<Due>, std::greater<>> delays_;
    std::optional<Clock::time_point> curl_due_;
    std::vector<Easy> spare_;
    std::unordered_map<std::string, int> h2c_streams_; // origin -> prior-knowledge requests open
    std::vector<epoll_event> events_ = std::vector<epoll_event>(256);
    std::vector<std::unique_ptr<Transfer>> starts_;
    std::vector<uint64_t> cancel_ids_;
    int running_ = 0;

    std::thread thread_; // last: starts after everything above exists
};

// What the client and the lanes' shards share: a lane's shard may outlive
// the client's own shards by a moment (the lane lets go of it on its own
// thread), so the count it keeps and the slot table live here.
struct LaneRegistry {
    std::atomic<std::size_t> open{0};
    std::atomic<uint64_t> plain_started{0};
    std::mutex mutex;                          // guards slots and plain
    std::vector<std::shared_ptr<Shard>> slots; // slot + 1 is the low byte of its transfers' ids
    // The same lane's plain-HTTP/1.1 client (upstream/lane_http1.hpp), or
    // nullptr; its requests share the lane's ids.
    std::vector<std::shared_ptr<upstream::LaneHttp1>> plain;
};

// A transfer id: a counter above the low byte, which names the lane shard
// the transfer runs on (slot + 1) or 0 for the client's own shards.
constexpr unsigned kSlotBits = 8;
constexpr std::size_t kMaxLaneSlots = (1u << kSlotBits) - 1;

// Drives a lane's shard from that lane's event loop: the shard's epoll set
// is one more descriptor the loop watches, and its next deadline a timer.
// Asio watches descriptors edge-triggered, so a turn serves until the shard
// is quiet (bounded: then it comes back after the loop's other work).
class LaneDriver : public std::enable_shared_from_this<LaneDriver> {
  public:
    LaneDriver(boost::asio::io_context &io, std::shared_ptr<Shard> shard)
        : shard_(std::move(shard)), watch_(io, dup_or_throw(shard_->epoll_fd())), timer_(io) {}

    void start() { serve(); }
    void stop() {
        stopped_ = true;
        boost::system::error_code ignored;
        watch_.cancel(ignored);
        timer_.cancel();
    }

  private:
    static int dup_or_throw(int fd) {
        const int copy = ::fcntl(fd, F_DUPFD_CLOEXEC, 0);
        if (copy < 0) throw std::runtime_error(std::string("http client: dup: ") + std::strerror(errno));
        return copy;
    }

    void serve() {
        if (stopped_) return;
        for (int turn = 0; turn < kTurns; ++turn) {
            if (shard_->step(0) <= 0) {
                arm_timer();
                watch();
                return;
            }
        }
        arm_timer();
        boost::asio::post(watch_.get_executor(), [weak = weak_from_this()] {
            if (auto self = weak.lock()) self->serve();
        });
    }

    void watch() {
        if (watching_) return;
        watching_ = true;
        watch_.async_wait(boost::asio::posix::descriptor_base::wait_read,
                          [weak = weak_from_this()](const boost::system::error_code &ec) {
                              auto self = weak.lock();
                              if (!self) return;
                              self->watching_ = false;
                              if (!ec) self->serve();
                          });
    }

    void arm_timer() {
        const int ms = shard_->wait_ms();
        if (ms < 0) {
            if (timer_armed_) timer_.cancel();
            timer_armed_ = false;
            return;
        }
        const auto due = Clock::now() + std::chrono::milliseconds(ms);
        // A deadline a little later than the one set is served by it anyway.
        if (timer_armed_ && due >= armed_due_ && due - armed_due_ < std::chrono::milliseconds(1)) return;
        armed_due_ = due;
        timer_armed_ = true;
        const uint64_t generation = ++timer_generation_;
        timer_.expires_at(due);
        timer_.async_wait([weak = weak_from_this(), generation](const boost::system::error_code &ec) {
            auto self = weak.lock();
            if (!self || ec || generation != self->timer_generation_) return;
            self->timer_armed_ = false;
            self->serve();
        });
    }

    static constexpr int kTurns = 8;
    std::shared_ptr<Shard> shard_;
    boost::asio::posix::stream_descriptor watch_;
    boost::asio::steady_timer timer_;
    bool stopped_ = false;
    bool watching_ = false;
    bool timer_armed_ = false;
    Clock::time_point armed_due_{};
    uint64_t timer_generation_ = 0;
};

// The lane shard of the thread running now, if its loop attached one.
struct LaneBinding {
    const LaneRegistry *registry = nullptr;
    Shard *shard = nullptr;
    upstream::LaneHttp1 *plain = nullptr;
    uint64_t slot_tag = 0;
};
thread_local LaneBinding this_lane;

// Held by the lane for as long as its loop runs (see attach_loop).
class LaneAttachment {
  public:
    LaneAttachment(std::shared_ptr<LaneRegistry> registry, boost::asio::io_context &io)
        : registry_(std::move(registry)), shard_(std::make_shared<Shard>(registry_->open, false)),
          driver_(std::make_shared<LaneDriver>(io, shard_)),
          plain_(upstream::lane_client_enabled() ? std::make_shared<upstream::LaneHttp1>(io, registry_->open)
                                                 : nullptr) {
        {
            std::lock_guard lock(registry_->mutex);
            auto &slots = registry_->slots;
            slot_ = std::find(slots.begin(), slots.end(), nullptr) - slots.begin();
            if (slot_ >= kMaxLaneSlots) throw std::runtime_error("http client: too many I/O lanes attached");
            if (slot_ == slots.size()) {
                slots.emplace_back();
                registry_->plain.emplace_back();
            }
            slots[slot_] = shard_;
            registry_->plain[slot_] = plain_;
        }
        this_lane = {registry_.get(), shard_.get(), plain_.get(), slot_ + 1};
        driver_->start();
    }
    // On the lane's thread, its loop still alive but no longer running.
    ~LaneAttachment() {
        // Starts made by the done callbacks below go to the client's own shards.
        if (this_lane.shard == shard_.get()) this_lane = {};
        driver_->stop();
        {
            std::lock_guard lock(registry_->mutex);
            registry_->slots[slot_] = nullptr;
            registry_->plain[slot_] = nullptr;
        }
        shard_->close_all();
        if (plain_) plain_->close_all();
    }
    LaneAttachment(const LaneAttachment &) = delete;
    LaneAttachment &operator=(const LaneAttachment &) = delete;

  private:
    std::shared_ptr<LaneRegistry> registry_;
    std::shared_ptr<Shard> shard_;
    std::shared_ptr<LaneDriver> driver_;
    std::shared_ptr<upstream::LaneHttp1> plain_;
    std::size_t slot_ = 0;
};

} // namespace

int64_t upstream_wire_us_in_done() {
    return wire_us_in_done;
}

void upstream::report_done(const std::function<void(swh_status, std::string)> &on_done, swh_status status,
                           std::string error, int64_t wire_us) {
    wire_us_in_done = wire_us;
    try {
        if (on_done) on_done(status, std::move(error));
    } catch (const std::exception &e) {
        spdlog::error("http done handler failed: {}", e.what());
    }
    wire_us_in_done = -1;
}

struct HttpClient::Impl {
    std::atomic<uint64_t> next_id{1};
    std::shared_ptr<LaneRegistry> lanes = std::make_shared<LaneRegistry>();
    std::vector<std::unique_ptr<Shard>> shards;

    explicit Impl(std::size_t threads) {
        global_init_once();
        if (threads == 0) threads = std::max(1u, std::thread::hardware_concurrency());
        shards.reserve(threads);
        for (std::size_t i = 0; i < threads; ++i)
            shards.push_back(std::make_unique<Shard>(lanes->open, true));
    }
    ~Impl() {
        // Stop all first, so the shards wind down in parallel, then join.
        for (auto &shard : shards)
            shard->stop();
        for (auto &shard : shards)
            shard->join();
    }
    Shard &shard_of(uint64_t id) { return *shards[(id >> kSlotBits) % shards.size()]; }
    std::shared_ptr<Shard> lane_shard_of(uint64_t id) {
        const std::size_t tag = id & kMaxLaneSlots;
        if (tag == 0) return nullptr;
        std::lock_guard lock(lanes->mutex);
        return tag <= lanes->slots.size() ? lanes->slots[tag - 1] : nullptr;
    }
    std::shared_ptr<upstream::LaneHttp1> lane_plain_of(uint64_t id) {
        const std::size_t tag = id & kMaxLaneSlots;
        if (tag == 0) return nullptr;
        std::lock_guard lock(lanes->mutex);
        return tag <= lanes->plain.size() ? lanes->plain[tag - 1] : nullptr;
    }
};

HttpClient::HttpClient(std::size_t threads) : impl_(std::make_unique<Impl>(threads)) {}
HttpClient::~HttpClient() = default;

uint64_t HttpClient::start(HttpRequest request, HttpCallbacks callbacks) {
    const bool on_lane = this_lane.registry == impl_->lanes.get();
    if (on_lane && this_lane.plain != nullptr) {
        if (auto target = this_lane.plain->target_of(request)) {
            const uint64_t id = (impl_->next_id.fetch_add(1) << kSlotBits) | this_lane.slot_tag;
            impl_->lanes->open.fetch_add(1);
            impl_->lanes->plain_started.fetch_add(1, std::memory_order_relaxed);
            this_lane.plain->start(id, std::move(*target), std::move(request), std::move(callbacks));
            return id;
        }
    }
    auto t = std::make_unique<Transfer>();
    t->request = std::move(request);
    t->callbacks = std::move(callbacks);
    t->due = Clock::now() + std::chrono::milliseconds(t->request.delay_ms);
    const uint64_t id = t->id =
        (impl_->next_id.fetch_add(1) << kSlotBits) | (on_lane ? this_lane.slot_tag : 0);
    impl_->lanes->open.fetch_add(1);
    try {
        if (on_lane)
            this_lane.shard->submit(std::move(t));
        else
            impl_->shard_of(id).submit(std::move(t));
    } catch (...) {
        impl_->lanes->open.fetch_sub(1);
        throw;
    }
    return id;
}

void HttpClient::cancel(uint64_t id) {
    if (id == 0) return;
    if ((id & kMaxLaneSlots) == 0) return impl_->shard_of(id).cancel(id);
    // A lane's shard gone meanwhile has ended all its transfers already.
    // Which of the lane's two clients runs `id` only the lane knows: both
    // hear of it, the other ignores it.
    if (std::shared_ptr<upstream::LaneHttp1> plain = impl_->lane_plain_of(id)) plain->cancel(id);
    if (std::shared_ptr<Shard> shard = impl_->lane_shard_of(id)) shard->cancel(id);
}

std::shared_ptr<void> HttpClient::attach_loop(boost::asio::io_context &io) {
    return std::make_shared<LaneAttachment>(impl_->lanes, io);
}

std::size_t HttpClient::open_requests() const {
    return impl_->lanes->open.load();
}

uint64_t HttpClient::lane_plain_requests() const {
    return impl_->lanes->plain_started.load(std::memory_order_relaxed);
}

std::size_t HttpClient::threads() const {
    return impl_->shards.size();
}

} // namespace swh
