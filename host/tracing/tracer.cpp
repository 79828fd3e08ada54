#include "tracing/tracer.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

namespace swh::tracing {

Tracer::Tracer(std::shared_ptr<BatchExporter> exporter, double sample_ratio)
    : exporter_(std::move(exporter)), sample_all_(sample_ratio >= 1.0) {
    const double ratio = std::clamp(sample_ratio, 0.0, 1.0);
    threshold_ =
        sample_all_ ? std::numeric_limits<uint64_t>::max() : static_cast<uint64_t>(std::ldexp(ratio, 64));
}

Span Tracer::start_request(std::string_view name, const std::optional<SpanContext> &parent) const {
    if (parent) return Span(name, SpanKind::server, *parent, parent->sampled, exporter_);
    // Head sampling on the new trace id (as TraceIdRatioBased): the same id
    // gets the same answer in every process that applies the same ratio.
    SpanContext root;
    root.trace = new_trace_id();
    uint64_t low = 0;
    std::memcpy(&low, root.trace.bytes.data() + 8, sizeof low);
    return Span(name, SpanKind::server, root, sample_all_ || low < threshold_, exporter_);
}

} // namespace swh::tracing
