// The host's own C++ view of sessions and messages (the guide's
// SessionMessage / session row) and of the queries made of them. Converted to and from the C ABI structs at
// the plugin edge (host/loader/abi_convert.hpp).
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

namespace swh {

using Json = nlohmann::json;

// The context every session starts with, {"user_context":{},
// "system_context":{}}: one tree copied, not an initializer list built for
// each Session (a stateless request makes one; issue 17). Its JSON text is
// what the ABI hands a plugin for it.
const Json &default_session_context();
inline constexpr std::string_view kDefaultSessionContextText = R"({"system_context":{},"user_context":{}})";

// A session's or message's JSON member as the ABI hands it over (dump()):
// most are null, {} or the default context, whose text is written without
// nlohmann's serializer, which costs hundreds of instructions even for "{}"
// (issue 17).
std::string member_text(const Json &value);

struct Message {
    std::string id;
    std::string session_id;
    std::string role;
    std::string content;
    int64_t timestamp = 0; // microseconds since the epoch, UTC
    Json metadata = Json::object();
    std::string provider_message_id;
    Json provider_metadata = Json::object();
    // Structured content (ABI 1.3, swh_message.structured_json): "parts",
    // "tool_calls", "tool_call_id", "reasoning", "reasoning_signature".
    // Empty for a plain text message; `content` always holds the text.
    Json structured = Json::object();
};

// Whether the message carries tool calls (structured "tool_calls").
inline bool has_tool_calls(const Message &message) {
    const auto calls = message.structured.find("tool_calls");
    return calls != message.structured.end() && calls->is_array() && !calls->empty();
}

// Whether `message` is an assistant turn that made the tool call `id`: what
// a tool result must answer, on every door.
inline bool made_tool_call(const Message &message, const Json &id) {
    if (message.role != "assistant" || !has_tool_calls(message)) return false;
    for (const Json &call : message.structured["tool_calls"])
        if (call.is_object() && call.contains("id") && call["id"] == id) return true;
    return false;
}

// One non-text event of a reply (ABI 1.3 swh_reply_event): a piece of a
// tool call, of thinking, its signature, the finish reason, or usage.
struct ReplyEvent {
    enum class Type { ToolCall, Reasoning, ReasoningSignature, Finish, Usage };
    Type type = Type::ToolCall;
    uint32_t index = 0;
    std::string id, name, text;
    int64_t input_tokens = -1, output_tokens = -1, cached_input_tokens = -1, reasoning_tokens = -1;
};

struct Session {
    std::string id;
    std::string user_id;
    std::string provider;
    std::string model;
    std::string status = "active";
    std::string type;
    int64_t created_at = 0;
    int64_t last_activity = 0;
    uint64_t message_count = 0;
    Json config = Json::object();
    Json context = default_session_context();
    Json metadata = Json::object();
};

// What GET /v1/sessions asks the store for (0 = no limit / from the start).
struct SessionFilter {
    std::string user_id, status;
    uint32_t limit = 0, offset = 0;
};

// What GET /v1/sessions/{id}/messages (and a send's history) asks the store for.
struct MessageQuery {
    std::string session_id, role;
    int64_t since = 0;
    uint32_t limit = 0;
};

} // namespace swh
