#include "http/json_codec.hpp"

#include "http/json_text.hpp"
#include "http/server.hpp"
#include "model/generation_params.hpp"
#include "util/clock.hpp"
#include "util/json_parse.hpp"

#include <charconv>
#include <set>

namespace swh::http {

Json to_json(const Session &s) {
    return {{"id", s.id},
            {"user_id", s.user_id},
            {"provider", s.provider},
            {"model", s.model},
            {"status", s.status},
            {"type", s.type},
            {"created_at", format_iso8601(s.created_at)},
            {"last_activity", format_iso8601(s.last_activity)},
            {"message_count", s.message_count},
            {"config", s.config},
            {"context", s.context},
            {"metadata", s.metadata}};
}

Json to_json(const Message &m) {
    Json json = {{"id", m.id},
                 {"session_id", m.session_id},
                 {"role", m.role},
                 {"content", m.content},
                 {"timestamp", format_iso8601(m.timestamp)},
                 {"metadata", m.metadata},
                 {"provider_message_id", m.provider_message_id},
                 {"provider_metadata", m.provider_metadata}};
    // Structured content (tool_calls, tool_call_id, parts, reasoning...) sits
    // beside `content`, only when the message has it.
    for (const auto &[key, value] : m.structured.items())
        json[key] = value;
    return json;
}

namespace {

// The members of a message as to_json makes them, in the order its object
// (a std::map) keeps them: by key.
using MemberWriter = void (*)(std::string &out, const FrozenMessage &f);
struct MessageMember {
    std::string_view key;
    MemberWriter write;
};
constexpr MessageMember kMessageMembers[] = {
    {"content", [](std::string &o, const FrozenMessage &f) { append_json_string(o, f.message.content); }},
    {"id", [](std::string &o, const FrozenMessage &f) { append_json_string(o, f.message.id); }},
    {"metadata", [](std::string &o, const FrozenMessage &f) { o += f.metadata_json; }},
    {"provider_message_id",
     [](std::string &o, const FrozenMessage &f) { append_json_string(o, f.message.provider_message_id); }},
    {"provider_metadata", [](std::string &o, const FrozenMessage &f) { o += f.provider_metadata_json; }},
    {"role", [](std::string &o, const FrozenMessage &f) { append_json_string(o, f.message.role); }},
    {"session_id",
     [](std::string &o, const FrozenMessage &f) { append_json_string(o, f.message.session_id); }},
    {"timestamp", [](std::string &o,
                     const FrozenMessage &f) { append_json_string(o, format_iso8601(f.message.timestamp)); }},
};

} // namespace

void append_json(std::string &out, const FrozenMessage &frozen) {
    // Structured content's members merge in by key, and win over a fixed
    // member of the same name, as `json[key] = value` does in to_json.
    const Json &extra = frozen.message.structured;
    const Json &none = Json::object();
    const Json &merged = extra.is_object() ? extra : none;
    auto next_extra = merged.begin();
    const MessageMember *next_fixed = std::begin(kMessageMembers);
    const MessageMember *const fixed_end = std::end(kMessageMembers);
    bool first = true;
    out += '{';
    while (next_fixed != fixed_end || next_extra != merged.end()) {
        if (!first) out += ',';
        first = false;
        if (next_extra == merged.end() || (next_fixed != fixed_end && next_fixed->key < next_extra.key())) {
            append_json_key(out, next_fixed->key);
            next_fixed->write(out, frozen);
            ++next_fixed;
            continue;
        }
        if (next_fixed != fixed_end && next_fixed->key == next_extra.key()) ++next_fixed;
        append_json_string(out, next_extra.key());
        out += ':';
        out += dump_json(next_extra.value());
        ++next_extra;
    }
    out += '}';
}

std::string messages_body(const std::vector<MessageRef> &messages) {
    std::size_t size = 16;
    for (const MessageRef &m : messages)
        size += 192 + m->message.content.size() + m->metadata_json.size() + m->provider_metadata_json.size() +
                m->structured_json.size();
    std::string out;
    out.reserve(size);
    out += "{\"messages\":[";
    for (std::size_t i = 0; i < messages.size(); ++i) {
        if (i) out += ',';
        const FrozenMessage &m = *messages[i];
        out += m.api_json([&m](std::string &text) { append_json(text, m); });
    }
    out += "]}";
    return out;
}

std::string error_body(ErrorKind kind, const std::string &message) {
    return error_json(error_code(kind), message);
}

std::string error_body(const ApiError &error) {
    if (error.details_json().empty()) return error_body(error.kind(), error.what());
    Json body{{"error", {{"code", error_code(error.kind())}, {"message", error.what()}}}};
    with_details(body["error"], error);
    return dump_json(body);
}

void with_details(Json &error_object, const ApiError &error) {
    if (error.details_json().empty()) return;
    const Json details = Json::parse(error.details_json(), nullptr, false);
    if (details.is_object()) error_object.update(details);
}

std::string dump_json(const Json &value) {
    return value.dump(-1, ' ', false, Json::error_handler_t::replace);
}

namespace {

// nlohmann's parser recurses once per nesting level, so a body of a million
// '[' would overflow the stack (found by tests/fuzz). Real requests nest a
// few levels; refuse deep ones before parsing.
constexpr int kMaxJsonDepth = 128;

bool nested_too_deep(const std::string &text) {
    int depth = 0;
    bool in_string = false, escaped = false;
    for (char c : text) {
        if (in_string) {
            if (escaped)
                escaped = false;
            else if (c == '\\')
                escaped = true;
            else if (c == '"')
                in_string = false;
        } else if (c == '"') {
            in_string = true;
        } else if (c == '[' || c == '{') {
            if (++depth > kMaxJsonDepth) return true;
        } else if (c == ']' || c == '}') {
            --depth;
        }
    }
    return false;
}

} // namespace

Json parse_body(const std::string &body) {
    if (body.empty()) throw ApiError(ErrorKind::InvalidJson, "request body is empty; expected a JSON object");
    if (nested_too_deep(body))
        throw ApiError(ErrorKind::InvalidRequest,
                       "request body nests deeper than " + std::to_string(kMaxJsonDepth) + " levels");
    Json value = parse_json(body);
    if (value.is_discarded()) {
        try {
            value = Json::parse(body); // again, for the message that says where and why
        } catch (const Json::exception &e) {
            // parse_error, and also out_of_range for numbers like 1e999 (found by
            // tests/fuzz): every parser complaint is the client's bad JSON.
            throw ApiError(ErrorKind::InvalidJson,
                           std::string("request body is not valid JSON: ") + e.what());
        }
    }
    if (!value.is_object()) throw ApiError(ErrorKind::InvalidRequest, "request body must be a JSON object");
    return value;
}

namespace {

// Rejects keys the route does not know, so a typo is an error and not a
// silently ignored field.
void only_known_fields(const Json &body, const std::set<std::string> &known) {
    for (const auto &[key, value] : body.items()) {
        if (known.count(key)) continue;
        std::string list;
        for (const auto &k : known)
            list += (list.empty() ? "" : ", ") + k;
        throw ApiError(ErrorKind::InvalidRequest,
                       "unknown field '" + key + "' (expected one of: " + list + ")");
    }
}

std::optional<std::string> optional_string(const Json &body, const char *key) {
    auto it = body.find(key);
    if (it == body.end() || it->is_null()) return std::nullopt;
    if (!it->is_string())
        throw ApiError(ErrorKind::InvalidRequest, std::string("field '") + key + "' must be a string");
    return it->get<std::string>();
}

std::optional<Json> optional_object(const Json &body, const char *key) {
    auto it = body.find(key);
    if (it == body.end() || it->is_null()) return std::nullopt;
    if (!it->is_object())
        throw ApiError(ErrorKind::InvalidRequest, std::string("field '") + key + "' must be a JSON object");
    return *it;
}

Json checked_context(Json context) {
    for (const char *key : {"user_context", "system_context"})
        if (context.contains(key) && !context[key].is_object())
            throw ApiError(ErrorKind::InvalidRequest,
                           std::string("context.") + key + " must be a JSON object");
    return context;
}

// A session's config may carry default generation parameters (tools...).
Json checked_config(Json config) {
    if (auto it = config.find("params"); it != config.end()) check_params(*it, "config.params");
    return config;
}

uint32_t query_uint(const std::map<std::string, std::string> &query, const char *key) {
    auto it = query.find(key);
    if (it == query.end()) return 0;
    uint32_t value = 0;
    const auto &text = it->second;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec != std::errc() || end != text.data() + text.size() || text.empty())
        throw ApiError(ErrorKind::InvalidRequest, std::string("query parameter '") + key +
                                                      "' must be a non-negative integer, got '" + text + "'");
    return value;
}

void only_known_params(const std::map<std::string, std::string> &query, const std::set<std::string> &known) {
    for (const auto &[key, value] : query)
        if (!known.count(key))
            throw ApiError(ErrorKind::InvalidRequest, "unknown query parameter '" + key + "'");
}

} // namespace

CreateSessionParams decode_create_session(const Json &body) {
    only_known_fields(body, {"user_id", "provider", "model", "type", "config", "context", "metadata"});
    CreateSessionParams params;
    auto user_id = optional_string(body, "user_id");
    if (!user_id || user_id->empty())
        throw ApiError(ErrorKind::InvalidRequest,
                       "field 'user_id' is required and must be a non-empty string");
    params.user_id = *user_id;
    params.provider = optional_string(body, "provider").value_or("");
    params.model = optional_string(body, "model").value_or("");
    params.type = optional_string(body, "type").value_or("");
    params.config = checked_config(optional_object(body, "config").value_or(Json::object()));
    params.context = checked_context(optional_object(body, "context").value_or(Json::object()));
    params.metadata = optional_object(body, "metadata").value_or(Json::object());
    return params;
}

SessionPatch decode_session_patch(const Json &body) {
    only_known_fields(body, {"provider", "model", "status", "config", "context", "metadata"});
    SessionPatch patch;
    patch.provider = optional_string(body, "provider");
    patch.model = optional_string(body, "model");
    patch.status = optional_string(body, "status");
    if (auto config = optional_object(body, "config")) patch.config = checked_config(*config);
    if (auto context = optional_object(body, "context")) patch.context = checked_context(*context);
    patch.metadata = optional_object(body, "metadata");
    return patch;
}

SendParams decode_send(const Json &body, const std::string &session_id) {
    only_known_fields(body, {"content", "role", "metadata", "stream", "tool_call_id", "parts", "params"});
    SendParams params;
    params.session_id = session_id;
    auto content = optional_string(body, "content");
    if (!content)
        throw ApiError(ErrorKind::InvalidRequest, "field 'content' is required and must be a string");
    params.content = *content;
    params.role = optional_string(body, "role").value_or("user");
    params.metadata = optional_object(body, "metadata").value_or(Json::object());
    if (auto it = body.find("stream"); it != body.end() && !it->is_null()) {
        if (!it->is_boolean())
            throw ApiError(ErrorKind::InvalidRequest, "field 'stream' must be true or false");
        params.stream = it->get<bool>();
    }
    if (auto id = optional_string(body, "tool_call_id")) params.structured["tool_call_id"] = *id;
    if (auto it = body.find("parts"); it != body.end() && !it->is_null()) params.structured["parts"] = *it;
    check_structured(params.structured, "message");
    if (params.role == "tool" && !params.structured.contains("tool_call_id"))
        throw ApiError(ErrorKind::InvalidRequest,
                       "field 'tool_call_id' is required for a role 'tool' message");
    if (params.role != "tool" && params.structured.contains("tool_call_id"))
        throw ApiError(ErrorKind::InvalidRequest,
                       "field 'tool_call_id' belongs to role 'tool' messages only");
    params.params = check_params(optional_object(body, "params").value_or(Json::object()), "params");
    return params;
}

SessionListQuery decode_session_list_query(const std::map<std::string, std::string> &query) {
    only_known_params(query, {"user_id", "status", "type", "provider", "limit", "offset"});
    SessionListQuery list;
    SessionFilter &filter = list.filter;
    if (auto it = query.find("user_id"); it != query.end()) filter.user_id = it->second;
    if (auto it = query.find("status"); it != query.end()) filter.status = it->second;
    if (auto it = query.find("type"); it != query.end()) list.type = it->second;
    if (auto it = query.find("provider"); it != query.end()) list.provider = it->second;
    filter.limit = query_uint(query, "limit");
    filter.offset = query_uint(query, "offset");
    return list;
}

bool SessionListQuery::matches(const Session &session) const {
    if (!provider.empty() && session.provider != provider) return false;
    if (type.empty()) return true;
    return type == "plain" ? session.type.empty() : session.type == type;
}

TrafficQuery decode_traffic_query(const std::map<std::string, std::string> &query) {
    only_known_params(query, {"seconds", "step"});
    TrafficQuery q;
    if (query.count("seconds")) q.seconds = query_uint(query, "seconds");
    if (query.count("step")) q.step = query_uint(query, "step");
    if (q.seconds == 0 || q.step == 0)
        throw ApiError(ErrorKind::InvalidRequest, "query parameters 'seconds' and 'step' must be positive");
    return q;
}

MessageQuery decode_message_query(const std::map<std::string, std::string> &query,
                                  const std::string &session_id) {
    only_known_params(query, {"limit", "role", "since"});
    MessageQuery q;
    q.session_id = session_id;
    q.limit = query_uint(query, "limit");
    if (auto it = query.find("role"); it != query.end()) q.role = it->second;
    if (auto it = query.find("since"); it != query.end()) {
        const std::string &text = it->second;
        int64_t micros = 0;
        auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), micros);
        if (!text.empty() && ec == std::errc() && end == text.data() + text.size()) {
            q.since = micros;
        } else if (auto parsed = parse_iso8601(text)) {
            q.since = *parsed;
        } else {
            throw ApiError(ErrorKind::InvalidRequest,
                           "query parameter 'since' must be ISO 8601 (2026-01-31T12:00:00Z) or microseconds "
                           "since the epoch, got '" +
                               text + "'");
        }
    }
    return q;
}

} // namespace swh::http
