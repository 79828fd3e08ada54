// ABI glue and logic of the "user_behavior" lifecycle hook: per user, the rate
// of session creation and of messages over a sliding window, the number of
// active sessions and simple message patterns (length, code, links,
// questions). Unusual behaviour (bursts above a threshold, too many active
// sessions) is flagged as one JSON line in a file and logged.
#include <swarmhost/cpp/edge.hpp>
#include <swarmhost/cpp/time.hpp>
#include <swarmhost/hook.h>

#include <nlohmann/json.hpp>

#include <ctime>
#include <deque>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>

namespace {

using swh::cpp::iso8601;
using swh::edge::ErrorSlot;
using swh::edge::Failure;
using swh::edge::guarded;
using swh::edge::HostLog;
using swh::edge::to_str;
using swh::edge::view;
using Json = nlohmann::json;

Json read_config(const swh_host_api *host, const swh_config *cfg) {
    if (!SWH_HAS_MEMBER(host, swh_host_api, config_json) || host->config_json == nullptr)
        throw Failure(SWH_E_INVALID, "user_behavior: the host offers no config_json");
    swh_str text{nullptr, 0};
    if (host->config_json(host->host_ctx, cfg, &text) != SWH_OK)
        throw Failure(SWH_E_INVALID, "user_behavior: config_json failed");
    Json config = Json::parse(view(text, "config"), nullptr, false);
    if (!config.is_object()) throw Failure(SWH_E_INVALID, "user_behavior: config is not a JSON object");
    return config;
}

std::string text_of(swh_str s) {
    return s.ptr == nullptr ? std::string() : std::string(s.ptr, s.len);
}

const char *event_name(uint32_t type) {
    switch (type) {
    case SWH_EVENT_SESSION_CREATED:
        return "session_created";
    case SWH_EVENT_MESSAGE_SENT:
        return "message_sent";
    case SWH_EVENT_SESSION_ARCHIVED:
        return "session_archived";
    case SWH_EVENT_SESSION_DELETED:
        return "session_deleted";
    case SWH_EVENT_PROVIDER_ERROR:
        return "provider_error";
    default:
        return "unknown";
    }
}

int64_t positive(const Json &config, const char *key) {
    const int64_t v = config.at(key).get<int64_t>();
    if (v < 1) throw Failure(SWH_E_INVALID, std::string("user_behavior: ") + key + " must be >= 1");
    return v;
}

struct UserState {
    std::deque<int64_t> sessions_created; // event times (us) within the window
    std::deque<int64_t> messages;         // user-message times (us) within the window
    std::set<std::string> active;         // sessions created and not archived/deleted
    uint64_t total_sessions = 0, total_messages = 0, total_length = 0;
    uint64_t with_code = 0, with_url = 0, with_question = 0;
};

class UserBehavior {
  public:
    UserBehavior(const swh_host_api *host, const Json &config) : log_(host) {
        window_us_ = positive(config, "window_seconds") * 1000000;
        max_sessions_ = positive(config, "max_sessions_per_window");
        max_messages_ = positive(config, "max_messages_per_window");
        max_active_ = positive(config, "max_active_sessions");
        const std::string path = config.at("output_file").get<std::string>();
        if (path.empty()) throw Failure(SWH_E_INVALID, "user_behavior: output_file must not be empty");
        const std::filesystem::path file(path);
        if (file.has_parent_path()) std::filesystem::create_directories(file.parent_path());
        out_.open(file, std::ios::app | std::ios::binary);
        if (!out_)
            throw Failure(SWH_E_INVALID,
                          "user_behavior: cannot open output_file '" + path + "' for appending");
    }

    void on_event(const swh_event &event) {
        const swh_session &s = *event.session;
        const std::string user = text_of(s.user_id), session = text_of(s.id);
        std::lock_guard lock(mutex_);
        ++events_[event_name(event.type)];
        UserState &u = users_[user];
        switch (event.type) {
        case SWH_EVENT_SESSION_CREATED: {
            ++u.total_sessions;
            u.active.insert(session);
            const std::size_t before = windowed(u.sessions_created, event.time);
            u.sessions_created.push_back(event.time);
            if (before <= static_cast<std::size_t>(max_sessions_) &&
                u.sessions_created.size() > static_cast<std::size_t>(max_sessions_))
                flag(user, session, "session_burst", u.sessions_created.size(), max_sessions_, event.time, u);
            if (u.active.size() == static_cast<std::size_t>(max_active_) + 1)
                flag(user, session, "high_concurrent_sessions", u.active.size(), max_active_, event.time, u);
            break;
        }
        case SWH_EVENT_MESSAGE_SENT: {
            if (event.message == nullptr || text_of(event.message->role) != "user") break;
            const std::string content = text_of(event.message->content);
            ++u.total_messages;
            u.total_length += content.size();
            u.with_code += content.find("```") != std::string::npos;
            u.with_url +=
                content.find("http://") != std::string::npos || content.find("https://") != std::string::npos;
            u.with_question += content.find('?') != std::string::npos;
            const std::size_t before = windowed(u.messages, event.time);
            u.messages.push_back(event.time);
            if (before <= static_cast<std::size_t>(max_messages_) &&
                u.messages.size() > static_cast<std::size_t>(max_messages_))
                flag(user, session, "message_burst", u.messages.size(), max_messages_, event.time, u);
            break;
        }
        case SWH_EVENT_SESSION_ARCHIVED:
        case SWH_EVENT_SESSION_DELETED:
            u.active.erase(session);
            break;
        default:
            break;
        }
        // Forget users with nothing left to track (bounded memory).
        windowed(u.sessions_created, event.time);
        windowed(u.messages, event.time);
        if (u.active.empty() && u.sessions_created.empty() && u.messages.empty()) users_.erase(user);
    }

    std::string render() const {
        std::lock_guard lock(mutex_);
        std::string out =
            "# HELP swarmhost_user_behavior_events_total Lifecycle events seen, per event type\n"
            "# TYPE swarmhost_user_behavior_events_total counter\n";
        for (const auto &[name, n] : events_)
            out += "swarmhost_user_behavior_events_total{event=\"" + name + "\"} " + std::to_string(n) + "\n";
        out += "# HELP swarmhost_user_behavior_flags_total Unusual behaviour flagged, per flag\n"
               "# TYPE swarmhost_user_behavior_flags_total counter\n";
        for (const auto &[name, n] : flags_)
            out += "swarmhost_user_behavior_flags_total{flag=\"" + name + "\"} " + std::to_string(n) + "\n";
        out += "# HELP swarmhost_user_behavior_tracked_users Users with activity in the window or active "
               "sessions\n"
               "# TYPE swarmhost_user_behavior_tracked_users gauge\n"
               "swarmhost_user_behavior_tracked_users " +
               std::to_string(users_.size()) + "\n";
        return out;
    }

  private:
    // Drops times older than the window ending at `now`; returns what is left.
    std::size_t windowed(std::deque<int64_t> &times, int64_t now) const {
        while (!times.empty() && times.front() <= now - window_us_)
            times.pop_front();
        return times.size();
    }

    void flag(const std::string &user, const std::string &session, const std::string &kind, std::size_t count,
              int64_t threshold, int64_t when, const UserState &u) {
        const double messages = static_cast<double>(u.total_messages);
        const Json record = {
            {"time", iso8601(when)},
            {"time_us", when},
            {"user_id", user},
            {"session_id", session},
            {"flag", kind},
            {"count", count},
            {"threshold", threshold},
            {"window_seconds", window_us_ / 1000000},
            {"active_sessions", u.active.size()},
            {"patterns",
             {{"sessions", u.total_sessions},
              {"messages", u.total_messages},
              {"average_message_length", messages > 0 ? static_cast<double>(u.total_length) / messages : 0.0},
              {"code_share", messages > 0 ? static_cast<double>(u.with_code) / messages : 0.0},
              {"url_share", messages > 0 ? static_cast<double>(u.with_url) / messages : 0.0},
              {"question_share", messages > 0 ? static_cast<double>(u.with_question) / messages : 0.0}}}};
        ++flags_[kind];
        out_ << record.dump(-1, ' ', false, Json::error_handler_t::replace) << '\n';
        out_.flush();
        log_(SWH_LOG_WARN, "unusual behaviour of user " + user + ": " + kind + " (" + std::to_string(count) +
                               " > " + std::to_string(threshold) + ")");
        if (!out_) throw Failure(SWH_E_UNAVAILABLE, "user_behavior: writing the output_file failed");
    }

    HostLog log_;
    int64_t window_us_ = 0, max_sessions_ = 0, max_messages_ = 0, max_active_ = 0;
    mutable std::mutex mutex_; // on_event (worker) vs render_metrics (HTTP threads)
    std::map<std::string, UserState> users_;
    std::map<std::string, uint64_t> events_, flags_;
    std::ofstream out_;
};

struct Instance {
    ErrorSlot errors;
    std::unique_ptr<UserBehavior> impl;
};

template <class Body> swh_status call(void *handle, Body &&body) noexcept {
    if (handle == nullptr) return SWH_E_INVALID;
    auto &instance = *static_cast<Instance *>(handle);
    return guarded(instance.errors, [&]() -> swh_status {
        if (!instance.impl)
            throw Failure(SWH_E_INVALID, "user_behavior: instance was not created successfully");
        return body(*instance.impl);
    });
}

swh_status u_create(const swh_host_api *host, const swh_config *cfg, void **out_handle) noexcept {
    if (out_handle == nullptr) return SWH_E_INVALID;
    Instance *instance = new (std::nothrow) Instance();
    *out_handle = instance;
    if (instance == nullptr) return SWH_E_INTERNAL;
    return guarded(instance->errors, [&]() -> swh_status {
        if (host == nullptr) throw Failure(SWH_E_INVALID, "user_behavior: host table is NULL");
        instance->impl = std::make_unique<UserBehavior>(host, read_config(host, cfg));
        return SWH_OK;
    });
}

void u_destroy(void *handle) noexcept {
    delete static_cast<Instance *>(handle);
}

const char *u_last_error(void *handle) noexcept {
    return handle == nullptr ? "" : static_cast<Instance *>(handle)->errors.get();
}

uint32_t u_events(void *) noexcept {
    return SWH_EVENT_SESSION_CREATED | SWH_EVENT_MESSAGE_SENT | SWH_EVENT_SESSION_ARCHIVED |
           SWH_EVENT_SESSION_DELETED | SWH_EVENT_PROVIDER_ERROR;
}

swh_status u_on_event(void *handle, const swh_event *event) noexcept {
    return call(handle, [&](UserBehavior &b) -> swh_status {
        if (!SWH_HAS_MEMBER(event, swh_event, details_json) ||
            !SWH_HAS_MEMBER(event->session, swh_session, user_id))
            throw Failure(SWH_E_INVALID, "user_behavior: event is NULL or too small");
        if (event->message != nullptr && !SWH_HAS_MEMBER(event->message, swh_message, content))
            throw Failure(SWH_E_INVALID, "user_behavior: event message is too small");
        b.on_event(*event);
        return SWH_OK;
    });
}

swh_status u_render_metrics(void *handle, const swh_result_sink *sink) noexcept {
    return call(handle, [&](UserBehavior &b) -> swh_status {
        if (!SWH_HAS_MEMBER(sink, swh_result_sink, json) || !sink->json)
            throw Failure(SWH_E_INVALID, "user_behavior: sink without json callback");
        const std::string text = b.render();
        return sink->json(sink->ctx, to_str(text));
    });
}

constexpr swh_config_field kConfigSchema[] = {
    {sizeof(swh_config_field), "output_file", SWH_CFG_STRING, 1, nullptr,
     "JSON-lines file the flags are appended to (parent folders are created)"},
    {sizeof(swh_config_field), "window_seconds", SWH_CFG_INT, 0, "60",
     "Length of the sliding window the rates are counted over (>= 1)"},
    {sizeof(swh_config_field), "max_sessions_per_window", SWH_CFG_INT, 0, "5",
     "More session creations than this by one user within the window: flag session_burst"},
    {sizeof(swh_config_field), "max_messages_per_window", SWH_CFG_INT, 0, "30",
     "More user messages than this by one user within the window: flag message_burst"},
    {sizeof(swh_config_field), "max_active_sessions", SWH_CFG_INT, 0, "5",
     "More active (not archived/deleted) sessions than this for one user: flag high_concurrent_sessions"},
};

constexpr swh_hook_v1 kTable = {
    sizeof(swh_hook_v1), u_create, u_destroy, u_last_error, u_events, u_on_event, u_render_metrics,
};

constexpr swh_plugin_descriptor kDescriptor = {
    sizeof(swh_plugin_descriptor),
    SWH_ABI_VERSION_MAJOR,
    SWH_ABI_VERSION_MINOR,
    "user_behavior",
    "0.1.0",
    "Per-user session/message rates and patterns; bursts and other unusual behaviour flagged to a JSON-lines "
    "file",
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
