// Anthropic Messages API wire format, as pure functions and decoders (no ABI
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

namespace swh::anthropic {

using Json = nlohmann::json;
using cpp::http_provider::Call;

struct Settings {
    cpp::http_provider::HttpSettings http{.base_url = "https://api.anthropic.com",
                                          .api_key_env = "ANTHROPIC_API_KEY",
                                          .model = "claude-3-5-haiku-latest"};
    std::string anthropic_version = "2023-06-01";
    double temperature = -1;   // < 0: not sent (the vendor's default)
    int64_t max_tokens = 1024; // required by the API
    // Neutral parameters the Messages API has no field for (seed,
    // presence_penalty, frequency_penalty, ...) that are dropped instead of
    // refused: for a fallback that must not fail on another vendor's hints.
    std::vector<std::string> drop_params;

    // What the config schema (plugin.cpp) cannot say; throws
    // edge::Failure(SWH_E_INVALID) naming the key.
    void check() const;
    // The config as JSON (no secrets: only the name of the key's variable).
    Json to_json() const;
};

using Attachments = std::vector<cpp::attachments::LoadedAttachment>;

// A user turn with attachments as Messages content blocks: images as base64
// image blocks, PDFs as base64 document blocks, text files as text blocks,
// then the turn's text. Throws Failure(SWH_E_INVALID) for a type the API
// cannot take.
Json content_blocks(std::string_view text, const Attachments &attachments);

// The request body. `trimmed_ws` receives the whitespace cut from the end of
// the assistant prefix (the API rejects a prefill ending in whitespace); the
// decoder drops it again from the start of the continuation.
Json build_body(const Settings &s, const Call &call, const std::vector<Attachments> &attachments,
                std::string &trimmed_ws);
std::string messages_url(const Settings &s);

std::unique_ptr<cpp::upstream::Decoder> make_decoder(bool stream, std::string requested_model,
                                                     std::string trimmed_ws);

} // namespace swh::anthropic
