// The OpenAI-compatible front door: POST /v1/chat/completions (streaming
// included) and GET /v1/models, so existing OpenAI clients work unchanged.
// `model` routes to a provider of the manifest: "<provider>" (its default
// model), "<provider>/<model>", or any other name = the default provider
// with that model. An optional X-Swarmhost-Session header appends the
// exchange to a stored session. The request side (every field of OpenAI's
// reference mapped, passed or refused) is http/openai_chat_request.hpp;
// docs/openai-compat.md has the table.
#pragma once

#include "http/server.hpp"
#include "session/session_manager.hpp"

#include <chrono>
#include <cstdint>
#include <limits>

namespace swh::http::openai {

// Who calls: their access to the session named by X-Swarmhost-Session, and
// how to take one of their key's stream slots (may throw ApiError 429).
struct CompletionCaller {
    Access access;
    std::function<std::shared_ptr<void>()> stream_slot;
};

void chat_completions(const Request &request, std::shared_ptr<Exchange> exchange, SessionManager &sessions,
                      const PostBlocking &post_blocking, std::chrono::milliseconds keepalive,
                      const CompletionCaller &caller = {});
// GET /v1/models: every provider instance and provider group the `model`
// of a completion can name, in OpenAI's list shape; GET /v1/models/{id}: one
// of them (ApiError NotFound when `id` names none).
struct ModelEntry {
    std::string id, owned_by;
};
std::vector<ModelEntry> model_entries(const Pipeline &pipeline);
Json models(const Pipeline &pipeline);
Json model(const Pipeline &pipeline, const std::string &id);
// The entry `id` names; ApiError NotFound naming it when none.
ModelEntry model_entry(const Pipeline &pipeline, const std::string &id);

// A reply's token counts from its provider metadata (the neutral usage
// keys, else the OpenAI-style ones a 1.0-1.2 provider wrote); 0 when unknown.
struct TokenCounts {
    int64_t input = 0, output = 0, cached = 0, reasoning = 0;
    // input + output, saturated: a provider reports what its upstream sent.
    int64_t total() const {
        int64_t sum;
        if (!__builtin_add_overflow(input, output, &sum)) return sum;
        return output > 0 ? std::numeric_limits<int64_t>::max() : std::numeric_limits<int64_t>::min();
    }
};
TokenCounts token_counts(const Message &assistant);
// OpenAI's finish reason of a reply: stop, length, tool_calls, content_filter.
std::string finish_reason_of(const Message &assistant);
// The `chat.completion` object of a reply that was not streamed, written as
// text (no JSON tree: issue 17), keys in sorted order.
std::string chat_completion_body(const std::string &id, int64_t created, const std::string &model,
                                 const Message &assistant);

// Which provider and model a request's `model` means (exposed for tests).
std::pair<std::string, std::string> route_model(const Pipeline &pipeline, const std::string &model);

} // namespace swh::http::openai
