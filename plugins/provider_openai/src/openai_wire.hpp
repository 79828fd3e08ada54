// OpenAI Chat Completions wire format, as pure functions and decoders (no ABI
// glue here): the request body, the streamed and the non-streamed answer.
#pragma once

#include <swarmhost/cpp/attachments.hpp>
#include <swarmhost/cpp/http_provider.hpp>
#include <swarmhost/cpp/upstream.hpp>

#include <nlohmann/json.hpp>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace swh::openai {

using Json = nlohmann::json;
using cpp::http_provider::Call;

struct Settings {
    cpp::http_provider::HttpSettings http{
        .base_url = "https://api.openai.com/v1", .api_key_env = "OPENAI_API_KEY", .model = "gpt-4o-mini"};
    double temperature = -1; // < 0: not sent (the vendor's default)
    int64_t max_tokens = 0;  // 0: not sent
    std::string api_version; // non-empty: Azure style (?api-version=, api-key header)
    bool stream_usage = true;
    // The field params.max_output_tokens is sent as: OpenAI's current one
    // (reasoning models refuse max_tokens), or max_tokens for servers that
    // know only the old name.
    std::string max_tokens_field = "max_completion_tokens";

    // What the config schema (plugin.cpp) cannot say; throws
    // edge::Failure(SWH_E_INVALID) naming the key.
    void check() const;
    // The config as JSON (no secrets: only the name of the key's variable).
    Json to_json() const;
};

using Attachments = std::vector<cpp::attachments::LoadedAttachment>;

// A user turn with attachments as Chat Completions content parts: its text,
// then images as image_url data URLs, PDFs as file parts, text files as text
// parts. Throws Failure(SWH_E_INVALID) for a type the API cannot take.
Json content_parts(std::string_view text, const Attachments &attachments);

// The request body as JSON text: the conversation (structured content, tool
// calls and tool results included), the config's defaults, custom_params, the
// call's neutral parameters mapped to Chat Completions fields, then
// params.extra. Written as text, not built as a tree (issue 17).
struct Body {
    std::string json;
    std::string model; // the model the body asks for ("" when a merged "model" is not a string)
};
// Throws Failure(SWH_E_INVALID) naming the parameter or message it cannot send.
Body build_body(const Settings &s, const Call &call, const std::vector<Attachments> &attachments);
std::string chat_url(const Settings &s);

std::unique_ptr<cpp::upstream::Decoder> make_decoder(bool stream, std::string requested_model);

} // namespace swh::openai
