#include "isolation/isolate.hpp"

#include "isolation/plugin_process.hpp"
#include "isolation/provider_process.hpp"
#include "loader/abi_convert.hpp"
#include "loader/host_services.hpp"
#include "tracing/span.hpp"

#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <spdlog/spdlog.h>
#include <unistd.h>
#include <vector>

namespace swh::isolation {

namespace {

// Owned by the stand-in library: the kind table the daemon calls, and what
// every instance needs to start its child.
struct ProxyState {
    std::string helper;
    std::chrono::milliseconds timeout{5000};
    swh_middleware_v1 middleware{};
    swh_hook_v1 hook{};
    swh_storage_v1 storage{};
    swh_session_type_v1 session_type{};
    swh_provider_v1 provider{};
};

// A session type's route table, fetched from the child once at create: the
// ABI promises the daemon pointers that stay valid for the instance's life,
// whatever happens to the child.
struct RouteTable {
    std::vector<std::string> methods, paths; // filled first, never changed after
    std::vector<swh_route> routes;
};

// A stream opened in one child; useless once that child is gone.
struct ProxyStream {
    uint64_t id = 0;
    uint64_t generation = 0;
};

// The handle the daemon holds for one isolated instance. A provider's calls
// go through `provider` (a multiplexed, streaming channel), every other
// kind's through `process` (one request, one reply).
struct Handle {
    Handle(ProcessOptions options, const swh_host_api *host, Json config)
        : process(options, host, config),
          provider(options.kind == SWH_KIND_PROVIDER
                       ? std::make_shared<ProviderProcess>(options, host, std::move(config))
                       : nullptr) {}
    Handle(const Handle &) = delete;
    Handle &operator=(const Handle &) = delete;
    ~Handle() {
        if (provider) provider->stop(); // before the host table goes
    }
    void set_error(std::string text) {
        if (provider)
            provider->set_error(std::move(text));
        else
            process.set_error(std::move(text));
    }
    const char *error() { return provider ? provider->error() : process.error(); }
    PluginProcess process;
    std::shared_ptr<ProviderProcess> provider;
    std::mutex streams_mutex;
    std::map<uint64_t, std::unique_ptr<ProxyStream>> streams;
    uint64_t next_stream = 1;
    RouteTable routes; // session types only
};

Handle &handle_of(void *handle) {
    return *static_cast<Handle *>(handle);
}

// Every table function is called through a C pointer: nothing may escape.
template <class F> swh_status guarded(void *handle, F &&body) noexcept {
    try {
        return body(handle_of(handle));
    } catch (const std::exception &e) {
        handle_of(handle).set_error(std::string("isolation proxy: ") + e.what());
    } catch (...) {
        handle_of(handle).set_error("isolation proxy: unknown exception");
    }
    return SWH_E_INTERNAL;
}

// The child's answer to an operation: its status, and its error as ours.
swh_status answered(Handle &h, const Json &reply) {
    const swh_status status = reply.value("status", SWH_E_INTERNAL);
    if (status != SWH_OK) h.set_error(reply.value("error", std::string()));
    return status;
}

Json input_to_wire(const char *op, const swh_middleware_input &in) {
    return Json{{"op", op},
                {"stage", in.stage},
                {"session", to_wire(loader::from_abi(*in.session))},
                {"message", to_wire(loader::from_abi(*in.message))},
                {"context", loader::parse_object(loader::to_string(in.context_json), "context")}};
}

// --------------------------------------------------------------- common

swh_status fetch_routes(Handle &h);

swh_status proxy_create(const swh_host_api *host, const swh_config *cfg, void **out_handle) noexcept {
    if (host == nullptr || out_handle == nullptr || host->config_json == nullptr) return SWH_E_INVALID;
    try {
        // The daemon's host table belongs to the instance; its services keep
        // the instance's library (this stand-in) loaded, and the stand-in
        // carries our state. That is how a context-free create finds it.
        const auto &services = *static_cast<const loader::HostServices *>(host->host_ctx);
        const auto *library = static_cast<const loader::PluginLibrary *>(services.keep_loaded().get());
        const auto *state = library ? static_cast<const ProxyState *>(library->proxy_state().get()) : nullptr;
        if (state == nullptr) {
            spdlog::error("[{}] isolation: the instance's library is not an isolation stand-in",
                          services.instance_name());
            return SWH_E_INTERNAL;
        }
        swh_str text{nullptr, 0};
        if (host->config_json(host->host_ctx, cfg, &text) != SWH_OK) return SWH_E_INVALID;
        ProcessOptions options{state->helper,
                               library->file(),
                               library->sha256(),
                               services.instance_name(),
                               library->kind(),
                               state->timeout,
                               static_cast<int>(services.http_version())};
        auto handle =
            std::make_unique<Handle>(std::move(options), host, Json::parse(loader::to_string(text)));
        swh_status status = handle->provider ? handle->provider->start() : handle->process.start();
        if (status == SWH_OK && library->kind() == SWH_KIND_SESSION_TYPE) status = fetch_routes(*handle);
        *out_handle = handle.release(); // the daemon reads last_error, then destroys, on failure too
        return status;
    } catch (const std::exception &e) {
        spdlog::error("isolation: create failed: {}", e.what());
        return SWH_E_INTERNAL;
    }
}

void proxy_destroy(void *handle) noexcept {
    std::unique_ptr<Handle> owned(static_cast<Handle *>(handle)); // stops the child
}

const char *proxy_last_error(void *handle) noexcept {
    try {
        return handle ? handle_of(handle).error() : "";
    } catch (...) {
        return "";
    }
}

uint32_t proxy_mask(void *handle) noexcept {
    return handle ? handle_of(handle).process.mask() : 0;
}

// ----------------------------------------------------------- middleware

swh_status mw_process(void *handle, const swh_middleware_input *input,
                      const swh_message_editor *editor) noexcept {
    return guarded(handle, [&](Handle &h) {
        Json reply;
        if (const swh_status s = h.process.call(input_to_wire("process", *input), reply); s != SWH_OK)
            return s;
        const swh_status status = answered(h, reply);
        if (status != SWH_OK) return status;
        // Replayed on the daemon's editor, on the calling thread, in the
        // order the daemon applies them anyway.
        if (auto it = reply.find("content"); it != reply.end() && it->is_string())
            editor->set_content(editor->ctx, loader::to_str(it->get_ref<const std::string &>()));
        if (auto it = reply.find("structured"); it != reply.end() && it->is_object()) {
            const std::string structured = it->dump();
            editor->set_structured(editor->ctx, loader::to_str(structured));
        }
        if (auto it = reply.find("metadata"); it != reply.end() && it->is_object() && !it->empty()) {
            const std::string patch = it->dump();
            editor->merge_metadata(editor->ctx, loader::to_str(patch));
        }
        if (auto it = reply.find("rejection"); it != reply.end() && it->is_string())
            editor->reject(editor->ctx, loader::to_str(it->get_ref<const std::string &>()));
        return SWH_OK;
    });
}

void mw_on_error(void *handle, const swh_middleware_input *input, swh_status status, swh_str error) noexcept {
    guarded(handle, [&](Handle &h) {
        Json request = input_to_wire("on_error", *input);
        request["status"] = status;
        request["error"] = loader::to_string(error);
        Json reply;
        // Never starts a child: right after a crash this would only retry it.
        PluginProcess::CallOptions options;
        options.may_start = false;
        return h.process.call(request, reply, options);
    });
}

swh_status mw_stream_open(void *handle, const swh_middleware_input *input, void **out_stream) noexcept {
    return guarded(handle, [&](Handle &h) {
        auto stream = std::make_unique<ProxyStream>();
        {
            std::lock_guard lock(h.streams_mutex);
            stream->id = h.next_stream++;
        }
        Json request = input_to_wire("stream_open", *input);
        request["id"] = stream->id;
        Json reply;
        if (const swh_status s = h.process.call(request, reply, {}, &stream->generation); s != SWH_OK)
            return s;
        if (const swh_status s = answered(h, reply); s != SWH_OK) return s;
        *out_stream = stream.get();
        std::lock_guard lock(h.streams_mutex);
        h.streams.emplace(stream->id, std::move(stream));
        return SWH_OK;
    });
}

// Passes what the child's stream emitted on to the daemon's emitter.
void replay_emits(const Json &reply, const swh_chunk_emitter *out) {
    if (auto it = reply.find("text"); it != reply.end() && it->is_string() && !it->empty())
        out->emit(out->ctx, loader::to_str(it->get_ref<const std::string &>()));
    if (auto it = reply.find("metadata"); it != reply.end() && it->is_object() && !it->empty()) {
        const std::string patch = it->dump();
        out->merge_metadata(out->ctx, loader::to_str(patch));
    }
}

swh_status stream_call(Handle &h, const ProxyStream &stream, Json request, const swh_chunk_emitter *out) {
    request["id"] = stream.id;
    Json reply;
    PluginProcess::CallOptions options;
    options.may_start = false;
    options.in_child = stream.generation;
    if (const swh_status s = h.process.call(request, reply, options); s != SWH_OK) return s;
    replay_emits(reply, out); // what was emitted counts, even when the call failed
    return answered(h, reply);
}

swh_status mw_stream_chunk(void *handle, void *stream, swh_str text, const swh_chunk_emitter *out) noexcept {
    return guarded(handle, [&](Handle &h) {
        return stream_call(h, *static_cast<ProxyStream *>(stream),
                           Json{{"op", "stream_chunk"}, {"text", loader::to_string(text)}}, out);
    });
}

swh_status mw_stream_close(void *handle, void *stream, const swh_chunk_emitter *out) noexcept {
    return guarded(handle, [&](Handle &h) {
        const auto *proxy = static_cast<ProxyStream *>(stream);
        const swh_status status = stream_call(h, *proxy, Json{{"op", "stream_close"}}, out);
        std::lock_guard lock(h.streams_mutex); // freed whatever the child answered
        h.streams.erase(proxy->id);
        return status;
    });
}

// ----------------------------------------------------------------- hook

swh_status hook_on_event(void *handle, const swh_event *event) noexcept {
    return guarded(handle, [&](Handle &h) {
        Json request{{"op", "on_event"},
                     {"type", event->type},
                     {"time", event->time},
                     {"session", to_wire(loader::from_abi(*event->session))},
                     {"message", event->message ? to_wire(loader::from_abi(*event->message)) : Json()},
                     {"details", loader::parse_object(loader::to_string(event->details_json), "details")}};
        Json reply;
        if (const swh_status s = h.process.call(request, reply); s != SWH_OK) return s;
        return answered(h, reply);
    });
}

swh_status hook_render_metrics(void *handle, const swh_result_sink *sink) noexcept {
    return guarded(handle, [&](Handle &h) {
        Json reply;
        if (const swh_status s = h.process.call(Json{{"op", "render_metrics"}}, reply); s != SWH_OK) return s;
        if (const swh_status s = answered(h, reply); s != SWH_OK) return s;
        const std::string &text = reply.at("text").get_ref<const std::string &>();
        return text.empty() ? SWH_OK : sink->json(sink->ctx, loader::to_str(text));
    });
}

// -------------------------------------------------------------- storage

// One storage operation in the child: its status, its error as ours.
swh_status storage_call(Handle &h, const Json &request, Json &reply) {
    if (const swh_status s = h.process.call(request, reply); s != SWH_OK) return s;
    return answered(h, reply);
}

// The child's results replayed on the daemon's sink, on the calling thread,
// in the order the child's plugin emitted them (sessions, messages, json);
// a sink that says stop is obeyed, as the real plugin would.
swh_status replay_results(const Json &reply, const swh_result_sink *sink) {
    if (auto it = reply.find("sessions"); it != reply.end() && sink->session)
        for (const auto &wire : *it) {
            const Session session = session_from_wire(wire); // the ABI struct points into it
            const loader::SessionAbi abi(session);
            if (const swh_status s = sink->session(sink->ctx, abi.get()); s != SWH_OK) return s;
        }
    if (auto it = reply.find("messages"); it != reply.end() && sink->message)
        for (const auto &wire : *it) {
            const Message message = message_from_wire(wire);
            const loader::MessageAbi abi(message);
            if (const swh_status s = sink->message(sink->ctx, abi.get()); s != SWH_OK) return s;
        }
    if (auto it = reply.find("json"); it != reply.end() && sink->json)
        for (const auto &text : *it)
            if (const swh_status s =
                    sink->json(sink->ctx, loader::to_str(text.get_ref<const std::string &>()));
                s != SWH_OK)
                return s;
    return SWH_OK;
}

swh_status storage_query(Handle &h, const Json &request, const swh_result_sink *sink) {
    Json reply;
    if (const swh_status s = storage_call(h, request, reply); s != SWH_OK) return s;
    return replay_results(reply, sink);
}

swh_status st_create_session(void *handle, const swh_session *session) noexcept {
    return guarded(handle, [&](Handle &h) {
        Json reply;
        return storage_call(
            h, Json{{"op", "create_session"}, {"session", to_wire(loader::from_abi(*session))}}, reply);
    });
}

swh_status st_get_session(void *handle, swh_str session_id, const swh_result_sink *sink) noexcept {
    return guarded(handle, [&](Handle &h) {
        return storage_query(h, Json{{"op", "get_session"}, {"id", loader::to_string(session_id)}}, sink);
    });
}

swh_status st_update_session(void *handle, const swh_session *session, uint32_t fields) noexcept {
    return guarded(handle, [&](Handle &h) {
        Json reply;
        return storage_call(h,
                            Json{{"op", "update_session"},
                                 {"session", to_wire(loader::from_abi(*session))},
                                 {"fields", fields}},
                            reply);
    });
}

swh_status st_delete_session(void *handle, swh_str session_id) noexcept {
    return guarded(handle, [&](Handle &h) {
        Json reply;
        return storage_call(h, Json{{"op", "delete_session"}, {"id", loader::to_string(session_id)}}, reply);
    });
}

swh_status st_list_sessions(void *handle, const swh_session_filter *filter,
                            const swh_result_sink *sink) noexcept {
    return guarded(handle, [&](Handle &h) {
        return storage_query(h,
                             Json{{"op", "list_sessions"},
                                  {"user_id", loader::to_string(filter->user_id)},
                                  {"status", loader::to_string(filter->status)},
                                  {"limit", filter->limit},
                                  {"offset", filter->offset}},
                             sink);
    });
}

swh_status st_add_message(void *handle, const swh_message *message) noexcept {
    return guarded(handle, [&](Handle &h) {
        Json reply;
        return storage_call(h, Json{{"op", "add_message"}, {"message", to_wire(loader::from_abi(*message))}},
                            reply);
    });
}

swh_status st_get_messages(void *handle, const swh_message_query *query,
                           const swh_result_sink *sink) noexcept {
    return guarded(handle, [&](Handle &h) {
        return storage_query(h,
                             Json{{"op", "get_messages"},
                                  {"session_id", loader::to_string(query->session_id)},
                                  {"role", loader::to_string(query->role)},
                                  {"since", query->since},
                                  {"limit", query->limit}},
                             sink);
    });
}

swh_status st_health_check(void *handle, const swh_result_sink *sink) noexcept {
    return guarded(handle, [&](Handle &h) {
        Json reply;
        if (const swh_status s = h.process.call(Json{{"op", "health_check"}}, reply); s != SWH_OK) {
            // /healthz shows why the store is unhealthy (crashed, restarting...).
            const std::string report =
                Json{{"status", "unhealthy"}, {"error", std::string(h.process.error())}}.dump();
            if (sink->json) sink->json(sink->ctx, loader::to_str(report));
            return s;
        }
        if (const swh_status s = replay_results(reply, sink); s != SWH_OK) return s;
        return answered(h, reply);
    });
}

// --------------------------------------------------------- session type

swh_status fetch_routes(Handle &h) {
    Json reply;
    if (const swh_status s = h.process.call(Json{{"op", "routes"}}, reply); s != SWH_OK) return s;
    if (const swh_status s = answered(h, reply); s != SWH_OK) return s;
    RouteTable &table = h.routes;
    for (const auto &route : reply.at("routes")) {
        table.methods.push_back(route.at("method").get<std::string>());
        table.paths.push_back(route.at("path").get<std::string>());
    }
    for (std::size_t i = 0; i < table.methods.size(); ++i)
        table.routes.push_back(
            swh_route{sizeof(swh_route), table.methods[i].c_str(), table.paths[i].c_str()});
    return SWH_OK;
}

swh_status stype_routes(void *handle, const swh_route **out_routes, size_t *out_count) noexcept {
    return guarded(handle, [&](Handle &h) {
        *out_routes = h.routes.routes.empty() ? nullptr : h.routes.routes.data();
        *out_count = h.routes.routes.size();
        return SWH_OK;
    });
}

// The whole request crosses; what the client sent (body, query, path...)
// travels as raw bytes beside the JSON (wire.hpp).
Json route_request_to_wire(const swh_route_request &in) {
    Json bytes{{"caller", loader::to_string(in.caller_user_id)},
               {"query", loader::to_string(in.query)},
               {"content_type", loader::to_string(in.content_type)},
               {"body", loader::to_string(in.body)}};
    std::size_t params = 0;
    if (in.struct_size >= offsetof(swh_route_request, path_param_count) + sizeof in.path_param_count) {
        bytes["path"] = loader::to_string(in.path);
        for (; params < in.path_param_count; ++params)
            bytes["param" + std::to_string(params)] = loader::to_string(in.path_params[params]);
    }
    return Json{{"op", "handle_route"},
                {"route_index", in.route_index},
                {"session", to_wire(loader::from_abi(*in.session))},
                {"params", params},
                {kBytesKey, std::move(bytes)}};
}

// The child's recorded answer replayed on the daemon's response, on the
// calling thread: the metadata patch and the events (which the ABI wants
// before respond), then respond.
void replay_route_answer(const Json &reply, const swh_route_response *out) {
    if (auto it = reply.find("metadata"); it != reply.end() && it->is_object()) {
        const std::string patch = it->dump();
        out->merge_session_metadata(out->ctx, loader::to_str(patch));
    }
    if (auto it = reply.find("events"); it != reply.end())
        for (const auto &event : *it) {
            const std::string &type = event.at(0).get_ref<const std::string &>();
            const std::string payload = event.at(1).dump();
            out->publish(out->ctx, loader::to_str(type), loader::to_str(payload));
        }
    if (reply.value("answered", false))
        out->respond(out->ctx, reply.at("http_status").get<uint32_t>(),
                     loader::to_str(bytes_at(reply, "content_type")),
                     loader::to_str(bytes_at(reply, "body")));
}

// A request that cannot fit in one frame is refused here: sending it would
// fail like a dead child and cost a restart.
constexpr std::size_t kMaxRouteBody = kMaxFrameBytes - (std::size_t{1} << 20);

swh_status stype_handle_route(void *handle, const swh_route_request *request,
                              const swh_route_response *response) noexcept {
    return guarded(handle, [&](Handle &h) {
        if (request->body.len > kMaxRouteBody) {
            h.process.set_error("a request body of " + std::to_string(request->body.len) +
                                " bytes is over what an isolated session type takes (" +
                                std::to_string(kMaxRouteBody) + ")");
            return SWH_E_INVALID;
        }
        Json reply;
        if (const swh_status s = h.process.call(route_request_to_wire(*request), reply); s != SWH_OK)
            return s;
        const swh_status status = answered(h, reply);
        if (status != SWH_OK) return status;
        replay_route_answer(reply, response);
        return SWH_OK;
    });
}

swh_status stype_on_session_created(void *handle, const swh_session *session,
                                    const swh_result_sink *sink) noexcept {
    return guarded(handle, [&](Handle &h) {
        Json reply;
        const Json request{{"op", "on_session_created"}, {"session", to_wire(loader::from_abi(*session))}};
        if (const swh_status s = h.process.call(request, reply); s != SWH_OK) return s;
        if (const swh_status s = answered(h, reply); s != SWH_OK) return s;
        const Json &patch = reply.at("metadata");
        if (patch.empty()) return SWH_OK;
        const std::string text = patch.dump();
        return sink->json(sink->ctx, loader::to_str(text));
    });
}

// One op for both: the child's wrapper calls on_user_message when the plugin
// has it, else on_message, as the daemon does; the stand-in offers the same.
swh_status vet_message(Handle &h, const swh_session &session, const swh_message &message, swh_str caller,
                       const swh_message_editor *editor) {
    const Json request{{"op", "on_user_message"},
                       {"session", to_wire(loader::from_abi(session))},
                       {"message", to_wire(loader::from_abi(message))},
                       {kBytesKey, {{"caller", loader::to_string(caller)}}}};
    Json reply;
    if (const swh_status s = h.process.call(request, reply); s != SWH_OK) return s;
    // The edits, replayed on the daemon's editor in the order it applies them.
    if (auto it = reply.find("content"); it != reply.end() && it->is_string())
        editor->set_content(editor->ctx, loader::to_str(it->get_ref<const std::string &>()));
    if (auto it = reply.find("metadata"); it != reply.end() && it->is_object() && !it->empty()) {
        const std::string patch = it->dump();
        editor->merge_metadata(editor->ctx, loader::to_str(patch));
    }
    if (auto it = reply.find("rejection"); it != reply.end() && it->is_string())
        editor->reject(editor->ctx, loader::to_str(it->get_ref<const std::string &>()));
    return answered(h, reply);
}

swh_status stype_on_user_message(void *handle, const swh_session_message_input *input,
                                 const swh_message_editor *editor) noexcept {
    return guarded(handle, [&](Handle &h) {
        return vet_message(h, *input->session, *input->message, input->caller_user_id, editor);
    });
}

swh_status stype_on_message(void *handle, const swh_session *session, const swh_message *message,
                            const swh_message_editor *editor) noexcept {
    return guarded(handle, [&](Handle &h) { return vet_message(h, *session, *message, swh_str{}, editor); });
}

swh_status stype_authorize(void *handle, const swh_session *session, swh_str caller,
                           swh_str action) noexcept {
    return guarded(handle, [&](Handle &h) {
        Json reply;
        const Json request{{"op", "authorize"},
                           {"session", to_wire(loader::from_abi(*session))},
                           {"action", loader::to_string(action)},
                           {kBytesKey, {{"caller", loader::to_string(caller)}}}};
        if (const swh_status s = h.process.call(request, reply); s != SWH_OK) return s;
        return answered(h, reply);
    });
}

// ------------------------------------------------------------- provider

// The request as the child's wrapper rebuilds it: every message and the
// session in wire form (all fields), the strings and parameters as given.
Json provider_request_to_wire(const swh_provider_request &in) {
    Json messages = Json::array();
    if (in.message_count > 0 && in.messages != nullptr) {
        // The stride the ABI prescribes (messages[0].struct_size).
        const auto *base = reinterpret_cast<const char *>(in.messages);
        const std::size_t stride = in.messages[0].struct_size;
        for (std::size_t i = 0; i < in.message_count; ++i)
            messages.push_back(
                to_wire(loader::from_abi(*reinterpret_cast<const swh_message *>(base + i * stride))));
    }
    Json request{{"op", "provider_start"},
                 {"id", in.call_id},
                 {"session", in.session ? to_wire(loader::from_abi(*in.session)) : Json()},
                 {"messages", std::move(messages)},
                 {"model", loader::to_string(in.model)},
                 {"system_prompt", loader::to_string(in.system_prompt)},
                 {"assistant_prefix", loader::to_string(in.assistant_prefix)},
                 {"stream", in.stream != 0}};
    if (SWH_HAS_MEMBER(&in, swh_provider_request, params_json) && in.params_json.len > 0)
        request["params"] = loader::parse_object(loader::to_string(in.params_json), "params");
    // The daemon's provider span is current here: the child's http_start
    // requests send it upstream as their parent.
    if (std::string traceparent = tracing::current_traceparent(); !traceparent.empty())
        request["traceparent"] = std::move(traceparent);
    return request;
}

swh_status pv_start(void *handle, const swh_provider_request *request,
                    const swh_provider_sink *sink) noexcept {
    return guarded(handle, [&](Handle &h) {
        return h.provider->start_call(request->call_id, provider_request_to_wire(*request), sink);
    });
}

void pv_cancel(void *handle, uint64_t call_id) noexcept {
    guarded(handle, [&](Handle &h) {
        h.provider->cancel(call_id);
        return SWH_OK;
    });
}

swh_status pv_get_metadata(void *handle, const swh_result_sink *sink) noexcept {
    return guarded(handle, [&](Handle &h) {
        Json reply;
        if (const swh_status s = h.provider->call(Json{{"op", "get_metadata"}}, reply); s != SWH_OK) return s;
        if (const swh_status s = answered(h, reply); s != SWH_OK) return s;
        const std::string text = reply.at("json").dump();
        return sink->json(sink->ctx, loader::to_str(text));
    });
}

swh_status pv_update_config(void *handle, swh_str config_json) noexcept {
    return guarded(handle, [&](Handle &h) {
        Json reply;
        const Json request{{"op", "update_config"},
                           {"changes", loader::parse_object(loader::to_string(config_json), "config")}};
        if (const swh_status s = h.provider->call(request, reply); s != SWH_OK) return s;
        return answered(h, reply);
    });
}

swh_status pv_health_check(void *handle, const swh_result_sink *sink) noexcept {
    return guarded(handle, [&](Handle &h) {
        Json reply;
        if (const swh_status s = h.provider->call(Json{{"op", "health_check"}}, reply); s != SWH_OK) {
            // GET /v1/providers shows why (crashed, restarting...).
            const std::string report =
                Json{{"status", "unhealthy"}, {"error", std::string(h.error())}}.dump();
            if (sink->json) sink->json(sink->ctx, loader::to_str(report));
            return s;
        }
        const std::string text = reply.at("json").dump();
        if (sink->json) sink->json(sink->ctx, loader::to_str(text));
        return answered(h, reply);
    });
}

// A copy of the real kind table, sized by the plugin (absent members NULL).
template <class Table> Table real_table(const loader::PluginLibrary &real) {
    Table table{};
    std::memcpy(&table, real.vtable(), std::min<std::size_t>(real.vtable_size(), sizeof(Table)));
    return table;
}

void fill_middleware(swh_middleware_v1 &t, const swh_middleware_v1 &real) {
    t.struct_size = sizeof t;
    t.create = proxy_create;
    t.destroy = proxy_destroy;
    t.last_error = proxy_last_error;
    t.stages = proxy_mask;
    t.process = mw_process;
    t.on_error = real.on_error ? mw_on_error : nullptr; // offer what the plugin offers
    if (real.stream_open && real.stream_chunk && real.stream_close) {
        t.stream_open = mw_stream_open;
        t.stream_chunk = mw_stream_chunk;
        t.stream_close = mw_stream_close;
    }
}

void fill_hook(swh_hook_v1 &t, const swh_hook_v1 &real) {
    t.struct_size = sizeof t;
    t.create = proxy_create;
    t.destroy = proxy_destroy;
    t.last_error = proxy_last_error;
    t.events = proxy_mask;
    t.on_event = hook_on_event;
    t.render_metrics = real.render_metrics ? hook_render_metrics : nullptr;
}

void fill_storage(swh_storage_v1 &t, const swh_storage_v1 &real) {
    t.struct_size = sizeof t;
    t.create = proxy_create;
    t.destroy = proxy_destroy;
    t.last_error = proxy_last_error;
    // Offer what the plugin offers: a member it left NULL stays NULL.
    t.create_session = real.create_session ? st_create_session : nullptr;
    t.get_session = real.get_session ? st_get_session : nullptr;
    t.update_session = real.update_session ? st_update_session : nullptr;
    t.delete_session = real.delete_session ? st_delete_session : nullptr;
    t.list_sessions = real.list_sessions ? st_list_sessions : nullptr;
    t.add_message = real.add_message ? st_add_message : nullptr;
    t.get_messages = real.get_messages ? st_get_messages : nullptr;
    t.health_check = real.health_check ? st_health_check : nullptr;
}

void fill_session_type(swh_session_type_v1 &t, const swh_session_type_v1 &real) {
    t.struct_size = sizeof t;
    t.create = proxy_create;
    t.destroy = proxy_destroy;
    t.last_error = proxy_last_error;
    t.routes = stype_routes;
    t.handle_route = stype_handle_route;
    // Offer what the plugin offers: a member it left NULL stays NULL.
    t.on_session_created = real.on_session_created ? stype_on_session_created : nullptr;
    t.on_message = real.on_message ? stype_on_message : nullptr;
    t.on_user_message = real.on_user_message ? stype_on_user_message : nullptr;
    t.authorize = real.authorize ? stype_authorize : nullptr;
}

void fill_provider(swh_provider_v1 &t, const swh_provider_v1 &real) {
    t.struct_size = sizeof t;
    t.create = proxy_create;
    t.destroy = proxy_destroy;
    t.last_error = proxy_last_error;
    t.start = pv_start;
    // Offer what the plugin offers: a member it left NULL stays NULL.
    t.cancel = real.cancel ? pv_cancel : nullptr;
    t.get_metadata = real.get_metadata ? pv_get_metadata : nullptr;
    t.update_config = real.update_config ? pv_update_config : nullptr;
    t.health_check = real.health_check ? pv_health_check : nullptr;
}

} // namespace

bool supports_isolation(uint32_t kind) {
    return kind == SWH_KIND_STORAGE || kind == SWH_KIND_MIDDLEWARE || kind == SWH_KIND_HOOK ||
           kind == SWH_KIND_SESSION_TYPE || kind == SWH_KIND_PROVIDER;
}

std::string isolation_refusal(uint32_t kind) {
    return std::string("isolation: process is supported for ") + kIsolatedKinds + " plugins, not for a " +
           loader::kind_name(kind) + " plugin";
}

std::string plugin_host_path() {
    if (const char *over = std::getenv("SWH_PLUGIN_HOST"); over && *over) return over;
    std::error_code ec;
    const auto self = std::filesystem::read_symlink("/proc/self/exe", ec);
    return (ec ? std::filesystem::path(".") : self.parent_path()) / "swarmhost-plugin-host";
}

std::shared_ptr<loader::PluginLibrary> isolate(std::shared_ptr<loader::PluginLibrary> real, int timeout_ms) {
    const uint32_t kind = real->kind();
    if (!supports_isolation(kind)) throw loader::LoadError(isolation_refusal(kind));
    auto state = std::make_shared<ProxyState>();
    state->helper = plugin_host_path();
    if (::access(state->helper.c_str(), X_OK) != 0)
        throw loader::LoadError("isolation: process needs the plugin host executable " + state->helper +
                                ", which is missing or not executable (SWH_PLUGIN_HOST overrides the path)");
    state->timeout = std::chrono::milliseconds(timeout_ms);
    const void *table = nullptr;
    if (kind == SWH_KIND_MIDDLEWARE) {
        fill_middleware(state->middleware, real_table<swh_middleware_v1>(*real));
        table = &state->middleware;
    } else if (kind == SWH_KIND_STORAGE) {
        fill_storage(state->storage, real_table<swh_storage_v1>(*real));
        table = &state->storage;
    } else if (kind == SWH_KIND_SESSION_TYPE) {
        fill_session_type(state->session_type, real_table<swh_session_type_v1>(*real));
        table = &state->session_type;
    } else if (kind == SWH_KIND_PROVIDER) {
        fill_provider(state->provider, real_table<swh_provider_v1>(*real));
        table = &state->provider;
    } else {
        fill_hook(state->hook, real_table<swh_hook_v1>(*real));
        table = &state->hook;
    }
    return loader::PluginLibrary::proxy(std::move(real), table, std::move(state));
}

} // namespace swh::isolation
