#include "http/completion_reply.hpp"

#include <cstdio>
#include <map>
#include <spdlog/spdlog.h>

namespace swh::http {

namespace {

// A count from provider_metadata.usage: the neutral key (ReplyEvent usage),
// else the OpenAI-style one a 1.0-1.2 provider may have written.
int64_t count_of(const Json &usage, const char *key, const char *older_key) {
    for (const char *k : {key, older_key})
        if (auto it = usage.find(k); it != usage.end() && it->is_number_integer()) return it->get<int64_t>();
    return 0;
}

} // namespace

ReplyUsage usage_of_reply(const Message &assistant) {
    const Json &meta = assistant.provider_metadata;
    const Json usage = meta.contains("usage") && meta["usage"].is_object() ? meta["usage"] : Json::object();
    return {count_of(usage, "input_tokens", "prompt_tokens"),
            count_of(usage, "output_tokens", "completion_tokens"),
            count_of(usage, "cached_input_tokens", "cached_tokens"), count_of(usage, "reasoning_tokens", "")};
}

bool has_tool_calls(const Message &assistant) {
    auto it = assistant.structured.find("tool_calls");
    return it != assistant.structured.end() && it->is_array() && !it->empty();
}

std::string neutral_finish_reason(const Message &assistant) {
    static const std::map<std::string, std::string> vendor_words = {{"end_turn", "stop"},
                                                                    {"stop_sequence", "stop"},
                                                                    {"max_tokens", "length"},
                                                                    {"tool_use", "tool_calls"}};
    const Json &meta = assistant.provider_metadata;
    std::string reason = meta.contains("finish_reason") && meta["finish_reason"].is_string()
                             ? meta["finish_reason"].get<std::string>()
                             : "";
    if (auto word = vendor_words.find(reason); word != vendor_words.end()) reason = word->second;
    if (reason.empty() || (reason == "stop" && has_tool_calls(assistant)))
        reason = has_tool_calls(assistant) ? "tool_calls" : "stop";
    return reason;
}

std::string format_ms(double ms) {
    char text[32];
    std::snprintf(text, sizeof text, "%.3f", ms);
    return text;
}

void run_completion(SessionManager &sessions, const PostBlocking &post, CompletionParams params,
                    std::shared_ptr<SendObserver> observer, std::shared_ptr<Exchange> exchange) {
    post([&sessions, params = std::move(params), observer, exchange]() mutable {
        try {
            exchange->on_client_gone(sessions.complete(std::move(params), observer));
        } catch (const ApiError &e) {
            observer->on_error(e);
        } catch (const std::exception &e) {
            spdlog::error("completion failed: {}", e.what());
            observer->on_error(ApiError(ErrorKind::Internal, "internal error"));
        }
    });
}

} // namespace swh::http
