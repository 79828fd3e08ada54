// The plain chat request decoder (decode_plain_chat_completion) against the
// full one (decode_chat_completion of parse_body): wherever the plain one
// takes a body, the full one must take it too and give the same request.
// Used by fuzz_request_body on every input and by the unit tests.
#pragma once

#include "http/json_codec.hpp"
#include "http/openai_chat_request.hpp"

#include <optional>
#include <string>

namespace swh::testing {

// "" when the two agree (or the plain decoder declines), else what differs.
inline std::string chat_request_difference(const std::string &body) {
    const std::string session = "session-1";
    const std::optional<http::ChatCompletionRequest> plain =
        http::decode_plain_chat_completion(body, session);
    if (!plain) return "";
    http::ChatCompletionRequest full;
    try {
        full = http::decode_chat_completion(http::parse_body(body), session);
    } catch (const std::exception &e) {
        return std::string("the plain decoder took a body the full one refuses: ") + e.what();
    }
    const CompletionParams &a = plain->completion, &b = full.completion;
    if (plain->include_usage != full.include_usage) return "include_usage";
    if (a.provider != b.provider || a.model != b.model) return "provider or model";
    if (a.system_prompt != b.system_prompt) return "system_prompt";
    if (a.params != b.params || a.stream != b.stream || a.session_id != b.session_id)
        return "params, stream or session";
    if (a.new_turns != b.new_turns || a.turn_metadata != b.turn_metadata ||
        a.reply_metadata != b.reply_metadata || a.reply_id != b.reply_id)
        return "turn or reply fields";
    if (a.messages.size() != b.messages.size()) return "message count";
    for (std::size_t i = 0; i < a.messages.size(); ++i) {
        const Message &x = a.messages[i], &y = b.messages[i];
        if (x.id != y.id || x.session_id != y.session_id || x.role != y.role || x.content != y.content ||
            x.timestamp != y.timestamp || x.metadata != y.metadata ||
            x.provider_message_id != y.provider_message_id || x.provider_metadata != y.provider_metadata ||
            x.structured != y.structured)
            return "message " + std::to_string(i);
    }
    return "";
}

} // namespace swh::testing
