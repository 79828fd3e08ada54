// Calls to an HTTP upstream for provider plugins (header-only, part of the
// optional C++ layer of the SDK; no ABI of its own). Builds on the host's
// asynchronous HTTP client (host->http_start / http_cancel) and adds what
// every LLM vendor provider needs around it:
//   - retries with exponential backoff and full jitter, scheduled through
//     swh_http_request.delay_ms (no thread sleeps), honouring Retry-After on
//     429/503 (and 529); never retrying once text has reached the client;
//   - at most `max_concurrent` exchanges in flight per instance, the rest wait
//     in a FIFO queue (cancel works while queued);
//   - cancel(call_id) -> http_cancel of whatever attempt is in flight;
//   - exactly one sink->done per started call, with the status mapping
//     429 -> SWH_E_RATE_LIMITED ("... retry_after=N"), timeout -> SWH_E_TIMEOUT,
//     connection failure -> SWH_E_UNAVAILABLE, 5xx/garbage/cut stream ->
//     SWH_E_UPSTREAM, 400/413/422 -> SWH_E_INVALID, client gone -> SWH_E_CANCELLED;
//   - a secret (the API key) scrubbed from every error text.
// The vendor part is a Decoder per attempt: it turns the body of a 2xx answer
// into text and metadata, and an error body into a readable message.
#pragma once

#include <swarmhost/cpp/edge.hpp>
#include <swarmhost/cpp/provider_edge.hpp>
#include <swarmhost/swarmhost.h>

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <cstring>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace swh::cpp::upstream {

// What a decoder reports back while it reads a 2xx body.
class Emitter {
  public:
    virtual ~Emitter() = default;
    // Relays a piece of reply text; false = the client is gone (stop).
    virtual bool text(std::string_view piece) = 0;
    // Provider message id + metadata JSON object text (later keys win).
    virtual void metadata(std::string_view provider_message_id, std::string_view metadata_json) = 0;
    // A tool-call piece, thinking, the finish reason or usage (ABI 1.3), in
    // reply order with text; false = the client is gone (stop). Dropped by
    // a host older than 1.3 (see provider::send_event).
    virtual bool event(const provider::ReplyEvent &) { return true; }

    // The events by kind, for decoders.
    bool tool_call(uint32_t index, std::string_view id, std::string_view name, std::string_view fragment) {
        return event(provider::ReplyEvent::tool_call(index, id, name, fragment));
    }
    bool reasoning(std::string_view piece) {
        return piece.empty() || event(provider::ReplyEvent::reasoning(piece));
    }
    bool signature(std::string_view piece) {
        return piece.empty() || event(provider::ReplyEvent::signature(piece));
    }
    bool finish(std::string_view reason) {
        return reason.empty() || event(provider::ReplyEvent::finish(reason));
    }
    bool usage(const provider::Usage &u) { return event(provider::ReplyEvent::usage_of(u)); }
};

struct Problem {
    swh_status status = SWH_E_UPSTREAM;
    std::string message;
};

// Vendor-specific reading of one attempt.
class Decoder {
  public:
    virtual ~Decoder() = default;
    // Bytes of a 2xx body as they arrive. Return a Problem to abort the call.
    virtual std::optional<Problem> body(std::string_view bytes, Emitter &out) = 0;
    // The 2xx body is complete: report remaining text/metadata, or a Problem
    // (e.g. the stream ended without its terminator).
    virtual std::optional<Problem> end(Emitter &out) = 0;
    // A readable message from a non-2xx answer's body (vendor error shape).
    virtual std::string error_message(int http_status, std::string_view body) = 0;
};

struct Exchange {
    std::string method = "POST";
    std::string url;
    std::vector<std::pair<std::string, std::string>> headers;
    std::string body;
    uint32_t timeout_ms = 0, connect_timeout_ms = 0, idle_timeout_ms = 0;
};

struct RetryPolicy {
    uint32_t retries = 2;          // extra attempts after the first
    uint32_t base_delay_ms = 500;  // backoff: base * 2^attempt, full jitter in [d/2, d]
    uint32_t max_delay_ms = 30000; // cap; a longer Retry-After is not waited for
};

struct CallSpec {
    uint64_t call_id = 0;
    Exchange exchange;
    RetryPolicy retry;
    std::string vendor; // prefix of error texts, e.g. "openai"
    std::string secret; // scrubbed from error texts ("" = none)
    std::function<std::unique_ptr<Decoder>()> make_decoder;
};

// Seconds from a Retry-After value (delta-seconds only; HTTP dates -> nullopt).
inline std::optional<uint32_t> parse_retry_after(std::string_view v) {
    while (!v.empty() && (v.front() == ' ' || v.front() == '\t'))
        v.remove_prefix(1);
    while (!v.empty() && (v.back() == ' ' || v.back() == '\t' || v.back() == '\r'))
        v.remove_suffix(1);
    if (v.empty() || v.size() > 9) return std::nullopt;
    uint32_t s = 0;
    for (char c : v) {
        if (c == '.') break; // "1.5" -> 1
        if (c < '0' || c > '9') return std::nullopt;
        s = s * 10 + static_cast<uint32_t>(c - '0');
    }
    return s;
}

inline std::string scrub(std::string text, std::string_view secret) {
    if (secret.size() < 4) return text;
    for (std::size_t at = text.find(secret); at != std::string::npos; at = text.find(secret, at))
        text.replace(at, secret.size(), "***");
    return text;
}

inline bool is_retryable_status(int s) {
    return s == 408 || s == 429 || s == 500 || s == 502 || s == 503 || s == 504 || s == 529;
}

inline swh_status status_for_http(int s) {
    if (s == 429) return SWH_E_RATE_LIMITED;
    if (s == 400 || s == 413 || s == 422) return SWH_E_INVALID;
    if (s == 408 || s == 504) return SWH_E_TIMEOUT;
    return SWH_E_UPSTREAM;
}

// One message of the request's conversation, borrowed from the request.
// structured_json is "" from a host older than 1.3 (plain text messages).
struct Turn {
    std::string_view role, content, metadata_json, structured_json;
};

// The request's messages walked with the host's stride (a newer host's
// swh_message may be larger than the one the plugin was built with).
inline std::vector<Turn> conversation(const swh_provider_request &request) {
    std::vector<Turn> out;
    if (request.message_count == 0) return out;
    if (request.messages == nullptr) throw edge::Failure(SWH_E_INVALID, "request.messages is NULL");
    const uint32_t stride = request.messages[0].struct_size;
    if (!SWH_HAS_MEMBER(&request.messages[0], swh_message, metadata_json))
        throw edge::Failure(SWH_E_INVALID, "request.messages[0].struct_size is too small");
    out.reserve(request.message_count);
    for (size_t i = 0; i < request.message_count; ++i) {
        const auto &m = *reinterpret_cast<const swh_message *>(
            reinterpret_cast<const char *>(request.messages) + i * stride);
        out.push_back({edge::view(m.role, "message.role"), edge::view(m.content, "message.content"),
                       edge::view(m.metadata_json, "message.metadata_json"), provider::structured_json(m)});
    }
    return out;
}

class Client;

namespace detail {

class Call : public Emitter, public std::enable_shared_from_this<Call> {
  public:
    Call(Client &client, CallSpec spec, const swh_provider_sink &sink)
        : client_(client), spec_(std::move(spec)) {
        // Only the host's own struct_size bytes are read: an older host's
        // sink is smaller, and the members it lacks stay zero (no events).
        std::memcpy(&sink_, &sink, std::min<std::size_t>(sink.struct_size, sizeof sink_));
    }

    bool text(std::string_view piece) override {
        if (piece.empty()) return true;
        if (sink_.chunk(sink_.ctx, swh_str{piece.data(), piece.size()}) != SWH_OK) {
            client_gone_ = true;
            return false;
        }
        emitted_ = true;
        return true;
    }
    void metadata(std::string_view id, std::string_view json) override {
        sink_.metadata(sink_.ctx, swh_str{id.data(), id.size()}, swh_str{json.data(), json.size()});
    }
    bool event(const provider::ReplyEvent &e) override {
        if (provider::send_event(sink_, e) != SWH_OK) {
            client_gone_ = true;
            return false;
        }
        emitted_ = true; // a tool call reached the client: no retry could take it back
        return true;
    }

    uint64_t id() const { return spec_.call_id; }
    inline void launch(uint32_t delay_ms);
    inline void cancel();
    inline void finish(swh_status status, std::string message);

    // http sink callbacks (host HTTP thread, never concurrently for one request)
    static void on_response(void *ctx, int32_t status, const swh_http_header *headers, size_t count) {
        auto *self = static_cast<Call *>(ctx);
        self->http_status_ = status;
        self->retry_after_.reset();
        self->error_body_.clear();
        if (headers != nullptr && count > 0) {
            const uint32_t stride = headers[0].struct_size;
            for (size_t i = 0; i < count; ++i) {
                const auto &h = *reinterpret_cast<const swh_http_header *>(
                    reinterpret_cast<const char *>(headers) + i * stride);
                std::string_view name(h.name.ptr ? h.name.ptr : "", h.name.len);
                if (name.size() == 11) {
                    std::string lower(name);
                    std::transform(lower.begin(), lower.end(), lower.begin(),
                                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
                    if (lower == "retry-after")
                        self->retry_after_ =
                            parse_retry_after(std::string_view(h.value.ptr ? h.value.ptr : "", h.value.len));
                }
            }
        }
        if (status >= 200 && status < 300) {
            try {
                self->decoder_ = self->spec_.make_decoder();
            } catch (...) {
                self->problem_ = Problem{SWH_E_INTERNAL, "could not create the response decoder"};
            }
        }
    }
    static swh_status on_body(void *ctx, swh_str chunk) {
        auto *self = static_cast<Call *>(ctx);
        std::string_view bytes(chunk.ptr ? chunk.ptr : "", chunk.len);
        if (self->problem_) return SWH_E_CANCELLED;
        if (self->http_status_ >= 200 && self->http_status_ < 300) {
            if (!self->decoder_) return SWH_E_CANCELLED;
            try {
                if (auto p = self->decoder_->body(bytes, *self)) {
                    self->problem_ = std::move(*p);
                    return SWH_E_CANCELLED;
                }
            } catch (const std::exception &e) {
                self->problem_ =
                    Problem{SWH_E_UPSTREAM, std::string("could not read the answer: ") + e.what()};
                return SWH_E_CANCELLED;
            }
            return self->client_gone_ ? SWH_E_CANCELLED : SWH_OK;
        }
        if (self->error_body_.size() < 65536)
            self->error_body_.append(bytes.substr(0, 65536 - self->error_body_.size()));
        return SWH_OK;
    }
    static void on_done(void *ctx, swh_status status, swh_str error) {
        auto *raw = static_cast<Call *>(ctx);
        std::shared_ptr<Call> self = raw->shared_from_this(); // keeps the call alive through finish
        self->handle_done(status, std::string(error.ptr ? error.ptr : "", error.len));
    }

  private:
    inline void handle_done(swh_status status, std::string error);
    uint32_t backoff_ms() {
        const uint64_t cap = spec_.retry.max_delay_ms;
        uint64_t d = static_cast<uint64_t>(spec_.retry.base_delay_ms) << std::min<uint32_t>(attempt_ - 1, 20);
        d = std::min(d, cap);
        if (d == 0) return 0;
        thread_local std::mt19937_64 rng{std::random_device{}()};
        std::uniform_int_distribution<uint64_t> jitter(d / 2, d);
        return static_cast<uint32_t>(jitter(rng));
    }

    Client &client_;
    CallSpec spec_;
    swh_provider_sink sink_{};
    swh_http_sink http_sink_{sizeof(swh_http_sink), this, &Call::on_response, &Call::on_body, &Call::on_done};

    std::mutex mutex_; // request_id_, cancelled_, finished_
    uint64_t request_id_ = 0;
    bool in_flight_ = false;
    bool cancelled_ = false;
    bool finished_ = false;

    // attempt state (HTTP thread only, one attempt at a time)
    uint32_t attempt_ = 0;
    int http_status_ = 0;
    std::optional<uint32_t> retry_after_;
    std::string error_body_;
    std::unique_ptr<Decoder> decoder_;
    std::optional<Problem> problem_;
    bool emitted_ = false;
    bool client_gone_ = false;
};

} // namespace detail

// One per provider instance. Thread-safe. The instance must outlive every
// started call (the provider contract: destroy comes after every done).
class Client {
  public:
    explicit Client(const swh_host_api *host) : host_(host) {}

    bool offered() const {
        return SWH_HAS_MEMBER(host_, swh_host_api, http_cancel) && host_->http_start != nullptr &&
               host_->http_cancel != nullptr;
    }
    void set_max_concurrent(uint32_t n) {
        std::lock_guard lock(mutex_);
        max_concurrent_ = n;
    }

    // Starts (or queues) a call. On success `done` is owed exactly once.
    // Throws edge::Failure when the host offers no HTTP client.
    void start(CallSpec spec, const swh_provider_sink &sink) {
        if (!offered())
            throw edge::Failure(SWH_E_UNSUPPORTED, spec.vendor + ": the host offers no HTTP client");
        auto call = std::make_shared<detail::Call>(*this, std::move(spec), sink);
        bool run_now;
        {
            std::lock_guard lock(mutex_);
            calls_[call->id()] = call;
            run_now = max_concurrent_ == 0 || running_ < max_concurrent_;
            if (run_now)
                ++running_;
            else
                queue_.push_back(call);
        }
        if (run_now) call->launch(0);
    }

    void cancel(uint64_t call_id) {
        std::shared_ptr<detail::Call> call;
        bool was_queued = false;
        {
            std::lock_guard lock(mutex_);
            auto it = calls_.find(call_id);
            if (it == calls_.end()) return;
            call = it->second;
            auto q = std::find(queue_.begin(), queue_.end(), call);
            if (q != queue_.end()) {
                queue_.erase(q);
                calls_.erase(it);
                was_queued = true;
            }
        }
        if (was_queued)
            call->finish(SWH_E_CANCELLED, "cancelled while waiting for a free upstream slot");
        else
            call->cancel();
    }

    std::size_t active() const {
        std::lock_guard lock(mutex_);
        return running_;
    }
    std::size_t queued() const {
        std::lock_guard lock(mutex_);
        return queue_.size();
    }
    const swh_host_api *host() const { return host_; }

    // Bookkeeping when a running call ends: returns the next queued call to launch.
    std::shared_ptr<detail::Call> release(uint64_t call_id, bool was_running) {
        std::lock_guard lock(mutex_);
        calls_.erase(call_id);
        if (!was_running) return nullptr;
        if (!queue_.empty() && (max_concurrent_ == 0 || running_ <= max_concurrent_)) {
            auto next = queue_.front();
            queue_.pop_front();
            return next; // its slot is the one being released
        }
        --running_;
        return nullptr;
    }

  private:
    const swh_host_api *host_;
    mutable std::mutex mutex_;
    uint32_t max_concurrent_ = 0;
    uint32_t running_ = 0;
    std::unordered_map<uint64_t, std::shared_ptr<detail::Call>> calls_;
    std::deque<std::shared_ptr<detail::Call>> queue_;
};

namespace detail {

inline void Call::launch(uint32_t delay_ms) {
    ++attempt_;
    http_status_ = 0;
    decoder_.reset();
    problem_.reset();
    error_body_.clear();
    const Exchange &x = spec_.exchange;
    std::vector<swh_http_header> headers;
    headers.reserve(x.headers.size());
    for (const auto &[n, v] : x.headers)
        headers.push_back({sizeof(swh_http_header), {n.data(), n.size()}, {v.data(), v.size()}});
    swh_http_request req{};
    req.struct_size = sizeof(swh_http_request);
    req.method = {x.method.data(), x.method.size()};
    req.url = {x.url.data(), x.url.size()};
    req.headers = headers.empty() ? nullptr : headers.data();
    req.header_count = headers.size();
    req.body = {x.body.data(), x.body.size()};
    req.timeout_ms = x.timeout_ms;
    req.connect_timeout_ms = x.connect_timeout_ms;
    req.idle_timeout_ms = x.idle_timeout_ms;
    req.delay_ms = delay_ms;
    bool cancelled;
    {
        std::lock_guard lock(mutex_);
        cancelled = cancelled_; // cancel() arrived between attempts
    }
    if (cancelled) {
        finish(SWH_E_CANCELLED, "cancelled");
        return;
    }
    const swh_host_api *host = client_.host();
    uint64_t id = 0;
    swh_status st = host->http_start(host->host_ctx, &req, &http_sink_, &id);
    if (st != SWH_OK) {
        finish(SWH_E_UNAVAILABLE,
               "the host could not start the HTTP request (status " + std::to_string(st) + ")");
        return;
    }
    bool cancel_now;
    {
        std::lock_guard lock(mutex_);
        request_id_ = id;
        in_flight_ = true;
        cancel_now = cancelled_;
    }
    if (cancel_now) host->http_cancel(host->host_ctx, id);
}

inline void Call::cancel() {
    uint64_t id = 0;
    bool in_flight;
    {
        std::lock_guard lock(mutex_);
        if (finished_) return;
        cancelled_ = true;
        id = request_id_;
        in_flight = in_flight_;
    }
    if (in_flight) client_.host()->http_cancel(client_.host()->host_ctx, id);
}

inline void Call::handle_done(swh_status status, std::string error) {
    {
        std::lock_guard lock(mutex_);
        in_flight_ = false;
    }
    const bool ok_2xx = status == SWH_OK && http_status_ >= 200 && http_status_ < 300;
    if (problem_) return finish(problem_->status, problem_->message);
    if (client_gone_) return finish(SWH_E_CANCELLED, "the client went away");
    bool cancelled;
    {
        std::lock_guard lock(mutex_);
        cancelled = cancelled_;
    }
    if (cancelled) return finish(SWH_E_CANCELLED, "cancelled");
    if (ok_2xx) {
        std::optional<Problem> p;
        try {
            p = decoder_ ? decoder_->end(*this) : Problem{SWH_E_UPSTREAM, "no decoder"};
        } catch (const std::exception &e) {
            p = Problem{SWH_E_UPSTREAM, std::string("could not read the answer: ") + e.what()};
        }
        if (client_gone_) return finish(SWH_E_CANCELLED, "the client went away");
        if (p) return finish(p->status, p->message);
        return finish(SWH_OK, "");
    }
    const bool attempts_left = attempt_ <= spec_.retry.retries && !emitted_;
    if (status == SWH_OK) { // a complete non-2xx answer
        std::string message;
        try {
            message = spec_.make_decoder()->error_message(http_status_, error_body_);
        } catch (...) {
        }
        if (message.empty()) message = "upstream answered HTTP " + std::to_string(http_status_);
        if (is_retryable_status(http_status_) && attempts_left) {
            uint32_t delay = backoff_ms();
            if (!retry_after_) return launch(delay);
            const uint64_t ra_ms = static_cast<uint64_t>(*retry_after_) * 1000;
            if (ra_ms <= spec_.retry.max_delay_ms) return launch(static_cast<uint32_t>(ra_ms));
            // the upstream wants a longer pause than we may wait: give up now
        }
        std::string text = "upstream answered HTTP " + std::to_string(http_status_) + ": " + message;
        if (retry_after_ && (http_status_ == 429 || http_status_ == 503 || http_status_ == 529))
            text += "; retry_after=" + std::to_string(*retry_after_);
        else if (http_status_ == 429)
            text += "; retry_after=1";
        return finish(status_for_http(http_status_), text);
    }
    if (status == SWH_E_TIMEOUT) return finish(SWH_E_TIMEOUT, "upstream timed out: " + error);
    if (status == SWH_E_CANCELLED) return finish(SWH_E_CANCELLED, "cancelled: " + error);
    // the answer had started reaching the client: a cut stream is an upstream
    // failure and is not retried (the text cannot be taken back)
    if (emitted_) return finish(SWH_E_UPSTREAM, "upstream connection lost mid-answer: " + error);
    if (attempts_left) return launch(backoff_ms());
    return finish(status == SWH_E_UNAVAILABLE ? SWH_E_UNAVAILABLE : SWH_E_UPSTREAM,
                  "upstream unreachable: " + error);
}

inline void Call::finish(swh_status status, std::string message) {
    bool was_running;
    {
        std::lock_guard lock(mutex_);
        if (finished_) return;
        finished_ = true;
        was_running = attempt_ > 0;
    }
    // Bookkeeping first: after sink.done the host may destroy the instance.
    std::shared_ptr<Call> next = client_.release(spec_.call_id, was_running);
    std::string text = status == SWH_OK ? std::string() : scrub(spec_.vendor + ": " + message, spec_.secret);
    sink_.done(sink_.ctx, status, swh_str{text.data(), text.size()});
    if (next) next->launch(0);
}

} // namespace detail

} // namespace swh::cpp::upstream
