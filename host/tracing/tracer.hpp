// The sampling decision and the sink of a daemon's traces (manifest
// `tracing:`): what the door (http/tracing_door.hpp) starts each request's
// server span with.
#pragma once

#include "tracing/exporter.hpp"
#include "tracing/span.hpp"

#include <memory>
#include <optional>
#include <string_view>

namespace swh::tracing {

class Tracer {
  public:
    // sample_ratio in [0, 1]: the share of new traces recorded; a trace the
    // client started follows the client's sampled flag (parent-based).
    Tracer(std::shared_ptr<BatchExporter> exporter, double sample_ratio);
    Span start_request(std::string_view name, const std::optional<SpanContext> &parent) const;
    const BatchExporter &exporter() const { return *exporter_; }

  private:
    std::shared_ptr<BatchExporter> exporter_;
    uint64_t threshold_; // a new trace is sampled when its id's low 64 bits are below it
    bool sample_all_;
};

} // namespace swh::tracing
