// The guide's SessionManager: sessions and messages on top of the storage
// plugin (CRUD, access, health), the front of the session service. Its parts:
// the send path (send_path.hpp), the guards of concurrent sends
// (send_guards.hpp), a session type's routes (type_routes.cpp), the storage
// gate (storage_gate.hpp); provider selection is the pipeline's
// (pipeline/provider_selection.hpp).
// Storage calls block, so every public call runs on a worker thread; the
// provider answers asynchronously through a SendObserver.
#pragma once

#include "events/event_bus.hpp"
#include "limits/budgets.hpp"
#include "metrics/traffic.hpp"
#include "model/errors.hpp"
#include "model/model.hpp"
#include "pipeline/pipeline.hpp"
#include "session/history_cache.hpp"
#include "session/send_guards.hpp"
#include "session/send_path.hpp"
#include "session/storage_gate.hpp"

#include <array>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace swh {

struct CreateSessionParams {
    std::string user_id;
    std::string provider; // "" = the manifest's default provider
    std::string model;
    std::string type;
    Json config = Json::object();
    Json context = Json::object(); // may hold user_context / system_context
    Json metadata = Json::object();
};

struct SessionPatch {
    std::optional<std::string> provider, model, status;
    std::optional<Json> config, context, metadata;
};

// The caller of one request, as the session layer needs it.
struct Access {
    std::string user;        // whom the request acts as ("" = anonymous)
    bool tenant = false;     // a user API key: only its own (or shared) sessions
    bool type_checks = true; // false for admin keys: session types' permissions do not apply
    std::string key;         // the API key's id ("" with auth: none): whose budget it spends
};

struct SendParams {
    std::string session_id;
    std::string role = "user";
    std::string content;
    Json metadata = Json::object();
    // Structured content (Message::structured): a tool result's
    // "tool_call_id", content "parts".
    Json structured = Json::object();
    // Generation parameters for this reply (neutral form, swh_provider_request
    // params_json), over the session's config "params".
    Json params = Json::object();
    bool stream = false;
    // A client retry with the same key gets the first attempt's answer
    // instead of a second stored message ("" = none).
    std::string idempotency_key;
    Access access;              // who sends it (tenancy; session types check permissions)
    int64_t received_at_us = 0; // as CompletionParams::received_at_us
};

// A request to one of a session type's routes: METHOD /v1/sessions/{id}/<path>.
struct SessionRouteRequest {
    std::string session_id, method;
    std::vector<std::string> segments; // the path after the session id, split at '/'
    Access access;
    std::string query, content_type, body;
};

struct SessionRouteAnswer {
    int status = 200;
    std::string content_type, body;
};

// The path exists for the session's type, but not with this method.
class RouteMethodNotAllowed : public ApiError {
  public:
    RouteMethodNotAllowed(const std::string &message, std::string allow)
        : ApiError(ErrorKind::MethodNotAllowed, message), allow_(std::move(allow)) {}
    const std::string &allow() const { return allow_; }

  private:
    std::string allow_;
};

// An OpenAI-style chat completion: the client sends the whole conversation.
struct CompletionParams {
    std::string provider;          // instance name, already routed from `model`
    std::string model;             // "" = the provider's default
    std::vector<Message> messages; // the turns, ending with a user message or tool results
    std::string system_prompt;
    Json params = Json::object(); // generation parameters, neutral form
    bool stream = false;
    std::string session_id; // "" = stateless; else the exchange is appended to it
    Access access;          // checked against session_id's session
    // With session_id: how many trailing `messages` are new and stored, in
    // order (a Responses request may bring tool results and a user message
    // at once); the rest is history the caller already has.
    std::size_t new_turns = 1;
    Json turn_metadata = Json::object();  // merged into each new turn's metadata before it is stored
    Json reply_metadata = Json::object(); // merged into the reply's metadata before it is stored
    // The reply's message id, chosen up front so a door can name the reply
    // before it exists (a streamed response's id); "" = a new one.
    std::string reply_id;
    // The pipeline the exchange runs on, pinned by a caller that chose how
    // to run it from that pipeline's properties; empty = the current one.
    std::shared_ptr<Pipeline> pipeline;
    // Where a stateless exchange on such a pipeline finishes (the client's
    // connection thread, so the single upstream client thread only relays);
    // empty = on the thread the provider's done arrives on.
    std::function<void(std::function<void()>)> finish_on;
    // When the request was read (Exchange::received_at_us); 0 = now. The
    // exchange's time, and so its reported overhead, counts from there.
    int64_t received_at_us = 0;
};

// What the HTTP layer hears while a message is answered. Calls for one send
// never overlap; exactly one of on_complete / on_error ends it.
class SendObserver {
  public:
    virtual ~SendObserver() = default;
    virtual void on_user_stored(const Message &user) = 0;
    // A piece of the reply; return false when the client is gone (cancels).
    virtual bool on_chunk(std::string_view text) = 0;
    // A tool call piece, thinking, finish reason or usage, in reply order
    // with on_chunk; return false when the client is gone.
    virtual bool on_reply_event(const ReplyEvent &) { return true; }
    // `overhead_ms`: the gateway's own time for this exchange, i.e. total
    // time minus the time spent waiting on providers.
    virtual void on_complete(const Message &user, const Message &assistant, double overhead_ms) = 0;
    virtual void on_error(const ApiError &error) = 0;
};

// Runs a blocking job on the worker pool.
using PostBlocking = std::function<void(std::function<void()>)>;

// How the host bounds its storage calls (server.storage_threads,
// server.storage_timeout_ms; see StorageGate).
struct StorageLimits {
    int threads = 4;                             // calls inside the plugin at once
    std::chrono::milliseconds timeout{10'000};   // a caller waits this long, then 503; 0 = no limit
    std::size_t history_cache_bytes = 64u << 20; // server.history_cache_mb; 0 = no history cache
};

class SessionManager {
  public:
    // `post_free` runs the jobs that need no storage (stateless completions),
    // on threads that storage calls never hold; empty = post_blocking.
    SessionManager(std::shared_ptr<Pipeline> pipeline, PostBlocking post_blocking, StorageLimits limits = {},
                   PostBlocking post_free = {});

    // All of these block on storage: call them from a worker thread.
    Session create_session(CreateSessionParams params);
    Session get_session(const std::string &id);
    std::vector<Session> list_sessions(const SessionFilter &filter);
    Session update_session(const std::string &id, const SessionPatch &patch);
    Session archive_session(const std::string &id);
    void delete_session(const std::string &id);
    std::vector<Message> get_messages(const MessageQuery &query);
    // GET /v1/sessions/{id}/messages: `access` may read the session, then
    // its messages as `query` asks, chronological. The newest N of a session
    // the history cache holds come from the cache (one row read to check it
    // is current, as a send does); anything else from the store.
    std::vector<MessageRef> read_messages(const MessageQuery &query, const Access &access);

    // Validates, stores the user message, then starts the provider; returns
    // once the provider started (the reply arrives through `observer`).
    // Throws ApiError for problems found before the user message is stored.
    // The returned function cancels the reply (the client went away); it is
    // safe to call at any time, from any thread, more than once.
    std::function<void()> send_message(const SendParams &params, std::shared_ptr<SendObserver> observer);

    // The same pipeline (middleware, providers with fallbacks) for a
    // completion; stores nothing unless params.session_id names a session.
    std::function<void()> complete(CompletionParams params, std::shared_ptr<SendObserver> observer);

    // Who may do what to a session (docs/security.md, docs/session-types.md).
    // Blocks on storage. Throws ApiError 404 when `access` is a tenant (a user
    // API key) and the session is neither theirs nor shared with them by its
    // type, 403 when the session's type refuses the action. Costs nothing
    // when there is nothing to check (no tenant, no session types).
    void authorize(const std::string &session_id, const Access &access, const std::string &action);
    void authorize(const Session &session, const Access &access, const std::string &action);
    // Serves a session type's route; 404 / RouteMethodNotAllowed when the
    // session's type has no such route.
    SessionRouteAnswer handle_route(SessionRouteRequest request);

    // Live events of sessions (GET /v1/sessions/{id}/events).
    EventBus &events() { return events_; }

    // Never blocks longer than server.storage_timeout_ms on the store.
    Json health();
    StorageGate::Stats storage_stats() const;
    // The pipeline new requests use. Requests and streams already running
    // keep the one they started with (they hold it), so a reload never
    // pulls a plugin from under them.
    std::shared_ptr<Pipeline> pipeline() const { return current(); }
    // Hot reload: new requests use `next` from now on; returns the old one
    // (destroyed, and its unused plugins unloaded, once its last request ends).
    std::shared_ptr<Pipeline> swap_pipeline(std::shared_ptr<Pipeline> next);

    // --- for the parts of the session service (SendPath, the type routes) ---
    StorageGate &gate() { return gate_; }
    SessionLocks &locks() { return locks_; }
    IdempotencyClaims &idempotency() { return idempotency_; }
    // Limits of the fleet in the store (limits: { shared: storage }): the
    // Idempotency-Keys in flight and the messages reserved under
    // server.max_messages_per_session. Set before serving.
    void share_limits(SharedLimits *shared) {
        shared_ = shared;
        idempotency_.share(shared);
        budgets_.share(shared);
    }
    // What keys, users and sessions have spent (manifest `budgets:`).
    budgets::Ledger &budgets() { return budgets_; }
    // The newest messages of recently used sessions (history_cache.hpp);
    // forgotten when a session is patched, archived or deleted, and all of
    // it on a reload (another pipeline may mean another store).
    HistoryCache &history() { return history_; }
    HistoryCache::Stats history_stats() const { return history_.stats(); }
    // The last minutes of traffic the console charts (metrics/traffic.hpp):
    // the HTTP layer records requests, the send path the tokens of replies.
    TrafficRing &traffic() { return traffic_; }
    // ApiError 409 when the session has no room for `count` more messages;
    // nullptr when there is no cap.
    std::shared_ptr<MessageReservations::Reservation>
    reserve_messages(const std::shared_ptr<Pipeline> &pin, const std::string &session_id, uint64_t count);
    // Lifecycle events to the session's listeners and to the hooks.
    // `hold` is let go once the live event is done with (numbered by the
    // fleet's carrier, or handed to this daemon's listeners) and the hooks
    // have it: see SessionEvent::hold.
    void publish(uint32_t type, const Session &session, const Message *message = nullptr,
                 Json details = Json::object(), std::shared_ptr<void> hold = nullptr);
    // The live event of a message an earlier attempt of the same send
    // stored, in case that attempt's daemon died before publishing it: the
    // fleet's carrier publishes it only when the store has none for it.
    // The hooks heard of it from that attempt, or never will.
    void republish_message(const Session &session, const Message &message, std::shared_ptr<void> hold);
    // The instance serving the session's type; nullptr for a plain session.
    // ApiError 503 when the type is no longer configured (fail closed: its
    // permission checks cannot run).
    static loader::SessionTypeInstance *session_type_of(const Pipeline &pipeline, const Session &session);

  private:
    void publish_live(const std::string &type, const Session &session, const Message *message = nullptr,
                      const std::shared_ptr<void> &hold = nullptr, bool if_absent = false);
    bool type_vouches_for(Pipeline &pipeline, const Session &session, const std::string &caller);
    Json storage_health(const std::shared_ptr<Pipeline> &pin);

    std::shared_ptr<Pipeline> current() const;
    std::shared_ptr<Pipeline> current_; // atomic_load / atomic_exchange only
    PostBlocking post_blocking_;
    PostBlocking post_free_;
    EventBus events_;
    SessionLocks locks_;
    MessageReservations reservations_;
    IdempotencyClaims idempotency_;
    SharedLimits *shared_ = nullptr;
    budgets::Ledger budgets_;
    HistoryCache history_;
    TrafficRing traffic_;
    SendPath send_path_; // uses the members above, and the gate only through calls
    // A principal no one is: a type whose authorize admits it admits everyone.
    const std::string nobody_;
    // Last: its threads are joined first, while everything above still lives.
    StorageGate gate_;
};

// Only the tenant part of an access check: the session type's own check
// happens in the call that follows (on_user_message, the route's handler).
inline Access tenancy_only(Access access) {
    access.type_checks = false;
    return access;
}

} // namespace swh
