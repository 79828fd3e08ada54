// The "user_behavior" lifecycle hook: per user, the rate
// of session creation and of messages over a sliding window, the number of
// active sessions and simple message patterns (length, code, links,
// questions). Unusual behaviour (bursts above a threshold, too many active
// sessions) is flagged as one JSON line in a file and logged.
#include <swarmhost/cpp/names.hpp>
#include <swarmhost/cpp/plugin.hpp>
#include <swarmhost/cpp/time.hpp>

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

using swh::cpp::event_name;
using swh::cpp::Failure;
using swh::cpp::iso8601;
using Json = nlohmann::json;

struct Settings {
    std::string output_file;
    int64_t window_seconds = 60;
    int64_t max_sessions_per_window = 5;
    int64_t max_messages_per_window = 30;
    int64_t max_active_sessions = 5;
};

constexpr auto kSchema = swh::cpp::schema(
    swh::cpp::setting<&Settings::output_file>(
        "output_file", nullptr, "JSON-lines file the flags are appended to (parent folders are created)",
        true),
    swh::cpp::setting<&Settings::window_seconds>(
        "window_seconds", "60", "Length of the sliding window the rates are counted over (>= 1)"),
    swh::cpp::setting<&Settings::max_sessions_per_window>(
        "max_sessions_per_window", "5",
        "More session creations than this by one user within the window: flag session_burst"),
    swh::cpp::setting<&Settings::max_messages_per_window>(
        "max_messages_per_window", "30",
        "More user messages than this by one user within the window: flag message_burst"),
    swh::cpp::setting<&Settings::max_active_sessions>(
        "max_active_sessions", "5",
        "More active (not archived/deleted) sessions than this for one user: flag high_concurrent_sessions"));

int64_t positive(int64_t v, const char *key) {
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
    UserBehavior(swh::cpp::Host host, const Settings &config) : log_(host) {
        window_us_ = positive(config.window_seconds, "window_seconds") * 1000000;
        max_sessions_ = positive(config.max_sessions_per_window, "max_sessions_per_window");
        max_messages_ = positive(config.max_messages_per_window, "max_messages_per_window");
        max_active_ = positive(config.max_active_sessions, "max_active_sessions");
        const std::string &path = config.output_file;
        if (path.empty()) throw Failure(SWH_E_INVALID, "user_behavior: output_file must not be empty");
        const std::filesystem::path file(path);
        if (file.has_parent_path()) std::filesystem::create_directories(file.parent_path());
        out_.open(file, std::ios::app | std::ios::binary);
        if (!out_)
            throw Failure(SWH_E_INVALID,
                          "user_behavior: cannot open output_file '" + path + "' for appending");
    }

    uint32_t events() const {
        return SWH_EVENT_SESSION_CREATED | SWH_EVENT_MESSAGE_SENT | SWH_EVENT_SESSION_ARCHIVED |
               SWH_EVENT_SESSION_DELETED | SWH_EVENT_PROVIDER_ERROR;
    }

    void on_event(const swh::cpp::Event &event) {
        const swh::cpp::Session &s = event.session;
        const std::string user(s.user_id), session(s.id);
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
            if (!event.message || event.message->role != "user") break;
            const std::string content(event.message->content);
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

    std::string render_metrics() const {
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
        log_.warn("unusual behaviour of user " + user + ": " + kind + " (" + std::to_string(count) + " > " +
                  std::to_string(threshold) + ")");
        if (!out_) throw Failure(SWH_E_UNAVAILABLE, "user_behavior: writing the output_file failed");
    }

    swh::cpp::Host log_;
    int64_t window_us_ = 0, max_sessions_ = 0, max_messages_ = 0, max_active_ = 0;
    mutable std::mutex mutex_; // on_event (worker) vs render_metrics (HTTP threads)
    std::map<std::string, UserState> users_;
    std::map<std::string, uint64_t> events_, flags_;
    std::ofstream out_;
};

} // namespace

SWH_CPP_HOOK(UserBehavior, "user_behavior", "0.1.0",
             "Per-user session/message rates and patterns; bursts and other unusual behaviour flagged to a "
             "JSON-lines file",
             kSchema)
