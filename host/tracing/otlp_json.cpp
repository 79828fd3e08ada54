#include "tracing/otlp_json.hpp"

#include <nlohmann/json.hpp>

namespace swh::tracing {

namespace {

using Json = nlohmann::json;

Json any_value(const AttributeValue &value) {
    return std::visit(
        [](const auto &v) -> Json {
            using T = std::decay_t<decltype(v)>;
            if constexpr (std::is_same_v<T, std::string>) return {{"stringValue", v}};
            if constexpr (std::is_same_v<T, int64_t>) return {{"intValue", std::to_string(v)}};
            if constexpr (std::is_same_v<T, double>) return {{"doubleValue", v}};
            if constexpr (std::is_same_v<T, bool>) return {{"boolValue", v}};
        },
        value);
}

Json key_values(const std::vector<std::pair<std::string, AttributeValue>> &attributes) {
    Json out = Json::array();
    for (const auto &[key, value] : attributes)
        out.push_back({{"key", key}, {"value", any_value(value)}});
    return out;
}

Json span_json(const SpanRecord &span) {
    Json out{{"traceId", span.context.trace.hex()},
             {"spanId", span.context.span.hex()},
             {"name", span.name},
             {"kind", static_cast<int>(span.kind)},
             {"startTimeUnixNano", std::to_string(span.start_ns)},
             {"endTimeUnixNano", std::to_string(span.end_ns)},
             {"attributes", key_values(span.attributes)}};
    if (span.parent.valid()) out["parentSpanId"] = span.parent.hex();
    Json status{{"code", static_cast<int>(span.status)}};
    if (!span.status_message.empty()) status["message"] = span.status_message;
    out["status"] = std::move(status);
    return out;
}

} // namespace

std::string encode_export_request(const Resource &resource, const std::vector<SpanRecord> &spans) {
    Json list = Json::array();
    for (const auto &span : spans)
        list.push_back(span_json(span));
    std::vector<std::pair<std::string, AttributeValue>> resource_attributes{
        {"service.name", resource.service_name}};
    if (!resource.service_version.empty())
        resource_attributes.emplace_back("service.version", resource.service_version);
    Json scope{{"name", resource.scope_name}};
    if (!resource.service_version.empty()) scope["version"] = resource.service_version;
    Json request{
        {"resourceSpans",
         Json::array({{{"resource", {{"attributes", key_values(resource_attributes)}}},
                       {"scopeSpans", Json::array({{{"scope", scope}, {"spans", std::move(list)}}})}}})}};
    // Attribute text may come from a client (a path, a model name): never
    // let invalid UTF-8 make the whole batch unencodable.
    return request.dump(-1, ' ', false, Json::error_handler_t::replace);
}

} // namespace swh::tracing
