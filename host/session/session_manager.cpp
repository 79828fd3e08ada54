#include "session/session_manager.hpp"

#include "util/clock.hpp"
#include "util/ids.hpp"

#include <algorithm>
#include <mutex>
#include <spdlog/spdlog.h>

namespace swh {

namespace {

// Runs a storage call through the gate (a bulkhead with a deadline: see
// storage_gate.hpp) and turns its PluginError into the ApiError the client
// should see (a store that is down is a 503, not a 500). `f` owns what it
// uses, the pipeline included: an abandoned call outlives its caller.
template <class F> auto storage_call(StorageGate &gate, const char *what, F f) -> decltype(f()) {
    try {
        return gate.run(what, std::move(f));
    } catch (const loader::PluginError &e) {
        throw ApiError(kind_for_storage_status(e.status()), e.what());
    }
}

// storage_call for a call addressed by a session id: the store's NOT_FOUND is
// the client's 404 with the same text as GET /v1/sessions/{id}, not the
// store's wording ("<instance>: <call> failed (not_found): ...").
template <class F>
auto session_call(StorageGate &gate, const char *what, const std::string &session_id, F f) -> decltype(f()) {
    try {
        return storage_call(gate, what, std::move(f));
    } catch (const ApiError &e) {
        if (e.kind() != ErrorKind::NotFound) throw;
        throw ApiError(ErrorKind::NotFound, "session '" + session_id + "' not found");
    }
}

// A middleware chain that refused a message (or reply): a middleware saying
// no is the client's 422; a fail-closed middleware that failed (an error, a
// crash or a timeout of its plugin process) is the server's 503.
ApiError middleware_refusal(const ChainResult &result, const char *what) {
    if (result.failed) return ApiError(ErrorKind::Unavailable, "middleware " + *result.rejection);
    return ApiError(ErrorKind::Rejected, std::string(what) + " rejected by middleware " + *result.rejection);
}

// The conversation handed to the provider is capped so a long session does
// not turn every send into a full history read; sessions may set their own.
constexpr uint32_t kDefaultHistoryLimit = 1000;
// How far back a retried Idempotency-Key is looked for in its session.
constexpr uint32_t kIdempotencyWindow = 200;

uint32_t history_limit(const Session &session) {
    auto it = session.config.find("max_history_messages");
    if (it != session.config.end() && it->is_number_unsigned()) return it->get<uint32_t>();
    return kDefaultHistoryLimit;
}

std::string system_prompt_of(const Session &session, const Json &metadata) {
    if (auto it = metadata.find("system_prompt"); it != metadata.end() && it->is_string()) return *it;
    if (auto it = session.config.find("system_prompt"); it != session.config.end() && it->is_string())
        return *it;
    return "";
}

// Only the tenant part of an access check: the session type's own check
// happens in the call that follows (on_user_message, the route's handler).
Access tenancy_only(Access access) {
    access.type_checks = false;
    return access;
}

Json normalised_context(const Json &given) {
    Json context = {{"user_context", Json::object()}, {"system_context", Json::object()}};
    for (const auto &[key, value] : given.items())
        context[key] = value;
    return context;
}

} // namespace

// Everything one send needs after the provider started: the reply is
// collected here until the provider reports done.
struct SessionManager::SendState {
    // The pipeline this send started on: it stays alive (plugins loaded)
    // until the send is finished, even if a reload swapped in another.
    std::shared_ptr<Pipeline> pipeline;
    Session session;
    Message user;
    std::shared_ptr<SendObserver> observer;
    int64_t started_at = 0;
    bool stream = false;
    bool stateless = false;                          // OpenAI-style completion without a stored session
    std::shared_ptr<void> idempotency;               // held until the outcome is stored
    std::shared_ptr<MessageReservation> reservation; // room under max_messages_per_session, held likewise
    // Provider attempts: candidates[0] is the session's provider, then its
    // manifest fallbacks in order.
    std::vector<Message> history;
    std::string system_prompt;
    std::vector<std::string> candidates;
    std::size_t attempt = 0;
    Json failures = Json::array();
    loader::ProviderInstance *active_provider = nullptr;
    uint64_t active_call = 0;
    bool cancelled = false;
    std::string raw_reply; // what providers produced (before stream middleware)
    int64_t upstream_started_at = 0, upstream_us = 0, first_token_at = 0;
    std::unique_ptr<MiddlewareChain::Stream> filter; // assistant-stage stream middleware
    std::exception_ptr stream_failure;               // a fail-closed stream middleware failed
    std::mutex mutex;                                // chunk / metadata / done may come from another thread
    std::string reply;
    std::string provider_message_id;
    Json provider_metadata = Json::object();
};

SessionManager::SessionManager(std::shared_ptr<Pipeline> pipeline, PostBlocking post_blocking,
                               StorageLimits limits, PostBlocking post_free)
    : current_(std::move(pipeline)), post_blocking_(std::move(post_blocking)),
      post_free_(post_free ? std::move(post_free) : post_blocking_), nobody_("swarmhost.nobody." + new_uuid()),
      gate_(limits.threads, limits.timeout) {}

std::shared_ptr<Pipeline> SessionManager::current() const {
    return std::atomic_load(&current_);
}

std::shared_ptr<Pipeline> SessionManager::swap_pipeline(std::shared_ptr<Pipeline> next) {
    return std::atomic_exchange(&current_, std::move(next));
}

Session SessionManager::create_session(CreateSessionParams params) {
    const std::shared_ptr<Pipeline> pin = current();
    Pipeline &pipeline_ = *pin;
    if (params.user_id.empty())
        throw ApiError(ErrorKind::InvalidRequest, "user_id must be a non-empty string");
    if (params.provider.empty()) params.provider = pipeline_.default_provider;
    if (!pipeline_.routable(params.provider))
        throw ApiError(ErrorKind::InvalidRequest, "unknown provider '" + params.provider + "'");
    loader::SessionTypeInstance *type = nullptr;
    if (!params.type.empty()) {
        type = pipeline_.session_type(params.type);
        if (!type) {
            std::string known;
            for (const auto &entry : pipeline_.session_types)
                known += (known.empty() ? "" : ", ") + entry.first;
            throw ApiError(ErrorKind::InvalidRequest,
                           "unknown session type '" + params.type + "' (" +
                               (known.empty() ? "the manifest configures none" : "known: " + known) + ")");
        }
    }
    Session session;
    session.id = new_uuid();
    session.user_id = std::move(params.user_id);
    session.provider = std::move(params.provider);
    session.model = std::move(params.model);
    session.type = std::move(params.type);
    session.created_at = session.last_activity = now_us();
    session.config = std::move(params.config);
    session.context = normalised_context(params.context);
    session.context["system_context"]["provider"] = session.provider;
    session.context["system_context"]["model"] = session.model;
    session.metadata = std::move(params.metadata);
    if (type) {
        // The type sets up its state before the row exists: a refusal stores nothing.
        try {
            session.metadata.update(type->on_session_created(session));
        } catch (const loader::PluginError &e) {
            throw ApiError(kind_for_session_type_status(e.status()), e.what());
        }
    }
    storage_call(gate_, "create_session", [pin, session] { pin->storage->create_session(session); });
    publish(SWH_EVENT_SESSION_CREATED, session);
    return session;
}

Session SessionManager::get_session(const std::string &id) {
    const std::shared_ptr<Pipeline> pin = current();
    auto session = storage_call(gate_, "get_session", [pin, id] { return pin->storage->get_session(id); });
    if (!session) throw ApiError(ErrorKind::NotFound, "session '" + id + "' not found");
    return *session;
}

std::vector<Session> SessionManager::list_sessions(const loader::SessionFilter &filter) {
    const std::shared_ptr<Pipeline> pin = current();
    return storage_call(gate_, "list_sessions", [pin, filter] { return pin->storage->list_sessions(filter); });
}

Session SessionManager::update_session(const std::string &id, const SessionPatch &patch) {
    const std::shared_ptr<Pipeline> pin = current();
    Pipeline &pipeline_ = *pin;
    std::lock_guard lock(session_lock(id)); // metadata may hold a session type's state
    Session session = get_session(id);
    uint32_t fields = 0;
    if (patch.model) {
        session.model = *patch.model;
        session.context["system_context"]["model"] = session.model;
        fields |= SWH_SESSION_FIELD_MODEL | SWH_SESSION_FIELD_CONTEXT;
    }
    if (patch.status) {
        if (*patch.status != SWH_SESSION_ACTIVE && *patch.status != SWH_SESSION_ARCHIVED)
            throw ApiError(ErrorKind::InvalidRequest, "status must be 'active' or 'archived'");
        session.status = *patch.status;
        fields |= SWH_SESSION_FIELD_STATUS;
    }
    if (patch.config) {
        session.config = *patch.config;
        fields |= SWH_SESSION_FIELD_CONFIG;
    }
    if (patch.context) {
        // Keep what the host maintains in system_context unless replaced.
        Json context = normalised_context(*patch.context);
        for (const auto &[key, value] : session.context["system_context"].items())
            if (!context["system_context"].contains(key)) context["system_context"][key] = value;
        session.context = std::move(context);
        fields |= SWH_SESSION_FIELD_CONTEXT;
    }
    if (patch.metadata) {
        Json metadata = *patch.metadata;
        // A session type's state lives under its plugin's name; a PATCH can
        // neither drop nor forge it (docs/session-types.md).
        if (loader::SessionTypeInstance *type = session_type_of(pipeline_, session)) {
            const std::string &key = type->library().name();
            if (metadata.contains(key))
                throw ApiError(ErrorKind::InvalidRequest,
                               "metadata key '" + key + "' holds the state of session type '" + session.type +
                                   "'; change it through its routes");
            if (auto kept = session.metadata.find(key); kept != session.metadata.end()) metadata[key] = *kept;
        }
        session.metadata = std::move(metadata);
        fields |= SWH_SESSION_FIELD_METADATA;
    }
    if (fields) {
        storage_call(gate_, "update_session",
                     [pin, session, fields] { pin->storage->update_session(session, fields); });
        if (!patch.status || fields != SWH_SESSION_FIELD_STATUS) publish_live("session_updated", session);
    }
    return session;
}

Session SessionManager::archive_session(const std::string &id) {
    SessionPatch patch;
    patch.status = SWH_SESSION_ARCHIVED;
    Session session = update_session(id, patch);
    publish(SWH_EVENT_SESSION_ARCHIVED, session);
    return session;
}

void SessionManager::delete_session(const std::string &id) {
    const std::shared_ptr<Pipeline> pin = current();
    Pipeline &pipeline_ = *pin;
    const bool wanted = pipeline_.hooks && !pipeline_.hooks->empty();
    std::optional<Session> before; // hooks get the row as it was
    if (wanted)
        before = storage_call(gate_, "get_session", [pin, id] { return pin->storage->get_session(id); });
    session_call(gate_, "delete_session", id, [pin, id] { pin->storage->delete_session(id); });
    if (before) {
        publish(SWH_EVENT_SESSION_DELETED, *before);
    } else {
        Session gone;
        gone.id = id;
        publish_live("session_deleted", gone);
    }
}

void SessionManager::publish_live(const std::string &type, const Session &session, const Message *message) {
    if (events_.listeners(session.id) == 0) return; // the common case costs one map lookup
    SessionEvent event;
    event.session_id = session.id;
    event.type = type;
    if (message)
        event.message = *message;
    else if (type == "session_deleted")
        event.data = Json{{"session_id", session.id}};
    else
        event.session = session;
    events_.publish(std::move(event));
}

void SessionManager::publish(uint32_t type, const Session &session, const Message *message, Json details) {
    const std::shared_ptr<Pipeline> pin = current();
    Pipeline &pipeline_ = *pin;
    switch (type) {
    case SWH_EVENT_MESSAGE_SENT:
        publish_live("message", session, message);
        break;
    case SWH_EVENT_SESSION_ARCHIVED:
        publish_live("session_archived", session);
        break;
    case SWH_EVENT_SESSION_DELETED:
        publish_live("session_deleted", session);
        break;
    default:
        break;
    }
    if (!pipeline_.hooks || pipeline_.hooks->empty()) return;
    HookEvent event;
    event.type = type;
    event.time = now_us();
    event.session = session;
    if (message) event.message = *message;
    event.details = std::move(details);
    pipeline_.hooks->publish(event);
}

std::vector<Message> SessionManager::get_messages(const loader::MessageQuery &query) {
    const std::shared_ptr<Pipeline> pin = current();
    return session_call(gate_, "get_messages", query.session_id,
                        [pin, query] { return pin->storage->get_messages(query); });
}

std::function<void()> SessionManager::send_message(const SendParams &params,
                                                   std::shared_ptr<SendObserver> observer) {
    const std::shared_ptr<Pipeline> pin = current();
    Pipeline &pipeline_ = *pin;
    if (params.role != "user" && params.role != "system")
        throw ApiError(ErrorKind::InvalidRequest, "role must be 'user' or 'system'");
    auto state = std::make_shared<SendState>();
    state->pipeline = pin;
    state->started_at = now_us();
    state->session = get_session(params.session_id);
    authorize(state->session, tenancy_only(params.access), SWH_ACTION_READ);
    if (state->session.status != SWH_SESSION_ACTIVE)
        throw ApiError(ErrorKind::Conflict, "session '" + params.session_id + "' is " +
                                                state->session.status +
                                                "; only active sessions take messages");
    if (!pipeline_.routable(state->session.provider))
        throw ApiError(ErrorKind::Unavailable,
                       "provider '" + state->session.provider + "' of this session is not configured");
    state->reservation = reserve_messages(pin, state->session.id, 2); // question and reply

    state->observer = std::move(observer);
    state->stream = params.stream;
    bool resumed = false; // answering a user message a failed first attempt stored
    if (!params.idempotency_key.empty()) {
        state->idempotency = claim_idempotency_key(state->session.id, params.idempotency_key);
        auto prior = find_prior_attempt(pin, state->session.id, params.idempotency_key);
        if (prior.first && prior.second) {
            // Same answer as the first time; nothing new is stored.
            release_holds(*state);
            state->observer->on_user_stored(*prior.first);
            state->observer->on_complete(*prior.first, *prior.second, 0.0);
            return [] {};
        }
        if (prior.first) {
            state->user = *prior.first;
            resumed = true;
        }
    }
    if (!resumed) {
        state->user.id = new_uuid();
        state->user.session_id = state->session.id;
        state->user.role = params.role;
        state->user.content = params.content;
        state->user.timestamp = now_us();
        state->user.metadata = params.metadata;
        // Reserved: only a session type may name attachment files (providers read them).
        state->user.metadata.erase("attachments");
        if (!params.idempotency_key.empty()) state->user.metadata["idempotency_key"] = params.idempotency_key;
    }

    // 1. The user-stage middleware may rewrite, enrich or refuse it.
    if (!resumed && !pipeline_.middleware.empty()) {
        ChainResult checked =
            pipeline_.middleware.run(SWH_STAGE_USER, state->session, std::move(state->user));
        if (checked.rejection) throw middleware_refusal(checked, "message");
        state->user = std::move(checked.message);
    }
    // 1b. A session type may refuse (permissions) or enrich it.
    if (!resumed) vet_with_session_type(*state, params.access);
    // 2. The user message is durable before anything goes upstream.
    if (!resumed) {
        store_message(*state, state->user);
        state->session.message_count += 1;
        state->session.last_activity = state->user.timestamp;
        publish(SWH_EVENT_MESSAGE_SENT, state->session, &state->user);
    }
    state->observer->on_user_stored(state->user);

    loader::MessageQuery history_query;
    history_query.session_id = state->session.id;
    history_query.limit = history_limit(state->session);
    std::vector<Message> history;
    try {
        history = storage_call(gate_, "get_messages",
                               [pin, history_query] { return pin->storage->get_messages(history_query); });
    } catch (const ApiError &e) {
        release_and_report(*state, e);
        return [] {};
    }

    // Writers to the same session may have stored messages after ours; the
    // provider must see the conversation as it stood at our message.
    auto ours = std::find_if(history.begin(), history.end(),
                             [&](const Message &m) { return m.id == state->user.id; });
    if (ours != history.end())
        history.erase(ours + 1, history.end());
    else
        history.push_back(state->user);

    state->history = std::move(history);
    // After middleware and the session type, which may set it.
    state->system_prompt = system_prompt_of(state->session, state->user.metadata);
    return launch(state);
}

loader::SessionTypeInstance *SessionManager::session_type_of(const Pipeline &pipeline_,
                                                             const Session &session) {
    if (session.type.empty()) return nullptr;
    if (auto *type = pipeline_.session_type(session.type)) return type;
    throw ApiError(ErrorKind::Unavailable, "session type '" + session.type + "' of session '" + session.id +
                                               "' is not configured in the manifest");
}

void SessionManager::vet_with_session_type(SendState &state, const Access &access) {
    Pipeline &pipeline_ = *state.pipeline;
    loader::SessionTypeInstance *type = session_type_of(pipeline_, state.session);
    if (!type) return;
    loader::SessionTypeVerdict verdict = type->on_user_message(state.session, state.user, access.user);
    // Admin keys bypass session types' permissions (docs/security.md): the
    // message goes in as it came.
    if (verdict.status == SWH_E_PERMISSION && !access.type_checks) return;
    if (verdict.status != SWH_OK) {
        if (verdict.status == SWH_E_INTERNAL || verdict.status == SWH_E_UNSUPPORTED)
            spdlog::error("[{}] on_user_message failed: {}", type->name(), verdict.error);
        throw ApiError(kind_for_session_type_status(verdict.status), verdict.error);
    }
    if (verdict.edits.rejection)
        throw ApiError(ErrorKind::Rejected,
                       "message rejected by session type " + type->name() + ": " + *verdict.edits.rejection);
    if (verdict.edits.content) state.user.content = std::move(*verdict.edits.content);
    state.user.metadata.update(verdict.edits.metadata_patch);
}

// Concurrent sends must not overshoot server.max_messages_per_session: each
// send reserves its messages, and the check counts the stored messages (read
// under the session's lock) plus the reservations of sends still in flight.
std::shared_ptr<SessionManager::MessageReservation>
SessionManager::reserve_messages(const std::shared_ptr<Pipeline> &pin, const std::string &session_id,
                                 uint64_t count) {
    const uint64_t cap = pin->max_messages_per_session;
    if (cap == 0) return nullptr;
    std::lock_guard lock(session_lock(session_id));
    const auto stored =
        storage_call(gate_, "get_session", [pin, session_id] { return pin->storage->get_session(session_id); });
    if (!stored) throw ApiError(ErrorKind::NotFound, "session '" + session_id + "' not found");
    std::lock_guard reserved_lock(reserved_mutex_);
    const auto found = reserved_.find(session_id);
    const uint64_t in_flight = found == reserved_.end() ? 0 : found->second;
    if (stored->message_count + in_flight + count > cap) {
        throw ApiError(ErrorKind::Conflict,
                       "session '" + session_id + "' holds " + std::to_string(stored->message_count) +
                           " messages (" + std::to_string(in_flight) +
                           " more on the way); "
                           "server.max_messages_per_session allows " +
                           std::to_string(cap) + " (start a new session or archive this one)");
    }
    reserved_[session_id] += count;
    return std::make_shared<MessageReservation>(*this, session_id, count);
}

SessionManager::MessageReservation::~MessageReservation() {
    give_back(remaining);
}

void SessionManager::MessageReservation::give_back(uint64_t count) {
    std::lock_guard release(owner.reserved_mutex_);
    count = std::min(count, remaining);
    if (count == 0) return;
    remaining -= count;
    if (auto it = owner.reserved_.find(session_id); it != owner.reserved_.end() && (it->second -= count) == 0)
        owner.reserved_.erase(it);
}

// Stores one message of a send. Under a message cap the write and the
// reservation it uses up change together, under the session's lock that the
// cap check takes, so the check never counts a message twice (stored and
// still reserved) nor not at all.
void SessionManager::store_message(SendState &state, const Message &message) {
    const auto add = [pin = state.pipeline, message] { pin->storage->add_message(message); };
    if (!state.reservation) return storage_call(gate_, "add_message", add);
    std::lock_guard lock(session_lock(state.session.id));
    storage_call(gate_, "add_message", add);
    state.reservation->give_back(1);
}

std::mutex &SessionManager::session_lock(const std::string &session_id) {
    return session_locks_[std::hash<std::string>{}(session_id) % session_locks_.size()];
}

void SessionManager::authorize(const std::string &session_id, const Access &access,
                               const std::string &action) {
    if (!access.tenant && (!access.type_checks || current()->session_types.empty())) return;
    authorize(get_session(session_id), access, action);
}

void SessionManager::authorize(const Session &session, const Access &access, const std::string &action) {
    const std::shared_ptr<Pipeline> pin = current();
    Pipeline &pipeline_ = *pin;
    if (access.tenant && session.user_id != access.user && !type_vouches_for(pipeline_, session, access.user))
        // Another tenant's session does not exist as far as this caller knows.
        throw ApiError(ErrorKind::NotFound, "session '" + session.id + "' not found");
    if (!access.type_checks) return;
    loader::SessionTypeInstance *type = session_type_of(pipeline_, session);
    std::string error;
    if (const swh_status status = !type ? SWH_OK : type->authorize(session, access.user, action, error);
        status != SWH_OK)
        throw ApiError(kind_for_session_type_status(status), error);
}

// A session belongs to its owner. Its type may let other principals in, but
// only those it knows itself (a collaborative session's participants): a type
// without `authorize`, or whose `authorize` also admits a principal nobody
// has ever named (the probe), opens its sessions to everyone and so vouches
// for no one. Asked only for callers who are not the owner.
bool SessionManager::type_vouches_for(Pipeline &pipeline_, const Session &session, const std::string &caller) {
    loader::SessionTypeInstance *type = session_type_of(pipeline_, session);
    if (!type || !type->has_authorize() || caller.empty()) return false;
    std::string error;
    if (type->authorize(session, caller, SWH_ACTION_READ, error) != SWH_OK) return false;
    return type->authorize(session, nobody_, SWH_ACTION_READ, error) != SWH_OK;
}

namespace {
// The index of the route matching `segments`, filling `params`; the
// methods of routes whose path matches go to `allowed` when none matches both.
std::optional<std::size_t> match_route(const std::vector<loader::RouteSpec> &routes,
                                       const std::string &method, const std::vector<std::string> &segments,
                                       std::vector<std::string> &params, std::string &allowed) {
    for (std::size_t i = 0; i < routes.size(); ++i) {
        const auto &route = routes[i];
        if (route.segments.size() != segments.size()) continue;
        std::vector<std::string> values;
        bool same = true;
        for (std::size_t k = 0; k < segments.size() && same; ++k) {
            const std::string &pattern = route.segments[k];
            if (pattern.size() >= 2 && pattern.front() == '{' && pattern.back() == '}')
                values.push_back(segments[k]);
            else
                same = pattern == segments[k];
        }
        if (!same) continue;
        if (route.method == method) {
            params = std::move(values);
            return i;
        }
        if (allowed.find(route.method) == std::string::npos)
            allowed += (allowed.empty() ? "" : ", ") + route.method;
    }
    return std::nullopt;
}

} // namespace

SessionRouteAnswer SessionManager::handle_route(SessionRouteRequest request) {
    const std::shared_ptr<Pipeline> pin = current();
    Pipeline &pipeline_ = *pin;
    std::lock_guard lock(session_lock(request.session_id));
    Session session = get_session(request.session_id);
    authorize(session, tenancy_only(request.access), SWH_ACTION_READ); // the type checks its own routes
    std::string path;
    for (const auto &segment : request.segments)
        path += (path.empty() ? "" : "/") + segment;
    const std::string where = request.method + " /v1/sessions/" + request.session_id + "/" + path;
    loader::SessionTypeInstance *type = session_type_of(pipeline_, session);
    if (!type) throw ApiError(ErrorKind::NotFound, "no route for " + where + " (a session without a type)");
    loader::RouteCall call;
    std::string allowed;
    const auto index = match_route(type->routes(), request.method, request.segments, call.params, allowed);
    if (!index) {
        if (!allowed.empty())
            throw RouteMethodNotAllowed(
                "method " + request.method + " is not allowed here (allowed: " + allowed + ")", allowed);
        throw ApiError(ErrorKind::NotFound,
                       "no route for " + where + " (session type '" + session.type + "')");
    }
    call.route_index = *index;
    call.caller_user_id = request.access.user;
    call.query = std::move(request.query);
    call.content_type = std::move(request.content_type);
    call.body = std::move(request.body); // an upload may be tens of MiB: moved, not copied
    call.path = std::move(path);
    loader::RouteAnswer answer;
    try {
        answer = type->handle_route(session, call);
    } catch (const loader::PluginError &e) {
        if (e.status() == SWH_E_INTERNAL) spdlog::error("{}: {}", where, e.what());
        throw ApiError(kind_for_session_type_status(e.status()), e.what());
    }
    if (answer.metadata_patch) {
        session.metadata.update(*answer.metadata_patch);
        storage_call(gate_, "update_session",
                     [pin, session] { pin->storage->update_session(session, SWH_SESSION_FIELD_METADATA); });
    }
    for (auto &[event_type, data] : answer.events) {
        SessionEvent event;
        event.session_id = session.id;
        event.type = event_type;
        event.data = std::move(data);
        events_.publish(std::move(event));
    }
    return {answer.status, std::move(answer.content_type), std::move(answer.body)};
}

std::function<void()> SessionManager::complete(CompletionParams params,
                                               std::shared_ptr<SendObserver> observer) {
    const std::shared_ptr<Pipeline> pin = current();
    Pipeline &pipeline_ = *pin;
    if (params.messages.empty() || params.messages.back().role != "user")
        throw ApiError(ErrorKind::InvalidRequest, "messages must end with a user message");
    if (!pipeline_.routable(params.provider))
        throw ApiError(ErrorKind::InvalidRequest, "unknown provider '" + params.provider + "'");
    auto state = std::make_shared<SendState>();
    state->pipeline = pin;
    state->started_at = now_us();
    state->stream = params.stream;
    state->observer = std::move(observer);
    state->stateless = params.session_id.empty();
    if (state->stateless) {
        state->session.id = new_uuid();
        state->session.provider = params.provider;
        state->session.model = params.model;
        state->session.created_at = state->session.last_activity = state->started_at;
    } else {
        state->session = get_session(params.session_id);
        authorize(state->session, tenancy_only(params.access), SWH_ACTION_READ);
        state->reservation = reserve_messages(pin, state->session.id, 2);
        if (state->session.status != SWH_SESSION_ACTIVE)
            throw ApiError(ErrorKind::Conflict,
                           "session '" + params.session_id + "' is " + state->session.status);
        state->session.provider = params.provider; // the request's model routing wins for this exchange
        if (!params.model.empty()) state->session.model = params.model;
    }
    Message &last = params.messages.back();
    last.id = new_uuid();
    last.session_id = state->session.id;
    last.timestamp = now_us();
    state->user = last;
    if (!pipeline_.middleware.empty()) {
        ChainResult checked =
            pipeline_.middleware.run(SWH_STAGE_USER, state->session, std::move(state->user));
        if (checked.rejection) throw middleware_refusal(checked, "message");
        state->user = std::move(checked.message);
        last.content = state->user.content;
    }
    if (!state->stateless) {
        // The same check as POST /v1/sessions/{id}/messages: the session's
        // type decides whether this caller may write (a read-only
        // participant may not) and may edit the message.
        vet_with_session_type(*state, params.access);
        last.content = state->user.content;
        // Appending to a stored session: the question is durable first.
        store_message(*state, state->user);
        state->session.message_count += 1;
        publish(SWH_EVENT_MESSAGE_SENT, state->session, &state->user);
    }
    state->observer->on_user_stored(state->user);
    state->history = std::move(params.messages); // the client's conversation, as OpenAI clients expect
    state->system_prompt = std::move(params.system_prompt);
    return launch(state);
}

std::function<void()> SessionManager::launch(std::shared_ptr<SendState> state) {
    Pipeline &pipeline_ = *state->pipeline;
    state->candidates = provider_chain(pipeline_, state->session.provider, state->session.id);
    if (state->candidates.empty()) {
        release_and_report(*state, ApiError(ErrorKind::Unavailable,
                                            "provider '" + state->session.provider + "' is not configured"));
        return [] {};
    }
    if (state->stream && !pipeline_.middleware.empty()) {
        Message draft;
        draft.session_id = state->session.id;
        draft.role = "assistant";
        try {
            state->filter = pipeline_.middleware.open_stream(state->session, draft);
        } catch (const ApiError &e) {
            release_and_report(*state, e);
            return [] {};
        }
    }
    start_attempt(state);
    return [this, weak = std::weak_ptr<SendState>(state)] {
        if (auto alive = weak.lock()) cancel_send(alive);
    };
}

namespace {
// Rendezvous hashing: each session ranks a group's members by hash(session,
// member). The top one is its sticky member; adding or removing a member
// moves only the sessions that ranked it first.
std::vector<std::string> ranked_members(std::vector<std::string> members, const std::string &session_id) {
    auto score = [&](const std::string &member) {
        return std::hash<std::string>{}(session_id + '\x1f' + member);
    };
    std::stable_sort(members.begin(), members.end(),
                     [&](const std::string &a, const std::string &b) { return score(a) > score(b); });
    return members;
}
} // namespace

class SessionManager::IdempotencyClaim {
  public:
    IdempotencyClaim(SessionManager &owner, std::string slot) : owner_(owner), slot_(std::move(slot)) {}
    ~IdempotencyClaim() {
        std::lock_guard lock(owner_.idempotency_mutex_);
        owner_.idempotency_in_flight_.erase(slot_);
    }
    IdempotencyClaim(const IdempotencyClaim &) = delete;
    IdempotencyClaim &operator=(const IdempotencyClaim &) = delete;

  private:
    SessionManager &owner_;
    std::string slot_;
};

std::shared_ptr<SessionManager::IdempotencyClaim>
SessionManager::claim_idempotency_key(const std::string &session_id, const std::string &key) {
    std::string slot = session_id + '\n' + key;
    std::lock_guard lock(idempotency_mutex_);
    if (!idempotency_in_flight_.insert(slot).second)
        throw ApiError(ErrorKind::Conflict,
                       "a request with this Idempotency-Key is still being answered; retry later");
    return std::make_shared<IdempotencyClaim>(*this, std::move(slot));
}

// The first attempt with this key among the session's recent messages: its
// user message and, if it was answered, the reply.
std::pair<std::optional<Message>, std::optional<Message>>
SessionManager::find_prior_attempt(const std::shared_ptr<Pipeline> &pin, const std::string &session_id,
                                   const std::string &key) {
    loader::MessageQuery query;
    query.session_id = session_id;
    query.limit = kIdempotencyWindow;
    auto text_of = [](const Json &metadata, const char *field) {
        auto it = metadata.find(field);
        return it != metadata.end() && it->is_string() ? it->get<std::string>() : std::string();
    };
    std::optional<Message> user, reply;
    for (auto &m : storage_call(gate_, "get_messages", [pin, query] { return pin->storage->get_messages(query); })) {
        if (!user && m.role != "assistant" && text_of(m.metadata, "idempotency_key") == key)
            user = m;
        else if (user && m.role == "assistant" && text_of(m.metadata, "reply_to") == user->id)
            reply = std::move(m);
    }
    return {user, reply};
}

std::vector<std::string> SessionManager::provider_chain(const Pipeline &pipeline_, const std::string &target,
                                                        const std::string &session_id) {
    std::vector<std::string> chain;
    auto add = [&](const std::string &name) {
        if (std::find(chain.begin(), chain.end(), name) == chain.end() && pipeline_.provider(name))
            chain.push_back(name);
    };
    if (auto group = pipeline_.groups.find(target); group != pipeline_.groups.end()) {
        // The session's sticky member first, the rest of the group if it fails.
        for (const auto &member : ranked_members(group->second, session_id))
            add(member);
    } else {
        add(target);
    }
    const std::vector<std::string> primaries = chain;
    for (const auto &name : primaries)
        if (auto it = pipeline_.fallbacks.find(name); it != pipeline_.fallbacks.end())
            for (const auto &fallback : it->second)
                add(fallback);
    return chain;
}

// Starts (or, after a failure, continues) the reply on candidates[attempt].
// A continuation passes what the client has already seen as the assistant
// prefix, so the stream just goes on.
void SessionManager::start_attempt(std::shared_ptr<SendState> state) {
    Pipeline &pipeline_ = *state->pipeline;
    const std::string name = state->candidates[state->attempt];
    loader::ProviderInstance *provider = pipeline_.provider(name);
    loader::ProviderRequest request;
    request.session = &state->session;
    request.messages = &state->history;
    request.model =
        state->attempt == 0 ? state->session.model : std::string(); // a fallback uses its own default
    request.system_prompt = state->system_prompt;
    request.stream = state->stream;
    {
        std::lock_guard lock(state->mutex);
        request.assistant_prefix = state->raw_reply;
        state->upstream_started_at = now_us();
    }

    loader::ProviderCallbacks callbacks;
    callbacks.on_chunk = [state](std::string_view text) {
        std::string passed;
        {
            std::lock_guard lock(state->mutex);
            if (state->stream_failure) return false;
            if (state->first_token_at == 0) state->first_token_at = now_us();
            state->raw_reply.append(text);
            if (!state->filter) {
                passed.assign(text);
            } else {
                // Stream guardrails see every piece before the client does.
                try {
                    passed = state->filter->push(text);
                } catch (const ApiError &) {
                    state->stream_failure = std::current_exception();
                    return false;
                }
            }
            state->reply.append(passed);
        }
        return passed.empty() || state->observer->on_chunk(passed);
    };
    callbacks.on_metadata = [state](std::string id, Json metadata) {
        std::lock_guard lock(state->mutex);
        if (!id.empty()) state->provider_message_id = std::move(id);
        state->provider_metadata.update(metadata);
    };
    callbacks.on_done = [this, state](swh_status status, std::string error) {
        {
            std::lock_guard lock(state->mutex);
            state->upstream_us += now_us() - state->upstream_started_at;
        }
        // Storing the reply blocks; done may arrive on an I/O thread. A
        // stateless exchange stores nothing: it never waits behind the store.
        (state->stateless ? post_free_ : post_blocking_)([this, state, status, error = std::move(error)]() mutable {
            finish_send(state, status, std::move(error));
        });
    };
    try {
        const uint64_t call_id = provider->start(request, std::move(callbacks));
        std::lock_guard lock(state->mutex);
        state->active_provider = provider;
        state->active_call = call_id;
    } catch (const loader::PluginError &e) {
        finish_send(state, e.status(), e.what());
    }
}

void SessionManager::cancel_send(const std::shared_ptr<SendState> &state) {
    loader::ProviderInstance *provider;
    uint64_t call;
    {
        std::lock_guard lock(state->mutex);
        state->cancelled = true;
        provider = state->active_provider;
        call = state->active_call;
    }
    if (provider) provider->cancel(call);
}

// What a send holds while it runs is let go before the client hears how it
// ended: what it stored is counted by now, so its room under
// max_messages_per_session goes back, and its Idempotency-Key is free, so a
// retry sent after the answer finds the stored exchange instead of a 409.
void SessionManager::release_holds(SendState &state) {
    state.reservation.reset();
    state.idempotency.reset();
}

void SessionManager::release_and_report(SendState &state, const ApiError &error) {
    release_holds(state);
    state.observer->on_error(error);
}

void SessionManager::finish_send(std::shared_ptr<SendState> state, swh_status status, std::string error) {
    if (state->stream_failure) {
        try {
            std::rethrow_exception(state->stream_failure);
        } catch (const ApiError &e) {
            release_and_report(*state, e);
        }
        return;
    }
    if (status != SWH_OK) {
        const std::string failed = state->candidates[state->attempt];
        if (!state->stateless)
            publish(SWH_EVENT_PROVIDER_ERROR, state->session, &state->user,
                    {{"provider", failed}, {"status", status}, {"error", error}});
        bool cancelled;
        {
            std::lock_guard lock(state->mutex);
            cancelled = state->cancelled;
            state->failures.push_back({{"provider", failed}, {"error", error}});
        }
        if (!cancelled && status != SWH_E_CANCELLED && status != SWH_E_INVALID &&
            state->attempt + 1 < state->candidates.size()) {
            ++state->attempt;
            spdlog::warn("session {}: provider '{}' failed ({}); continuing on fallback '{}'",
                         state->session.id, failed, error, state->candidates[state->attempt]);
            start_attempt(state);
            return;
        }
        // The user message stays stored; no partial reply is stored as the
        // assistant's answer.
        spdlog::warn("session {}: provider '{}' failed: {}", state->session.id, failed, error);
        release_and_report(*state,
                           ApiError(kind_for_provider_status(status),
                                    "provider '" + failed + "' failed: " + error, retry_after_from(error)));
        return;
    }
    Message assistant;
    {
        std::lock_guard lock(state->mutex);
        assistant.content = std::move(state->reply);
        assistant.provider_message_id = std::move(state->provider_message_id);
        assistant.provider_metadata = std::move(state->provider_metadata);
    }
    assistant.id = new_uuid();
    assistant.session_id = state->session.id;
    assistant.role = "assistant";
    assistant.timestamp = std::max(now_us(), state->user.timestamp + 1); // strictly after the question
    const int64_t total_us = now_us() - state->started_at;
    assistant.metadata = {{"provider", state->candidates[state->attempt]},
                          {"reply_to", state->user.id},
                          {"response_time_ms", total_us / 1000.0},
                          {"streaming", state->stream}};
    {
        std::lock_guard lock(state->mutex);
        if (!state->failures.empty()) {
            // Which providers failed before this one answered (and how far
            // the stream had got when it switched).
            assistant.metadata["failover"] = state->failures;
            assistant.metadata["providers"] = Json::array();
            for (std::size_t i = 0; i <= state->attempt; ++i)
                assistant.metadata["providers"].push_back(state->candidates[i]);
        }
    }
    try {
        assistant = run_assistant_stage(*state, std::move(assistant));
        if (!state->stateless) store_message(*state, assistant);
    } catch (const ApiError &e) {
        release_and_report(*state, e);
        return;
    }
    state->session.message_count += 1;
    state->session.last_activity = assistant.timestamp;
    if (!state->stateless)
        publish(SWH_EVENT_MESSAGE_SENT, state->session, &assistant,
                {{"response_time_ms", assistant.metadata["response_time_ms"]}});
    double overhead_ms;
    {
        std::lock_guard lock(state->mutex);
        overhead_ms = std::max<int64_t>(0, now_us() - state->started_at - state->upstream_us) / 1000.0;
    }
    release_holds(*state);
    state->observer->on_complete(state->user, assistant, overhead_ms);
}

Message SessionManager::run_assistant_stage(SendState &state, Message assistant) {
    Pipeline &pipeline_ = *state.pipeline;
    if (pipeline_.middleware.empty()) return assistant;
    ChainResult result;
    if (state.filter) {
        // Flush what stream guardrails held back, then let the middleware that
        // do not stream see the complete reply before it is stored.
        std::string tail = state.filter->close();
        if (!tail.empty()) {
            assistant.content += tail;
            state.observer->on_chunk(tail);
        }
        assistant.metadata.update(state.filter->metadata());
        result = pipeline_.middleware.run_after_stream(state.session, std::move(assistant));
    } else {
        result = pipeline_.middleware.run(SWH_STAGE_ASSISTANT, state.session, std::move(assistant));
    }
    if (result.rejection) throw middleware_refusal(result, "reply");
    return std::move(result.message);
}

// The store's own report, through the gate: a store that does not answer
// within server.storage_timeout_ms (or while the gate fails fast) is
// unhealthy, and /healthz still answers.
Json SessionManager::storage_health(const std::shared_ptr<Pipeline> &pin) {
    try {
        return gate_.run("health_check", [pin] { return pin->storage->health_check(); });
    } catch (const ApiError &e) {
        return Json{{"status", "unhealthy"}, {"backend", pin->storage->library().name()}, {"error", e.what()}};
    }
}

StorageGate::Stats SessionManager::storage_stats() const {
    return gate_.stats();
}

Json SessionManager::health() {
    const std::shared_ptr<Pipeline> pin = current();
    Pipeline &pipeline_ = *pin;
    Json report = {{"storage", storage_health(pin)}, {"providers", Json::object()}};
    bool healthy = report["storage"].value("status", "") == "healthy";
    for (const auto &[name, provider] : pipeline_.providers) {
        report["providers"][name] = provider->health_check();
        healthy = healthy && report["providers"][name].value("status", "") == "healthy";
    }
    report["status"] = healthy ? "healthy" : "unhealthy";
    return report;
}

} // namespace swh
