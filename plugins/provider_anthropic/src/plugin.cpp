// ABI glue of the "anthropic" provider plugin: the Anthropic Messages API
// through the host's asynchronous HTTP client. `start` builds the request and
// returns; the reply streams in on the host's HTTP thread.
#include "anthropic_wire.hpp"

#include <swarmhost/cpp/edge.hpp>
#include <swarmhost/cpp/upstream.hpp>

#include <cstdlib>
#include <memory>
#include <mutex>
#include <string>
#include <utility>

namespace {

using swh::anthropic::Json;
using swh::anthropic::Settings;
using swh::edge::ErrorSlot;
using swh::edge::Failure;
using swh::edge::guarded;
using swh::edge::to_str;
using swh::edge::view;
namespace upstream = swh::cpp::upstream;

std::string dump(const Json &j) {
    return j.dump(-1, ' ', false, Json::error_handler_t::replace);
}

// Settings plus the key they name, replaced as a whole by update_config:
// a call keeps the snapshot it started with.
struct Active {
    Settings settings;
    std::string api_key; // never logged, never returned
};

std::string read_key(const Settings &s) {
    if (s.api_key_env.empty()) return {}; // servers without keys (local vLLM, Ollama, ...)
    const char *value = std::getenv(s.api_key_env.c_str());
    if (value == nullptr || *value == '\0')
        throw Failure(SWH_E_INVALID,
                      "anthropic: the environment variable '" + s.api_key_env +
                          "' named by api_key_env is not set (set it, or use api_key_env: \"\" "
                          "for a server without keys)");
    return value;
}

struct Instance {
    ErrorSlot errors;
    const swh_host_api *host = nullptr;
    std::unique_ptr<upstream::Client> client;
    mutable std::mutex mutex;
    std::shared_ptr<const Active> active;

    std::shared_ptr<const Active> snapshot() const {
        std::lock_guard lock(mutex);
        return active;
    }
};

void require(bool ok, const char *what) {
    if (!ok) throw Failure(SWH_E_INVALID, std::string("anthropic: ") + what);
}

template <class Body> swh_status call(void *handle, Body &&body) noexcept {
    if (handle == nullptr) return SWH_E_INVALID;
    auto &instance = *static_cast<Instance *>(handle);
    return guarded(instance.errors, [&]() -> swh_status {
        if (!instance.client)
            throw Failure(SWH_E_INVALID, "anthropic: instance was not created successfully");
        return body(instance);
    });
}

swh_status emit_json(const swh_result_sink *sink, const Json &j) {
    require(SWH_HAS_MEMBER(sink, swh_result_sink, json) && sink->json, "sink without json callback");
    std::string text = dump(j);
    swh_status status = sink->json(sink->ctx, to_str(text));
    if (status != SWH_OK)
        throw Failure(status, "anthropic: result sink returned status " + std::to_string(status));
    return SWH_OK;
}

// ---------------------------------------------------------------- table

swh_status anthropic_create(const swh_host_api *host, const swh_config *cfg, void **out_handle) noexcept {
    if (out_handle == nullptr) return SWH_E_INVALID;
    *out_handle = nullptr;
    std::unique_ptr<Instance> instance;
    try {
        instance = std::make_unique<Instance>();
    } catch (...) {
        return SWH_E_INTERNAL;
    }
    swh_status status = guarded(instance->errors, [&]() -> swh_status {
        require(SWH_HAS_MEMBER(host, swh_host_api, config_json) && host->config_json,
                "host offers no config_json");
        swh_str text{nullptr, 0};
        swh_status st = host->config_json(host->host_ctx, cfg, &text);
        if (st != SWH_OK) throw Failure(SWH_E_INVALID, "anthropic: could not read the config");
        Json config = Json::parse(view(text, "config"), nullptr, false);
        require(!config.is_discarded(), "the config is not valid JSON");
        auto active = std::make_shared<Active>();
        active->settings = swh::anthropic::parse_settings(config);
        active->api_key = read_key(active->settings);
        instance->host = host;
        auto client = std::make_unique<upstream::Client>(host);
        if (!client->offered()) throw Failure(SWH_E_UNSUPPORTED, "anthropic: the host offers no HTTP client");
        client->set_max_concurrent(static_cast<uint32_t>(active->settings.max_concurrent));
        instance->active = std::move(active);
        instance->client = std::move(client);
        return SWH_OK;
    });
    *out_handle = instance.release(); // also on failure: the host reads last_error, then destroys
    return status;
}

void anthropic_destroy(void *handle) noexcept {
    std::unique_ptr<Instance> owned(static_cast<Instance *>(handle));
}

const char *anthropic_last_error(void *handle) noexcept {
    return handle == nullptr ? "" : static_cast<Instance *>(handle)->errors.get();
}

swh_status anthropic_start(void *handle, const swh_provider_request *request,
                           const swh_provider_sink *sink) noexcept {
    return call(handle, [&](Instance &instance) -> swh_status {
        require(SWH_HAS_MEMBER(request, swh_provider_request, stream),
                "request is NULL or its struct_size is too small");
        require(SWH_HAS_MEMBER(sink, swh_provider_sink, done) && sink->chunk && sink->metadata && sink->done,
                "sink is NULL, too small or lacks a callback");
        auto active = instance.snapshot();
        const Settings &s = active->settings;

        swh::anthropic::Prompt prompt;
        prompt.turns = upstream::conversation(*request);
        prompt.attachments = swh::anthropic::load_attachments(prompt.turns);
        std::string_view session_config;
        if (SWH_HAS_MEMBER(request->session, swh_session, config_json))
            session_config = view(request->session->config_json, "session.config_json");
        prompt.system_prompt = swh::anthropic::pick_system_prompt(
            view(request->system_prompt, "system_prompt"), prompt.turns, session_config);
        prompt.assistant_prefix = std::string(view(request->assistant_prefix, "assistant_prefix"));
        prompt.model = std::string(view(request->model, "model"));
        prompt.stream = request->stream != 0;
        std::string trimmed_ws;
        Json body = swh::anthropic::build_body(s, prompt, trimmed_ws);

        upstream::CallSpec spec;
        spec.call_id = request->call_id;
        spec.vendor = "anthropic";
        spec.secret = active->api_key;
        spec.exchange.url = swh::anthropic::messages_url(s);
        spec.exchange.body = dump(body);
        spec.exchange.headers = {{"Content-Type", "application/json"},
                                 {"Accept", prompt.stream ? "text/event-stream" : "application/json"},
                                 {"anthropic-version", s.anthropic_version},
                                 {"User-Agent", "swarmhost-provider-anthropic/0.1"}};
        if (!active->api_key.empty()) spec.exchange.headers.emplace_back("x-api-key", active->api_key);
        spec.exchange.timeout_ms = static_cast<uint32_t>(s.timeout_ms);
        spec.exchange.connect_timeout_ms = static_cast<uint32_t>(s.connect_timeout_ms);
        spec.exchange.idle_timeout_ms = static_cast<uint32_t>(s.idle_timeout_ms);
        spec.retry = {static_cast<uint32_t>(s.retries), static_cast<uint32_t>(s.retry_base_ms),
                      static_cast<uint32_t>(s.retry_max_ms)};
        std::string model = body.value("model", std::string());
        bool stream = prompt.stream;
        spec.make_decoder = [stream, model, trimmed_ws] {
            return swh::anthropic::make_decoder(stream, model, trimmed_ws);
        };
        instance.client->start(std::move(spec), *sink);
        return SWH_OK;
    });
}

void anthropic_cancel(void *handle, uint64_t call_id) noexcept {
    if (handle == nullptr) return;
    auto &instance = *static_cast<Instance *>(handle);
    try {
        if (instance.client) instance.client->cancel(call_id);
    } catch (...) {
    }
}

swh_status anthropic_get_metadata(void *handle, const swh_result_sink *sink) noexcept {
    return call(handle, [&](Instance &instance) -> swh_status {
        auto active = instance.snapshot();
        return emit_json(sink, Json{{"provider", "anthropic"},
                                    {"model", active->settings.model},
                                    {"base_url", active->settings.base_url},
                                    {"api_key_present", !active->api_key.empty()},
                                    {"active_requests", instance.client->active()},
                                    {"queued_requests", instance.client->queued()},
                                    {"config", swh::anthropic::settings_json(active->settings)}});
    });
}

swh_status anthropic_update_config(void *handle, swh_str config_json) noexcept {
    return call(handle, [&](Instance &instance) -> swh_status {
        Json changes = Json::parse(view(config_json, "config_json"), nullptr, false);
        if (changes.is_discarded() || !changes.is_object())
            throw Failure(SWH_E_INVALID, "anthropic: update_config expects a JSON object");
        auto current = instance.snapshot();
        Json merged = swh::anthropic::settings_json(current->settings);
        for (const auto &[key, value] : changes.items()) {
            if (!merged.contains(key))
                throw Failure(SWH_E_INVALID, "anthropic: unknown config key '" + key + "'");
            merged[key] = value;
        }
        auto next = std::make_shared<Active>();
        next->settings = swh::anthropic::parse_settings(merged); // all or nothing
        next->api_key = read_key(next->settings);                // re-read: the variable may have changed
        instance.client->set_max_concurrent(static_cast<uint32_t>(next->settings.max_concurrent));
        std::lock_guard lock(instance.mutex);
        instance.active = std::move(next); // calls already started keep their snapshot
        return SWH_OK;
    });
}

swh_status anthropic_health_check(void *handle, const swh_result_sink *sink) noexcept {
    return call(handle, [&](Instance &instance) -> swh_status {
        auto active = instance.snapshot();
        return emit_json(sink, Json{{"status", "healthy"},
                                    {"provider", "anthropic"},
                                    {"base_url", active->settings.base_url},
                                    {"active_requests", instance.client->active()},
                                    {"note", "configuration only; the upstream is not probed"}});
    });
}

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

constexpr swh_provider_v1 kTable = {
    sizeof(swh_provider_v1), anthropic_create,        anthropic_destroy,
    anthropic_last_error,    anthropic_start,         anthropic_cancel,
    anthropic_get_metadata,  anthropic_update_config, anthropic_health_check,
};

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
