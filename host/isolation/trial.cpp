#include "isolation/trial.hpp"

#include "isolation/child_process.hpp"
#include "isolation/isolate.hpp"
#include "isolation/wire.hpp"

#include <spdlog/spdlog.h>

namespace swh::isolation {

namespace {

// ChildProcess::finish() says "crashed (SIGSEGV)", "exited with status 3" or
// "was killed"; the trial's answer names the step: "crashed in create: SIGSEGV".
std::string ending(const std::string &how, const std::string &step, std::chrono::milliseconds timeout) {
    if (how.starts_with("crashed (") && how.ends_with(")"))
        return "crashed in " + step + ": " + how.substr(9, how.size() - 10);
    if (how == "was killed")
        return "did not finish " + step + " within " + std::to_string(timeout.count()) + " ms (killed)";
    return how + " in " + step;
}

// What the child may ask while create runs; false for what it may not. Its log lines are the plugin's
// (debug: the daemon's own answer says what failed); metrics and events of a
// trial are not real and are dropped; it has no sessions to read.
bool answer(ChildProcess &child, const Json &message, Clock::time_point deadline) {
    const std::string op = message.value("op", std::string());
    if (op == "log") {
        spdlog::debug("(trial) {}", message.value("text", std::string()));
        return true;
    }
    if (op == "read_session") {
        // A failed send shows as the child's end at the next read.
        send_frame(child.fd(),
                   Json{{"op", "read_session_reply"},
                        {"status", SWH_E_UNAVAILABLE},
                        {"sessions", Json::array()},
                        {"messages", Json::array()}},
                   deadline);
        return true;
    }
    return op == "metric" || op == "event";
}

// Sends create and waits for its reply: "" when create answered OK.
std::string run_create(ChildProcess &child, const TrialSpec &spec) {
    const auto deadline = Clock::now() + spec.timeout;
    const Json request{{"op", "create"}, {"instance", spec.instance}, {"config", spec.config}};
    IoStatus io = send_frame(child.fd(), request, deadline);
    Json message;
    while (io == IoStatus::ok) {
        io = recv_frame(child.fd(), message, deadline);
        if (io != IoStatus::ok) break;
        if (message.value("op", std::string()) == "reply") {
            if (message.value("status", SWH_E_INTERNAL) == SWH_OK) return "";
            child.finish(spec.timeout);
            return "failed in create: " + message.value("error", std::string("(no reason given)"));
        }
        if (!answer(child, message, deadline)) {
            child.finish(std::chrono::milliseconds(0));
            return "broke the plugin host protocol during create ('" + message.value("op", std::string()) +
                   "')";
        }
    }
    const auto grace = io == IoStatus::timeout ? std::chrono::milliseconds(0) : spec.timeout;
    return ending(child.finish(grace), "create", spec.timeout);
}

} // namespace

std::string try_instance(const TrialSpec &spec) {
    ChildProcess child;
    try {
        child.start({plugin_host_path(), "--plugin", spec.file, "--sha256", spec.sha256, "--kind",
                     std::to_string(spec.kind), "--log-level",
                     std::to_string(static_cast<int>(spdlog::get_level()))});
    } catch (const std::exception &e) {
        return std::string("could not be tried in a child process: ") + e.what();
    }
    if (std::string failed = run_create(child, spec); !failed.empty()) return failed;
    // EOF: the plugin host destroys the instance and exits 0.
    const std::string how = child.finish(spec.timeout);
    return how == "exited with status 0" ? "" : ending(how, "destroy", spec.timeout);
}

} // namespace swh::isolation
