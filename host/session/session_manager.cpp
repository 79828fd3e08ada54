#include "session/session_manager.hpp"

#include "limits/shared_limits.hpp"
#include "util/clock.hpp"
#include "util/ids.hpp"

#include <algorithm>
#include <mutex>
#include <spdlog/spdlog.h>

namespace swh {

namespace {

Json normalised_context(const Json &given) {
    Json context = default_session_context();
    for (const auto &[key, value] : given.items())
        context[key] = value;
    return context;
}

HistoryCacheLimits cache_limits(const StorageLimits &limits) {
    HistoryCacheLimits cache;
    cache.max_bytes = limits.history_cache_bytes;
    return cache;
}

} // namespace

SessionManager::SessionManager(std::shared_ptr<Pipeline> pipeline, PostBlocking post_blocking,
                               StorageLimits limits, PostBlocking post_free)
    : current_(std::move(pipeline)), post_blocking_(std::move(post_blocking)),
      post_free_(post_free ? std::move(post_free) : post_blocking_), history_(cache_limits(limits)),
      send_path_(*this, post_blocking_, post_free_), nobody_("swarmhost.nobody." + new_uuid()),
      gate_(limits.threads, limits.timeout) {}

std::shared_ptr<Pipeline> SessionManager::current() const {
    return std::atomic_load(&current_);
}

std::shared_ptr<Pipeline> SessionManager::swap_pipeline(std::shared_ptr<Pipeline> next) {
    std::shared_ptr<Pipeline> old = std::atomic_exchange(&current_, std::move(next));
    // After the exchange: a send that read the cache's epoch before it may
    // hold either pipeline, and what it would cache is now refused.
    history_.clear();
    return old;
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

std::vector<Session> SessionManager::list_sessions(const SessionFilter &filter) {
    const std::shared_ptr<Pipeline> pin = current();
    return storage_call(gate_, "list_sessions",
                        [pin, filter] { return pin->storage->list_sessions(filter); });
}

Session SessionManager::update_session(const std::string &id, const SessionPatch &patch) {
    const std::shared_ptr<Pipeline> pin = current();
    Pipeline &pipeline_ = *pin;
    std::lock_guard lock(locks_.of(id)); // metadata may hold a session type's state
    Session session = get_session(id);
    uint32_t fields = 0;
    if (patch.provider) {
        // The conversation goes on on another provider (or vendor): its
        // stored form is neutral, so the next send replays it there.
        if (!pipeline_.routable(*patch.provider))
            throw ApiError(ErrorKind::InvalidRequest, "unknown provider '" + *patch.provider + "'");
        session.provider = *patch.provider;
        session.context["system_context"]["provider"] = session.provider;
        fields |= SWH_SESSION_FIELD_PROVIDER | SWH_SESSION_FIELD_CONTEXT;
    }
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
        history_.forget(id); // its window may have changed
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
    history_.forget(id);
    if (before) {
        publish(SWH_EVENT_SESSION_DELETED, *before);
    } else {
        Session gone;
        gone.id = id;
        publish_live("session_deleted", gone);
    }
}

void SessionManager::publish_live(const std::string &type, const Session &session, const Message *message,
                                  const std::shared_ptr<void> &hold, bool if_absent) {
    if (!events_.wanted(session.id)) return; // the common case (no listener, no fleet) costs one map lookup
    SessionEvent event;
    event.session_id = session.id;
    event.type = type;
    event.hold = hold;
    event.if_absent = if_absent;
    if (message)
        event.message = *message;
    else if (type == "session_deleted")
        event.data = Json{{"session_id", session.id}};
    else
        event.session = session;
    events_.publish(std::move(event));
}

void SessionManager::republish_message(const Session &session, const Message &message,
                                       std::shared_ptr<void> hold) {
    publish_live("message", session, &message, hold, true);
}

void SessionManager::publish(uint32_t type, const Session &session, const Message *message, Json details,
                             std::shared_ptr<void> hold) {
    const std::shared_ptr<Pipeline> pin = current();
    Pipeline &pipeline_ = *pin;
    switch (type) {
    case SWH_EVENT_MESSAGE_SENT:
        publish_live("message", session, message, hold);
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

std::vector<Message> SessionManager::get_messages(const MessageQuery &query) {
    const std::shared_ptr<Pipeline> pin = current();
    return session_call(gate_, "get_messages", query.session_id,
                        [pin, query] { return pin->storage->get_messages(query); });
}

std::vector<MessageRef> SessionManager::read_messages(const MessageQuery &query, const Access &access) {
    const uint64_t epoch = history_.epoch();
    if (query.role.empty() && query.since == 0 && history_.holds(query.session_id)) {
        const Session row = get_session(query.session_id);
        authorize(row, access, SWH_ACTION_READ);
        if (HistoryCache::Snapshot cached = history_.covering(epoch, row, query.limit)) {
            const std::size_t take =
                query.limit == 0 ? cached->size() : std::min<std::size_t>(query.limit, cached->size());
            return {cached->end() - static_cast<std::ptrdiff_t>(take), cached->end()};
        }
    } else {
        authorize(query.session_id, access, SWH_ACTION_READ);
    }
    std::vector<Message> stored = get_messages(query);
    std::vector<MessageRef> frozen;
    frozen.reserve(stored.size());
    for (Message &m : stored)
        frozen.push_back(freeze(std::move(m)));
    return frozen;
}

loader::SessionTypeInstance *SessionManager::session_type_of(const Pipeline &pipeline_,
                                                             const Session &session) {
    if (session.type.empty()) return nullptr;
    if (auto *type = pipeline_.session_type(session.type)) return type;
    throw ApiError(ErrorKind::Unavailable, "session type '" + session.type + "' of session '" + session.id +
                                               "' is not configured in the manifest");
}

// Concurrent sends must not overshoot server.max_messages_per_session: each
// send reserves its messages, and the check counts the stored messages (read
// under the session's lock) plus the reservations of sends still in flight.
std::shared_ptr<MessageReservations::Reservation>
SessionManager::reserve_messages(const std::shared_ptr<Pipeline> &pin, const std::string &session_id,
                                 uint64_t count) {
    const uint64_t cap = pin->max_messages_per_session;
    if (cap == 0) return nullptr;
    std::lock_guard lock(locks_.of(session_id));
    // Across daemons the lease comes first, then the read: of two sends that
    // race, the later lease sees the earlier one, or the earlier one ended
    // and its messages are stored before this read (docs/fleet.md).
    std::optional<MessageReservations::FleetLease> fleet;
    if (shared_)
        if (auto lease = shared_->take("messages/" + session_id, count, 0))
            fleet = MessageReservations::FleetLease{lease->held, std::move(lease->hold)};
    const auto stored = storage_call(gate_, "get_session",
                                     [pin, session_id] { return pin->storage->get_session(session_id); });
    if (!stored) throw ApiError(ErrorKind::NotFound, "session '" + session_id + "' not found");
    return reservations_.reserve(session_id, stored->message_count, cap, count, std::move(fleet));
}

std::function<void()> SessionManager::send_message(const SendParams &params,
                                                   std::shared_ptr<SendObserver> observer) {
    return send_path_.send_message(params, std::move(observer));
}

std::function<void()> SessionManager::complete(CompletionParams params,
                                               std::shared_ptr<SendObserver> observer) {
    return send_path_.complete(std::move(params), std::move(observer));
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
bool SessionManager::type_vouches_for(Pipeline &pipeline_, const Session &session,
                                      const std::string &caller) {
    loader::SessionTypeInstance *type = session_type_of(pipeline_, session);
    if (!type || !type->has_authorize() || caller.empty()) return false;
    std::string error;
    if (type->authorize(session, caller, SWH_ACTION_READ, error) != SWH_OK) return false;
    return type->authorize(session, nobody_, SWH_ACTION_READ, error) != SWH_OK;
}

// The store's own report, through the gate: a store that does not answer
// within server.storage_timeout_ms (or while the gate fails fast) is
// unhealthy, and /healthz still answers.
Json SessionManager::storage_health(const std::shared_ptr<Pipeline> &pin) {
    try {
        return gate_.run("health_check", [pin] { return pin->storage->health_check(); });
    } catch (const ApiError &e) {
        return Json{
            {"status", "unhealthy"}, {"backend", pin->storage->library().name()}, {"error", e.what()}};
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
