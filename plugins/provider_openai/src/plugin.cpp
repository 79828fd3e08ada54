// The "openai" provider plugin: OpenAI Chat Completions (and any compatible
// server: vLLM, llama.cpp, Ollama, OpenRouter, Azure-style paths) through
// the host's asynchronous HTTP client. The ABI glue is the SDK's
// http_provider template; this file says what is OpenAI about it: the
// config schema bound to Settings, the request, how the key is sent, and
// the descriptor.
#include "openai_wire.hpp"

#include <swarmhost/cpp/http_provider.hpp>

#include <string>

namespace swh::openai {
namespace {

namespace http = cpp::http_provider;
using cpp::setting;

constexpr http::SchemaDefaults kDefaults = {
    "\"https://api.openai.com/v1\"",
    "API root; /chat/completions is appended (vLLM, llama.cpp, Ollama: http://host:port/v1; Azure: "
    "https://R.openai.azure.com/openai/deployments/D)",
    "\"OPENAI_API_KEY\"",
    "\"gpt-4o-mini\"",
    "Extra attempts on 429/5xx/connection failure, only before any text was relayed",
    "Merged into the request body (e.g. {\"top_p\":0.9}); cannot replace messages/stream",
};

constexpr auto kSchema = cpp::schema(
    http::endpoint_rows<Settings>(kDefaults),
    setting<&Settings::temperature>("temperature", "-1",
                                    "Sampling temperature 0..2; negative = not sent (the vendor's default)"),
    setting<&Settings::max_tokens>("max_tokens", "0", "max_tokens sent upstream; 0 = not sent"),
    http::limit_rows<Settings>(kDefaults),
    setting<&Settings::api_version>(
        "api_version", "\"\"", "Azure style when set: ?api-version=<this> and the key in an api-key header"),
    setting<&Settings::stream_usage>("stream_usage", "true",
                                     "Ask for usage in streams (stream_options.include_usage); turn off for "
                                     "servers that reject it"),
    setting<&Settings::max_tokens_field>(
        "max_tokens_field", "\"max_completion_tokens\"",
        "Field a call's max_output_tokens is sent as: max_completion_tokens (OpenAI) or max_tokens (servers "
        "that know only the old name)"));

struct OpenAI {
    static constexpr const char *name = "openai";
    using Settings = openai::Settings;
    static constexpr const auto &schema = kSchema;

    static void check(const Settings &s) { s.check(); }

    static void prepare(const Settings &s, const Call &call, cpp::upstream::CallSpec &spec) {
        Body body = build_body(s, call, cpp::attachments::load_turn_attachments(call.turns, "openai"));
        spec.exchange.url = chat_url(s);
        spec.exchange.body = std::move(body.json);
        spec.exchange.headers.emplace_back("User-Agent", "swarmhost-provider-openai/0.1");
        if (!call.api_key.empty()) {
            if (s.api_version.empty())
                spec.exchange.headers.emplace_back("Authorization", "Bearer " + std::string(call.api_key));
            else
                spec.exchange.headers.emplace_back("api-key", std::string(call.api_key));
        }
        spec.make_decoder = [stream = call.stream, model = std::move(body.model)] {
            return make_decoder(stream, model);
        };
    }
};

} // namespace
} // namespace swh::openai

SWH_CPP_HTTP_PROVIDER(
    swh::openai::OpenAI, "openai", "0.1.0",
    "OpenAI Chat Completions (and compatible servers) over the host's asynchronous HTTP client")
