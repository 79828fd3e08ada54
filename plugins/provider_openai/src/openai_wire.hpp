// OpenAI Chat Completions wire format, as pure functions and decoders (no ABI
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

namespace swh::openai {

using Json = nlohmann::json;

struct Settings {
    std::string base_url = "https://api.openai.com/v1";
    std::string api_key_env = "OPENAI_API_KEY";
    std::string model = "gpt-4o-mini";
    double temperature = -1; // < 0: not sent (the vendor's default)
    int64_t max_tokens = 0;  // 0: not sent
    int64_t timeout_ms = 120000;
    int64_t connect_timeout_ms = 10000;
    int64_t idle_timeout_ms = 0;
    int64_t retries = 2;
    int64_t retry_base_ms = 500;
    int64_t retry_max_ms = 30000;
    int64_t max_concurrent = 0; // 0: unlimited
    Json custom_params = Json::object();
    std::string api_version; // non-empty: Azure style (?api-version=, api-key header)
    bool stream_usage = true;
};

// Parses a complete config object (every key present or defaulted).
// Throws edge::Failure(SWH_E_INVALID) naming the key.
Settings parse_settings(const Json &config);
// The config as JSON (no secrets: only the name of the key's variable).
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

// The system prompt to use: the request's, else "system_prompt" in the last
// user message's metadata, else in the session config.
std::string pick_system_prompt(std::string_view request_system, const std::vector<cpp::upstream::Turn> &turns,
                               std::string_view session_config_json);

// Reads the files named in each turn's metadata.attachments (see
// plugins/session_multimodal). Throws Failure(SWH_E_INVALID) naming a file
// that is missing, unreadable or too large: the call fails, nothing is dropped.
std::vector<Attachments> load_attachments(const std::vector<cpp::upstream::Turn> &turns);

// A user turn with attachments as Chat Completions content parts: its text,
// then images as image_url data URLs, PDFs as file parts, text files as text
// parts. Throws Failure(SWH_E_INVALID) for a type the API cannot take.
Json content_parts(std::string_view text, const Attachments &attachments);

Json build_body(const Settings &s, const Prompt &p);
std::string chat_url(const Settings &s);

std::unique_ptr<cpp::upstream::Decoder> make_decoder(bool stream, std::string requested_model);

} // namespace swh::openai
