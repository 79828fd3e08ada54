// The "openai" provider plugin: OpenAI Chat Completions (and any compatible
// server: vLLM, llama.cpp, Ollama, OpenRouter, Azure-style paths) through
// the host's asynchronous HTTP client. The ABI glue is the SDK's
// http_provider template; this file says what is OpenAI about it: the
// request, how the key is sent, the config schema and the descriptor.
#include "openai_wire.hpp"

#include <swarmhost/cpp/http_provider.hpp>

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

constexpr swh_config_field kConfigSchema[] = {
    {sizeof(swh_config_field), "base_url", SWH_CFG_STRING, 0, "\"https://api.openai.com/v1\"",
     "API root; /chat/completions is appended (vLLM, llama.cpp, Ollama: http://host:port/v1; Azure: "
     "https://R.openai.azure.com/openai/deployments/D)"},
    {sizeof(swh_config_field), "api_key_env", SWH_CFG_STRING, 0, "\"OPENAI_API_KEY\"",
     "Name of the environment variable holding the API key, read at create/update (\"\" = no key)"},
    {sizeof(swh_config_field), "model", SWH_CFG_STRING, 0, "\"gpt-4o-mini\"",
     "Model used when the session names none"},
    {sizeof(swh_config_field), "temperature", SWH_CFG_NUMBER, 0, "-1",
     "Sampling temperature 0..2; negative = not sent (the vendor's default)"},
    {sizeof(swh_config_field), "max_tokens", SWH_CFG_INT, 0, "0", "max_tokens sent upstream; 0 = not sent"},
    {sizeof(swh_config_field), "timeout_ms", SWH_CFG_INT, 0, "120000",
     "Limit for one upstream exchange, whole stream included (0 = none)"},
    {sizeof(swh_config_field), "connect_timeout_ms", SWH_CFG_INT, 0, "10000", "Connect timeout"},
    {sizeof(swh_config_field), "idle_timeout_ms", SWH_CFG_INT, 0, "0",
     "Longest silence between bytes of an answer (0 = none)"},
    {sizeof(swh_config_field), "retries", SWH_CFG_INT, 0, "2",
     "Extra attempts on 429/5xx/connection failure, only before any text was relayed"},
    {sizeof(swh_config_field), "retry_base_ms", SWH_CFG_INT, 0, "500",
     "Backoff base: attempt n waits base*2^(n-1) with jitter, or Retry-After when given"},
    {sizeof(swh_config_field), "retry_max_ms", SWH_CFG_INT, 0, "30000",
     "Longest wait between attempts; a longer Retry-After ends the retries at once"},
    {sizeof(swh_config_field), "max_concurrent", SWH_CFG_INT, 0, "0",
     "Upstream requests in flight at most; more wait in a queue (0 = unlimited)"},
    {sizeof(swh_config_field), "custom_params", SWH_CFG_OBJECT, 0, "{}",
     "Merged into the request body (e.g. {\"top_p\":0.9}); cannot replace messages/stream"},
    {sizeof(swh_config_field), "api_version", SWH_CFG_STRING, 0, "\"\"",
     "Azure style when set: ?api-version=<this> and the key in an api-key header"},
    {sizeof(swh_config_field), "stream_usage", SWH_CFG_BOOL, 0, "true",
     "Ask for usage in streams (stream_options.include_usage); turn off for servers that reject it"},
};

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
    kConfigSchema,
    sizeof(kConfigSchema) / sizeof(kConfigSchema[0]),
    &kTable,
};

} // namespace

extern "C" SWH_EXPORT const swh_plugin_descriptor *swh_plugin_entry(void) {
    return &kDescriptor;
}
