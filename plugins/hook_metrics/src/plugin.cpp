// The "metrics" lifecycle hook: counters and histograms
// over session events (sessions created per provider, messages per role,
// message length, response time, token usage, session duration), rendered in
// the Prometheus text format on the daemon's GET /metrics; replies slower than
// a threshold are logged as alerts. Tool calls are counted per tool, from the
// messages' structured content (ABI 1.3).
#include <swarmhost/cpp/json_config.hpp>
#include <swarmhost/cpp/plugin.hpp>

#include <nlohmann/json.hpp>

#include <cmath>
#include <cstdio>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

namespace {

using swh::cpp::Failure;
using Json = nlohmann::json;

struct Settings {
    std::string prefix = "swarmhost_";
    double slow_response_ms = 5000;
    Json buckets = Json::object();
};

constexpr auto kSchema = swh::cpp::schema(
    swh::cpp::setting<&Settings::prefix>(
        "prefix", "\"swarmhost_\"",
        "Prefix of every metric name ([a-zA-Z0-9_:]); give each metrics instance its own"),
    swh::cpp::setting<&Settings::slow_response_ms>(
        "slow_response_ms", "5000",
        "Replies slower than this (metadata.response_time_ms) are logged as an alert and counted"),
    swh::cpp::setting<&Settings::buckets>(
        "buckets", "{}",
        "Histogram upper bounds, ascending, per histogram: {message_length, response_time_ms, token_usage, "
        "session_duration_seconds: [numbers]}; absent keys keep the defaults"));

Json json_of(std::string_view text) {
    Json j = Json::parse(text, nullptr, false);
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

// The label of a tool result whose call this hook did not see.
constexpr const char *kUnknownTool = "(unknown)";

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
    Metrics(swh::cpp::Host host, const Settings &config) : host_(host) {
        prefix_ = config.prefix;
        for (char c : prefix_)
            if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
                  c == ':'))
                throw Failure(SWH_E_INVALID, "metrics: prefix may only hold [a-zA-Z0-9_:]");
        slow_ms_ = config.slow_response_ms;
        const Json &buckets = config.buckets;
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

    uint32_t events() const {
        return SWH_EVENT_SESSION_CREATED | SWH_EVENT_MESSAGE_SENT | SWH_EVENT_SESSION_ARCHIVED |
               SWH_EVENT_SESSION_DELETED | SWH_EVENT_PROVIDER_ERROR;
    }

    void on_event(const swh::cpp::Event &event) {
        const swh::cpp::Session &s = event.session;
        std::lock_guard lock(mutex_);
        switch (event.type) {
        case SWH_EVENT_SESSION_CREATED:
            ++created_[std::string(s.provider)];
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
            ++provider_errors_[std::string(s.provider)];
            break;
        case SWH_EVENT_MESSAGE_SENT:
            if (event.message) message(event, *event.message);
            break;
        default:
            break;
        }
    }

    std::string render_metrics() const {
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
        family(out, p + "tool_calls_total", "counter", "Tool calls in replies, per tool");
        for (const auto &[tool, n] : tool_calls_)
            out += p + "tool_calls_total{" + label("tool", tool) + "} " + number(double(n)) + "\n";
        family(out, p + "tool_results_total", "counter",
               "Tool results sent (role \"tool\" messages), per tool of the call they answer");
        for (const auto &[tool, n] : tool_results_)
            out += p + "tool_results_total{" + label("tool", tool) + "} " + number(double(n)) + "\n";
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
    void message(const swh::cpp::Event &event, const swh::cpp::Message &m) {
        const std::string role(m.role);
        ++messages_[role];
        auto length = length_.find(role);
        if (length == length_.end()) length = length_.emplace(role, Histogram(length_bounds_)).first;
        length->second.observe(static_cast<double>(characters(m.content)));
        tools(m, role);
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
                host_.warn("slow response in session " + std::string(m.session_id) + ": " +
                           number(std::round(ms)) + " ms (threshold " + number(slow_ms_) + " ms)");
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

    // Tool calls of a reply and tool results, from the structured content
    // (empty on a host older than 1.3). A result names only its call id: the
    // tool is the one of that call, remembered from the reply (bounded; a
    // call is forgotten when answered, or as the oldest of kCallLimit).
    void tools(const swh::cpp::Message &m, const std::string &role) {
        if (m.structured_json.empty()) return;
        const Json structured = json_of(m.structured_json);
        const std::string session(m.session_id);
        if (role == "tool") {
            auto id = structured.find("tool_call_id");
            const std::string call = id != structured.end() && id->is_string() ? id->get<std::string>() : "";
            auto known = call_names_.find({session, call});
            if (known == call_names_.end()) {
                ++tool_results_[kUnknownTool];
            } else {
                ++tool_results_[known->second.first];
                call_names_.erase(known); // its place in call_order_ goes when it reaches the front
            }
            return;
        }
        auto calls = structured.find("tool_calls");
        if (calls == structured.end() || !calls->is_array()) return;
        for (const Json &call : *calls) {
            if (!call.is_object()) continue;
            auto name = call.find("name");
            std::string tool = name != call.end() && name->is_string() ? name->get<std::string>() : "";
            if (tool.empty()) tool = kUnknownTool;
            ++tool_calls_[tool];
            auto id = call.find("id");
            if (id == call.end() || !id->is_string() || id->get<std::string>().empty()) continue;
            CallKey key{session, id->get<std::string>()};
            call_names_[key] = {tool, ++calls_seen_};
            call_order_.emplace_back(std::move(key), calls_seen_);
            while (call_order_.size() > kCallLimit) {
                // Only the entry this position was for: a call answered and
                // then seen again has a later number.
                auto oldest = call_names_.find(call_order_.front().first);
                if (oldest != call_names_.end() && oldest->second.second == call_order_.front().second)
                    call_names_.erase(oldest);
                call_order_.pop_front();
            }
        }
    }

    void observe_tokens(const std::string &kind, double n) {
        auto it = tokens_.find(kind);
        if (it == tokens_.end()) it = tokens_.emplace(kind, Histogram(token_bounds_)).first;
        it->second.observe(n);
        tokens_total_[kind] += n;
    }

    swh::cpp::Host host_;
    std::string prefix_;
    double slow_ms_ = 5000;
    std::vector<double> length_bounds_, token_bounds_;
    mutable std::mutex mutex_; // on_event (worker) vs render (HTTP threads)
    std::map<std::string, uint64_t> created_, messages_, provider_errors_, tool_calls_, tool_results_;
    static constexpr std::size_t kCallLimit = 4096;
    using CallKey = std::pair<std::string, std::string>;             // (session, call id)
    std::map<CallKey, std::pair<std::string, uint64_t>> call_names_; // -> (tool, number)
    std::deque<std::pair<CallKey, uint64_t>> call_order_;
    uint64_t calls_seen_ = 0;
    uint64_t archived_ = 0, deleted_ = 0, slow_ = 0;
    std::map<std::string, double> tokens_total_;
    std::map<std::string, Histogram> length_, tokens_;
    Histogram response_, duration_;
};

} // namespace

SWH_CPP_HOOK(
    Metrics, "metrics", "0.1.0",
    "Session/message counters and histograms on GET /metrics (Prometheus text); slow-reply alerts in "
    "the log",
    kSchema)
