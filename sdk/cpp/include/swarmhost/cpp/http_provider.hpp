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
//       using Settings = ...;  // has `HttpSettings http;`, `static Settings parse(const Json &)`
//                              // (the whole config; throws Failure) and `Json to_json() const`
//                              // (no secrets; update_config merges into it)
//       // url, body, its own headers, decoder: see Call and prepare() below
//       static void prepare(const Settings &, const Call &, upstream::CallSpec &);
//       // optional: static void metadata(const Settings &, Json &);  extra get_metadata keys
//   };
//   constexpr swh_provider_v1 kTable = swh::cpp::http_provider::table<Traits>();
//
// Also here, for the vendor's settings and decoders: SettingsReader and the
// config keys every HTTP provider shares (HttpSettings), pick_system_prompt,
// and small pieces of reading an answer (excerpt, error_message, parse_event,
// feed_outcome, WholeBody). Needs nlohmann_json.
#pragma once

#include <swarmhost/cpp/edge.hpp>
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

// Reads a provider's config object: the host's validated config at create,
// the merged one at update_config. An absent or null key keeps the default;
// every error names the provider and the key.
class SettingsReader {
  public:
    SettingsReader(std::string_view who, const Json &config) : who_(who), config_(config) {
        if (!config.is_object()) throw Failure(SWH_E_INVALID, who_ + ": config must be a JSON object");
    }

    [[noreturn]] void invalid(const std::string &key, const std::string &what) const {
        throw Failure(SWH_E_INVALID, who_ + ": config '" + key + "' " + what);
    }
    void string(const char *key, std::string &out) const {
        read(key, out, &Json::is_string, "must be a string");
    }
    void number(const char *key, double &out) const { read(key, out, &Json::is_number, "must be a number"); }
    void boolean(const char *key, bool &out) const {
        read(key, out, &Json::is_boolean, "must be true or false");
    }
    void object(const char *key, Json &out) const {
        read(key, out, &Json::is_object, "must be a JSON object");
    }
    void integer(const char *key, int64_t &out, int64_t min, int64_t max) const {
        if (find(key) == nullptr) return;
        int64_t n = 0;
        read(key, n, &Json::is_number_integer, "must be an integer");
        if (n < min || n > max)
            invalid(key, "must be between " + std::to_string(min) + " and " + std::to_string(max));
        out = n;
    }
    // Refuses a key in neither list (a typo must not be ignored silently).
    void only(std::span<const std::string_view> keys, std::span<const std::string_view> more = {}) const {
        for (const auto &[key, value] : config_.items()) {
            bool known = false;
            for (auto list : {keys, more})
                for (std::string_view k : list)
                    known = known || key == k;
            if (!known) throw Failure(SWH_E_INVALID, who_ + ": unknown config key '" + key + "'");
        }
    }

  private:
    const Json *find(const char *key) const {
        auto it = config_.find(key);
        return it == config_.end() || it->is_null() ? nullptr : &*it;
    }
    template <class T>
    void read(const char *key, T &out, bool (Json::*is)() const noexcept, const char *what) const {
        const Json *v = find(key);
        if (v == nullptr) return;
        if (!(v->*is)()) invalid(key, what);
        out = v->get<T>();
    }

    std::string who_;
    const Json &config_;
};

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

inline constexpr std::string_view kHttpKeys[] = {
    "base_url", "api_key_env",   "model",        "timeout_ms",     "connect_timeout_ms", "idle_timeout_ms",
    "retries",  "retry_base_ms", "retry_max_ms", "max_concurrent", "custom_params"};

// Reading is split in three so that a vendor keeps its keys where its
// schema lists them (which bad key is reported first stays the same):
// read_endpoint, the vendor's keys, read_limits, the vendor's keys,
// SettingsReader::only, check_endpoint.
inline void read_endpoint(const SettingsReader &r, HttpSettings &s) {
    r.string("base_url", s.base_url);
    r.string("api_key_env", s.api_key_env);
    r.string("model", s.model);
}

inline void read_limits(const SettingsReader &r, HttpSettings &s) {
    r.integer("timeout_ms", s.timeout_ms, 0, 86'400'000);
    r.integer("connect_timeout_ms", s.connect_timeout_ms, 0, 600'000);
    r.integer("idle_timeout_ms", s.idle_timeout_ms, 0, 86'400'000);
    r.integer("retries", s.retries, 0, 20);
    r.integer("retry_base_ms", s.retry_base_ms, 0, 600'000);
    r.integer("retry_max_ms", s.retry_max_ms, 0, 3'600'000);
    r.integer("max_concurrent", s.max_concurrent, 0, 1'000'000);
    r.object("custom_params", s.custom_params);
}

inline void check_endpoint(const SettingsReader &r, HttpSettings &s) {
    while (!s.base_url.empty() && s.base_url.back() == '/')
        s.base_url.pop_back();
    if (s.base_url.rfind("http://", 0) != 0 && s.base_url.rfind("https://", 0) != 0)
        r.invalid("base_url", "must start with http:// or https://");
    if (s.model.empty()) r.invalid("model", "must not be empty");
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

// The schema rows of the shared keys, written once here; the vendor passes
// what differs. endpoint_rows() are base_url, api_key_env, model and
// limit_rows() the rest, in the order read_endpoint and read_limits read
// them, so a vendor puts its own rows where it reads its own keys:
//
//   constexpr auto kConfigSchema = http_provider::schema_rows(
//       http_provider::endpoint_rows(kVendor), std::array{field(...), ...},
//       http_provider::limit_rows(kVendor), std::array{field(...)});
//   // descriptor: kConfigSchema.data(), kConfigSchema.size()
struct SchemaDefaults {
    const char *base_url;                  // default, JSON text: "\"https://api.acme.com/v1\""
    const char *base_url_description;      // e.g. what the template appends to it
    const char *api_key_env;               // default, JSON text: "\"ACME_API_KEY\""
    const char *model;                     // default, JSON text
    const char *retries_description;       // which statuses are retried
    const char *custom_params_description; // with an example the vendor knows
};

// One row: field("stream", SWH_CFG_BOOL, "true", "...").
constexpr swh_config_field field(const char *key, uint32_t type, const char *default_json,
                                 const char *description, bool required = false) noexcept {
    return swh_config_field{sizeof(swh_config_field), key,          type,
                            required ? 1u : 0u,       default_json, description};
}

constexpr std::array<swh_config_field, 3> endpoint_rows(const SchemaDefaults &d) noexcept {
    return {
        field("base_url", SWH_CFG_STRING, d.base_url, d.base_url_description),
        field("api_key_env", SWH_CFG_STRING, d.api_key_env,
              "Name of the environment variable holding the API key, read at create/update (\"\" = no key)"),
        field("model", SWH_CFG_STRING, d.model, "Model used when the session names none")};
}

constexpr std::array<swh_config_field, 8> limit_rows(const SchemaDefaults &d) noexcept {
    return {
        field("timeout_ms", SWH_CFG_INT, "120000",
              "Limit for one upstream exchange, whole stream included (0 = none)"),
        field("connect_timeout_ms", SWH_CFG_INT, "10000", "Connect timeout"),
        field("idle_timeout_ms", SWH_CFG_INT, "0", "Longest silence between bytes of an answer (0 = none)"),
        field("retries", SWH_CFG_INT, "2", d.retries_description),
        field("retry_base_ms", SWH_CFG_INT, "500",
              "Backoff base: attempt n waits base*2^(n-1) with jitter, or Retry-After when given"),
        field("retry_max_ms", SWH_CFG_INT, "30000",
              "Longest wait between attempts; a longer Retry-After ends the retries at once"),
        field("max_concurrent", SWH_CFG_INT, "0",
              "Upstream requests in flight at most; more wait in a queue (0 = unlimited)"),
        field("custom_params", SWH_CFG_OBJECT, "{}", d.custom_params_description)};
}

// The parts one after the other, as one array for the descriptor.
template <std::size_t... N>
constexpr std::array<swh_config_field, (N + ...)>
schema_rows(const std::array<swh_config_field, N> &...parts) noexcept {
    std::array<swh_config_field, (N + ...)> out{};
    std::size_t at = 0;
    ((std::copy(parts.begin(), parts.end(), out.begin() + static_cast<std::ptrdiff_t>(at)), at += N), ...);
    return out;
}

// ------------------------------------------------------------------ a call

// The system prompt of a call: the request's, else "system_prompt" in the
// metadata of the last user message, else in the session config.
inline std::string pick_system_prompt(std::string_view request_system,
                                      const std::vector<upstream::Turn> &turns,
                                      std::string_view session_config_json) {
    if (!request_system.empty()) return std::string(request_system);
    auto from = [](std::string_view json_text) -> std::string {
        if (json_text.empty()) return {};
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
};

// prepare() gets a CallSpec with call_id, vendor, secret (the key, scrubbed
// from errors), timeouts, retries and the headers Content-Type
// (application/json) and Accept (text/event-stream when streaming, else
// application/json) filled in; it sets exchange.url and exchange.body,
// appends its own headers (the key, a User-Agent, a version) and sets
// make_decoder. It may throw Failure (e.g. an attachment it cannot send).
template <class T>
concept VendorTraits = requires(const typename T::Settings &s, const Json &config, const Call &call,
                                upstream::CallSpec &spec) {
    { T::name } -> std::convertible_to<const char *>;
    { T::Settings::parse(config) } -> std::same_as<typename T::Settings>;
    { s.to_json() } -> std::convertible_to<Json>;
    { s.http } -> std::convertible_to<const HttpSettings &>;
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

// The key is read whenever the settings are: the variable may have changed.
template <class Traits> std::shared_ptr<const Active<Traits>> activate(const Json &config) {
    auto active = std::make_shared<Active<Traits>>();
    active->settings = Traits::Settings::parse(config);
    active->api_key = read_key<Traits>(active->settings.http);
    return active;
}

template <class Traits> Json read_config(const swh_host_api *host, const swh_config *cfg) {
    provider::require(SWH_HAS_MEMBER(host, swh_host_api, config_json) && host->config_json, Traits::name,
                      "host offers no config_json");
    swh_str text{nullptr, 0};
    if (host->config_json(host->host_ctx, cfg, &text) != SWH_OK)
        throw Failure(SWH_E_INVALID, std::string(Traits::name) + ": could not read the config");
    Json config = Json::parse(edge::view(text, "config"), nullptr, false);
    provider::require(!config.is_discarded(), Traits::name, "the config is not valid JSON");
    return config;
}

template <class Traits>
swh_status create(const swh_host_api *host, const swh_config *cfg, void **out_handle) noexcept {
    return provider::create<Instance<Traits>>(out_handle, [&] {
        auto instance =
            std::make_unique<Instance<Traits>>(host, activate<Traits>(read_config<Traits>(host, cfg)));
        if (!instance->client.offered())
            throw Failure(SWH_E_UNSUPPORTED, std::string(Traits::name) + ": the host offers no HTTP client");
        instance->client.set_max_concurrent(
            static_cast<uint32_t>(instance->snapshot()->settings.http.max_concurrent));
        return instance;
    });
}

inline Call call_of(const swh_provider_request &request, std::string_view api_key) {
    Call call;
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
        const Call call = call_of(*request, active->api_key);
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
        Json merged = instance.snapshot()->settings.to_json();
        for (const auto &[key, value] : changes.items()) {
            if (!merged.contains(key))
                throw Failure(SWH_E_INVALID, who + ": unknown config key '" + key + "'");
            merged[key] = value;
        }
        auto next = activate<Traits>(merged); // all or nothing
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
