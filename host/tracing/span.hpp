// Spans and the current trace context of a thread.
//
// A request's context travels with the work: the door (tracing/door.hpp)
// makes it current on the thread that handles the request, every hand-over
// to another thread carries it (bind()), and the provider call keeps it for
// its completion. Code on the way opens child spans with start_span() and
// needs no parameter for it. With tracing off nothing is ever current, so
// start_span() is one thread-local read and a branch.
#pragma once

#include "tracing/trace_context.hpp"

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

namespace swh::tracing {

enum class SpanKind { internal = 1, server = 2, client = 3 }; // OTLP's numbering

using AttributeValue = std::variant<std::string, int64_t, double, bool>;

// A finished span as it is exported.
struct SpanRecord {
    std::string name;
    SpanKind kind = SpanKind::internal;
    SpanContext context;
    SpanId parent;                     // all zero for a root span
    uint64_t start_ns = 0, end_ns = 0; // since the Unix epoch
    std::vector<std::pair<std::string, AttributeValue>> attributes;
    enum class Status { unset = 0, ok = 1, error = 2 } status = Status::unset;
    std::string status_message;
};

// Where finished spans go (the batch exporter). Must not block.
class SpanSink {
  public:
    virtual ~SpanSink() = default;
    virtual void submit(SpanRecord span) = 0;
};

// What is current on a thread: a span of a trace and where its children go.
// Empty (no sink) when tracing is off or the thread serves no traced request.
struct Context {
    SpanContext span;
    std::shared_ptr<SpanSink> sink; // null = not traced
    bool active() const { return sink != nullptr; }
};

const Context &current();
// "" when nothing is current: the value of a `traceparent` header to send on.
std::string current_traceparent();

// Makes `context` current for its lifetime, then restores what was.
class ScopedContext {
  public:
    explicit ScopedContext(Context context);
    ~ScopedContext();
    ScopedContext(const ScopedContext &) = delete;
    ScopedContext &operator=(const ScopedContext &) = delete;

  private:
    Context saved_;
};

// `job` run later, on any thread, under the context current now (the job
// itself when nothing is current).
std::function<void()> bind(std::function<void()> job);

uint64_t now_unix_ns();

// One span being recorded. Ends (is handed to the sink) when end() is
// called or it is destroyed. A span of an unsampled trace has ids (they are
// propagated) but records nothing; a default Span is inactive altogether.
class Span {
  public:
    Span() = default;
    // A new span in `parent`'s trace (a new trace when its trace id is zero),
    // child of its span (a root span when its span id is zero), recorded
    // when `sampled` and there is a sink.
    Span(std::string_view name, SpanKind kind, const SpanContext &parent, bool sampled,
         std::shared_ptr<SpanSink> sink);
    Span(Span &&) noexcept = default;
    Span &operator=(Span &&other) noexcept;
    ~Span() { end(); }

    bool active() const { return context_.valid(); }
    bool recording() const { return record_ != nullptr; }
    const SpanContext &context() const { return context_; }
    // This span as the current context of a thread (for ScopedContext).
    Context as_current() const { return {context_, active() ? sink_ : nullptr}; }

    void set(std::string key, AttributeValue value);
    void set(std::string key, const char *value) { set(std::move(key), std::string(value)); }
    void set_error(std::string message);
    void set_ok();
    void end();

  private:
    SpanContext context_;
    std::unique_ptr<SpanRecord> record_; // null = not recording
    std::shared_ptr<SpanSink> sink_;
};

// A child of the current span; inactive when nothing is current.
Span start_span(std::string_view name, SpanKind kind = SpanKind::internal);

} // namespace swh::tracing
