// A provider plugin for an HTTP LLM vendor from a small traits struct
// (header-only, part of the optional C++ layer of the SDK; no ABI of its own).
// The template writes the whole swh_provider_v1 table: create (the config as
// JSON, the API key from the environment variable the config names, the
// host's HTTP client), start (the conversation, the system prompt, the
// common headers, timeouts and retries, then the vendor's request through
// upstream.hpp), cancel, get_metadata, update_config (all or nothing; calls
// already started keep their settings) and health_check. Every error text
// starts with the vendor's name. The vendor writes only what differs:
//
//   struct Traits {
//       static constexpr const char *name = "acme";      // errors, metadata, logs
//       using Settings = ...;  // has `HttpSettings http;` (with the vendor's defaults)
//                              // and `Json to_json() const` (no secrets; get_metadata)
//       // the config schema bound to Settings (plugin.hpp's settings binding): the
//       // shared rows (endpoint_rows, limit_rows) and the vendor's own; create
//       // reads it, update_config applies the changed keys through it
//       static constexpr const auto &schema = kSchema;
//       static void check(const Settings &);  // what the schema cannot say; throws Failure
//       // url, body, its own headers, decoder: see Call and prepare() below
//       static void prepare(const Settings &, const Call &, upstream::CallSpec &);
//       // optional: static void metadata(const Settings &, Json &);  extra get_metadata keys
//   };
//   constexpr swh_provider_v1 kTable = swh::cpp::http_provider::table<Traits>();
//
// Also here, for the vendor's settings and decoders: the config keys every
// HTTP provider shares (HttpSettings, its rows and checks), pick_system_prompt,
// and small pieces of reading an answer (excerpt, error_message, parse_event,
// feed_outcome, WholeBody). Needs nlohmann_json.
#pragma once

#include <swarmhost/cpp/edge.hpp>
#include <swarmhost/cpp/json_config.hpp>
#include <swarmhost/cpp/json_text.hpp>
#include <swarmhost/cpp/neutral.hpp>
#include <swarmhost/cpp/provider_edge.hpp>
#include <swarmhost/cpp/sse.hpp>
#include <swarmhost/cpp/upstream.hpp>
#include <swarmhost/swarmhost.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <array>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace swh::cpp::http_provider {

using Json = nlohmann::json;
using edge::Failure;
using upstream::Problem;

// JSON text as sent and reported: invalid UTF-8 is replaced, never thrown on.
inline std::string dump(const Json &j) {
    return j.dump(-1, ' ', false, Json::error_handler_t::replace);
}

// ---------------------------------------------------------------- settings

// A config value the schema cannot refuse: "<who>: config '<key>' <what>".
[[noreturn]] inline void invalid(std::string_view who, std::string_view key, const std::string &what) {
    throw Failure(SWH_E_INVALID, std::string(who) + ": config '" + std::string(key) + "' " + what);
}

inline void check_range(std::string_view who, const char *key, int64_t value, int64_t min, int64_t max) {
    if (value < min || value > max)
        invalid(who, key, "must be between " + std::to_string(min) + " and " + std::to_string(max));
}

// The config keys every provider built on this template has: where the
// vendor is, which key, which model, and how patient to be with it. A
// vendor's Settings holds one as `http`, with the vendor's defaults.
struct HttpSettings {
    std::string base_url;    // no trailing '/'
    std::string api_key_env; // name of the variable holding the key; "" = no key
    std::string model;       // when the request names none
    int64_t timeout_ms = 120000;
    int64_t connect_timeout_ms = 10000;
    int64_t idle_timeout_ms = 0;
    int64_t retries = 2;
    int64_t retry_base_ms = 500;
    int64_t retry_max_ms = 30000;
    int64_t max_concurrent = 0; // 0: unlimited
    Json custom_params = Json::object();
};

// The shared keys' checks the schema cannot express, after the vendor's own
// (Traits::check): the limits' ranges, then the endpoint (base_url loses
// its trailing '/').
inline void check_limits(std::string_view who, const HttpSettings &s) {
    check_range(who, "timeout_ms", s.timeout_ms, 0, 86'400'000);
    check_range(who, "connect_timeout_ms", s.connect_timeout_ms, 0, 600'000);
    check_range(who, "idle_timeout_ms", s.idle_timeout_ms, 0, 86'400'000);
    check_range(who, "retries", s.retries, 0, 20);
    check_range(who, "retry_base_ms", s.retry_base_ms, 0, 600'000);
    check_range(who, "retry_max_ms", s.retry_max_ms, 0, 3'600'000);
    check_range(who, "max_concurrent", s.max_concurrent, 0, 1'000'000);
}

inline void check_endpoint(std::string_view who, HttpSettings &s) {
    while (!s.base_url.empty() && s.base_url.back() == '/')
        s.base_url.pop_back();
    if (s.base_url.rfind("http://", 0) != 0 && s.base_url.rfind("https://", 0) != 0)
        invalid(who, "base_url", "must start with http:// or https://");
    if (s.model.empty()) invalid(who, "model", "must not be empty");
}

// The shared keys as JSON, for the vendor's Settings::to_json (no secrets: only
// the name of the key's variable).
inline Json http_json(const HttpSettings &s) {
    return Json{{"base_url", s.base_url},
                {"api_key_env", s.api_key_env},
                {"model", s.model},
                {"timeout_ms", s.timeout_ms},
                {"connect_timeout_ms", s.connect_timeout_ms},
                {"idle_timeout_ms", s.idle_timeout_ms},
                {"retries", s.retries},
                {"retry_base_ms", s.retry_base_ms},
                {"retry_max_ms", s.retry_max_ms},
                {"max_concurrent", s.max_concurrent},
                {"custom_params", s.custom_params}};
}

// The schema rows of the shared keys, written once here and bound to the
// vendor's Settings::http; the vendor passes what differs. endpoint_rows()
// are base_url, api_key_env, model and limit_rows() the rest, so a vendor
// puts its own rows where its schema lists them:
//
//   constexpr auto kSchema = cpp::schema(
//       http_provider::endpoint_rows<Settings>(kVendor), cpp::setting<&Settings::temperature>(...),
//       http_provider::limit_rows<Settings>(kVendor), ...);
struct SchemaDefaults {
    const char *base_url;                  // default, JSON text: "\"https://api.acme.com/v1\""
    const char *base_url_description;      // e.g. what the template appends to it
    const char *api_key_env;               // default, JSON text: "\"ACME_API_KEY\""
    const char *model;                     // default, JSON text
    const char *retries_description;       // which statuses are retried
    const char *custom_params_description; // with an example the vendor knows
};

template <class Settings> constexpr auto endpoint_rows(const SchemaDefaults &d) noexcept {
    return cpp::schema(
        cpp::setting<&Settings::http, &HttpSettings::base_url>("base_url", d.base_url,
                                                               d.base_url_description),
        cpp::setting<&Settings::http, &HttpSettings::api_key_env>(
            "api_key_env", d.api_key_env,
            "Name of the environment variable holding the API key, read at create/update (\"\" = no key)"),
        cpp::setting<&Settings::http, &HttpSettings::model>("model", d.model,
                                                            "Model used when the session names none"));
}

template <class Settings> constexpr auto limit_rows(const SchemaDefaults &d) noexcept {
    return cpp::schema(
        cpp::setting<&Settings::http, &HttpSettings::timeout_ms>(
            "timeout_ms", "120000", "Limit for one upstream exchange, whole stream included (0 = none)"),
        cpp::setting<&Settings::http, &HttpSettings::connect_timeout_ms>("connect_timeout_ms", "10000",
                                                                         "Connect timeout"),
        cpp::setting<&Settings::http, &HttpSettings::idle_timeout_ms>(
            "idle_timeout_ms", "0", "Longest silence between bytes of an answer (0 = none)"),
        cpp::setting<&Settings::http, &HttpSettings::retries>("retries", "2", d.retries_description),
        cpp::setting<&Settings::http, &HttpSettings::retry_base_ms>(
            "retry_base_ms", "500",
            "Backoff base: attempt n waits base*2^(n-1) with jitter, or Retry-After when given"),
        cpp::setting<&Settings::http, &HttpSettings::retry_max_ms>(
            "retry_max_ms", "30000",
            "Longest wait between attempts; a longer Retry-After ends the retries at once"),
        cpp::setting<&Settings::http, &HttpSettings::max_concurrent>(
            "max_concurrent", "0",
            "Upstream requests in flight at most; more wait in a queue (0 = unlimited)"),
        cpp::setting<&Settings::http, &HttpSettings::custom_params>("custom_params", "{}",
                                                                    d.custom_params_description));
}

// ------------------------------------------------------------------ a call

// The system prompt of a call: the request's, else "system_prompt" in the
// metadata of the last user message, else in the session config.
inline std::string pick_system_prompt(std::string_view request_system,
                                      const std::vector<upstream::Turn> &turns,
                                      std::string_view session_config_json) {
    if (!request_system.empty()) return std::string(request_system);
    auto from = [](std::string_view json_text) -> std::string {
        if (!json_text::may_hold_key(json_text, "system_prompt")) return {};
        Json j = Json::parse(json_text, nullptr, false);
        if (j.is_object() && j.contains("system_prompt") && j["system_prompt"].is_string())
            return j["system_prompt"].get<std::string>();
        return {};
    };
    for (auto it = turns.rbegin(); it != turns.rend(); ++it) {
        if (it->role == "user") {
            std::string s = from(it->metadata_json);
            if (!s.empty()) return s;
            break;
        }
    }
    return from(session_config_json);
}

// One call as the vendor's prepare() sees it. `turns` and `api_key` borrow
// from the host's request and the instance: valid during prepare only, so
// copy into the exchange what you need.
struct Call {
    std::vector<upstream::Turn> turns; // chronological, ending with the new user message
    std::string system_prompt;         // picked by pick_system_prompt; "" = none
    std::string assistant_prefix;      // continue after this partial answer; "" = none
    std::string model;                 // "" = settings.http.model
    bool stream = false;               // the client streams: ask the upstream to stream too
    std::string_view api_key;          // "" = none configured
    // The generation parameters in the neutral form (ABI 1.3 params_json; {}
    // from an older host): read them through neutral::Params, which refuses
    // what the vendor's translation did not take.
    Json params = Json::object();
};

// prepare() gets a CallSpec with call_id, vendor, secret (the key, scrubbed
// from errors), timeouts, retries and the headers Content-Type
// (application/json) and Accept (text/event-stream when streaming, else
// application/json) filled in; it sets exchange.url and exchange.body,
// appends its own headers (the key, a User-Agent, a version) and sets
// make_decoder. It may throw Failure (e.g. an attachment it cannot send).
template <class T>
concept VendorTraits = requires(const typename T::Settings &s, const Call &call, upstream::CallSpec &spec) {
    { T::name } -> std::convertible_to<const char *>;
    { T::schema.read(std::declval<const Config &>()) } -> std::same_as<typename T::Settings>;
    { s.to_json() } -> std::convertible_to<Json>;
    { s.http } -> std::convertible_to<const HttpSettings &>;
    T::check(s);
    T::prepare(s, call, spec);
};

// ------------------------------------------------------------ an answer

// A short, printable excerpt of a body that is not what was expected.
inline std::string excerpt(std::string_view body) {
    std::string out;
    for (char c : body.substr(0, 160))
        out.push_back(static_cast<unsigned char>(c) < 0x20 ? ' ' : c);
    if (body.size() > 160) out += "...";
    return out;
}

// Decoder::error_message for a vendor whose error bodies are JSON: the
// vendor's reading (`error_text(const Json &)`, "" = not its shape), else an
// excerpt of the body.
template <class ErrorText> std::string error_message(std::string_view body, ErrorText &&error_text) {
    const Json j = Json::parse(body, nullptr, false);
    const std::string text = j.is_discarded() ? std::string() : error_text(j);
    return text.empty() ? excerpt(body) : text;
}

// A streamed event's data as a JSON object, or the Problem to end the call with.
inline std::optional<Problem> parse_event(std::string_view data, Json &out) {
    out = Json::parse(data, nullptr, false);
    if (out.is_discarded() || !out.is_object())
        return Problem{SWH_E_UPSTREAM,
                       "the stream carried an event that is not a JSON object: " + excerpt(data)};
    return std::nullopt;
}

// What Decoder::body returns after sse::Parser::feed: the Problem an event
// raised, else the parser's limits, else nothing (the stream goes on, or the
// client went away and the call ends as cancelled).
inline std::optional<Problem> feed_outcome(bool fed, const sse::Parser &parser,
                                           std::optional<Problem> problem) {
    if (problem) return problem;
    if (!fed && parser.failed())
        return Problem{SWH_E_UPSTREAM, "the stream exceeded the SSE line/event size limit"};
    return std::nullopt;
}

// A non-streamed answer, gathered for Decoder::end (at most 64 MiB).
class WholeBody {
  public:
    std::optional<Problem> add(std::string_view bytes) {
        if (text_.size() + bytes.size() > (64u << 20))
            return Problem{SWH_E_UPSTREAM, "the answer exceeds 64 MiB"};
        text_.append(bytes);
        return std::nullopt;
    }
    // The answer as a JSON object, or the Problem that it is not one.
    std::optional<Problem> parse(Json &out) const {
        out = Json::parse(text_, nullptr, false);
        if (out.is_discarded() || !out.is_object())
            return Problem{SWH_E_UPSTREAM, "the answer is not JSON: " + excerpt(text_)};
        return std::nullopt;
    }
    const std::string &text() const { return text_; }

  private:
    std::string text_;
};

// ---------------------------------------------------------- the ABI glue

template <VendorTraits Traits> class Instance {
  public:
    using Settings = typename Traits::Settings;
    // Settings plus the key they name, replaced as a whole by update_config:
    // a call keeps the snapshot it started with.
    struct Active {
        Settings settings;
        std::string api_key; // never logged, never returned
    };

    Instance(const swh_host_api *host, std::shared_ptr<const Active> active)
        : client(host), active_(std::move(active)) {}

    std::shared_ptr<const Active> snapshot() const {
        std::lock_guard lock(mutex_);
        return active_;
    }
    void replace(std::shared_ptr<const Active> next) {
        std::lock_guard lock(mutex_);
        active_ = std::move(next);
    }

    upstream::Client client;

  private:
    mutable std::mutex mutex_;
    std::shared_ptr<const Active> active_;
};

namespace detail {

template <class Traits> using Active = typename Instance<Traits>::Active;

template <class Traits> std::string read_key(const HttpSettings &s) {
    if (s.api_key_env.empty()) return {}; // servers without keys (local vLLM, Ollama, ...)
    const char *value = std::getenv(s.api_key_env.c_str());
    if (value == nullptr || *value == '\0')
        throw Failure(SWH_E_INVALID,
                      std::string(Traits::name) + ": the environment variable '" + s.api_key_env +
                          "' named by api_key_env is not set (set it, or use api_key_env: \"\" "
                          "for a server without keys)");
    return value;
}

// Checks the settings read through the schema (the vendor's checks, the
// limits, the endpoint), then reads the key: whenever the settings are
// read, since the variable may have changed.
template <class Traits> std::shared_ptr<const Active<Traits>> activate(typename Traits::Settings settings) {
    Traits::check(settings);
    check_limits(Traits::name, settings.http);
    check_endpoint(Traits::name, settings.http);
    auto active = std::make_shared<Active<Traits>>();
    active->settings = std::move(settings);
    active->api_key = read_key<Traits>(active->settings.http);
    return active;
}

template <class Traits>
swh_status create(const swh_host_api *host, const swh_config *cfg, void **out_handle) noexcept {
    return provider::create<Instance<Traits>>(out_handle, [&] {
        auto instance = std::make_unique<Instance<Traits>>(
            host, activate<Traits>(Traits::schema.read(Config(host, cfg))));
        if (!instance->client.offered())
            throw Failure(SWH_E_UNSUPPORTED, std::string(Traits::name) + ": the host offers no HTTP client");
        instance->client.set_max_concurrent(
            static_cast<uint32_t>(instance->snapshot()->settings.http.max_concurrent));
        return instance;
    });
}

inline Call call_of(const swh_provider_request &request, std::string_view api_key, std::string_view who) {
    Call call;
    call.params = neutral::object_of(provider::params_json(request), who, "params");
    call.turns = upstream::conversation(request);
    std::string_view session_config;
    if (SWH_HAS_MEMBER(request.session, swh_session, config_json))
        session_config = edge::view(request.session->config_json, "session.config_json");
    call.system_prompt =
        pick_system_prompt(edge::view(request.system_prompt, "system_prompt"), call.turns, session_config);
    call.assistant_prefix = std::string(edge::view(request.assistant_prefix, "assistant_prefix"));
    call.model = std::string(edge::view(request.model, "model"));
    call.stream = request.stream != 0;
    call.api_key = api_key;
    return call;
}

// Everything of an exchange that does not depend on the vendor.
inline upstream::CallSpec spec_of(const char *vendor, uint64_t call_id, const HttpSettings &s,
                                  const Call &call) {
    upstream::CallSpec spec;
    spec.call_id = call_id;
    spec.vendor = vendor;
    spec.secret = std::string(call.api_key);
    spec.exchange.headers = {{"Content-Type", "application/json"},
                             {"Accept", call.stream ? "text/event-stream" : "application/json"}};
    spec.exchange.timeout_ms = static_cast<uint32_t>(s.timeout_ms);
    spec.exchange.connect_timeout_ms = static_cast<uint32_t>(s.connect_timeout_ms);
    spec.exchange.idle_timeout_ms = static_cast<uint32_t>(s.idle_timeout_ms);
    spec.retry = {static_cast<uint32_t>(s.retries), static_cast<uint32_t>(s.retry_base_ms),
                  static_cast<uint32_t>(s.retry_max_ms)};
    return spec;
}

template <class Traits>
swh_status start(void *handle, const swh_provider_request *request, const swh_provider_sink *sink) noexcept {
    return provider::call<Instance<Traits>>(handle, Traits::name, [&](Instance<Traits> &instance) {
        provider::check_start(request, sink, Traits::name);
        auto active = instance.snapshot();
        const Call call = call_of(*request, active->api_key, Traits::name);
        upstream::CallSpec spec = spec_of(Traits::name, request->call_id, active->settings.http, call);
        Traits::prepare(active->settings, call, spec);
        instance.client.start(std::move(spec), *sink);
        return SWH_OK;
    });
}

template <class Traits> void cancel(void *handle, uint64_t call_id) noexcept {
    auto *instance = provider::state_of<Instance<Traits>>(handle);
    if (instance == nullptr) return;
    try {
        instance->client.cancel(call_id);
    } catch (...) {
    }
}

template <class Traits> swh_status get_metadata(void *handle, const swh_result_sink *sink) noexcept {
    return provider::call<Instance<Traits>>(handle, Traits::name, [&](Instance<Traits> &instance) {
        auto active = instance.snapshot();
        const HttpSettings &http = active->settings.http;
        Json meta{{"provider", Traits::name},
                  {"model", http.model},
                  {"base_url", http.base_url},
                  {"api_key_present", !active->api_key.empty()},
                  {"active_requests", instance.client.active()},
                  {"queued_requests", instance.client.queued()},
                  {"config", active->settings.to_json()}};
        if constexpr (requires(const typename Traits::Settings &s, Json &j) { Traits::metadata(s, j); })
            Traits::metadata(active->settings, meta);
        return provider::emit_json(sink, dump(meta), Traits::name);
    });
}

template <class Traits> swh_status update_config(void *handle, swh_str config_json) noexcept {
    return provider::call<Instance<Traits>>(handle, Traits::name, [&](Instance<Traits> &instance) {
        const std::string who = Traits::name;
        const Json changes = Json::parse(edge::view(config_json, "config_json"), nullptr, false);
        if (changes.is_discarded() || !changes.is_object())
            throw Failure(SWH_E_INVALID, who + ": update_config expects a JSON object");
        typename Traits::Settings settings = instance.snapshot()->settings;
        apply_json(Traits::schema, changes, settings, who); // the changed keys, through the schema
        auto next = activate<Traits>(std::move(settings));  // all or nothing
        instance.client.set_max_concurrent(static_cast<uint32_t>(next->settings.http.max_concurrent));
        instance.replace(std::move(next)); // calls already started keep their snapshot
        return SWH_OK;
    });
}

template <class Traits> swh_status health_check(void *handle, const swh_result_sink *sink) noexcept {
    return provider::call<Instance<Traits>>(handle, Traits::name, [&](Instance<Traits> &instance) {
        auto active = instance.snapshot();
        const Json health{{"status", "healthy"},
                          {"provider", Traits::name},
                          {"base_url", active->settings.http.base_url},
                          {"active_requests", instance.client.active()},
                          {"note", "configuration only; the upstream is not probed"}};
        return provider::emit_json(sink, dump(health), Traits::name);
    });
}

} // namespace detail

// The ABI minor a plugin on this template declares: its table needs the
// host's HTTP client (http_start/http_cancel), added in 1.1.
inline constexpr uint16_t kAbiMinor = 1;

// The provider table of a vendor; the plugin puts it in its descriptor.
template <VendorTraits Traits> constexpr swh_provider_v1 table() noexcept {
    return swh_provider_v1{sizeof(swh_provider_v1),
                           &detail::create<Traits>,
                           &provider::destroy<Instance<Traits>>,
                           &provider::last_error<Instance<Traits>>,
                           &detail::start<Traits>,
                           &detail::cancel<Traits>,
                           &detail::get_metadata<Traits>,
                           &detail::update_config<Traits>,
                           &detail::health_check<Traits>};
}

} // namespace swh::cpp::http_provider

// The table, the descriptor (ABI 1.1, or Traits::abi_minor when higher) and
// swh_plugin_entry of a vendor's provider in one line, like SWH_CPP_STORAGE
// and the other kinds (plugin.hpp); the schema is Traits::schema.
#define SWH_CPP_HTTP_PROVIDER(TRAITS, NAME, VERSION, DESCRIPTION)                                            \
    SWH_CPP_PLUGIN_ENTRY_(swh_provider_v1, (::swh::cpp::http_provider::table<TRAITS>()), SWH_KIND_PROVIDER,  \
                          SWH_IFACE_PROVIDER_V1,                                                             \
                          ::swh::cpp::abi_minor<TRAITS>(::swh::cpp::http_provider::kAbiMinor), NAME,         \
                          VERSION, DESCRIPTION, TRAITS::schema)
