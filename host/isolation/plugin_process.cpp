#include "isolation/plugin_process.hpp"

#include "loader/abi_convert.hpp"

#include <algorithm>
#include <spdlog/spdlog.h>

namespace swh::isolation {

namespace {

using std::chrono::milliseconds;

long long ms_until(Clock::time_point when) {
    return std::max<long long>(0, std::chrono::ceil<milliseconds>(when - Clock::now()).count());
}

// Collects what the daemon's storage answers to a child's read_session, in
// wire form. The callbacks copy, as the ABI promises, and never throw.
struct ReadCollector {
    Json sessions = Json::array();
    Json messages = Json::array();
    swh_result_sink sink{};
    ReadCollector() {
        sink.struct_size = sizeof sink;
        sink.ctx = this;
        sink.session = [](void *ctx, const swh_session *s) noexcept -> swh_status {
            try {
                static_cast<ReadCollector *>(ctx)->sessions.push_back(to_wire(loader::from_abi(*s)));
                return SWH_OK;
            } catch (...) {
                return SWH_E_INVALID;
            }
        };
        sink.message = [](void *ctx, const swh_message *m) noexcept -> swh_status {
            try {
                static_cast<ReadCollector *>(ctx)->messages.push_back(to_wire(loader::from_abi(*m)));
                return SWH_OK;
            } catch (...) {
                return SWH_E_INVALID;
            }
        };
        sink.json = [](void *, swh_str) noexcept -> swh_status { return SWH_OK; };
    }
    ReadCollector(const ReadCollector &) = delete;
    ReadCollector &operator=(const ReadCollector &) = delete;
};

const std::string &string_at(const Json &json, const char *key) {
    static const std::string empty;
    auto it = json.find(key);
    return it != json.end() && it->is_string() ? it->get_ref<const std::string &>() : empty;
}

} // namespace

PluginProcess::PluginProcess(ProcessOptions options, const swh_host_api *host, Json config)
    : options_(std::move(options)), host_(host), config_(std::move(config)) {}

PluginProcess::~PluginProcess() {
    std::lock_guard lock(mutex_);
    child_.finish(milliseconds(2000)); // EOF first: the plugin's destroy runs in the child
}

const char *PluginProcess::error() {
    return errors_.get();
}

void PluginProcess::set_error(std::string text) {
    errors_.set(std::move(text));
}

swh_status PluginProcess::start() {
    std::lock_guard lock(mutex_);
    const swh_status status = start_locked();
    // At daemon start the plain reason reads best ("failed to start: ...").
    if (status != SWH_OK) set_error("plugin process for '" + options_.instance + "' " + last_failure_);
    return status;
}

swh_status PluginProcess::start_locked() {
    try {
        child_.start({options_.helper, "--plugin", options_.file, "--sha256", options_.sha256, "--kind",
                      std::to_string(options_.kind), "--log-level",
                      std::to_string(static_cast<int>(spdlog::get_level()))});
    } catch (const std::exception &e) {
        return failed_locked(SWH_E_UNAVAILABLE, std::string("could not be started: ") + e.what());
    }
    Json reply;
    const Json request{{"op", "create"}, {"instance", options_.instance}, {"config", config_}};
    if (const swh_status status = exchange_locked(request, reply, "create"); status != SWH_OK) return status;
    const swh_status status = reply.value("status", SWH_E_INTERNAL);
    if (status != SWH_OK) return failed_locked(status, "refused to start: " + string_at(reply, "error"));
    ++generation_;
    mask_ = reply.value("mask", 0u);
    spdlog::debug("[{}] plugin process {} started for {}", options_.instance, child_.pid(), options_.file);
    return SWH_OK;
}

swh_status PluginProcess::call(const Json &request, Json &reply, CallOptions options, uint64_t *generation) {
    std::lock_guard lock(mutex_);
    const std::string who = "plugin process for '" + options_.instance + "'";
    if (options.in_child && (!child_.running() || *options.in_child != generation_)) {
        set_error(who + " was restarted; the state this call needs is gone");
        return SWH_E_UNAVAILABLE;
    }
    if (!child_.running()) {
        if (!options.may_start) {
            set_error(who + " is not running (it " + last_failure_ + ")");
            return SWH_E_UNAVAILABLE;
        }
        if (Clock::now() < retry_at_) {
            set_error(who + " is restarting (it " + last_failure_ + "); next attempt in " +
                      std::to_string(ms_until(retry_at_)) + " ms");
            return SWH_E_UNAVAILABLE;
        }
        if (const swh_status status = start_locked(); status != SWH_OK) return status;
        spdlog::warn("[{}] plugin process restarted (pid {})", options_.instance, child_.pid());
    }
    const swh_status status = exchange_locked(request, reply, string_at(request, "op").c_str());
    if (status != SWH_OK) return status;
    failures_ = 0; // a good call ends the backoff sequence
    if (generation) *generation = generation_;
    return SWH_OK;
}

swh_status PluginProcess::exchange_locked(const Json &request, Json &reply, const char *operation) {
    const auto deadline = Clock::now() + options_.timeout;
    const std::string op = operation;
    auto lost = [&] {
        return failed_locked(SWH_E_UNAVAILABLE, child_.finish(milliseconds(1000)) + " during " + op);
    };
    auto late = [&] {
        child_.finish(milliseconds(0));
        return failed_locked(SWH_E_TIMEOUT, "did not answer " + op + " within " +
                                                std::to_string(options_.timeout.count()) +
                                                " ms and was killed");
    };
    IoStatus io = send_frame(child_.fd(), request, deadline);
    if (io == IoStatus::timeout) return late();
    if (io != IoStatus::ok) return lost();
    for (;;) {
        Json message;
        io = recv_frame(child_.fd(), message, deadline);
        if (io == IoStatus::timeout) return late();
        if (io != IoStatus::ok) return lost();
        const std::string &kind = string_at(message, "op");
        if (kind == "reply") {
            reply = std::move(message);
            return SWH_OK;
        }
        try {
            answer_child_locked(message, deadline);
        } catch (const std::exception &e) {
            child_.finish(milliseconds(0));
            return failed_locked(SWH_E_INTERNAL,
                                 std::string("broke the protocol (") + e.what() + ") and was killed");
        }
    }
}

// What the child asks of the daemon while a call runs: log lines, metrics,
// events (fire and forget) and read_session (answered at once).
bool forward_notice(const swh_host_api *host, const Json &message) {
    const std::string &kind = string_at(message, "op");
    if (kind == "log") {
        const int level = std::clamp(message.value("level", 2), 0, 5);
        spdlog::default_logger_raw()->log(static_cast<spdlog::level::level_enum>(level), "{}",
                                          string_at(message, "text"));
    } else if (kind == "metric") {
        if (host->metric_add)
            host->metric_add(host->host_ctx, loader::to_str(string_at(message, "name")),
                             loader::to_str(string_at(message, "labels")), message.value("value", 0.0));
    } else if (kind == "event") {
        if (host->publish_event)
            host->publish_event(host->host_ctx, loader::to_str(string_at(message, "type")),
                                loader::to_str(string_at(message, "payload")));
    } else {
        return false;
    }
    return true;
}

void PluginProcess::answer_child_locked(const Json &message, Clock::time_point deadline) {
    const std::string &kind = string_at(message, "op");
    if (forward_notice(host_, message)) {
        // a log line, metric or event: nothing to answer
    } else if (kind == "read_session") {
        ReadCollector collected;
        swh_status status = SWH_E_UNSUPPORTED;
        // An isolated store asking the daemon's store would ask itself, and
        // this thread holds its call mutex: refused instead of a deadlock.
        if (host_->read_session && options_.kind != SWH_KIND_STORAGE)
            status = host_->read_session(host_->host_ctx, loader::to_str(string_at(message, "session_id")),
                                         &collected.sink);
        const Json answer{{"op", "read_session_reply"},
                          {"status", status},
                          {"sessions", std::move(collected.sessions)},
                          {"messages", std::move(collected.messages)}};
        if (send_frame(child_.fd(), answer, deadline) != IoStatus::ok)
            throw std::runtime_error("could not answer read_session");
    } else {
        throw std::runtime_error("unknown message '" + kind + "'");
    }
}

swh_status PluginProcess::failed_locked(swh_status status, const std::string &what) {
    child_.finish(milliseconds(0)); // no-op when it is already gone
    ++failures_;
    const auto backoff =
        std::min<milliseconds>(kMaxBackoff, kFirstBackoff * (1LL << std::min<unsigned>(failures_ - 1, 16)));
    retry_at_ = Clock::now() + backoff;
    last_failure_ = what;
    const std::string text = "plugin process for '" + options_.instance + "' " + what + "; restarting in " +
                             std::to_string(backoff.count()) + " ms";
    spdlog::error("[{}] {}", options_.instance, text);
    set_error(text);
    return status;
}

} // namespace swh::isolation
