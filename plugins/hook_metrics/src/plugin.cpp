// ABI glue and logic of the "metrics" lifecycle hook: counters and histograms
// over session events (sessions created per provider, messages per role,
// message length, response time, token usage, session duration), rendered in
// the Prometheus text format on the daemon's GET /metrics; replies slower than
// a threshold are logged as alerts.
#include <swarmhost/cpp/edge.hpp>
#include <swarmhost/hook.h>

#include <nlohmann/json.hpp>

#include <cmath>
#include <cstdio>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace {

using swh::edge::ErrorSlot;
using swh::edge::Failure;
using swh::edge::guarded;
using swh::edge::HostLog;
using swh::edge::to_str;
using swh::edge::view;
using Json = nlohmann::json;

Json read_config(const swh_host_api *host, const swh_config *cfg) {
    if (!SWH_HAS_MEMBER(host, swh_host_api, config_json) || host->config_json == nullptr)
        throw Failure(SWH_E_INVALID, "metrics: the host offers no config_json");
    swh_str text{nullptr, 0};
    if (host->config_json(host->host_ctx, cfg, &text) != SWH_OK)
        throw Failure(SWH_E_INVALID, "metrics: config_json failed");
    Json config = Json::parse(view(text, "config"), nullptr, false);
    if (!config.is_object()) throw Failure(SWH_E_INVALID, "metrics: config is not a JSON object");
    return config;
}

std::string text_of(swh_str s) {
    return s.ptr == nullptr ? std::string() : std::string(s.ptr, s.len);
}

Json json_of(swh_str s) {
    Json j = Json::parse(text_of(s), nullptr, false);
    return j.is_object() ? j : Json::object();
}

// A Prometheus sample value.
std::string number(double v) {
    if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
    if (std::isnan(v)) return "NaN";
    char buf[64];
    if (v == std::floor(v) && std::fabs(v) < 1e15)
        std::snprintf(buf, sizeof buf, "%.0f", v);
    else
        std::snprintf(buf, sizeof buf, "%.17g", v);
    return buf;
}

std::string escape(const std::string &value) {
    std::string out;
    for (char c : value) {
        if (c == '\\')
            out += "\\\\";
        else if (c == '"')
            out += "\\\"";
        else if (c == '\n')
            out += "\\n";
        else
            out.push_back(c);
    }
    return out;
}

std::string label(const char *name, const std::string &value) {
    return std::string(name) + "=\"" + escape(value) + "\"";
}

struct Histogram {
    std::vector<double> bounds; // upper bounds, ascending; +Inf implied
    std::vector<uint64_t> buckets;
    double sum = 0;
    uint64_t count = 0;

    explicit Histogram(std::vector<double> b = {}) : bounds(std::move(b)), buckets(bounds.size(), 0) {}
    void observe(double v) {
        for (std::size_t i = 0; i < bounds.size(); ++i)
            if (v <= bounds[i]) ++buckets[i];
        sum += v;
        ++count;
    }
    // `labels` is "" or "a=\"b\"" (without braces).
    void render(std::string &out, const std::string &name, const std::string &labels) const {
        const std::string sep = labels.empty() ? "" : ",";
        for (std::size_t i = 0; i < bounds.size(); ++i)
            out += name + "_bucket{" + labels + sep + "le=\"" + number(bounds[i]) + "\"} " +
                   number(static_cast<double>(buckets[i])) + "\n";
        out += name + "_bucket{" + labels + sep + "le=\"+Inf\"} " + number(static_cast<double>(count)) + "\n";
        const std::string braces = labels.empty() ? "" : "{" + labels + "}";
        out += name + "_sum" + braces + " " + number(sum) + "\n";
        out += name + "_count" + braces + " " + number(static_cast<double>(count)) + "\n";
    }
};

std::vector<double> bounds_of(const Json &buckets, const char *key, std::vector<double> fallback) {
    auto it = buckets.find(key);
    if (it == buckets.end()) return fallback;
    if (!it->is_array() || it->empty())
        throw Failure(SWH_E_INVALID,
                      std::string("metrics: buckets.") + key + " must be a non-empty array of numbers");
    std::vector<double> out;
    for (const auto &v : *it) {
        if (!v.is_number())
            throw Failure(SWH_E_INVALID, std::string("metrics: buckets.") + key + " holds a non-number");
        const double d = v.get<double>();
        if (!out.empty() && d <= out.back())
            throw Failure(SWH_E_INVALID,
                          std::string("metrics: buckets.") + key + " must be strictly ascending");
        out.push_back(d);
    }
    return out;
}

class Metrics {
  public:
    Metrics(const swh_host_api *host, const Json &config) : log_(host) {
        prefix_ = config.at("prefix").get<std::string>();
        for (char c : prefix_)
            if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
                  c == ':'))
                throw Failure(SWH_E_INVALID, "metrics: prefix may only hold [a-zA-Z0-9_:]");
        slow_ms_ = config.at("slow_response_ms").get<double>();
        const Json &buckets = config.at("buckets");
        for (const auto &[key, value] : buckets.items()) {
            (void)value;
            if (key != "message_length" && key != "response_time_ms" && key != "token_usage" &&
                key != "session_duration_seconds")
                throw Failure(SWH_E_INVALID, "metrics: buckets: unknown key '" + key +
                                                 "' (message_length, response_time_ms, token_usage, "
                                                 "session_duration_seconds)");
        }
        length_bounds_ =
            bounds_of(buckets, "message_length", {10, 50, 100, 250, 500, 1000, 2500, 5000, 10000});
        response_ = Histogram(bounds_of(buckets, "response_time_ms",
                                        {10, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000}));
        token_bounds_ =
            bounds_of(buckets, "token_usage", {10, 50, 100, 250, 500, 1000, 2000, 4000, 8000, 16000});
        duration_ = Histogram(
            bounds_of(buckets, "session_duration_seconds", {1, 10, 60, 300, 900, 1800, 3600, 14400, 86400}));
    }

    void on_event(const swh_event &event) {
        const swh_session &s = *event.session;
        std::lock_guard lock(mutex_);
        switch (event.type) {
        case SWH_EVENT_SESSION_CREATED:
            ++created_[text_of(s.provider)];
            break;
        case SWH_EVENT_SESSION_ARCHIVED: {
            ++archived_;
            const double seconds = static_cast<double>(event.time - s.created_at) / 1e6;
            if (seconds >= 0) duration_.observe(seconds);
            break;
        }
        case SWH_EVENT_SESSION_DELETED:
            ++deleted_;
            break;
        case SWH_EVENT_PROVIDER_ERROR:
            ++provider_errors_[text_of(s.provider)];
            break;
        case SWH_EVENT_MESSAGE_SENT:
            if (event.message != nullptr) message(event, *event.message);
            break;
        default:
            break;
        }
    }

    std::string render() const {
        std::lock_guard lock(mutex_);
        std::string out;
        const std::string p = prefix_;
        family(out, p + "sessions_created_total", "counter", "Sessions created, per provider");
        for (const auto &[provider, n] : created_)
            out +=
                p + "sessions_created_total{" + label("provider", provider) + "} " + number(double(n)) + "\n";
        family(out, p + "sessions_archived_total", "counter", "Sessions archived");
        out += p + "sessions_archived_total " + number(double(archived_)) + "\n";
        family(out, p + "sessions_deleted_total", "counter", "Sessions deleted");
        out += p + "sessions_deleted_total " + number(double(deleted_)) + "\n";
        family(out, p + "messages_total", "counter", "Messages sent, per role");
        for (const auto &[role, n] : messages_)
            out += p + "messages_total{" + label("role", role) + "} " + number(double(n)) + "\n";
        family(out, p + "provider_errors_total", "counter", "Provider failures, per provider");
        for (const auto &[provider, n] : provider_errors_)
            out +=
                p + "provider_errors_total{" + label("provider", provider) + "} " + number(double(n)) + "\n";
        family(out, p + "slow_responses_total", "counter", "Replies slower than slow_response_ms");
        out += p + "slow_responses_total " + number(double(slow_)) + "\n";
        family(out, p + "tokens_total", "counter",
               "Tokens reported by providers (provider_metadata.usage), per kind");
        for (const auto &[kind, n] : tokens_total_)
            out += p + "tokens_total{" + label("kind", kind) + "} " + number(n) + "\n";
        family(out, p + "message_length_chars", "histogram", "Message length in characters, per role");
        for (const auto &[role, h] : length_)
            h.render(out, p + "message_length_chars", label("role", role));
        family(out, p + "response_time_ms", "histogram",
               "Reply time in milliseconds (metadata.response_time_ms)");
        response_.render(out, p + "response_time_ms", "");
        family(out, p + "token_usage", "histogram", "Tokens per reply, per kind (prompt, completion, total)");
        for (const auto &[kind, h] : tokens_)
            h.render(out, p + "token_usage", label("kind", kind));
        family(out, p + "session_duration_seconds", "histogram", "Session age when archived, in seconds");
        duration_.render(out, p + "session_duration_seconds", "");
        return out;
    }

  private:
    static void family(std::string &out, const std::string &name, const char *type, const char *help) {
        out += "# HELP " + name + " " + help + "\n# TYPE " + name + " " + type + "\n";
    }

    static std::size_t characters(std::string_view text) {
        std::size_t n = 0;
        for (char c : text)
            n += (static_cast<unsigned char>(c) & 0xC0) != 0x80;
        return n;
    }

    // Called with the mutex held.
    void message(const swh_event &event, const swh_message &m) {
        const std::string role = text_of(m.role);
        ++messages_[role];
        auto length = length_.find(role);
        if (length == length_.end()) length = length_.emplace(role, Histogram(length_bounds_)).first;
        length->second.observe(static_cast<double>(characters(text_of(m.content))));
        if (role != "assistant") return;

        const Json metadata = json_of(m.metadata_json);
        double ms = -1;
        if (auto it = metadata.find("response_time_ms"); it != metadata.end() && it->is_number()) {
            ms = it->get<double>();
        } else {
            const Json details = json_of(event.details_json);
            if (auto d = details.find("response_time_ms"); d != details.end() && d->is_number())
                ms = d->get<double>();
        }
        if (ms >= 0) {
            response_.observe(ms);
            if (ms > slow_ms_) {
                ++slow_;
                log_(SWH_LOG_WARN, "slow response in session " + text_of(m.session_id) + ": " +
                                       number(std::round(ms)) + " ms (threshold " + number(slow_ms_) +
                                       " ms)");
            }
        }
        const Json provider = json_of(m.provider_metadata_json);
        auto usage = provider.find("usage");
        if (usage == provider.end() || !usage->is_object()) return;
        double total = 0;
        bool any = false, has_total = false;
        for (const char *kind : {"prompt", "completion", "total"}) {
            auto it = usage->find(std::string(kind) + "_tokens");
            if (it == usage->end() || !it->is_number()) continue;
            const double n = it->get<double>();
            observe_tokens(kind, n);
            if (std::string_view(kind) == "total")
                has_total = true;
            else
                total += n, any = true;
        }
        if (any && !has_total) observe_tokens("total", total);
    }

    void observe_tokens(const std::string &kind, double n) {
        auto it = tokens_.find(kind);
        if (it == tokens_.end()) it = tokens_.emplace(kind, Histogram(token_bounds_)).first;
        it->second.observe(n);
        tokens_total_[kind] += n;
    }

    HostLog log_;
    std::string prefix_;
    double slow_ms_ = 5000;
    std::vector<double> length_bounds_, token_bounds_;
    mutable std::mutex mutex_; // on_event (worker) vs render (HTTP threads)
    std::map<std::string, uint64_t> created_, messages_, provider_errors_;
    uint64_t archived_ = 0, deleted_ = 0, slow_ = 0;
    std::map<std::string, double> tokens_total_;
    std::map<std::string, Histogram> length_, tokens_;
    Histogram response_, duration_;
};

struct Instance {
    ErrorSlot errors;
    std::unique_ptr<Metrics> impl;
};

template <class Body> swh_status call(void *handle, Body &&body) noexcept {
    if (handle == nullptr) return SWH_E_INVALID;
    auto &instance = *static_cast<Instance *>(handle);
    return guarded(instance.errors, [&]() -> swh_status {
        if (!instance.impl) throw Failure(SWH_E_INVALID, "metrics: instance was not created successfully");
        return body(*instance.impl);
    });
}

swh_status m_create(const swh_host_api *host, const swh_config *cfg, void **out_handle) noexcept {
    if (out_handle == nullptr) return SWH_E_INVALID;
    Instance *instance = new (std::nothrow) Instance();
    *out_handle = instance;
    if (instance == nullptr) return SWH_E_INTERNAL;
    return guarded(instance->errors, [&]() -> swh_status {
        if (host == nullptr) throw Failure(SWH_E_INVALID, "metrics: host table is NULL");
        instance->impl = std::make_unique<Metrics>(host, read_config(host, cfg));
        return SWH_OK;
    });
}

void m_destroy(void *handle) noexcept {
    delete static_cast<Instance *>(handle);
}

const char *m_last_error(void *handle) noexcept {
    return handle == nullptr ? "" : static_cast<Instance *>(handle)->errors.get();
}

uint32_t m_events(void *) noexcept {
    return SWH_EVENT_SESSION_CREATED | SWH_EVENT_MESSAGE_SENT | SWH_EVENT_SESSION_ARCHIVED |
           SWH_EVENT_SESSION_DELETED | SWH_EVENT_PROVIDER_ERROR;
}

swh_status m_on_event(void *handle, const swh_event *event) noexcept {
    return call(handle, [&](Metrics &m) -> swh_status {
        if (!SWH_HAS_MEMBER(event, swh_event, details_json) ||
            !SWH_HAS_MEMBER(event->session, swh_session, metadata_json))
            throw Failure(SWH_E_INVALID, "metrics: event is NULL or too small");
        if (event->message != nullptr && !SWH_HAS_MEMBER(event->message, swh_message, provider_metadata_json))
            throw Failure(SWH_E_INVALID, "metrics: event message is too small");
        m.on_event(*event);
        return SWH_OK;
    });
}

swh_status m_render_metrics(void *handle, const swh_result_sink *sink) noexcept {
    return call(handle, [&](Metrics &m) -> swh_status {
        if (!SWH_HAS_MEMBER(sink, swh_result_sink, json) || !sink->json)
            throw Failure(SWH_E_INVALID, "metrics: sink without json callback");
        const std::string text = m.render();
        return sink->json(sink->ctx, to_str(text));
    });
}

constexpr swh_config_field kConfigSchema[] = {
    {sizeof(swh_config_field), "prefix", SWH_CFG_STRING, 0, "\"swarmhost_\"",
     "Prefix of every metric name ([a-zA-Z0-9_:]); give each metrics instance its own"},
    {sizeof(swh_config_field), "slow_response_ms", SWH_CFG_NUMBER, 0, "5000",
     "Replies slower than this (metadata.response_time_ms) are logged as an alert and counted"},
    {sizeof(swh_config_field), "buckets", SWH_CFG_OBJECT, 0, "{}",
     "Histogram upper bounds, ascending, per histogram: {message_length, response_time_ms, token_usage, "
     "session_duration_seconds: [numbers]}; absent keys keep the defaults"},
};

constexpr swh_hook_v1 kTable = {
    sizeof(swh_hook_v1), m_create, m_destroy, m_last_error, m_events, m_on_event, m_render_metrics,
};

constexpr swh_plugin_descriptor kDescriptor = {
    sizeof(swh_plugin_descriptor),
    SWH_ABI_VERSION_MAJOR,
    SWH_ABI_VERSION_MINOR,
    "metrics",
    "0.1.0",
    "Session/message counters and histograms on GET /metrics (Prometheus text); slow-reply alerts in the log",
    SWH_KIND_HOOK,
    SWH_IFACE_HOOK_V1,
    kConfigSchema,
    sizeof(kConfigSchema) / sizeof(kConfigSchema[0]),
    &kTable,
};

} // namespace

extern "C" SWH_EXPORT const swh_plugin_descriptor *swh_plugin_entry(void) {
    return &kDescriptor;
}
