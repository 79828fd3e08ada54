#include "tracing/span.hpp"

#include <chrono>

namespace swh::tracing {

namespace {

// The one piece of per-thread state: which request's span this thread works
// for. Thread-local because the code that opens child spans (storage gate,
// plugin calls) is reached through many layers that know nothing of tracing.
Context &slot() {
    thread_local Context context;
    return context;
}

} // namespace

const Context &current() {
    return slot();
}

std::string current_traceparent() {
    const Context &context = slot();
    return context.active() ? format_traceparent(context.span) : std::string();
}

ScopedContext::ScopedContext(Context context) : saved_(std::exchange(slot(), std::move(context))) {}

ScopedContext::~ScopedContext() {
    slot() = std::move(saved_);
}

std::function<void()> bind(std::function<void()> job) {
    if (!slot().active()) return job;
    return [context = slot(), job = std::move(job)] {
        ScopedContext scope(context);
        job();
    };
}

uint64_t now_unix_ns() {
    return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                     std::chrono::system_clock::now().time_since_epoch())
                                     .count());
}

Span::Span(std::string_view name, SpanKind kind, const SpanContext &parent, bool sampled,
           std::shared_ptr<SpanSink> sink)
    : sink_(std::move(sink)) {
    context_.trace = parent.trace.valid() ? parent.trace : new_trace_id();
    context_.span = new_span_id();
    context_.sampled = sampled;
    if (!sampled || !sink_) return;
    record_ = std::make_unique<SpanRecord>();
    record_->name = std::string(name);
    record_->kind = kind;
    record_->context = context_;
    record_->parent = parent.span; // zero for a root span
    record_->start_ns = now_unix_ns();
}

Span &Span::operator=(Span &&other) noexcept {
    if (this != &other) {
        end();
        context_ = other.context_;
        record_ = std::move(other.record_);
        sink_ = std::move(other.sink_);
    }
    return *this;
}

void Span::set(std::string key, AttributeValue value) {
    if (record_) record_->attributes.emplace_back(std::move(key), std::move(value));
}

void Span::set_error(std::string message) {
    if (!record_) return;
    record_->status = SpanRecord::Status::error;
    record_->status_message = std::move(message);
}

void Span::set_ok() {
    if (record_) record_->status = SpanRecord::Status::ok;
}

void Span::end() {
    if (!record_) return;
    record_->end_ns = now_unix_ns();
    // The sink never throws on a full queue (it counts a drop); anything
    // else must not take the request down either.
    try {
        sink_->submit(std::move(*record_));
    } catch (...) {
    }
    record_.reset();
}

Span start_span(std::string_view name, SpanKind kind) {
    const Context &context = slot();
    if (!context.active()) return {};
    return Span(name, kind, context.span, context.span.sampled, context.sink);
}

} // namespace swh::tracing
