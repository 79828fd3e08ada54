// The per-session workflow state of a templated session and its transitions.
// The state lives only in the session's metadata under "templated" (so it is
// in the store, survives a restart, and is shared by daemons on one store);
// these functions are pure: they read it, change it, and write it back.
#pragma once

#include <nlohmann/json.hpp>
#include <swarmhost/cpp/time.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace swh::templated {

using Json = nlohmann::json;

inline constexpr const char *kStateKey = "templated";

enum class Status { NotStarted, InProgress, Completed };

struct WorkflowState {
    std::string template_name;
    Status status = Status::NotStarted;
    std::optional<std::size_t> current_step; // set while in progress
    std::vector<std::string> steps;          // step names, copied at creation
    std::vector<std::string> completed_steps;
    std::optional<int64_t> started_at_us, completed_at_us;

    // A fresh state for a new session of `template_name`.
    static WorkflowState fresh(std::string template_name, std::vector<std::string> steps);
    // Reads metadata["templated"]; throws Failure(SWH_E_CONFLICT) when it is
    // absent or malformed (a client may have PATCHed the metadata).
    static WorkflowState from_metadata(const Json &metadata);

    // The stored form: {"template", "status", "current_step", ...}.
    Json to_json() const;
    // {"templated": to_json()}: the patch for merge_session_metadata.
    Json as_patch() const { return Json{{kStateKey, to_json()}}; }

    std::optional<std::string> current_step_name() const;
    std::optional<double> duration_seconds() const;
};

// What a transition did.
enum class Outcome { StepEntered, Completed };

// The transitions. Each throws Failure(SWH_E_CONFLICT) when not allowed:
//   start:    not_started -> in_progress at step 0
//   next:     in_progress -> the following step, or completed after the last
//   complete: in_progress -> completed (the current step counts as done)
Outcome start(WorkflowState &state, int64_t now_us);
Outcome next(WorkflowState &state, int64_t now_us);
Outcome complete(WorkflowState &state, int64_t now_us);

const char *status_name(Status status);

// Microseconds since the epoch -> "2026-11-25T14:39:42.123456Z" (as the HTTP API).
using swh::cpp::iso8601;

} // namespace swh::templated
