// The "openai" provider plugin: OpenAI Chat Completions (and any compatible
// server: vLLM, llama.cpp, Ollama, OpenRouter, Azure-style paths) through
// the host's asynchronous HTTP client. The ABI glue is the SDK's
// http_provider template; this file says what is OpenAI about it: the
// request, how the key is sent, the config schema and the descriptor.
#include "openai_wire.hpp"

#include <swarmhost/cpp/http_provider.hpp>

#include <array>
#include <string>

namespace swh::openai {
namespace {

namespace http = cpp::http_provider;

struct OpenAI {
    static constexpr const char *name = "openai";
    using Settings = openai::Settings;

    static void prepare(const Settings &s, const Call &call, cpp::upstream::CallSpec &spec) {
        const Json body = build_body(s, call, cpp::attachments::load_turn_attachments(call.turns, "openai"));
        spec.exchange.url = chat_url(s);
        spec.exchange.body = http::dump(body);
        spec.exchange.headers.emplace_back("User-Agent", "swarmhost-provider-openai/0.1");
        if (!call.api_key.empty()) {
            if (s.api_version.empty())
                spec.exchange.headers.emplace_back("Authorization", "Bearer " + std::string(call.api_key));
            else
                spec.exchange.headers.emplace_back("api-key", std::string(call.api_key));
        }
        spec.make_decoder = [stream = call.stream, model = body.value("model", std::string())] {
            return make_decoder(stream, model);
        };
    }
};

} // namespace
} // namespace swh::openai

namespace {

// ----------------------------------------------------------- descriptor

namespace http = swh::cpp::http_provider;
using http::field;

constexpr http::SchemaDefaults kDefaults = {
    "\"https://api.openai.com/v1\"",
    "API root; /chat/completions is appended (vLLM, llama.cpp, Ollama: http://host:port/v1; Azure: "
    "https://R.openai.azure.com/openai/deployments/D)",
    "\"OPENAI_API_KEY\"",
    "\"gpt-4o-mini\"",
    "Extra attempts on 429/5xx/connection failure, only before any text was relayed",
    "Merged into the request body (e.g. {\"top_p\":0.9}); cannot replace messages/stream",
};

constexpr auto kConfigSchema = http::schema_rows(
    http::endpoint_rows(kDefaults),
    std::array{field("temperature", SWH_CFG_NUMBER, "-1",
                     "Sampling temperature 0..2; negative = not sent (the vendor's default)"),
               field("max_tokens", SWH_CFG_INT, "0", "max_tokens sent upstream; 0 = not sent")},
    http::limit_rows(kDefaults),
    std::array{
        field("api_version", SWH_CFG_STRING, "\"\"",
              "Azure style when set: ?api-version=<this> and the key in an api-key header"),
        field("stream_usage", SWH_CFG_BOOL, "true",
              "Ask for usage in streams (stream_options.include_usage); turn off for servers that reject "
              "it")});

constexpr swh_provider_v1 kTable = swh::cpp::http_provider::table<swh::openai::OpenAI>();

constexpr swh_plugin_descriptor kDescriptor = {
    sizeof(swh_plugin_descriptor),
    SWH_ABI_VERSION_MAJOR,
    SWH_ABI_VERSION_MINOR,
    "openai",
    "0.1.0",
    "OpenAI Chat Completions (and compatible servers) over the host's asynchronous HTTP client",
    SWH_KIND_PROVIDER,
    SWH_IFACE_PROVIDER_V1,
    kConfigSchema.data(),
    kConfigSchema.size(),
    &kTable,
};

} // namespace

extern "C" SWH_EXPORT const swh_plugin_descriptor *swh_plugin_entry(void) {
    return &kDescriptor;
}
