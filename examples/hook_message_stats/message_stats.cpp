// message_stats — a swarmhost hook in C++ with <swarmhost/cpp/plugin.hpp>
// (example). Counts sessions and messages per role and adds them to the
// daemon's GET /metrics as "<metric_prefix>_messages_total{role="..."}".
#include <swarmhost/cpp/plugin.hpp>

#include <map>
#include <mutex>

namespace {

// The settings, and the schema rows that declare each key once and fill it.
struct Settings {
    std::string metric_prefix = "message_stats";
};

constexpr auto kSchema = swh::cpp::schema(swh::cpp::setting<&Settings::metric_prefix>(
    "metric_prefix", "\"message_stats\"", "Prefix of the metric names"));

class MessageStats {
  public:
    MessageStats(swh::cpp::Host host, const Settings &settings) : prefix_(settings.metric_prefix) {
        if (prefix_.empty()) throw swh::cpp::Failure(SWH_E_INVALID, "metric_prefix must not be empty");
        host.info("message_stats: counting into " + prefix_ + "_*");
    }
    uint32_t events() const { return SWH_EVENT_SESSION_CREATED | SWH_EVENT_MESSAGE_SENT; }
    void on_event(const swh::cpp::Event &event) { // [serial]
        std::lock_guard lock(mutex_);             // render_metrics runs concurrently
        if (event.type == SWH_EVENT_SESSION_CREATED) ++sessions_;
        if (event.message) ++by_role_[std::string(event.message->role)];
    }
    std::string render_metrics() { // [any-thread]
        std::lock_guard lock(mutex_);
        std::string out = "# TYPE " + prefix_ + "_sessions_total counter\n" + prefix_ + "_sessions_total " +
                          std::to_string(sessions_) + "\n# TYPE " + prefix_ + "_messages_total counter\n";
        for (const auto &[role, n] : by_role_)
            out += prefix_ + "_messages_total{role=\"" + role + "\"} " + std::to_string(n) + "\n";
        return out;
    }

  private:
    std::string prefix_;
    std::mutex mutex_;
    uint64_t sessions_ = 0;
    std::map<std::string, uint64_t> by_role_;
};

} // namespace

SWH_CPP_HOOK(MessageStats, "message_stats", "0.1.0", "Counts sessions and messages per role (C++ example)",
             kSchema)
