// The swh_storage_v1 table of a C++ storage plugin, generated from a Store
// class, plus the owned row types and the input checks every store shares.
// Header-only, part of the optional C++ layer of the SDK. The same idiom as
// the other kinds (plugin.hpp): a class, a schema of setting rows bound to its
// settings struct, one line for the table, the descriptor and the entry:
//
//     SWH_CPP_STORAGE(Store, "mystore", "0.1.0", "Sessions in ...", kSchema)
//
// A Store provides (all may throw swh::edge::Failure; any thread, concurrently):
//   Store(swh::cpp::Host, const Settings &);    // as in plugin.hpp (or const Config &)
//   void create_session(const SessionInput &);
//   std::optional<SessionRow> get_session(std::string_view id);
//   void update_session(const SessionInput &, uint32_t fields);   // NOT_FOUND if absent
//   void delete_session(std::string_view id);                     // NOT_FOUND if absent
//   std::vector<SessionRow> list_sessions(const SessionFilterInput &);
//   void add_message(const MessageInput &);
//   std::vector<MessageRow> get_messages(const MessageQueryInput &); // NOT_FOUND if absent
//   void describe(nlohmann::json &report);  // static facts, never throws Failure
//   void health(nlohmann::json &report);    // live facts; throws Failure when unhealthy
// and, optionally, the event carrier of ABI 1.4 (event_carrier.hpp).
#pragma once

#include <swarmhost/cpp/edge.hpp>
#include <swarmhost/cpp/event_carrier.hpp>
#include <swarmhost/cpp/plugin.hpp>

#include <nlohmann/json.hpp>

#include <cinttypes>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace swh::store {

using edge::Failure;

// ------------------------------------------------------------ rows (output)

// Owned copies of rows; view() borrows from the row for one sink call.
struct SessionRow {
    std::string id, user_id, provider, model, status, type;
    int64_t created_at = 0, last_activity = 0, message_count = 0;
    std::string config, context, metadata;

    swh_session view() const noexcept {
        swh_session s{};
        s.struct_size = sizeof(swh_session);
        s.id = edge::to_str(id);
        s.user_id = edge::to_str(user_id);
        s.provider = edge::to_str(provider);
        s.model = edge::to_str(model);
        s.status = edge::to_str(status);
        s.type = edge::to_str(type);
        s.created_at = created_at;
        s.last_activity = last_activity;
        s.message_count = static_cast<uint64_t>(message_count);
        s.config_json = edge::to_str(config);
        s.context_json = edge::to_str(context);
        s.metadata_json = edge::to_str(metadata);
        return s;
    }
};

struct MessageRow {
    std::string id, session_id, role, content;
    int64_t timestamp = 0;
    std::string metadata, provider_message_id, provider_metadata;
    // 1.3 structured content as stored: "" (or "{}") for a plain message and
    // for every row written before the store kept it.
    std::string structured;

    swh_message view() const noexcept {
        swh_message m{};
        m.struct_size = sizeof(swh_message);
        m.id = edge::to_str(id);
        m.session_id = edge::to_str(session_id);
        m.role = edge::to_str(role);
        m.content = edge::to_str(content);
        m.timestamp = timestamp;
        m.metadata_json = edge::to_str(metadata);
        m.provider_message_id = edge::to_str(provider_message_id);
        m.provider_metadata_json = edge::to_str(provider_metadata);
        // The 1.3 struct goes back whatever the host's minor: a 1.3 host reads
        // structured_json, an older one reads up to the members it knows.
        m.structured_json = edge::to_str(structured);
        return m;
    }
};

// ------------------------------------------------------------ inputs (checked)

inline std::string quoted(std::string_view id) {
    return "'" + std::string(id) + "'";
}

// JSON members arrive as object text; "" means "{}".
inline std::string_view json_or_empty(swh_str s, const char *what) {
    std::string_view text = edge::view(s, what);
    return text.empty() ? std::string_view("{}") : text;
}

inline std::string_view required(swh_str s, const char *what) {
    std::string_view text = edge::view(s, what);
    if (text.empty()) throw Failure(SWH_E_INVALID, std::string(what) + " is empty");
    return text;
}

// A session as borrowed, checked views (status defaults to "active").
// message_count is passed on unchecked, as given to create_session: a store
// that keeps it checks its range (the others start the count at 0).
struct SessionInput {
    std::string_view id, user_id, provider, model, status, type, config, context, metadata;
    int64_t created_at = 0, last_activity = 0;
    uint64_t message_count = 0;

    static SessionInput from(const swh_session &s, bool need_status) {
        SessionInput in;
        in.id = required(s.id, "session.id");
        in.user_id = edge::view(s.user_id, "session.user_id");
        in.provider = edge::view(s.provider, "session.provider");
        in.model = edge::view(s.model, "session.model");
        in.status = edge::view(s.status, "session.status");
        if (in.status.empty()) {
            if (need_status) throw Failure(SWH_E_INVALID, "update_session: session.status is empty");
            in.status = SWH_SESSION_ACTIVE;
        }
        in.type = edge::view(s.type, "session.type");
        in.config = json_or_empty(s.config_json, "session.config_json");
        in.context = json_or_empty(s.context_json, "session.context_json");
        in.metadata = json_or_empty(s.metadata_json, "session.metadata_json");
        in.created_at = s.created_at;
        in.last_activity = s.last_activity;
        in.message_count = s.message_count;
        return in;
    }
};

struct MessageInput {
    std::string_view id, session_id, role, content, metadata, provider_message_id, provider_metadata;
    // Kept verbatim (a JSON object text the host checked, or ""); "" when the
    // host's swh_message predates 1.3.
    std::string_view structured;
    int64_t timestamp = 0;

    static MessageInput from(const swh_message &m) {
        MessageInput in;
        in.id = required(m.id, "message.id");
        in.session_id = required(m.session_id, "message.session_id");
        in.role = required(m.role, "message.role");
        in.content = edge::view(m.content, "message.content");
        in.metadata = json_or_empty(m.metadata_json, "message.metadata_json");
        in.provider_message_id = edge::view(m.provider_message_id, "message.provider_message_id");
        in.provider_metadata = json_or_empty(m.provider_metadata_json, "message.provider_metadata_json");
        // Read only when the host's struct has it, so the stores keep
        // declaring ABI 1.0 and a 1.0-1.2 host still loads them.
        if (SWH_HAS_MEMBER(&m, swh_message, structured_json))
            in.structured = edge::view(m.structured_json, "message.structured_json");
        in.timestamp = m.timestamp;
        return in;
    }
};

struct SessionFilterInput {
    std::string_view user_id, status;
    uint32_t limit = 0, offset = 0; // limit 0 = no limit
};

struct MessageQueryInput {
    std::string_view session_id, role;
    int64_t since = 0;  // 0 = all
    uint32_t limit = 0; // 0 = all, else the LAST `limit` matching
};

constexpr uint32_t kKnownSessionFields = SWH_SESSION_FIELD_STATUS | SWH_SESSION_FIELD_MODEL |
                                         SWH_SESSION_FIELD_PROVIDER | SWH_SESSION_FIELD_CONFIG |
                                         SWH_SESSION_FIELD_CONTEXT | SWH_SESSION_FIELD_METADATA |
                                         SWH_SESSION_FIELD_LAST_ACTIVITY;

// Unknown bits are refused, so a field of a newer ABI is never dropped silently.
inline void check_update_fields(uint32_t fields) {
    if ((fields & ~kKnownSessionFields) == 0) return;
    char bits[16];
    std::snprintf(bits, sizeof bits, "0x%" PRIx32, fields & ~kKnownSessionFields);
    throw Failure(SWH_E_INVALID, std::string("update_session: unknown field bits ") + bits);
}

inline std::string dump(const nlohmann::json &j) {
    return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

// ------------------------------------------------------------ the table

// The event carrier's two config rows: the same key, default and meaning in
// every store that carries events (`Options` has both members).
template <class Options> constexpr auto events_retention_setting() noexcept {
    return cpp::setting<&Options::events_retention_seconds>(
        "events_retention_seconds", "3600",
        "Event carrier: how long live session events are kept for replay (Last-Event-ID), in seconds");
}
template <class Options> constexpr auto events_max_per_session_setting() noexcept {
    return cpp::setting<&Options::events_max_per_session>(
        "events_max_per_session", "1000",
        "Event carrier: at most this many events kept per session (older ones are trimmed first)");
}

// A Store with the four members of event_carrier.hpp carries events.
template <class Store>
concept CarriesEvents = requires(Store &s, std::string_view text, uint64_t seq, uint32_t limit,
                                 EventWatcher watcher) {
    { s.events_publish(text, text) } -> std::convertible_to<uint64_t>;
    { s.events_read(text, seq, limit) } -> std::same_as<EventPage>;
    s.events_watch(watcher);
    s.events_unwatch();
};

// Shared limits (ABI 1.5, storage.h): a Store shares limits when it has
//   int64_t counter_add(std::string_view key, int64_t delta, uint32_t window_ms);
//   LeaseOutcome lease_acquire(const LeaseInput &lease);
//   void lease_release(std::string_view key, std::string_view owner);
// (all may throw swh::edge::Failure). The arguments are checked here first:
// key and owner non-empty, weight, ttl_ms and window_ms >= 1.
struct LeaseInput {
    std::string_view key, owner;
    uint64_t weight = 1, limit = 0; // limit 0 = none
    uint32_t ttl_ms = 0;
};
struct LeaseOutcome {
    bool taken = false; // false: the limit would be passed (SWH_E_CONFLICT)
    uint64_t held = 0;  // units the key's live leases hold
};

template <class Store>
concept SharesLimits = requires(Store &s, std::string_view text, int64_t delta, uint32_t ms,
                                const LeaseInput &lease) {
    { s.counter_add(text, delta, ms) } -> std::convertible_to<int64_t>;
    { s.lease_acquire(lease) } -> std::same_as<LeaseOutcome>;
    s.lease_release(text, text);
};

// The 1.4 payload bound of storage.h (events_publish).
constexpr size_t kMaxEventPayload = 1u << 20;

// The table, on the instance, create/destroy/last_error and guarded call of
// plugin.hpp: the kinds share one edge.
template <class Store, const auto &Sch = cpp::no_config> class Plugin {
  public:
    static constexpr swh_storage_v1 table() {
        constexpr bool carrier = CarriesEvents<Store>;
        constexpr bool limits = SharesLimits<Store>;
        return {sizeof(swh_storage_v1),
                &cpp::detail::create<Store, Sch>,
                &cpp::detail::destroy<Store>,
                &cpp::detail::last_error<Store>,
                create_session,
                get_session,
                update_session,
                delete_session,
                list_sessions,
                add_message,
                get_messages,
                health_check,
                carrier ? events_publish : nullptr,
                carrier ? events_read : nullptr,
                carrier ? events_watch : nullptr,
                carrier ? events_unwatch : nullptr,
                limits ? counter_add : nullptr,
                limits ? lease_acquire : nullptr,
                limits ? lease_release : nullptr};
    }

  private:
    template <class Body> static swh_status call(void *handle, Body &&body) noexcept {
        return cpp::detail::call<Store>(handle, std::forward<Body>(body));
    }
    static void require(bool ok, const char *what) {
        if (!ok) throw Failure(SWH_E_INVALID, what);
    }
    static void check_sink(swh_status status) {
        if (status != SWH_OK)
            throw Failure(status, "result sink returned status " + std::to_string(status) + ", stopped");
    }
    static const swh_session &session_arg(const swh_session *s) {
        require(SWH_HAS_MEMBER(s, swh_session, metadata_json),
                "session is NULL or its struct_size is too small");
        return *s;
    }
    static void require_sink(const swh_result_sink *sink, bool has) {
        require(sink != nullptr && has, "sink lacks the callback this call needs");
    }

    static swh_status create_session(void *handle, const swh_session *session) noexcept {
        return call(handle, [&](Store &store) {
            store.create_session(SessionInput::from(session_arg(session), false));
            return SWH_OK;
        });
    }
    static swh_status get_session(void *handle, swh_str session_id, const swh_result_sink *sink) noexcept {
        return call(handle, [&](Store &store) {
            require_sink(sink, SWH_HAS_MEMBER(sink, swh_result_sink, session) && sink->session);
            auto id = edge::view(session_id, "session_id");
            auto row = store.get_session(id);
            if (!row) throw Failure(SWH_E_NOT_FOUND, "session " + quoted(id) + " not found");
            swh_session s = row->view();
            check_sink(sink->session(sink->ctx, &s));
            return SWH_OK;
        });
    }
    static swh_status update_session(void *handle, const swh_session *session, uint32_t fields) noexcept {
        return call(handle, [&](Store &store) {
            check_update_fields(fields);
            store.update_session(
                SessionInput::from(session_arg(session), (fields & SWH_SESSION_FIELD_STATUS) != 0), fields);
            return SWH_OK;
        });
    }
    static swh_status delete_session(void *handle, swh_str session_id) noexcept {
        return call(handle, [&](Store &store) {
            store.delete_session(required(session_id, "session_id"));
            return SWH_OK;
        });
    }
    static swh_status list_sessions(void *handle, const swh_session_filter *filter,
                                    const swh_result_sink *sink) noexcept {
        return call(handle, [&](Store &store) {
            require_sink(sink, SWH_HAS_MEMBER(sink, swh_result_sink, session) && sink->session);
            SessionFilterInput in;
            if (filter != nullptr) { // NULL = no filter
                require(SWH_HAS_MEMBER(filter, swh_session_filter, offset),
                        "filter struct_size is too small");
                in.user_id = edge::view(filter->user_id, "filter.user_id");
                in.status = edge::view(filter->status, "filter.status");
                in.limit = filter->limit;
                in.offset = filter->offset;
            }
            for (const SessionRow &row : store.list_sessions(in)) {
                swh_session s = row.view();
                check_sink(sink->session(sink->ctx, &s));
            }
            return SWH_OK;
        });
    }
    static swh_status add_message(void *handle, const swh_message *message) noexcept {
        return call(handle, [&](Store &store) {
            require(SWH_HAS_MEMBER(message, swh_message, provider_metadata_json),
                    "message is NULL or its struct_size is too small");
            store.add_message(MessageInput::from(*message));
            return SWH_OK;
        });
    }
    static swh_status get_messages(void *handle, const swh_message_query *query,
                                   const swh_result_sink *sink) noexcept {
        return call(handle, [&](Store &store) {
            require(SWH_HAS_MEMBER(query, swh_message_query, limit),
                    "query is NULL or its struct_size is too small");
            require_sink(sink, SWH_HAS_MEMBER(sink, swh_result_sink, message) && sink->message);
            MessageQueryInput in;
            in.session_id = required(query->session_id, "query.session_id");
            in.role = edge::view(query->role, "query.role");
            in.since = query->since;
            in.limit = query->limit;
            for (const MessageRow &row : store.get_messages(in)) {
                swh_message m = row.view();
                check_sink(sink->message(sink->ctx, &m));
            }
            return SWH_OK;
        });
    }
    // ---- the event carrier (1.4); only in the table when CarriesEvents<Store>
    static swh_status events_publish(void *handle, swh_str session_id, swh_str payload,
                                     uint64_t *out_seq) noexcept {
        return call(handle, [&](Store &store) {
            if constexpr (CarriesEvents<Store>) {
                require(out_seq != nullptr, "out_seq is NULL");
                const std::string_view body = edge::view(payload, "payload");
                if (body.size() > kMaxEventPayload) throw Failure(SWH_E_INVALID, "event payload over 1 MiB");
                *out_seq = store.events_publish(required(session_id, "session_id"), body);
            }
            return SWH_OK;
        });
    }
    static swh_status events_read(void *handle, const swh_event_query *query,
                                  const swh_event_sink *sink) noexcept {
        return call(handle, [&](Store &store) {
            if constexpr (CarriesEvents<Store>) {
                require(SWH_HAS_MEMBER(query, swh_event_query, limit),
                        "query is NULL or its struct_size is too small");
                require(SWH_HAS_MEMBER(sink, swh_event_sink, event) && sink->range && sink->event,
                        "event sink is NULL or lacks range/event");
                EventPage page = store.events_read(required(query->session_id, "query.session_id"),
                                                   query->after_seq, query->limit);
                sink->range(sink->ctx, page.first_seq, page.last_seq);
                for (const EventRow &row : page.events)
                    check_sink(sink->event(sink->ctx, row.seq, edge::to_str(row.payload)));
            }
            return SWH_OK;
        });
    }
    static swh_status events_watch(void *handle, const swh_event_watcher *watcher) noexcept {
        return call(handle, [&](Store &store) {
            if constexpr (CarriesEvents<Store>) {
                require(SWH_HAS_MEMBER(watcher, swh_event_watcher, link) && watcher->wake && watcher->link,
                        "watcher is NULL or lacks wake/link");
                store.events_watch(EventWatcher(*watcher));
            }
            return SWH_OK;
        });
    }
    static void events_unwatch(void *handle) noexcept {
        call(handle, [&](Store &store) {
            if constexpr (CarriesEvents<Store>) store.events_unwatch();
            return SWH_OK;
        });
    }

    // ---- shared limits (1.5); only in the table when SharesLimits<Store>
    static swh_status counter_add(void *handle, swh_str key, int64_t delta, uint32_t window_ms,
                                  int64_t *out_value) noexcept {
        return call(handle, [&](Store &store) {
            if constexpr (SharesLimits<Store>) {
                require(out_value != nullptr, "out_value is NULL");
                require(window_ms >= 1, "window_ms must be >= 1");
                *out_value = store.counter_add(required(key, "key"), delta, window_ms);
            }
            return SWH_OK;
        });
    }
    static swh_status lease_acquire(void *handle, const swh_lease *lease, uint64_t *out_held) noexcept {
        return call(handle, [&](Store &store) {
            if constexpr (SharesLimits<Store>) {
                require(SWH_HAS_MEMBER(lease, swh_lease, ttl_ms),
                        "lease is NULL or its struct_size is too small");
                require(out_held != nullptr, "out_held is NULL");
                require(lease->weight >= 1 && lease->ttl_ms >= 1, "lease weight and ttl_ms must be >= 1");
                LeaseInput in;
                in.key = required(lease->key, "lease.key");
                in.owner = required(lease->owner, "lease.owner");
                in.weight = lease->weight;
                in.limit = lease->limit;
                in.ttl_ms = lease->ttl_ms;
                const LeaseOutcome outcome = store.lease_acquire(in);
                *out_held = outcome.held;
                if (!outcome.taken)
                    throw Failure(SWH_E_CONFLICT, "lease " + quoted(in.key) + ": " +
                                                      std::to_string(outcome.held) + " of " +
                                                      std::to_string(in.limit) + " held");
            }
            return SWH_OK;
        });
    }
    static swh_status lease_release(void *handle, swh_str key, swh_str owner) noexcept {
        return call(handle, [&](Store &store) {
            if constexpr (SharesLimits<Store>)
                store.lease_release(required(key, "key"), required(owner, "owner"));
            return SWH_OK;
        });
    }

    // {"status":"healthy"|"unhealthy", ...describe(), ...health()}; an
    // unhealthy report is still emitted, then SWH_E_UNAVAILABLE.
    static swh_status health_check(void *handle, const swh_result_sink *sink) noexcept {
        return call(handle, [&](Store &store) {
            require_sink(sink, SWH_HAS_MEMBER(sink, swh_result_sink, json) && sink->json);
            nlohmann::json report = nlohmann::json::object();
            store.describe(report);
            std::string error;
            try {
                store.health(report);
                report["status"] = "healthy";
            } catch (const Failure &e) {
                error = e.what();
                report["status"] = "unhealthy";
                report["error"] = error;
            }
            std::string text = dump(report);
            check_sink(sink->json(sink->ctx, edge::to_str(text)));
            if (!error.empty()) throw Failure(SWH_E_UNAVAILABLE, "unhealthy: " + error);
            return SWH_OK;
        });
    }
};

} // namespace swh::store

// The table, the descriptor and swh_plugin_entry of a storage plugin in one
// line, like SWH_CPP_MIDDLEWARE and the others (plugin.hpp). The host needs
// only the table's 1.0 members (the 1.4 event carrier and the 1.5 shared
// limits are optional: an older host never calls them), and the 1.3 swh_message.structured_json is read only
// when the host's struct has it (MessageInput::from): the descriptor declares
// 1.0 unless the Store raises it (static constexpr uint16_t abi_minor = N;).
#define SWH_CPP_STORAGE(STORE, NAME, VERSION, DESCRIPTION, SCHEMA)                                           \
    SWH_CPP_PLUGIN_ENTRY_(swh_storage_v1, (::swh::store::Plugin<STORE, SCHEMA>::table()), SWH_KIND_STORAGE,  \
                          SWH_IFACE_STORAGE_V1, ::swh::cpp::abi_minor<STORE>(0), NAME, VERSION, DESCRIPTION, \
                          SCHEMA)
