// The OTLP/JSON encoding of spans: an ExportTraceServiceRequest
// (opentelemetry/proto/collector/trace/v1) in the protobuf JSON mapping as
// OTLP/HTTP specifies it: lowerCamelCase field names, trace and span ids as
// hex strings (not base64), enums as integers, 64-bit integers (times,
// intValue) as decimal strings.
#pragma once

#include "tracing/span.hpp"

#include <string>
#include <vector>

namespace swh::tracing {

struct Resource {
    std::string service_name;
    std::string service_version;
    std::string scope_name = "swarmhost";
};

std::string encode_export_request(const Resource &resource, const std::vector<SpanRecord> &spans);

} // namespace swh::tracing
