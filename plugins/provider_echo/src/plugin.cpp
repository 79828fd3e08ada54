// ABI glue of the "echo" provider plugin: a deterministic provider for tests
// and demos. It answers synchronously inside `start` (the contract allows
// `done` before `start` returns), streaming the reply word by word.
#include "echo_reply.hpp"
#include "echo_tools.hpp"
#include <swarmhost/cpp/attachments.hpp>
#include <swarmhost/cpp/edge.hpp>
#include <swarmhost/cpp/json_config.hpp>
#include <swarmhost/cpp/neutral.hpp>
#include <swarmhost/cpp/provider_edge.hpp>

#include <nlohmann/json.hpp>

#include <atomic>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

namespace {

using swh::echo::Settings;
using swh::edge::Failure;
using swh::edge::to_str;
using swh::edge::view;
using Json = nlohmann::json;
namespace provider = swh::cpp::provider;

constexpr const char *kName = "echo";
constexpr const char *kFailOnMessage = "echo: simulated upstream failure (fail_on)";

std::string dump(const Json &j) {
    return j.dump(-1, ' ', false, Json::error_handler_t::replace);
}

void require(bool ok, const char *what) {
    provider::require(ok, kName, what);
}

// The config schema, bound to Settings: one row declares a key, fills it at
// create and takes it at update_config.
constexpr auto kSchema = swh::cpp::schema(
    swh::cpp::setting<&Settings::prefix>(
        "prefix", "\"echo\"",
        "Reply prefix: the reply is \"<prefix>#<N> <last user message>\", N = number of user messages"),
    swh::cpp::setting<&Settings::chunk_words>("chunk_words", "1", "Words per streamed chunk (>= 1)"),
    swh::cpp::setting<&Settings::model>("model", "\"echo-1\"",
                                        "Model name reported when the request names none"),
    swh::cpp::setting<&Settings::fail_on>(
        "fail_on", "\"\"",
        "Test hook: when the last user message contains this text, stream half the reply, then fail with "
        "an upstream error (\"\" = off)"));

// What the schema cannot say.
void check(const Settings &settings) {
    if (settings.chunk_words < 1) throw Failure(SWH_E_INVALID, "echo: config 'chunk_words' must be >= 1");
    if (settings.model.empty()) throw Failure(SWH_E_INVALID, "echo: config 'model' must not be empty");
}

// One instance: its settings (replaced atomically by update_config) and the
// calls in progress (so that `cancel` from another thread can stop one).
class Echo {
  public:
    struct Call {
        std::atomic<bool> cancelled{false};
    };

    explicit Echo(Settings settings) : settings_(std::move(settings)) { check(settings_); }

    Settings settings() const {
        std::lock_guard lock(settings_mutex_);
        return settings_;
    }

    // The changed keys through the schema, then the checks: all or nothing.
    void update(const Json &changes) {
        std::lock_guard lock(settings_mutex_);
        Settings next = settings_;
        swh::cpp::apply_json(kSchema, changes, next, kName);
        check(next);
        settings_ = std::move(next);
    }

    std::shared_ptr<Call> begin_call(uint64_t id) {
        auto call = std::make_shared<Call>();
        std::lock_guard lock(calls_mutex_);
        calls_[id] = call;
        return call;
    }
    void end_call(uint64_t id, const std::shared_ptr<Call> &call) noexcept {
        std::lock_guard lock(calls_mutex_);
        auto it = calls_.find(id);
        if (it != calls_.end() && it->second == call) calls_.erase(it);
    }
    void cancel(uint64_t id) noexcept {
        std::lock_guard lock(calls_mutex_);
        auto it = calls_.find(id);
        if (it != calls_.end()) it->second->cancelled = true;
    }

  private:
    mutable std::mutex settings_mutex_;
    Settings settings_;
    std::mutex calls_mutex_;
    std::unordered_map<uint64_t, std::shared_ptr<Call>> calls_;
};

template <class Body> swh_status call(void *handle, Body &&body) noexcept {
    return provider::call<Echo>(handle, kName, std::forward<Body>(body));
}

// Everything one call will report, computed before the sink is touched so
// that nothing can fail half-way through a stream.
struct Plan {
    std::vector<std::string> chunks;
    size_t chunks_to_send = 0;
    bool fail = false; // fail_on matched: stop after chunks_to_send with SWH_E_UPSTREAM
    std::string provider_message_id;
    std::string provider_metadata;
    std::optional<swh::echo::ToolCall> tool_call; // instead of text
    std::string finish_reason;
};

// The request's generation parameters; a host older than ABI 1.3 sends none.
Json params_of(const swh_provider_request &request) {
    return swh::cpp::neutral::object_of(swh::cpp::provider::params_json(request), "echo",
                                        "request.params_json");
}

// The files named in a message's metadata.attachments (plugins/session_multimodal),
// as recorded there: the echo provider never reads them.
std::vector<swh::echo::AttachmentNote> notes_of(std::string_view metadata_json) {
    std::vector<swh::echo::AttachmentNote> notes;
    for (const auto &ref : swh::cpp::attachments::attachments_of(metadata_json))
        notes.push_back({ref.name, ref.mime_type, ref.size});
    return notes;
}

Plan plan_reply(const Settings &settings, const swh_provider_request &request) {
    require(request.message_count == 0 || request.messages != nullptr, "request.messages is NULL");
    // Array stride: the struct_size of the host's swh_message (as for the
    // config schema), so a newer host with a longer struct still works.
    size_t stride = sizeof(swh_message);
    if (request.message_count > 0) {
        stride = request.messages[0].struct_size;
        require(SWH_HAS_MEMBER(&request.messages[0], swh_message, provider_metadata_json),
                "request.messages[0].struct_size is too small");
    }
    size_t user_messages = 0, prompt_words = 0;
    std::string_view last_user, last_user_metadata;
    std::vector<swh::echo::Turn> turns;
    for (size_t i = 0; i < request.message_count; ++i) {
        const auto &m = *reinterpret_cast<const swh_message *>(
            reinterpret_cast<const char *>(request.messages) + i * stride);
        std::string_view content = view(m.content, "message.content");
        turns.push_back(
            {std::string(view(m.role, "message.role")), std::string(content),
             swh::cpp::neutral::structured_of(swh::cpp::provider::structured_json(m), i, "echo")});
        prompt_words += swh::echo::count_words(content);
        if (view(m.role, "message.role") == "user") {
            ++user_messages;
            last_user = content;
            last_user_metadata = view(m.metadata_json, "message.metadata_json");
        }
    }

    const Json params = params_of(request);
    Plan plan;
    plan.tool_call = swh::echo::choose_tool_call(params, turns);
    std::string reply;
    if (auto answer = swh::echo::answer_tool_results(turns))
        reply = std::move(*answer);
    else if (!plan.tool_call)
        reply = swh::echo::build_reply(settings.prefix, user_messages, last_user) +
                swh::echo::attachments_note(notes_of(last_user_metadata));
    plan.finish_reason = plan.tool_call ? "tool_calls" : swh::echo::apply_limits(reply, params);
    std::string_view emitted =
        swh::echo::continuation(reply, view(request.assistant_prefix, "assistant_prefix"));
    std::string_view model = view(request.model, "request.model");
    std::string session_id;
    if (SWH_HAS_MEMBER(request.session, swh_session, id))
        session_id = view(request.session->id, "session.id");

    plan.chunks = swh::echo::make_chunks(emitted, settings.chunk_words);
    plan.fail = !settings.fail_on.empty() && last_user.find(settings.fail_on) != std::string_view::npos;
    plan.chunks_to_send = plan.fail ? plan.chunks.size() / 2 : plan.chunks.size();
    plan.provider_message_id = "echo-" + session_id + "-" + std::to_string(user_messages);
    Json metadata = {
        {"model", model.empty() ? settings.model : std::string(model)},
        {"finish_reason", plan.finish_reason},
        {"usage", {{"prompt_tokens", prompt_words}, {"completion_tokens", swh::echo::count_words(emitted)}}}};
    // What arrived, so a test can see each parameter reached the provider.
    if (!params.empty()) metadata["echo_params"] = params;
    plan.provider_metadata = dump(metadata);
    return plan;
}

// A reply event through the ABI 1.3 sink member; false = the host stopped.
bool send_event(const swh_provider_sink &sink, uint32_t type, std::string_view id, std::string_view name,
                std::string_view text) noexcept {
    swh_reply_event event{};
    event.struct_size = sizeof event;
    event.type = type;
    event.id = to_str(id);
    event.name = to_str(name);
    event.text = to_str(text);
    event.input_tokens = event.output_tokens = event.cached_input_tokens = event.reasoning_tokens = -1;
    return sink.event(sink.ctx, &event) == SWH_OK;
}

// The tool call as a real provider streams one: id and name first, then the
// arguments in two fragments (cut on a UTF-8 boundary).
bool send_tool_call(const swh_provider_sink &sink, const swh::echo::ToolCall &tool_call) noexcept {
    if (!SWH_HAS_MEMBER(&sink, swh_provider_sink, event) || sink.event == nullptr) return true;
    const std::string_view arguments = tool_call.arguments;
    std::size_t cut = arguments.size() / 2;
    while (cut > 0 && (static_cast<unsigned char>(arguments[cut]) & 0xC0) == 0x80)
        --cut;
    return send_event(sink, SWH_REPLY_TOOL_CALL, tool_call.id, tool_call.name, "") &&
           send_event(sink, SWH_REPLY_TOOL_CALL, "", "", arguments.substr(0, cut)) &&
           send_event(sink, SWH_REPLY_TOOL_CALL, "", "", arguments.substr(cut)) &&
           send_event(sink, SWH_REPLY_FINISH, "", "", "tool_calls");
}

// Streams a plan to the sink and calls done exactly once. Never throws.
void run(const Plan &plan, const swh_provider_sink &sink, const Echo::Call &call) noexcept {
    if (plan.tool_call && !send_tool_call(sink, *plan.tool_call)) {
        sink.done(sink.ctx, SWH_E_CANCELLED, to_str("echo: the host stopped the stream"));
        return;
    }
    for (size_t i = 0; i < plan.chunks_to_send; ++i) {
        if (call.cancelled) {
            sink.done(sink.ctx, SWH_E_CANCELLED, to_str("echo: call cancelled"));
            return;
        }
        if (sink.chunk(sink.ctx, to_str(plan.chunks[i])) != SWH_OK) {
            sink.done(sink.ctx, SWH_E_CANCELLED, to_str("echo: the host stopped the stream"));
            return;
        }
    }
    if (plan.fail) {
        sink.done(sink.ctx, SWH_E_UPSTREAM, to_str(kFailOnMessage));
        return;
    }
    sink.metadata(sink.ctx, to_str(plan.provider_message_id), to_str(plan.provider_metadata));
    sink.done(sink.ctx, SWH_OK, to_str(""));
}

// ---------------------------------------------------------------- table

swh_status echo_create(const swh_host_api *host, const swh_config *cfg, void **out_handle) noexcept {
    return provider::create<Echo>(
        out_handle, [&] { return std::make_unique<Echo>(kSchema.read(swh::cpp::Config(host, cfg))); });
}

swh_status echo_start(void *handle, const swh_provider_request *request,
                      const swh_provider_sink *sink) noexcept {
    return call(handle, [&](Echo &echo) -> swh_status {
        provider::check_start(request, sink, kName);
        const Plan plan = plan_reply(echo.settings(), *request);
        auto active = echo.begin_call(request->call_id);
        // From here on nothing throws: the sink is in use, done is owed.
        run(plan, *sink, *active);
        echo.end_call(request->call_id, active);
        return SWH_OK;
    });
}

void echo_cancel(void *handle, uint64_t call_id) noexcept {
    if (Echo *echo = provider::state_of<Echo>(handle)) echo->cancel(call_id);
}

swh_status echo_get_metadata(void *handle, const swh_result_sink *sink) noexcept {
    return call(handle, [&](Echo &echo) -> swh_status {
        Settings settings = echo.settings();
        return provider::emit_json(sink,
                                   dump(Json{{"provider", "echo"},
                                             {"model", settings.model},
                                             {"prefix", settings.prefix},
                                             {"chunk_words", settings.chunk_words}}),
                                   kName);
    });
}

swh_status echo_update_config(void *handle, swh_str config_json) noexcept {
    return call(handle, [&](Echo &echo) -> swh_status {
        Json changes = Json::parse(view(config_json, "config_json"), nullptr, false);
        if (changes.is_discarded()) throw Failure(SWH_E_INVALID, "echo: update_config: not valid JSON");
        echo.update(changes);
        return SWH_OK;
    });
}

swh_status echo_health_check(void *handle, const swh_result_sink *sink) noexcept {
    return call(handle, [&](Echo &) -> swh_status {
        return provider::emit_json(sink, R"({"status":"healthy","provider":"echo"})", kName);
    });
}

// ----------------------------------------------------------- descriptor

constexpr swh_provider_v1 kTable = {
    sizeof(swh_provider_v1),    echo_create,        provider::destroy<Echo>,
    provider::last_error<Echo>, echo_start,         echo_cancel,
    echo_get_metadata,          echo_update_config, echo_health_check,
};

constexpr swh_plugin_descriptor kDescriptor = {
    sizeof(swh_plugin_descriptor),
    SWH_ABI_VERSION_MAJOR,
    0, // the lowest minor this plugin needs: it uses only 1.0 members
    "echo",
    "0.1.0",
    "Deterministic test provider: streams \"<prefix>#<N> <last user message>\" word by word",
    SWH_KIND_PROVIDER,
    SWH_IFACE_PROVIDER_V1,
    kSchema.fields.data(),
    kSchema.fields.size(),
    &kTable,
};

} // namespace

extern "C" SWH_EXPORT const swh_plugin_descriptor *swh_plugin_entry(void) {
    return &kDescriptor;
}
