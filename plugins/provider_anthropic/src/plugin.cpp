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
using cpp::setting;

constexpr http::SchemaDefaults kDefaults = {
    "\"https://api.anthropic.com\"",
    "API root without /v1 (as in Anthropic's clients); /v1/messages is appended",
    "\"ANTHROPIC_API_KEY\"",
    "\"claude-3-5-haiku-latest\"",
    "Extra attempts on 429/529/5xx/connection failure, only before any text was relayed",
    "Merged into the request body (e.g. {\"top_k\":5}); cannot replace messages/stream",
};

constexpr auto kSchema = cpp::schema(
    http::endpoint_rows<Settings>(kDefaults),
    setting<&Settings::anthropic_version>("anthropic_version", "\"2023-06-01\"",
                                          "Value of the anthropic-version header"),
    setting<&Settings::temperature>("temperature", "-1",
                                    "Sampling temperature 0..1; negative = not sent (the vendor's default)"),
    setting<&Settings::max_tokens>("max_tokens", "1024", "max_tokens (required by the API, >= 1)"),
    setting<&Settings::drop_params>(
        "drop_params", "[]",
        "Neutral parameters the Messages API has no field for (e.g. seed, "
        "presence_penalty, frequency_penalty) to drop instead of refusing the call"),
    http::limit_rows<Settings>(kDefaults));

struct Anthropic {
    static constexpr const char *name = "anthropic";
    using Settings = anthropic::Settings;
    static constexpr const auto &schema = kSchema;

    static void check(const Settings &s) { s.check(); }

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

SWH_CPP_HTTP_PROVIDER(swh::anthropic::Anthropic, "anthropic", "0.1.0",
                      "Anthropic Messages API over the host's asynchronous HTTP client")
