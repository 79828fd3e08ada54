// Anthropic Messages API wire format, as pure functions and decoders (no ABI
// glue here): the request body, the streamed and the non-streamed answer.
#pragma once

#include <swarmhost/cpp/upstream.hpp>
#include <swh_multimodal/attachments.hpp>

#include <nlohmann/json.hpp>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace swh::anthropic {

using Json = nlohmann::json;

struct Settings {
    std::string base_url = "https://api.anthropic.com";
    std::string api_key_env = "ANTHROPIC_API_KEY";
    std::string model = "claude-3-5-haiku-latest";
    std::string anthropic_version = "2023-06-01";
    double temperature = -1;   // < 0: not sent (the vendor's default)
    int64_t max_tokens = 1024; // required by the API
    int64_t timeout_ms = 120000;
    int64_t connect_timeout_ms = 10000;
    int64_t idle_timeout_ms = 0;
    int64_t retries = 2;
    int64_t retry_base_ms = 500;
    int64_t retry_max_ms = 30000;
    int64_t max_concurrent = 0; // 0: unlimited
    Json custom_params = Json::object();
};

Settings parse_settings(const Json &config);
Json settings_json(const Settings &s);

using Attachments = std::vector<multimodal::LoadedAttachment>;

struct Prompt {
    std::vector<cpp::upstream::Turn> turns;
    // Files of each turn's metadata.attachments, read (index = turn index;
    // may be shorter than turns). Sent with user turns only.
    std::vector<Attachments> attachments;
    std::string system_prompt;
    std::string assistant_prefix;
    std::string model; // "" = settings.model
    bool stream = false;
};

std::string pick_system_prompt(std::string_view request_system, const std::vector<cpp::upstream::Turn> &turns,
                               std::string_view session_config_json);

// Reads the files named in each turn's metadata.attachments (see
// plugins/session_multimodal). Throws Failure(SWH_E_INVALID) naming a file
// that is missing, unreadable or too large: the call fails, nothing is dropped.
std::vector<Attachments> load_attachments(const std::vector<cpp::upstream::Turn> &turns);

// A user turn with attachments as Messages content blocks: images as base64
// image blocks, PDFs as base64 document blocks, text files as text blocks,
// then the turn's text. Throws Failure(SWH_E_INVALID) for a type the API
// cannot take.
Json content_blocks(std::string_view text, const Attachments &attachments);

// The request body. `trimmed_ws` receives the whitespace cut from the end of
// the assistant prefix (the API rejects a prefill ending in whitespace); the
// decoder drops it again from the start of the continuation.
Json build_body(const Settings &s, const Prompt &p, std::string &trimmed_ws);
std::string messages_url(const Settings &s);

std::unique_ptr<cpp::upstream::Decoder> make_decoder(bool stream, std::string requested_model,
                                                     std::string trimmed_ws);

} // namespace swh::anthropic
