#include "workflow.hpp"

#include <swarmhost/cpp/edge.hpp>

#include <algorithm>
#include <cstdio>
#include <ctime>

namespace swh::templated {

namespace {

using edge::Failure;

[[noreturn]] void conflict(const std::string &message) {
    throw Failure(SWH_E_CONFLICT, message);
}

[[noreturn]] void malformed(const std::string &what) {
    conflict("the session's \"templated\" metadata is malformed (" + what +
             "); it is written by the templated session type only");
}

Status parse_status(const Json &value) {
    if (value == "not_started") return Status::NotStarted;
    if (value == "in_progress") return Status::InProgress;
    if (value == "completed") return Status::Completed;
    malformed("unknown status " + value.dump());
}

std::vector<std::string> string_list(const Json &state, const char *key) {
    const auto it = state.find(key);
    if (it == state.end() || !it->is_array()) malformed(std::string("'") + key + "' is not a list");
    std::vector<std::string> out;
    for (const Json &item : *it) {
        if (!item.is_string()) malformed(std::string("'") + key + "' holds a non-string");
        out.push_back(item.get<std::string>());
    }
    return out;
}

std::optional<int64_t> optional_int(const Json &state, const char *key) {
    const auto it = state.find(key);
    if (it == state.end() || it->is_null()) return std::nullopt;
    if (!it->is_number_integer()) malformed(std::string("'") + key + "' is not an integer");
    return it->get<int64_t>();
}

Json time_or_null(const std::optional<int64_t> &us) {
    return us ? Json(iso8601(*us)) : Json(nullptr);
}

// Checks the invariants the transitions rely on.
void validate(const WorkflowState &s) {
    if (s.steps.empty()) malformed("no steps");
    const bool running = s.status == Status::InProgress;
    if (running != s.current_step.has_value()) malformed("current_step does not match the status");
    if (s.current_step && *s.current_step >= s.steps.size()) malformed("current_step is out of range");
    if (s.status != Status::NotStarted && !s.started_at_us) malformed("started_at_us is missing");
    if (s.status == Status::Completed && !s.completed_at_us) malformed("completed_at_us is missing");
}

void require_running(const WorkflowState &state, const char *action) {
    if (state.status == Status::NotStarted)
        conflict(std::string("cannot ") + action +
                 ": the workflow has not been started (POST workflow/start)");
    if (state.status == Status::Completed)
        conflict(std::string("cannot ") + action + ": the workflow is completed");
}

} // namespace

const char *status_name(Status status) {
    switch (status) {
    case Status::NotStarted:
        return "not_started";
    case Status::InProgress:
        return "in_progress";
    case Status::Completed:
        return "completed";
    }
    return "unknown";
}

WorkflowState WorkflowState::fresh(std::string template_name, std::vector<std::string> steps) {
    WorkflowState s;
    s.template_name = std::move(template_name);
    s.steps = std::move(steps);
    return s;
}

WorkflowState WorkflowState::from_metadata(const Json &metadata) {
    const auto it = metadata.is_object() ? metadata.find(kStateKey) : metadata.end();
    if (!metadata.is_object() || it == metadata.end() || !it->is_object())
        conflict("the session has no \"templated\" workflow state in its metadata");
    const Json &j = *it;
    WorkflowState s;
    if (!j.contains("template") || !j["template"].is_string()) malformed("'template' is not a string");
    s.template_name = j["template"].get<std::string>();
    s.status = parse_status(j.value("status", Json(nullptr)));
    if (const auto step = j.find("current_step"); step != j.end() && !step->is_null()) {
        if (!step->is_number_unsigned()) malformed("'current_step' is not an index");
        s.current_step = step->get<std::size_t>();
    }
    s.steps = string_list(j, "steps");
    s.completed_steps = string_list(j, "completed_steps");
    s.started_at_us = optional_int(j, "started_at_us");
    s.completed_at_us = optional_int(j, "completed_at_us");
    validate(s);
    return s;
}

std::optional<std::string> WorkflowState::current_step_name() const {
    if (!current_step) return std::nullopt;
    return steps.at(*current_step);
}

std::optional<double> WorkflowState::duration_seconds() const {
    if (!started_at_us || !completed_at_us) return std::nullopt;
    return static_cast<double>(*completed_at_us - *started_at_us) / 1e6;
}

Json WorkflowState::to_json() const {
    const std::optional<std::string> step_name = current_step_name();
    const std::optional<double> duration = duration_seconds();
    return {{"template", template_name},
            {"status", status_name(status)},
            {"current_step", current_step ? Json(*current_step) : Json(nullptr)},
            {"current_step_name", step_name ? Json(*step_name) : Json(nullptr)},
            {"steps", steps},
            {"total_steps", steps.size()},
            {"completed_steps", completed_steps},
            {"started_at", time_or_null(started_at_us)},
            {"started_at_us", started_at_us ? Json(*started_at_us) : Json(nullptr)},
            {"completed_at", time_or_null(completed_at_us)},
            {"completed_at_us", completed_at_us ? Json(*completed_at_us) : Json(nullptr)},
            {"duration_seconds", duration ? Json(*duration) : Json(nullptr)}};
}

Outcome start(WorkflowState &state, int64_t now_us) {
    if (state.status == Status::InProgress) conflict("cannot start: the workflow is already in progress");
    if (state.status == Status::Completed) conflict("cannot start: the workflow is completed");
    state.status = Status::InProgress;
    state.current_step = 0;
    state.started_at_us = now_us;
    return Outcome::StepEntered;
}

Outcome next(WorkflowState &state, int64_t now_us) {
    require_running(state, "go to the next step");
    // As the guide: next on the last step completes the workflow.
    if (*state.current_step + 1 >= state.steps.size()) return complete(state, now_us);
    state.completed_steps.push_back(state.steps[*state.current_step]);
    state.current_step = *state.current_step + 1;
    return Outcome::StepEntered;
}

Outcome complete(WorkflowState &state, int64_t now_us) {
    require_running(state, "complete");
    state.completed_steps.push_back(state.steps[*state.current_step]);
    state.current_step.reset();
    state.status = Status::Completed;
    // The wall clock may step back; a duration is never negative.
    state.completed_at_us = std::max(now_us, *state.started_at_us);
    return Outcome::Completed;
}

} // namespace swh::templated
