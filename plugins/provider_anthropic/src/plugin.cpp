// The "anthropic" provider plugin: the Anthropic Messages API through the
// host's asynchronous HTTP client. The ABI glue is the SDK's http_provider
// template; this file says what is Anthropic about it: the request, the
// version and key headers, the config schema and the descriptor.
#include "anthropic_wire.hpp"

#include <swarmhost/cpp/http_provider.hpp>

#include <string>

namespace swh::anthropic {
namespace {

namespace http = cpp::http_provider;

struct Anthropic {
    static constexpr const char *name = "anthropic";
    using Settings = anthropic::Settings;

    static void prepare(const Settings &s, const Call &call, cpp::upstream::CallSpec &spec) {
        std::string trimmed_ws;
        const Json body =
            build_body(s, call, cpp::attachments::load_turn_attachments(call.turns, "anthropic"), trimmed_ws);
        spec.exchange.url = messages_url(s);
        spec.exchange.body = http::dump(body);
        spec.exchange.headers.emplace_back("anthropic-version", s.anthropic_version);
        spec.exchange.headers.emplace_back("User-Agent", "swarmhost-provider-anthropic/0.1");
        if (!call.api_key.empty()) spec.exchange.headers.emplace_back("x-api-key", std::string(call.api_key));
        spec.make_decoder = [stream = call.stream, model = body.value("model", std::string()), trimmed_ws] {
            return make_decoder(stream, model, trimmed_ws);
        };
    }
};

} // namespace
} // namespace swh::anthropic

namespace {

// ----------------------------------------------------------- descriptor

constexpr swh_config_field kConfigSchema[] = {
    {sizeof(swh_config_field), "base_url", SWH_CFG_STRING, 0, "\"https://api.anthropic.com\"",
     "API root without /v1 (as in Anthropic's clients); /v1/messages is appended"},
    {sizeof(swh_config_field), "api_key_env", SWH_CFG_STRING, 0, "\"ANTHROPIC_API_KEY\"",
     "Name of the environment variable holding the API key, read at create/update (\"\" = no key)"},
    {sizeof(swh_config_field), "model", SWH_CFG_STRING, 0, "\"claude-3-5-haiku-latest\"",
     "Model used when the session names none"},
    {sizeof(swh_config_field), "anthropic_version", SWH_CFG_STRING, 0, "\"2023-06-01\"",
     "Value of the anthropic-version header"},
    {sizeof(swh_config_field), "temperature", SWH_CFG_NUMBER, 0, "-1",
     "Sampling temperature 0..1; negative = not sent (the vendor's default)"},
    {sizeof(swh_config_field), "max_tokens", SWH_CFG_INT, 0, "1024",
     "max_tokens (required by the API, >= 1)"},
    {sizeof(swh_config_field), "timeout_ms", SWH_CFG_INT, 0, "120000",
     "Limit for one upstream exchange, whole stream included (0 = none)"},
    {sizeof(swh_config_field), "connect_timeout_ms", SWH_CFG_INT, 0, "10000", "Connect timeout"},
    {sizeof(swh_config_field), "idle_timeout_ms", SWH_CFG_INT, 0, "0",
     "Longest silence between bytes of an answer (0 = none)"},
    {sizeof(swh_config_field), "retries", SWH_CFG_INT, 0, "2",
     "Extra attempts on 429/529/5xx/connection failure, only before any text was relayed"},
    {sizeof(swh_config_field), "retry_base_ms", SWH_CFG_INT, 0, "500",
     "Backoff base: attempt n waits base*2^(n-1) with jitter, or Retry-After when given"},
    {sizeof(swh_config_field), "retry_max_ms", SWH_CFG_INT, 0, "30000",
     "Longest wait between attempts; a longer Retry-After ends the retries at once"},
    {sizeof(swh_config_field), "max_concurrent", SWH_CFG_INT, 0, "0",
     "Upstream requests in flight at most; more wait in a queue (0 = unlimited)"},
    {sizeof(swh_config_field), "custom_params", SWH_CFG_OBJECT, 0, "{}",
     "Merged into the request body (e.g. {\"top_k\":5}); cannot replace messages/stream"},
};

constexpr swh_provider_v1 kTable = swh::cpp::http_provider::table<swh::anthropic::Anthropic>();

constexpr swh_plugin_descriptor kDescriptor = {
    sizeof(swh_plugin_descriptor),
    SWH_ABI_VERSION_MAJOR,
    SWH_ABI_VERSION_MINOR,
    "anthropic",
    "0.1.0",
    "Anthropic Messages API over the host's asynchronous HTTP client",
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
