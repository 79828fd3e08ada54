// The host's neutral form of a conversation (ABI 1.3), as a vendor
// translator reads it: the generation parameters of swh_provider_request.
// params_json and the structured content of swh_message.structured_json
// (content parts, tool calls, tool results' call id, reasoning). Header-only,
// part of the optional C++ layer of the SDK; needs nlohmann_json.
//
// Every refusal is Failure(SWH_E_INVALID, "<who>: <where> <what>") naming
// the parameter ("params.seed") or the message ("messages[3].parts[1]"), so
// the client learns which field its provider cannot take. Nothing here
// throws anything else on malformed input: the host validates the neutral
// form, but a translator must not crash on a newer or a buggy host.
#pragma once

#include <swarmhost/cpp/edge.hpp>
#include <swarmhost/swarmhost.h>

#include <nlohmann/json.hpp>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace swh::cpp::neutral {

using Json = nlohmann::json;

[[noreturn]] inline void refuse(std::string_view who, std::string_view where, std::string_view what) {
    throw edge::Failure(SWH_E_INVALID,
                        std::string(who) + ": " + std::string(where) + " " + std::string(what));
}

inline std::string message_at(size_t index) {
    return "messages[" + std::to_string(index) + "]";
}

// A JSON object text as an object: "" (an older host) and "{}" are empty;
// anything else that is not an object is refused naming `where`.
inline Json object_of(std::string_view text, std::string_view who, std::string_view where) {
    if (text.empty()) return Json::object();
    Json j = Json::parse(text, nullptr, false);
    if (j.is_discarded() || !j.is_object()) refuse(who, where, "is not a JSON object");
    return j;
}

// The value of `key` when present and not null, else nullptr.
inline const Json *find(const Json &obj, std::string_view key) {
    if (!obj.is_object()) return nullptr;
    auto it = obj.find(key);
    return it == obj.end() || it->is_null() ? nullptr : &*it;
}

inline std::string string_or(const Json &obj, std::string_view key, std::string fallback = {}) {
    const Json *v = find(obj, key);
    return v != nullptr && v->is_string() ? v->get<std::string>() : fallback;
}

// A prompt-cache mark ("cache_control": {"type":"ephemeral", "ttl"?}) of a
// tool, part, tool call or message's structured content; null when none.
// A cost hint, not meaning: a wire without cache marks drops it.
inline Json cache_mark_of(const Json &obj) {
    const Json *mark = find(obj, "cache_control");
    return mark != nullptr && mark->is_object() ? *mark : Json();
}

// ------------------------------------------------------------- parameters

// The generation parameters of one call. A translator takes each key it
// maps (take / take_*); whatever is left at the end was not mapped and is
// refused by name (finish), so a parameter is never dropped in silence.
// Keys a plugin's config says to drop are taken and forgotten (drop).
class Params {
  public:
    Params(Json params, std::string who) : params_(std::move(params)), who_(std::move(who)) {
        if (!params_.is_object()) params_ = Json::object();
    }

    bool has(std::string_view key) const { return find(params_, key) != nullptr; }

    // The value of `key` (nullptr when absent), marked as handled.
    const Json *take(std::string_view key) {
        // Only keys present need remembering (finish walks params_); most
        // calls carry none of the sixteen a translator asks for (issue 17).
        const Json *value = find(params_, key);
        if (value != nullptr) taken_.insert(std::string(key));
        return value;
    }
    std::optional<double> take_number(std::string_view key) {
        const Json *v = take(key);
        if (v == nullptr) return std::nullopt;
        if (!v->is_number()) refuse(key, "must be a number");
        return v->get<double>();
    }
    std::optional<int64_t> take_integer(std::string_view key) {
        const Json *v = take(key);
        if (v == nullptr) return std::nullopt;
        if (!v->is_number_integer()) refuse(key, "must be an integer");
        return v->get<int64_t>();
    }
    std::optional<std::string> take_string(std::string_view key) {
        const Json *v = take(key);
        if (v == nullptr) return std::nullopt;
        if (!v->is_string()) refuse(key, "must be a string");
        return v->get<std::string>();
    }
    std::optional<bool> take_bool(std::string_view key) {
        const Json *v = take(key);
        if (v == nullptr) return std::nullopt;
        if (!v->is_boolean()) refuse(key, "must be true or false");
        return v->get<bool>();
    }
    // "stop": a list of strings (a single string is taken as a list of one).
    std::vector<std::string> take_stop() {
        const Json *v = take("stop");
        std::vector<std::string> out;
        if (v == nullptr) return out;
        if (v->is_string()) return {v->get<std::string>()};
        if (!v->is_array()) refuse("stop", "must be a list of strings");
        for (const auto &s : *v) {
            if (!s.is_string()) refuse("stop", "must be a list of strings");
            out.push_back(s.get<std::string>());
        }
        return out;
    }
    // "extra": the vendor keys, copied into the body last (an object, or {}).
    Json take_extra() {
        const Json *v = take("extra");
        if (v == nullptr) return Json::object();
        if (!v->is_object()) refuse("extra", "must be an object");
        return *v;
    }
    // Config-chosen keys taken without being mapped (documented per plugin).
    void drop(const std::vector<std::string> &keys) {
        for (const auto &k : keys)
            take(k);
    }
    // The prompt-cache marks of the whole request ("cache_control") and of
    // the system prompt ("system_cache_control"), for a wire that has no
    // such marks: caching is a cost hint, so they are dropped, not refused.
    void drop_cache_marks() { drop({"cache_control", "system_cache_control"}); }

    // Refuses the first key no translation took.
    void finish() const {
        for (const auto &[key, value] : params_.items())
            if (!value.is_null() && !taken_.count(key)) refuse(key, "is not supported by this provider");
    }

    [[noreturn]] void refuse(std::string_view key, std::string_view what) const {
        neutral::refuse(who_, "params." + std::string(key), what);
    }
    const std::string &who() const { return who_; }

  private:
    Json params_;
    std::string who_;
    std::set<std::string, std::less<>> taken_;
};

// One tool the model may call ("tools": [{"type":"function",...}]).
struct Tool {
    std::string name, description;
    Json parameters; // a JSON schema object; null when not given
    std::optional<bool> strict;
    Json cache_control; // a prompt-cache mark; null when none
};

inline std::vector<Tool> take_tools(Params &params) {
    const Json *v = params.take("tools");
    std::vector<Tool> out;
    if (v == nullptr) return out;
    if (!v->is_array()) params.refuse("tools", "must be a list");
    for (size_t i = 0; i < v->size(); ++i) {
        const Json &t = (*v)[i];
        const std::string key = "tools[" + std::to_string(i) + "]";
        if (!t.is_object()) params.refuse(key, "must be an object");
        if (string_or(t, "type", "function") != "function")
            params.refuse(key + ".type", "must be \"function\" (the only tool type both wires share)");
        Tool tool{string_or(t, "name"), string_or(t, "description"), Json(), std::nullopt, Json()};
        if (tool.name.empty()) params.refuse(key + ".name", "must be a non-empty string");
        if (const Json *p = find(t, "parameters")) {
            if (!p->is_object()) params.refuse(key + ".parameters", "must be a JSON schema object");
            tool.parameters = *p;
        }
        if (const Json *s = find(t, "strict"); s != nullptr && s->is_boolean()) tool.strict = s->get<bool>();
        tool.cache_control = cache_mark_of(t);
        out.push_back(std::move(tool));
    }
    return out;
}

// "tool_choice": "auto" | "none" | "required", or a function by name.
struct ToolChoice {
    std::string mode; // "auto" | "none" | "required" | "function"
    std::string name; // mode "function"
};

inline std::optional<ToolChoice> take_tool_choice(Params &params) {
    const Json *v = params.take("tool_choice");
    if (v == nullptr) return std::nullopt;
    if (v->is_string()) {
        const std::string mode = v->get<std::string>();
        if (mode != "auto" && mode != "none" && mode != "required")
            params.refuse("tool_choice",
                          "must be \"auto\", \"none\", \"required\" or {\"type\":\"function\",\"name\"}");
        return ToolChoice{mode, {}};
    }
    if (v->is_object() && string_or(*v, "type") == "function" && !string_or(*v, "name").empty())
        return ToolChoice{"function", string_or(*v, "name")};
    params.refuse("tool_choice",
                  "must be \"auto\", \"none\", \"required\" or {\"type\":\"function\",\"name\"}");
}

// "response_format": {"type":"text"|"json_object"|"json_schema", ...}.
inline std::optional<Json> take_response_format(Params &params) {
    const Json *v = params.take("response_format");
    if (v == nullptr) return std::nullopt;
    const std::string type = v->is_object() ? string_or(*v, "type") : "";
    if (type != "text" && type != "json_object" && type != "json_schema")
        params.refuse("response_format", "must be {\"type\":\"text\"|\"json_object\"|\"json_schema\",...}");
    if (type == "json_schema") {
        const Json *schema = find(*v, "schema");
        if (schema == nullptr || !schema->is_object())
            params.refuse("response_format.schema", "must be a JSON schema object");
    }
    return *v;
}

// ------------------------------------------------------- structured content

// A message's structured content as an object ({} = plain text).
inline Json structured_of(std::string_view text, size_t index, std::string_view who) {
    return object_of(text, who, message_at(index) + ".structured");
}

// An assistant message's tool calls, as stored: arguments are the text the
// model wrote (maybe not valid JSON: each wire decides what it can send).
struct ToolCall {
    std::string id, name, arguments;
    Json cache_control; // a prompt-cache mark on the call; null when none
};

inline std::vector<ToolCall> tool_calls_of(const Json &structured, size_t index, std::string_view who) {
    std::vector<ToolCall> out;
    const Json *calls = find(structured, "tool_calls");
    if (calls == nullptr) return out;
    if (!calls->is_array()) refuse(who, message_at(index) + ".tool_calls", "must be a list");
    for (size_t i = 0; i < calls->size(); ++i) {
        const Json &c = (*calls)[i];
        const std::string where = message_at(index) + ".tool_calls[" + std::to_string(i) + "]";
        ToolCall call{string_or(c, "id"), string_or(c, "name"), string_or(c, "arguments"), cache_mark_of(c)};
        if (call.id.empty() || call.name.empty()) refuse(who, where, "needs an id and a name");
        if (const Json *a = find(c, "arguments"); a != nullptr && !a->is_string())
            call.arguments = a->dump(); // a host that stored an object: its JSON text
        out.push_back(std::move(call));
    }
    return out;
}

// The content parts of a message ([] = the text in `content` only).
inline const Json &parts_of(const Json &structured, size_t index, std::string_view who) {
    static const Json kNone = Json::array();
    const Json *parts = find(structured, "parts");
    if (parts == nullptr) return kNone;
    if (!parts->is_array()) refuse(who, message_at(index) + ".parts", "must be a list");
    return *parts;
}

// An image part's source: a remote URL, or the bytes of a data: URL.
struct Image {
    std::string url;        // http(s) URL; "" for inline data
    std::string media_type; // inline data only
    std::string base64;     // inline data only
    std::string detail;     // "auto" | "low" | "high" | ""
};

// The image types both vendors take (inline); others are refused by name.
inline bool vendor_image_type(std::string_view mime) {
    return mime == "image/png" || mime == "image/jpeg" || mime == "image/gif" || mime == "image/webp";
}

inline Image image_of(const Json &part, std::string_view where, std::string_view who) {
    Image image{string_or(part, "url"), {}, {}, string_or(part, "detail")};
    const std::string url = image.url;
    if (url.rfind("https://", 0) == 0 || url.rfind("http://", 0) == 0) return image;
    const size_t comma = url.find(',');
    const std::string head = url.substr(0, comma == std::string::npos ? 0 : comma);
    const std::string suffix = ";base64";
    if (url.rfind("data:", 0) != 0 || comma == std::string::npos || head.size() < suffix.size() + 5 ||
        head.compare(head.size() - suffix.size(), suffix.size(), suffix) != 0)
        refuse(who, std::string(where) + ".url", "must be an http(s) URL or a data:<type>;base64,... URL");
    image.media_type = head.substr(5, head.size() - 5 - suffix.size());
    if (!vendor_image_type(image.media_type))
        refuse(who, where,
               "is an image of type '" + image.media_type +
                   "', which this provider cannot take (png, jpeg, gif or webp)");
    image.url.clear();
    image.base64 = url.substr(comma + 1);
    return image;
}

// ---------------------------------------------------------------- replies

// A count from a vendor's usage object, -1 when absent or not a count.
inline int64_t count_or_unknown(const Json &obj, std::string_view key) {
    const Json *v = find(obj, key);
    return v != nullptr && v->is_number_integer() ? v->get<int64_t>() : -1;
}

// a + b for counts (unknown, i.e. negative, counts as 0) that an upstream
// may report as large as it likes: saturates instead of overflowing.
inline int64_t count_sum(int64_t a, int64_t b) {
    a = a < 0 ? 0 : a;
    b = b < 0 ? 0 : b;
    return a > INT64_MAX - b ? INT64_MAX : a + b;
}

} // namespace swh::cpp::neutral
