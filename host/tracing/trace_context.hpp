// W3C Trace Context (https://www.w3.org/TR/trace-context/): the ids of a
// trace and a span, and the `traceparent` header that carries them between
// processes. Parsing follows the spec's rules: an invalid header is ignored
// (the caller starts a new trace), never an error for the request.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace swh::tracing {

struct TraceId {
    std::array<uint8_t, 16> bytes{};
    bool valid() const; // not all zero
    std::string hex() const;
    bool operator==(const TraceId &) const = default;
};

struct SpanId {
    std::array<uint8_t, 8> bytes{};
    bool valid() const; // not all zero
    std::string hex() const;
    bool operator==(const SpanId &) const = default;
};

// Which span is current in a trace, and whether the trace is recorded.
struct SpanContext {
    TraceId trace;
    SpanId span;
    bool sampled = false;
    bool valid() const { return trace.valid() && span.valid(); }
};

// Random non-zero ids.
TraceId new_trace_id();
SpanId new_span_id();

// "00-<32 hex>-<16 hex>-<2 hex>" (lowercase). Version 00 must be exactly 55
// characters; a higher version may carry more fields after a '-', which are
// ignored; version ff, uppercase hex and all-zero ids are invalid.
std::optional<SpanContext> parse_traceparent(std::string_view header);
// Version 00, the sampled flag as the only flag.
std::string format_traceparent(const SpanContext &context);

} // namespace swh::tracing
