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

} // namespace swh::cpp::provider
