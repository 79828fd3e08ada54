#include "loader/instances.hpp"

#include "loader/abi_convert.hpp"
#include "loader/collectors.hpp"
#include "tracing/span.hpp"
#include "util/fatal_signal_note.hpp"

#include <swarmhost/cpp/names.hpp>

#include <algorithm>
#include <cstring>
#include <optional>
#include <spdlog/spdlog.h>
#include <thread>

namespace swh::loader {

using detail::check_collector;
using detail::Collector;
using detail::EditCollector;
using detail::table_of;

namespace {

using cpp::status_name;

} // namespace

// ----------------------------------------------------------- InstanceBase

InstanceBase::InstanceBase(std::shared_ptr<PluginLibrary> library, std::string name, Json config,
                           HostEnvironment &env)
    : library_(std::move(library)), name_(std::move(name)), config_(std::move(config)),
      host_(std::make_unique<HostServices>(name_, env, library_)) {}

InstanceBase::~InstanceBase() {
    if (!handle_ || !destroy_) return;
    try {
        destroy_(handle_);
    } catch (...) {
        spdlog::error("[{}] plugin bug: destroy threw an exception across the ABI boundary", name_);
    }
}

std::string InstanceBase::plugin_error() const {
    try {
        const char *text = last_error_ ? last_error_(handle_) : nullptr;
        return text ? text : "";
    } catch (...) {
        return "(last_error threw an exception across the ABI boundary)";
    }
}

void InstanceBase::create_handle(swh_status (*create)(const swh_host_api *, const swh_config *, void **),
                                 const char *(*last_error)(void *), void (*destroy)(void *)) {
    if (!create || !destroy || !last_error)
        throw LoadError(library_->file() + ": instance '" + name_ +
                        "': plugin table lacks create/destroy/last_error");
    last_error_ = last_error;
    destroy_ = destroy;
    swh_config cfg{&config_, config_.dump()};
    void *handle = nullptr;
    host_->begin_create(&cfg);
    swh_status status;
    try {
        // A crash here is beyond containing; the note makes its last words name the plugin.
        const FatalSignalNote note(describe_instance(name_, library_->kind(), library_->file()) +
                                   " crashed in create");
        status = create(host_->api(), &cfg, &handle);
    } catch (...) {
        host_->end_create();
        throw LoadError(library_->file() + ": instance '" + name_ +
                        "': create threw an exception across the ABI boundary");
    }
    host_->end_create(); // config access is refused from here on
    if (status != SWH_OK) {
        handle_ = handle;
        std::string reason = handle ? plugin_error() : "";
        handle_ = nullptr;
        if (handle) destroy(handle); // the plugin handed us its state so we could read the error
        if (reason.empty()) reason = std::string("create returned ") + status_name(status);
        throw LoadError(library_->file() + ": instance '" + name_ + "' failed to start: " + reason);
    }
    if (!handle)
        throw LoadError(library_->file() + ": instance '" + name_ + "': create returned OK but no handle");
    handle_ = handle;
}

void InstanceBase::check(swh_status status, const char *operation) const {
    if (status == SWH_OK) return;
    if (status < 0 || status > SWH_STATUS_LAST) {
        spdlog::error("[{}] plugin bug: {} returned status {} outside the ABI's range", name_, operation,
                      status);
        throw PluginError(SWH_E_INTERNAL,
                          name_ + ": " + operation + " returned invalid status " + std::to_string(status));
    }
    const std::string detail = plugin_error();
    std::string message = name_ + ": " + operation + " failed (" + status_name(status) + ")";
    if (!detail.empty()) message += ": " + detail;
    throw PluginError(status, message);
}

// --------------------------------------------------------- StorageInstance

StorageInstance::StorageInstance(std::shared_ptr<PluginLibrary> library, std::string name, Json config,
                                 HostEnvironment &env)
    : InstanceBase(std::move(library), std::move(name), std::move(config), env),
      table_(table_of<swh_storage_v1>(*library_, SWH_KIND_STORAGE, name_)) {
    create_handle(table_.create, table_.last_error, table_.destroy);
}

void StorageInstance::create_session(const Session &session) {
    SessionAbi abi(session);
    check(contained("create_session", [&] { return table_.create_session(handle_, abi.get()); }),
          "create_session");
}

std::optional<Session> StorageInstance::get_session(const std::string &id) {
    Collector c;
    const swh_status status =
        contained("get_session", [&] { return table_.get_session(handle_, to_str(id), &c.sink); });
    if (status == SWH_E_NOT_FOUND) return std::nullopt;
    check_collector(c, name_, "get_session");
    check(status, "get_session");
    if (c.sessions.size() != 1)
        throw PluginError(SWH_E_INTERNAL, name_ + ": get_session emitted " +
                                              std::to_string(c.sessions.size()) + " sessions instead of 1");
    return std::move(c.sessions.front());
}

void StorageInstance::update_session(const Session &session, uint32_t fields) {
    SessionAbi abi(session);
    check(contained("update_session", [&] { return table_.update_session(handle_, abi.get(), fields); }),
          "update_session");
}

void StorageInstance::delete_session(const std::string &id) {
    check(contained("delete_session", [&] { return table_.delete_session(handle_, to_str(id)); }),
          "delete_session");
}

std::vector<Session> StorageInstance::list_sessions(const SessionFilter &filter) {
    swh_session_filter raw{};
    raw.struct_size = sizeof raw;
    raw.user_id = to_str(filter.user_id);
    raw.status = to_str(filter.status);
    raw.limit = filter.limit;
    raw.offset = filter.offset;
    Collector c;
    const swh_status status =
        contained("list_sessions", [&] { return table_.list_sessions(handle_, &raw, &c.sink); });
    check_collector(c, name_, "list_sessions");
    check(status, "list_sessions");
    return std::move(c.sessions);
}

void StorageInstance::add_message(const Message &message) {
    MessageAbi abi(message);
    check(contained("add_message", [&] { return table_.add_message(handle_, abi.get()); }), "add_message");
}

void StorageInstance::add_message(const FrozenMessage &message) {
    const swh_message abi = abi_view(message);
    check(contained("add_message", [&] { return table_.add_message(handle_, &abi); }), "add_message");
}

std::vector<Message> StorageInstance::get_messages(const MessageQuery &query) {
    swh_message_query raw{};
    raw.struct_size = sizeof raw;
    raw.session_id = to_str(query.session_id);
    raw.role = to_str(query.role);
    raw.since = query.since;
    raw.limit = query.limit;
    Collector c;
    const swh_status status =
        contained("get_messages", [&] { return table_.get_messages(handle_, &raw, &c.sink); });
    check_collector(c, name_, "get_messages");
    check(status, "get_messages");
    return std::move(c.messages);
}

namespace {
// Shared by storage and provider: ask a plugin for its health JSON and never
// throw (health answers must come back even from a broken plugin).
template <class Fn> Json health_from(const std::string &instance, Fn &&call) {
    try {
        Collector c;
        const swh_status status = call(&c.sink);
        Json health = c.json.empty() ? Json::object() : parse_object(c.json.back(), "health report");
        if (!health.contains("status")) health["status"] = status == SWH_OK ? "healthy" : "unhealthy";
        if (status != SWH_OK) health["status"] = "unhealthy";
        return health;
    } catch (const std::exception &e) {
        return Json{{"status", "unhealthy"}, {"error", instance + ": " + e.what()}};
    }
}
} // namespace

Json StorageInstance::health_check() {
    return health_from(name_, [&](const swh_result_sink *sink) {
        return contained("health_check", [&] { return table_.health_check(handle_, sink); });
    });
}

bool StorageInstance::carries_events() const {
    return table_.events_publish && table_.events_read && table_.events_watch && table_.events_unwatch;
}

uint64_t StorageInstance::events_publish(const std::string &session_id, std::string_view payload) {
    if (!carries_events()) throw PluginError(SWH_E_UNSUPPORTED, name_ + ": carries no events");
    uint64_t seq = 0;
    check(
        contained("events_publish",
                  [&] { return table_.events_publish(handle_, to_str(session_id), to_str(payload), &seq); }),
        "events_publish");
    return seq;
}

StorageInstance::EventPage StorageInstance::events_read(const std::string &session_id, uint64_t after_seq,
                                                        uint32_t limit) {
    if (!carries_events()) throw PluginError(SWH_E_UNSUPPORTED, name_ + ": carries no events");
    swh_event_query query{};
    query.struct_size = sizeof query;
    query.session_id = to_str(session_id);
    query.after_seq = after_seq;
    query.limit = limit;
    struct Collect {
        EventPage page;
        std::string error;
    } collect;
    swh_event_sink sink{};
    sink.struct_size = sizeof sink;
    sink.ctx = &collect;
    sink.range = [](void *ctx, uint64_t first, uint64_t last) {
        auto &c = *static_cast<Collect *>(ctx);
        c.page.first_seq = first;
        c.page.last_seq = last;
    };
    sink.event = [](void *ctx, uint64_t seq, swh_str payload) -> swh_status {
        auto &c = *static_cast<Collect *>(ctx);
        // Ascending, after after_seq: anything else is a plugin bug, refused
        // here so that no listener sees an event twice or out of order.
        const uint64_t previous = c.page.events.empty() ? 0 : c.page.events.back().first;
        if (seq <= previous) {
            c.error =
                "events out of order (" + std::to_string(seq) + " after " + std::to_string(previous) + ")";
            return SWH_E_INVALID;
        }
        c.page.events.emplace_back(seq, std::string(payload.ptr ? payload.ptr : "", payload.len));
        return SWH_OK;
    };
    const swh_status status =
        contained("events_read", [&] { return table_.events_read(handle_, &query, &sink); });
    if (!collect.error.empty())
        throw PluginError(SWH_E_INTERNAL, name_ + ": events_read emitted " + collect.error);
    check(status, "events_read");
    if (!collect.page.events.empty() && collect.page.events.front().first <= after_seq)
        throw PluginError(SWH_E_INTERNAL, name_ + ": events_read emitted an event at or before after_seq");
    return std::move(collect.page);
}

bool StorageInstance::shares_limits() const {
    return table_.counter_add && table_.lease_acquire && table_.lease_release;
}

int64_t StorageInstance::counter_add(const std::string &key, int64_t delta, uint32_t window_ms) {
    if (!shares_limits()) throw PluginError(SWH_E_UNSUPPORTED, name_ + ": shares no limits");
    int64_t value = 0;
    check(contained("counter_add",
                    [&] { return table_.counter_add(handle_, to_str(key), delta, window_ms, &value); }),
          "counter_add");
    return value;
}

StorageInstance::LeaseResult StorageInstance::lease_acquire(const std::string &key, const std::string &owner,
                                                            uint64_t weight, uint64_t limit,
                                                            uint32_t ttl_ms) {
    if (!shares_limits()) throw PluginError(SWH_E_UNSUPPORTED, name_ + ": shares no limits");
    swh_lease lease{};
    lease.struct_size = sizeof lease;
    lease.key = to_str(key);
    lease.owner = to_str(owner);
    lease.weight = weight;
    lease.limit = limit;
    lease.ttl_ms = ttl_ms;
    LeaseResult result;
    const swh_status status =
        contained("lease_acquire", [&] { return table_.lease_acquire(handle_, &lease, &result.held); });
    if (status == SWH_E_CONFLICT) return result; // the limit is reached: an answer, not a failure
    check(status, "lease_acquire");
    result.taken = true;
    return result;
}

void StorageInstance::lease_release(const std::string &key, const std::string &owner) {
    if (!shares_limits()) throw PluginError(SWH_E_UNSUPPORTED, name_ + ": shares no limits");
    check(
        contained("lease_release", [&] { return table_.lease_release(handle_, to_str(key), to_str(owner)); }),
        "lease_release");
}

void StorageInstance::events_watch(const swh_event_watcher &watcher) {
    if (!carries_events()) throw PluginError(SWH_E_UNSUPPORTED, name_ + ": carries no events");
    check(contained("events_watch", [&] { return table_.events_watch(handle_, &watcher); }), "events_watch");
}

void StorageInstance::events_unwatch() {
    if (!carries_events()) return;
    contained("events_unwatch", [&] {
        table_.events_unwatch(handle_);
        return SWH_OK;
    });
}

// -------------------------------------------------------- ProviderInstance

// One provider call in flight. The plugin's sink points here; the Call
// deletes itself after `done` (the ABI promises nothing follows it).
struct ProviderInstance::Call {
    ProviderInstance *owner;
    ProviderCallbacks callbacks;
    swh_provider_sink sink{};
    std::atomic<bool> finished{false};
    // A traced request: the provider call's client span, and the request's
    // context, made current again for the done handler (the send path
    // stores the reply from there: those storage spans belong to the request).
    tracing::Span span;
    tracing::Context parent;

    static Call &of(void *ctx) { return *static_cast<Call *>(ctx); }

    // GenAI semantic conventions: usage and finish reason from reply events.
    void note(const ReplyEvent &event) {
        if (!span.recording()) return;
        if (event.type == ReplyEvent::Type::Usage) {
            if (event.input_tokens >= 0) span.set("gen_ai.usage.input_tokens", event.input_tokens);
            if (event.output_tokens >= 0) span.set("gen_ai.usage.output_tokens", event.output_tokens);
        } else if (event.type == ReplyEvent::Type::Finish && !event.text.empty()) {
            span.set("gen_ai.response.finish_reasons", event.text);
        }
    }
    // The response's id and model, as the vendor named them.
    void note(const std::string &id, const Json &metadata) {
        if (!span.recording()) return;
        if (!id.empty()) span.set("gen_ai.response.id", id);
        if (auto it = metadata.find("model"); it != metadata.end() && it->is_string())
            span.set("gen_ai.response.model", it->get<std::string>());
    }
    void end_span(swh_status status, swh_str error) {
        if (!span.active()) return;
        if (status == SWH_OK) {
            span.set_ok();
        } else {
            span.set("error.type", std::string(status_name(status)));
            span.set_error(to_string(error));
        }
        span.end();
    }

    static swh_status on_chunk(void *ctx, swh_str text) noexcept {
        Call &call = of(ctx);
        if (call.finished) return SWH_E_CANCELLED;
        try {
            return call.callbacks.on_chunk(std::string_view(text.ptr ? text.ptr : "", text.len))
                       ? SWH_OK
                       : SWH_E_CANCELLED;
        } catch (const std::exception &e) {
            spdlog::error("[{}] chunk handler failed: {}", call.owner->name(), e.what());
            return SWH_E_CANCELLED;
        }
    }
    static void on_metadata(void *ctx, swh_str id, swh_str json) noexcept {
        Call &call = of(ctx);
        if (call.finished) return;
        try {
            Json metadata = parse_object(to_string(json), "provider metadata");
            call.note(to_string(id), metadata);
            call.callbacks.on_metadata(to_string(id), std::move(metadata));
        } catch (const std::exception &e) {
            spdlog::warn("[{}] ignored provider metadata: {}", call.owner->name(), e.what());
        }
    }
    static swh_status on_event(void *ctx, const swh_reply_event *raw) noexcept {
        Call &call = of(ctx);
        if (call.finished) return SWH_E_CANCELLED;
        if (!SWH_HAS_MEMBER(raw, swh_reply_event, reasoning_tokens) || raw->type < SWH_REPLY_TOOL_CALL ||
            raw->type > SWH_REPLY_USAGE) {
            spdlog::warn("[{}] ignored a malformed reply event", call.owner->name());
            return SWH_OK;
        }
        if (!call.callbacks.on_event && !call.span.recording()) return SWH_OK;
        try {
            ReplyEvent event;
            event.type = static_cast<ReplyEvent::Type>(raw->type - SWH_REPLY_TOOL_CALL);
            event.index = raw->index;
            event.id = to_string(raw->id);
            event.name = to_string(raw->name);
            event.text = to_string(raw->text);
            event.input_tokens = raw->input_tokens;
            event.output_tokens = raw->output_tokens;
            event.cached_input_tokens = raw->cached_input_tokens;
            event.reasoning_tokens = raw->reasoning_tokens;
            call.note(event);
            if (!call.callbacks.on_event) return SWH_OK;
            return call.callbacks.on_event(event) ? SWH_OK : SWH_E_CANCELLED;
        } catch (const std::exception &e) {
            spdlog::error("[{}] reply event handler failed: {}", call.owner->name(), e.what());
            return SWH_E_CANCELLED;
        }
    }
    static void on_done(void *ctx, swh_status status, swh_str error) noexcept {
        // Done is the last thing that touches this call (the ABI forbids a
        // second done), so it takes the ownership back and frees the call.
        std::unique_ptr<Call> call(&of(ctx));
        call->finished = true;
        if (status < 0 || status > SWH_STATUS_LAST) {
            spdlog::error("[{}] plugin bug: done with status {} outside the ABI's range", call->owner->name(),
                          status);
            status = SWH_E_INTERNAL;
        }
        call->end_span(status, error);
        try {
            std::optional<tracing::ScopedContext> scope;
            if (call->parent.active()) scope.emplace(std::move(call->parent));
            call->callbacks.on_done(status, to_string(error));
        } catch (const std::exception &e) {
            spdlog::error("[{}] done handler failed: {}", call->owner->name(), e.what());
        }
        ProviderInstance *owner = call->owner;
        call.reset();
        owner->call_finished();
    }
};

ProviderInstance::ProviderInstance(std::shared_ptr<PluginLibrary> library, std::string name, Json config,
                                   HostEnvironment &env, HttpVersion http_version)
    : InstanceBase(std::move(library), std::move(name), std::move(config), env),
      table_(table_of<swh_provider_v1>(*library_, SWH_KIND_PROVIDER, name_)) {
    if (!table_.start) throw LoadError(library_->file() + ": provider table lacks start");
    host_->set_http_version(http_version); // before create: a plugin may start requests there
    create_handle(table_.create, table_.last_error, table_.destroy);
}

ProviderInstance::~ProviderInstance() {
    // The plugin may still be streaming into callbacks that point at us:
    // wait for every started call to finish before destroy runs.
    std::unique_lock lock(calls_mutex_);
    if (open_calls_ > 0)
        spdlog::info("[{}] waiting for {} open provider calls before unloading", name_, open_calls_);
    calls_cv_.wait(lock, [&] { return open_calls_ == 0; });
}

void ProviderInstance::call_finished() {
    std::lock_guard lock(calls_mutex_);
    --open_calls_;
    calls_cv_.notify_all();
}

// The client span of one provider call: OpenTelemetry's GenAI semantic
// conventions (gen_ai.*), "chat {model}".
tracing::Span ProviderInstance::provider_span(const ProviderRequest &request) const {
    tracing::Span span = tracing::start_span(
        request.model.empty() ? std::string("chat") : "chat " + request.model, tracing::SpanKind::client);
    if (!span.recording()) return span;
    const std::string &vendor = library_->name();
    span.set("gen_ai.operation.name", "chat");
    span.set("gen_ai.system", vendor);
    span.set("gen_ai.provider.name", vendor);
    span.set("swarmhost.provider", name_);
    if (!request.model.empty()) span.set("gen_ai.request.model", request.model);
    if (request.session) span.set("session.id", request.session->id);
    // Generation parameters as set (neutral form, model/generation_params).
    static constexpr std::pair<const char *, const char *> kParams[] = {
        {"temperature", "gen_ai.request.temperature"},
        {"top_p", "gen_ai.request.top_p"},
        {"max_output_tokens", "gen_ai.request.max_tokens"},
        {"seed", "gen_ai.request.seed"},
        {"frequency_penalty", "gen_ai.request.frequency_penalty"},
        {"presence_penalty", "gen_ai.request.presence_penalty"}};
    for (const auto &[key, attribute] : kParams) {
        const auto it = request.params.find(key);
        if (it == request.params.end()) continue;
        if (it->is_number_integer())
            span.set(attribute, it->get<int64_t>());
        else if (it->is_number())
            span.set(attribute, it->get<double>());
    }
    return span;
}

uint64_t ProviderInstance::start(const ProviderRequest &request, ProviderCallbacks callbacks) {
    std::vector<std::unique_ptr<MessageAbi>> owned;
    std::vector<swh_message> messages;
    if (request.frozen) {
        messages.reserve(request.frozen->size());
        for (const MessageRef &m : *request.frozen)
            messages.push_back(abi_view(*m));
    } else if (request.messages) {
        owned.reserve(request.messages->size());
        messages.reserve(request.messages->size());
        for (const auto &m : *request.messages) {
            owned.push_back(std::make_unique<MessageAbi>(m));
            messages.push_back(*owned.back()->get());
        }
    }
    std::optional<SessionAbi> session;
    if (request.session) session.emplace(*request.session);

    swh_provider_request raw{};
    raw.struct_size = sizeof raw;
    raw.call_id = next_call_id_++;
    raw.session = session ? session->get() : nullptr;
    raw.messages = messages.data();
    raw.message_count = messages.size();
    raw.model = to_str(request.model);
    raw.system_prompt = to_str(request.system_prompt);
    raw.assistant_prefix = to_str(request.assistant_prefix);
    raw.stream = request.stream ? 1 : 0;
    const std::string params = request.params.empty() ? std::string("{}") : request.params.dump();
    raw.params_json = to_str(params);

    auto call = std::make_unique<Call>();
    call->owner = this;
    if (tracing::current().active()) {
        call->parent = tracing::current();
        call->span = provider_span(request);
    }
    // Current while the plugin starts: requests it makes through
    // host->http_start carry this span's traceparent to the upstream.
    std::optional<tracing::ScopedContext> traced;
    if (call->span.active()) {
        traced.emplace(call->span.as_current());
    } else if (!request.upstream_traceparent.empty()) {
        // The daemon's span, current but recording nothing in this process.
        struct Dropped : tracing::SpanSink {
            void submit(tracing::SpanRecord) override {}
        };
        if (const auto parent = tracing::parse_traceparent(request.upstream_traceparent))
            traced.emplace(tracing::Context{*parent, std::make_shared<Dropped>()});
    }
    call->callbacks = std::move(callbacks);
    call->sink.struct_size = sizeof(swh_provider_sink);
    call->sink.ctx = call.get();
    call->sink.chunk = &Call::on_chunk;
    call->sink.metadata = &Call::on_metadata;
    call->sink.done = &Call::on_done;
    call->sink.event = &Call::on_event;
    {
        std::lock_guard lock(calls_mutex_);
        ++open_calls_;
    }
    // From here the plugin owns the call until it reports done, which may
    // happen before start returns.
    Call *raw_call = call.release();
    const swh_status status =
        contained("start", [&] { return table_.start(handle_, &raw, &raw_call->sink); });
    if (status != SWH_OK) {
        std::unique_ptr<Call> refused(raw_call); // on failure the plugin never touches the sink
        call_finished();
        check(status, "start");
    }
    return raw.call_id;
}

void ProviderInstance::cancel(uint64_t call_id) {
    if (table_.cancel) contained("cancel", [&] { table_.cancel(handle_, call_id); });
}

Json ProviderInstance::metadata() {
    if (!table_.get_metadata) return Json::object();
    Collector c;
    const swh_status status =
        contained("get_metadata", [&] { return table_.get_metadata(handle_, &c.sink); });
    check_collector(c, name_, "get_metadata");
    check(status, "get_metadata");
    return c.json.empty() ? Json::object() : parse_object(c.json.back(), "provider metadata");
}

void ProviderInstance::update_config(const Json &changes) {
    if (!table_.update_config)
        throw PluginError(SWH_E_UNSUPPORTED, name_ + ": this provider cannot change its config at run time");
    const std::string text = changes.dump();
    check(contained("update_config", [&] { return table_.update_config(handle_, to_str(text)); }),
          "update_config");
}

Json ProviderInstance::health_check() {
    if (!table_.health_check) return Json{{"status", "healthy"}, {"note", "plugin reports no health"}};
    return health_from(name_, [&](const swh_result_sink *sink) {
        return contained("health_check", [&] { return table_.health_check(handle_, sink); });
    });
}

} // namespace swh::loader

// ------------------------------------------------------ MiddlewareInstance

namespace swh::loader {

namespace {

// Text and metadata a middleware emits while streaming.
struct EmitCollector {
    StreamOutput output;
    std::string error;
    std::thread::id owner = std::this_thread::get_id();
    bool on_owner_thread() {
        if (std::this_thread::get_id() == owner) return true;
        if (error.empty()) error = "emitter callback from another thread (a plugin bug); ignored";
        return false;
    }
    swh_chunk_emitter emitter{};

    EmitCollector() {
        emitter.struct_size = sizeof emitter;
        emitter.ctx = this;
        emitter.emit = [](void *ctx, swh_str text) noexcept {
            auto &c = *static_cast<EmitCollector *>(ctx);
            if (!c.on_owner_thread()) return;
            try {
                c.output.text.append(text.ptr ? text.ptr : "", text.len);
            } catch (const std::exception &e) {
                c.error = e.what();
            }
        };
        emitter.merge_metadata = [](void *ctx, swh_str json) noexcept {
            auto &c = *static_cast<EmitCollector *>(ctx);
            if (!c.on_owner_thread()) return;
            try {
                c.output.metadata_patch.update(parse_object(to_string(json), "metadata"));
            } catch (const std::exception &e) {
                c.error = e.what();
            }
        };
    }
    EmitCollector(const EmitCollector &) = delete;
    EmitCollector &operator=(const EmitCollector &) = delete;
};

// The borrowed input struct and the text it points into.
struct MiddlewareInputAbi {
    std::optional<SessionAbi> session; // unless the caller converted it (`prepared`)
    MessageAbi message;
    std::string context;
    swh_middleware_input raw{};
    MiddlewareInputAbi(uint32_t stage, const Session &s, const Message &m, const Json &ctx)
        : MiddlewareInputAbi(stage, nullptr, &s, m, ctx) {}
    MiddlewareInputAbi(uint32_t stage, const swh_session *prepared, const Session *s, const Message &m,
                       const Json &ctx)
        : message(m), context(ctx.dump()) {
        if (prepared == nullptr) prepared = session.emplace(*s).get();
        raw.struct_size = sizeof raw;
        raw.stage = stage;
        raw.session = prepared;
        raw.message = message.get();
        raw.context_json = to_str(context);
    }
};

} // namespace

MiddlewareInstance::MiddlewareInstance(std::shared_ptr<PluginLibrary> library, std::string name, Json config,
                                       HostEnvironment &env)
    : InstanceBase(std::move(library), std::move(name), std::move(config), env),
      table_(table_of<swh_middleware_v1>(*library_, SWH_KIND_MIDDLEWARE, name_)) {
    if (!table_.stages || !table_.process)
        throw LoadError(library_->file() + ": middleware table lacks stages/process");
    create_handle(table_.create, table_.last_error, table_.destroy);
    stages_ = contained("stages", [&] { return table_.stages(handle_); });
}

MiddlewareOutcome MiddlewareInstance::process(uint32_t stage, const Session &session, const Message &message,
                                              const Json &context) {
    return process_with(stage, nullptr, &session, message, context);
}

MiddlewareOutcome MiddlewareInstance::process(uint32_t stage, const SessionAbi &session,
                                              const Message &message, const Json &context) {
    return process_with(stage, session.get(), nullptr, message, context);
}

MiddlewareOutcome MiddlewareInstance::process_with(uint32_t stage, const swh_session *prepared,
                                                   const Session *session, const Message &message,
                                                   const Json &context) {
    // One span per middleware call of a traced request.
    tracing::Span span =
        tracing::current().active() ? tracing::start_span("middleware " + name_) : tracing::Span{};
    EditCollector edits;
    try {
        MiddlewareInputAbi input(stage, prepared, session, message, context);
        const swh_status status =
            contained("process", [&] { return table_.process(handle_, &input.raw, &edits.editor); });
        if (status != SWH_OK) {
            edits.outcome.status = status;
            edits.outcome.error = plugin_error();
            if (edits.outcome.error.empty()) edits.outcome.error = "process failed";
            if (status < 0 || status > SWH_STATUS_LAST) {
                edits.outcome.status = SWH_E_INTERNAL; // a plugin bug, not a meaningful status
                edits.outcome.error =
                    "returned status " + std::to_string(status) + " outside the ABI's range";
            }
        } else if (!edits.outcome.error.empty()) {
            edits.outcome.status = SWH_E_INTERNAL; // an edit was malformed or came from the wrong thread
        }
    } catch (const std::exception &e) {
        edits.outcome.status = SWH_E_INTERNAL;
        edits.outcome.error = e.what();
    }
    if (span.recording()) {
        span.set("swarmhost.middleware.name", name_);
        span.set("swarmhost.middleware.plugin", library_->name());
        span.set("swarmhost.middleware.stage", static_cast<int64_t>(stage));
        if (edits.outcome.rejection) span.set("swarmhost.middleware.rejected", true);
        if (edits.outcome.status != SWH_OK) span.set_error(edits.outcome.error);
    }
    return std::move(edits.outcome);
}

void MiddlewareInstance::on_error(uint32_t stage, const Session &session, const Message &message,
                                  const Json &context, swh_status status, const std::string &error) {
    if (!table_.on_error) return;
    MiddlewareInputAbi input(stage, session, message, context);
    contained("on_error", [&] { return table_.on_error(handle_, &input.raw, status, to_str(error)); });
}

std::unique_ptr<MiddlewareInstance::Stream>
MiddlewareInstance::open_stream(const Session &session, const Message &message, const Json &context) {
    MiddlewareInputAbi input(SWH_STAGE_ASSISTANT, session, message, context);
    void *state = nullptr;
    check(contained("stream_open", [&] { return table_.stream_open(handle_, &input.raw, &state); }),
          "stream_open");
    return std::unique_ptr<Stream>(new Stream(*this, state));
}

MiddlewareInstance::Stream::~Stream() {
    if (closed_) return;
    EmitCollector discard; // the state must be freed even when nobody reads the rest
    try {
        owner_.contained("stream_close", [&] {
            return owner_.table_.stream_close(owner_.handle_, state_, &discard.emitter);
        });
    } catch (const std::exception &e) {
        spdlog::error("[{}] {}", owner_.name(), e.what());
    }
}

namespace {
// Runs one stream call and keeps whatever was emitted, even on failure.
template <class Call>
StreamOutput stream_call(const MiddlewareInstance &owner, const char *operation, Call &&call) {
    EmitCollector out;
    swh_status status = SWH_OK;
    std::string error;
    try {
        status = call(&out.emitter);
        if (status < 0 || status > SWH_STATUS_LAST) {
            error = "returned status " + std::to_string(status) + " outside the ABI's range";
            status = SWH_E_INTERNAL;
        } else if (status != SWH_OK) {
            error = owner.plugin_error();
        }
    } catch (...) {
        status = SWH_E_INTERNAL;
        error = std::string(operation) + " threw an exception across the ABI boundary";
    }
    if (status == SWH_OK && !out.error.empty()) {
        status = SWH_E_INTERNAL;
        error = out.error;
    }
    StreamOutput output = std::move(out.output);
    output.status = status;
    if (status != SWH_OK) output.error = owner.name() + ": " + operation + ": " + error;
    return output;
}
} // namespace

StreamOutput MiddlewareInstance::Stream::push(std::string_view text) {
    return stream_call(owner_, "stream_chunk", [&](const swh_chunk_emitter *emitter) {
        return owner_.table_.stream_chunk(owner_.handle_, state_, to_str(text), emitter);
    });
}

StreamOutput MiddlewareInstance::Stream::close() {
    closed_ = true;
    return stream_call(owner_, "stream_close", [&](const swh_chunk_emitter *emitter) {
        return owner_.table_.stream_close(owner_.handle_, state_, emitter);
    });
}

// ------------------------------------------------------------ HookInstance

HookInstance::HookInstance(std::shared_ptr<PluginLibrary> library, std::string name, Json config,
                           HostEnvironment &env)
    : InstanceBase(std::move(library), std::move(name), std::move(config), env),
      table_(table_of<swh_hook_v1>(*library_, SWH_KIND_HOOK, name_)) {
    if (!table_.events || !table_.on_event)
        throw LoadError(library_->file() + ": hook table lacks events/on_event");
    create_handle(table_.create, table_.last_error, table_.destroy);
    events_ = contained("events", [&] { return table_.events(handle_); });
}

void HookInstance::on_event(uint32_t type, int64_t time, const Session &session, const Message *message,
                            const Json &details) {
    const EventAbi event(type, time, session, message, details);
    on_event(*event.get());
}

void HookInstance::on_event(const swh_event &event) {
    check(contained("on_event", [&] { return table_.on_event(handle_, &event); }), "on_event");
}

std::string HookInstance::render_metrics() {
    if (!table_.render_metrics) return "";
    try {
        Collector c;
        if (contained("render_metrics", [&] { return table_.render_metrics(handle_, &c.sink); }) != SWH_OK)
            return "";
        std::string text;
        for (const auto &part : c.json)
            text += part;
        return text;
    } catch (const std::exception &e) {
        spdlog::warn("[{}] render_metrics failed: {}", name_, e.what());
        return "";
    }
}

} // namespace swh::loader
