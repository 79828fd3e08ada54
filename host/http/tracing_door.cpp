#include "http/tracing_door.hpp"

#include <mutex>

namespace swh::http {

using tracing::Context;
using tracing::ScopedContext;
using tracing::Span;

namespace {

// The answer's status goes on the server span, which ends with the answer.
class TracedExchange : public Exchange {
  public:
    TracedExchange(std::shared_ptr<Exchange> inner, Span span)
        : inner_(std::move(inner)), span_(std::move(span)), context_(span_.as_current()) {}
    ~TracedExchange() override { finish(0); } // dropped unanswered

    void respond(int status, std::string content_type, std::string body,
                 std::vector<std::pair<std::string, std::string>> extra_headers = {}) override {
        finish(status);
        inner_->respond(status, std::move(content_type), std::move(body), std::move(extra_headers));
    }
    void start_stream() override {
        note_status(200);
        inner_->start_stream();
    }
    bool send_event(std::string_view event, std::string_view data, std::string_view id = {}) override {
        return inner_->send_event(event, data, id);
    }
    void end_stream() override {
        finish(0);
        inner_->end_stream();
    }
    bool client_gone() const override { return inner_->client_gone(); }
    void on_client_gone(std::function<void()> callback) override {
        inner_->on_client_gone(bind_to(std::move(callback)));
    }
    using Exchange::keep_alive;
    void keep_alive(std::chrono::milliseconds interval, std::string_view event,
                    std::string_view data) override {
        inner_->keep_alive(interval, event, data);
    }
    // Work posted to the connection's lane stays in this request's trace.
    void dispatch(std::function<void()> work) override { inner_->dispatch(bind_to(std::move(work))); }
    int64_t received_at_us() const override { return inner_->received_at_us(); }
    void set_deadline(DeadlineLimits limits, std::function<void(const DeadlinePassed &)> passed) override {
        inner_->set_deadline(limits, std::move(passed));
    }
    std::optional<DeadlinePassed> deadline_passed() const override { return inner_->deadline_passed(); }
    bool upstream_activity() override { return inner_->upstream_activity(); }

  private:
    std::function<void()> bind_to(std::function<void()> work) const {
        return [context = context_, work = std::move(work)] {
            ScopedContext scope(context);
            work();
        };
    }
    void note_status(int status) {
        std::lock_guard lock(mutex_);
        if (status_ == 0) status_ = status;
    }
    // `status` 0 = keep the one noted (a stream's 200), if any.
    void finish(int status) {
        std::lock_guard lock(mutex_);
        if (ended_) return;
        ended_ = true;
        if (status_ == 0) status_ = status;
        if (status_ != 0) span_.set("http.response.status_code", static_cast<int64_t>(status_));
        // Server spans: only 5xx is the server's error (semantic conventions).
        if (status_ >= 500) span_.set_error("HTTP " + std::to_string(status_));
        span_.end();
    }

    std::shared_ptr<Exchange> inner_;
    std::mutex mutex_;
    Span span_;
    const Context context_;
    int status_ = 0;
    bool ended_ = false;
};

} // namespace

std::string session_of(const Request &request) {
    if (!request.session_header.empty()) return request.session_header;
    const auto &s = request.segments;
    if (s.size() >= 3 && s[0] == "v1" && s[1] == "sessions") return s[2];
    return {};
}

void TracingHandler::handle(Request request, std::shared_ptr<Exchange> exchange) {
    Span span = tracer_.start_request(request.method, tracing::parse_traceparent(request.traceparent));
    if (span.recording()) {
        span.set("http.request.method", request.method);
        span.set("url.path", request.path);
        if (!request.client_address.empty()) span.set("client.address", request.client_address);
        if (const std::string session = session_of(request); !session.empty())
            span.set("session.id", session);
    }
    const Context context = span.as_current();
    auto traced = std::make_shared<TracedExchange>(std::move(exchange), std::move(span));
    ScopedContext scope(context);
    inner_.handle(std::move(request), std::move(traced));
}

} // namespace swh::http
