// The ABI edge every C++ provider plugin shares, whatever produces its
// replies (an HTTP upstream through http_provider.hpp, or local code as in
// plugins/provider_echo): the instance behind the void* handle, the guarded
// call into it, the checks of `start`'s arguments and JSON handed to a result
// sink. Every error text starts with the plugin's name ("<who>: ..."), so a
// log line says which provider failed. Header-only, part of the optional C++
// layer of the SDK: it adds no ABI, it only builds on the C one.
#pragma once

#include <swarmhost/cpp/edge.hpp>
#include <swarmhost/swarmhost.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

namespace swh::cpp::provider {

// One instance as the host holds it. `state` stays null when create failed:
// the host still reads last_error through the handle, then destroys it.
template <class State> struct Handle {
    edge::ErrorSlot errors;
    std::unique_ptr<State> state;
};

// Throws Failure(SWH_E_INVALID, "<who>: <what>") unless `ok`.
inline void require(bool ok, std::string_view who, std::string_view what) {
    if (!ok) throw edge::Failure(SWH_E_INVALID, std::string(who) + ": " + std::string(what));
}

// `create`: `make()` builds the state and may throw. The handle is handed out
// also on failure, so that the host can read last_error before destroying it.
template <class State, class Make> swh_status create(void **out_handle, Make &&make) noexcept {
    if (out_handle == nullptr) return SWH_E_INVALID;
    *out_handle = nullptr;
    std::unique_ptr<Handle<State>> handle;
    try {
        handle = std::make_unique<Handle<State>>();
    } catch (...) {
        return SWH_E_INTERNAL;
    }
    swh_status status = edge::guarded(handle->errors, [&]() -> swh_status {
        handle->state = make();
        return SWH_OK;
    });
    *out_handle = handle.release();
    return status;
}

template <class State> void destroy(void *handle) noexcept {
    std::unique_ptr<Handle<State>> owned(static_cast<Handle<State> *>(handle));
}

template <class State> const char *last_error(void *handle) noexcept {
    return handle == nullptr ? "" : static_cast<Handle<State> *>(handle)->errors.get();
}

// The state behind a handle, or null (no handle, or create failed): for the
// calls that report nothing, like `cancel`.
template <class State> State *state_of(void *handle) noexcept {
    return handle == nullptr ? nullptr : static_cast<Handle<State> *>(handle)->state.get();
}

// Runs `body(State &) -> swh_status` with every exception turned into a
// status plus last_error; a handle whose create failed is refused.
template <class State, class Body> swh_status call(void *handle, std::string_view who, Body &&body) noexcept {
    if (handle == nullptr) return SWH_E_INVALID;
    auto &instance = *static_cast<Handle<State> *>(handle);
    return edge::guarded(instance.errors, [&]() -> swh_status {
        require(instance.state != nullptr, who, "instance was not created successfully");
        return body(*instance.state);
    });
}

// `start`'s arguments: a request with every v1 member, a sink with every callback.
inline void check_start(const swh_provider_request *request, const swh_provider_sink *sink,
                        std::string_view who) {
    require(SWH_HAS_MEMBER(request, swh_provider_request, stream), who,
            "request is NULL or its struct_size is too small");
    require(SWH_HAS_MEMBER(sink, swh_provider_sink, done) && sink->chunk && sink->metadata && sink->done, who,
            "sink is NULL, too small or lacks a callback");
}

// Hands a JSON text to a result sink (get_metadata, health_check); a sink
// that refuses it fails the call with the sink's status.
inline swh_status emit_json(const swh_result_sink *sink, std::string_view json_text, std::string_view who) {
    require(SWH_HAS_MEMBER(sink, swh_result_sink, json) && sink->json, who, "sink without json callback");
    const swh_status status = sink->json(sink->ctx, edge::to_str(json_text));
    if (status != SWH_OK)
        throw edge::Failure(status,
                            std::string(who) + ": result sink returned status " + std::to_string(status));
    return SWH_OK;
}

// ------------------------------------------------- ABI 1.3 members, read safely

// The request's generation parameters (params_json), "" when the host's
// struct predates 1.3: a plugin declaring a lower minor still loads there.
inline std::string_view params_json(const swh_provider_request &request) {
    if (!SWH_HAS_MEMBER(&request, swh_provider_request, params_json)) return {};
    return edge::view(request.params_json, "params_json");
}

// A message's structured content (structured_json), "" when the host's
// struct predates 1.3. `message` must be reached with the host's stride.
inline std::string_view structured_json(const swh_message &message) {
    if (!SWH_HAS_MEMBER(&message, swh_message, structured_json)) return {};
    return edge::view(message.structured_json, "message.structured_json");
}

// ------------------------------------------------------ reply events (1.3)

// Token counts of a reply; -1 = unknown. cached_input_tokens is part of
// input_tokens, reasoning_tokens part of output_tokens (as in the ABI).
struct Usage {
    int64_t input_tokens = -1, output_tokens = -1, cached_input_tokens = -1, reasoning_tokens = -1;
};

// One reply event, borrowed like the C struct it becomes. Build it with the
// named constructors so that each kind carries exactly its fields.
struct ReplyEvent {
    uint32_t type = SWH_REPLY_FINISH;
    uint32_t index = 0;
    std::string_view id, name, text;
    Usage usage;

    // A piece of tool call `index` (0, 1, ... counting tool calls only):
    // the first piece carries id and name, every piece a fragment of the
    // argument JSON text, as the vendor sent it.
    static ReplyEvent tool_call(uint32_t index, std::string_view id, std::string_view name,
                                std::string_view fragment) {
        return {SWH_REPLY_TOOL_CALL, index, id, name, fragment, {}};
    }
    static ReplyEvent reasoning(std::string_view piece) {
        return {SWH_REPLY_REASONING, 0, {}, {}, piece, {}};
    }
    static ReplyEvent signature(std::string_view piece) {
        return {SWH_REPLY_REASONING_SIGNATURE, 0, {}, {}, piece, {}};
    }
    // "stop" | "length" | "tool_calls" | "content_filter"
    static ReplyEvent finish(std::string_view reason) { return {SWH_REPLY_FINISH, 0, {}, {}, reason, {}}; }
    static ReplyEvent usage_of(const Usage &u) { return {SWH_REPLY_USAGE, 0, {}, {}, {}, u}; }
};

// Whether the host's sink takes reply events (a 1.3 host).
inline bool takes_events(const swh_provider_sink &sink) noexcept {
    return sink.struct_size >= offsetof(swh_provider_sink, event) + sizeof sink.event &&
           sink.event != nullptr;
}

// Reports one event. A host older than 1.3 has no event callback: the event
// is dropped and SWH_OK returned (such a host never sends tools, and the
// finish reason and usage still reach it through the metadata keys).
// Otherwise the sink's answer: SWH_E_CANCELLED = the host stopped the reply.
inline swh_status send_event(const swh_provider_sink &sink, const ReplyEvent &e) noexcept {
    if (!takes_events(sink)) return SWH_OK;
    swh_reply_event raw{};
    raw.struct_size = sizeof raw;
    raw.type = e.type;
    raw.index = e.index;
    raw.id = edge::to_str(e.id);
    raw.name = edge::to_str(e.name);
    raw.text = edge::to_str(e.text);
    raw.input_tokens = e.usage.input_tokens;
    raw.output_tokens = e.usage.output_tokens;
    raw.cached_input_tokens = e.usage.cached_input_tokens;
    raw.reasoning_tokens = e.usage.reasoning_tokens;
    return sink.event(sink.ctx, &raw);
}

} // namespace swh::cpp::provider
