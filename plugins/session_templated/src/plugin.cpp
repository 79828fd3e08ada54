// The "templated" session type: the guide's TemplatedSession. A session is
// created with metadata.template naming one of the YAML templates of
// `templates_dir`; it then walks the template's steps through
// POST workflow/start, workflow/next, workflow/complete, and every user
// message carries the template's system prompt plus the current step's prompt
// in its metadata (the host hands "system_prompt" to the provider).
//
// No state is kept in the plugin between calls: the workflow lives in the
// session's metadata under "templated" (see workflow.hpp), so it is in the
// store, survives a restart and is the same for daemons sharing a store.
#include "templates.hpp"
#include "workflow.hpp"

#include <swarmhost/cpp/plugin.hpp>

#include <algorithm>
#include <filesystem>
#include <optional>
#include <string>

namespace {

using swh::cpp::Failure;
using namespace swh::templated;
namespace fs = std::filesystem;

enum RouteIndex : uint32_t { kGetTemplate, kGetWorkflow, kStart, kNext, kComplete };

Json parse_object(std::string_view text) {
    Json j = Json::parse(text, nullptr, false);
    return j.is_object() ? j : Json::object();
}

// Relative folders resolve against the daemon's working directory.
fs::path resolve_dir(const std::string &configured) {
    return fs::absolute(fs::path(configured)).lexically_normal();
}

std::string step_system_prompt(const Template &t, const Step *step) {
    const std::string prompt = step == nullptr ? "" : step->prompt;
    if (t.system_prompt.empty()) return prompt;
    if (prompt.empty()) return t.system_prompt;
    return t.system_prompt + "\n\n" + prompt;
}

struct Settings {
    std::string templates_dir = "./configs/templates";
};

// One row declares the key and fills its member at create.
constexpr auto kSchema = swh::cpp::schema(swh::cpp::setting<&Settings::templates_dir>(
    "templates_dir", "\"./configs/templates\"",
    "Folder of *.yaml / *.yml session templates, loaded at start; a relative path resolves against the "
    "daemon's working directory"));

class Templated {
  public:
    Templated(swh::cpp::Host host, const Settings &settings)
        : host_(host), dir_(resolve_dir(settings.templates_dir)), templates_(load_templates(dir_)) {
        host_.info("templated: " + std::to_string(templates_.size()) + " templates from " + dir_.string() +
                   ": " + names_of(templates_));
    }

    std::span<const swh_route> routes() const { return kRoutes; }

    void handle(const swh::cpp::RouteRequest &request, swh::cpp::Response &response) {
        WorkflowState state = WorkflowState::from_metadata(parse_object(request.session.metadata_json));
        // The state alone answers GET workflow, even if the template is gone.
        if (request.route_index == kGetWorkflow) return response.json(200, state.to_json().dump());
        const Template &t = loaded(state.template_name);
        switch (request.route_index) {
        case kGetTemplate:
            return response.json(200, to_json(t).dump());
        case kStart:
            return advance(request, response, state, t, &start);
        case kNext:
            return advance(request, response, state, t, &next);
        case kComplete:
            return advance(request, response, state, t, &complete);
        default:
            throw Failure(SWH_E_NOT_FOUND, "templated: no such route");
        }
    }

    // The template is chosen at creation: metadata.template must name one.
    std::string on_session_created(const swh::cpp::Session &session) {
        const Json metadata = parse_object(session.metadata_json);
        const auto it = metadata.find("template");
        if (it == metadata.end() || !it->is_string())
            throw Failure(SWH_E_INVALID,
                          "a templated session needs metadata.template, one of: " + names_of(templates_));
        const std::string name = it->get<std::string>();
        const auto found = templates_.find(name);
        if (found == templates_.end())
            throw Failure(SWH_E_INVALID,
                          "unknown template '" + name + "' (available: " + names_of(templates_) + ")");
        std::vector<std::string> steps;
        for (const Step &s : found->second.steps)
            steps.push_back(s.name);
        return WorkflowState::fresh(name, std::move(steps)).as_patch().dump();
    }

    // The provider sees the template's system prompt, plus the current
    // step's prompt while the workflow runs.
    void on_user_message(const swh::cpp::SessionMessage &in, swh::cpp::Editor &edit) {
        const std::optional<WorkflowState> state = readable_state(in.session.metadata_json);
        if (!state) return;
        const auto found = templates_.find(state->template_name);
        if (found == templates_.end()) return; // template removed since: nothing to add
        const Template &t = found->second;
        Json patch = {{"template", t.name}};
        const std::optional<std::string> step = state->current_step_name();
        const std::string system = step_system_prompt(t, step ? t.find_step(*step) : nullptr);
        if (step) patch["workflow_step"] = *step;
        // An empty prompt is left out so it does not hide the session config's.
        if (!system.empty()) patch["system_prompt"] = system;
        edit.merge_metadata(patch.dump());
    }

  private:
    using Transition = Outcome (*)(WorkflowState &, int64_t);

    static constexpr swh_route kRoutes[] = {
        swh::cpp::route("GET", "template"),           swh::cpp::route("GET", "workflow"),
        swh::cpp::route("POST", "workflow/start"),    swh::cpp::route("POST", "workflow/next"),
        swh::cpp::route("POST", "workflow/complete"),
    };

    const Template &loaded(const std::string &name) const {
        const auto it = templates_.find(name);
        if (it == templates_.end())
            throw Failure(SWH_E_UNAVAILABLE,
                          "template '" + name +
                              "' of this session is not loaded (available: " + names_of(templates_) + ")");
        return it->second;
    }

    static std::optional<WorkflowState> readable_state(std::string_view metadata_json) {
        try {
            return WorkflowState::from_metadata(parse_object(metadata_json));
        } catch (const Failure &) {
            return std::nullopt; // no or broken state: the message goes through unchanged
        }
    }

    // Runs one transition, stores the new state, publishes its event, answers.
    void advance(const swh::cpp::RouteRequest &request, swh::cpp::Response &response, WorkflowState &state,
                 const Template &t, Transition transition) const {
        const bool starting = state.status == Status::NotStarted;
        const std::optional<std::string> previous = state.current_step_name();
        const Outcome outcome = transition(state, host_.now_us());
        Json answer = outcome == Outcome::Completed ? completion_answer(state) : step_answer(state, t);
        answer["workflow"] = state.to_json();

        Json event = answer;
        event.erase("workflow");
        event["session_id"] = std::string(request.session.id);
        const char *type = outcome == Outcome::Completed ? "workflow_completed"
                           : starting                    ? "workflow_started"
                                                         : "workflow_step";
        if (!starting && outcome == Outcome::StepEntered) event["previous_step"] = *previous;

        response.merge_session_metadata(state.as_patch().dump());
        response.publish(type, event.dump());
        response.json(200, answer.dump());
    }

    static Json step_answer(const WorkflowState &state, const Template &t) {
        const std::string name = *state.current_step_name();
        const Step *step = t.find_step(name);
        return {
            {"status", "step_executed"},
            {"template", state.template_name},
            {"step", name},
            {"step_index", *state.current_step},
            {"total_steps", state.steps.size()},
            {"prompt", step == nullptr ? "" : step->prompt},
            {"suggested_responses", step == nullptr ? std::vector<std::string>{} : step->suggested_responses},
            {"started_at", iso8601(*state.started_at_us)}};
    }

    static Json completion_answer(const WorkflowState &state) {
        std::vector<std::string> skipped;
        for (const std::string &s : state.steps)
            if (std::find(state.completed_steps.begin(), state.completed_steps.end(), s) ==
                state.completed_steps.end())
                skipped.push_back(s);
        return {{"status", "workflow_completed"},
                {"template", state.template_name},
                {"total_steps", state.steps.size()},
                {"completed_steps", state.completed_steps},
                {"skipped_steps", skipped},
                {"started_at", iso8601(*state.started_at_us)},
                {"completed_at", iso8601(*state.completed_at_us)},
                {"duration", *state.duration_seconds()}};
    }

    swh::cpp::Host host_;
    fs::path dir_;
    const TemplateSet templates_; // read-only after create: safe on any thread
};

} // namespace

SWH_CPP_SESSION_TYPE(Templated, "templated", "1.0.0", "Sessions that follow a YAML template's workflow steps",
                     kSchema)
