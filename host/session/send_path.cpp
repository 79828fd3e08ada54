// The send path of docs/architecture.md: a user message in, stored, the
// provider (with failover) streaming the reply through the assistant stage,
// the reply stored, the client answered.
#include "session/send_path.hpp"

#include "pipeline/provider_selection.hpp"
#include "session/history_window.hpp"
#include "session/session_manager.hpp"
#include "upstream/http_client.hpp"
#include "util/clock.hpp"
#include "util/ids.hpp"
#include "util/on_release.hpp"

#include <algorithm>
#include <mutex>
#include <spdlog/spdlog.h>

namespace swh {

namespace {

// A middleware chain that refused a message (or reply): a middleware saying
// no is the client's 422; a fail-closed middleware that failed (an error, a
// crash or a timeout of its plugin process) is the server's 503.
ApiError middleware_refusal(const ChainResult &result, const char *what) {
    if (result.failed) return ApiError(ErrorKind::Unavailable, "middleware " + *result.rejection);
    return ApiError(ErrorKind::Rejected, std::string(what) + " rejected by middleware " + *result.rejection);
}

// How far back a retried Idempotency-Key is looked for in its session.
constexpr uint32_t kIdempotencyWindow = 200;

// The generation parameters of one reply: the session's config "params"
// (defaults such as its tools), then the request's, key by key.
Json params_for(const Session &session, const Json &request_params) {
    Json params = Json::object();
    if (auto it = session.config.find("params"); it != session.config.end() && it->is_object()) params = *it;
    for (const auto &[key, value] : request_params.items())
        params[key] = value;
    return params;
}

// A tool result must answer a call the assistant made earlier in the
// conversation; `index` names the message in a client's list (-1 = a send).
const Message &message_of(const Message &m) {
    return m;
}
const Message &message_of(const MessageRef &m) {
    return m->message;
}

template <class M> void check_tool_result(const std::vector<M> &earlier, const Message &result, long index) {
    const std::string where =
        index < 0 ? std::string("tool_call_id") : "messages[" + std::to_string(index) + "].tool_call_id";
    const auto id = result.structured.find("tool_call_id");
    if (id == result.structured.end() || !id->is_string() || id->get_ref<const std::string &>().empty())
        throw ApiError(ErrorKind::InvalidRequest,
                       where + ": a tool message needs the id of the call it answers");
    for (auto m = earlier.rbegin(); m != earlier.rend(); ++m)
        if (made_tool_call(message_of(*m), *id)) return;
    throw ApiError(ErrorKind::InvalidRequest, where + ": '" + id->get<std::string>() +
                                                  "' matches no tool call of an earlier assistant message");
}

// Who pays for a reply: the caller's key and user (the session's owner when
// the caller names none, as with auth: none), and the session unless it is a
// stateless exchange's throwaway one.
budgets::Payer payer_of(const Access &access, const Session &session, bool stateless) {
    budgets::Payer payer;
    payer.key = access.key;
    payer.user = access.user.empty() ? session.user_id : access.user;
    if (!stateless) payer.session = session.id;
    return payer;
}

std::string system_prompt_of(const Session &session, const Json &metadata) {
    if (auto it = metadata.find("system_prompt"); it != metadata.end() && it->is_string()) return *it;
    if (auto it = session.config.find("system_prompt"); it != session.config.end() && it->is_string())
        return *it;
    return "";
}

} // namespace

// Everything one send needs after the provider started: the reply is
// collected here until the provider reports done.
struct SendPath::SendState {
    // The pipeline this send started on: it stays alive (plugins loaded)
    // until the send is finished, even if a reload swapped in another.
    std::shared_ptr<Pipeline> pipeline;
    uint64_t cache_epoch = 0; // the history cache's, read before the pipeline was
    Session session;
    Message user;
    std::shared_ptr<SendObserver> observer;
    int64_t started_at = 0;
    bool stream = false;
    bool stateless = false;                               // OpenAI-style completion without a stored session
    std::function<void(std::function<void()>)> finish_on; // CompletionParams::finish_on
    std::shared_ptr<void> idempotency;                    // held until the outcome is stored
    std::shared_ptr<MessageReservations::Reservation>
        reservation; // room under max_messages_per_session, held likewise
    // Provider attempts: candidates[0] is the session's provider, then its
    // manifest fallbacks in order.
    std::vector<MessageRef> history; // shared with the history cache, not copied
    std::string system_prompt;
    std::vector<std::string> candidates;
    std::size_t attempt = 0;
    // Null until something is put in: an allocated empty array or object a
    // request costs one allocation, and an open stream keeps it (issue 17).
    Json failures; // [{provider, error}] of the attempts that failed
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
    Json params = Json::object(); // generation parameters for the provider
    // What the reply carries besides text (ABI 1.3 reply events).
    Json tool_calls; // [{id, name, arguments}] by index; null = none yet
    std::string reasoning, reasoning_signature, finish_reason;
    Json usage;           // null until the provider reports it
    budgets::Payer payer; // whose budgets the reply is charged to
    std::string reply_id; // "" = a new one
    Json reply_metadata;  // the door's own marks on the reply; null = none
};

std::function<void()> SendPath::send_message(const SendParams &params,
                                             std::shared_ptr<SendObserver> observer) {
    const uint64_t cache_epoch = sessions_.history().epoch();
    const std::shared_ptr<Pipeline> pin = sessions_.pipeline();
    Pipeline &pipeline_ = *pin;
    if (params.role != "user" && params.role != "system" && params.role != "tool")
        throw ApiError(ErrorKind::InvalidRequest, "role must be 'user', 'system' or 'tool'");
    auto state = std::make_shared<SendState>();
    state->pipeline = pin;
    state->cache_epoch = cache_epoch;
    state->started_at = params.received_at_us ? params.received_at_us : now_us();
    // The row also tells the history cache whether what it holds is current.
    state->session = sessions_.get_session(params.session_id);
    sessions_.authorize(state->session, tenancy_only(params.access), SWH_ACTION_READ);
    if (state->session.status != SWH_SESSION_ACTIVE)
        throw ApiError(ErrorKind::Conflict, "session '" + params.session_id + "' is " +
                                                state->session.status +
                                                "; only active sessions take messages");
    if (!pipeline_.routable(state->session.provider))
        throw ApiError(ErrorKind::Unavailable,
                       "provider '" + state->session.provider + "' of this session is not configured");
    state->reservation = sessions_.reserve_messages(pin, state->session.id, 2); // question and reply

    state->observer = std::move(observer);
    state->stream = params.stream;
    bool resumed = false; // answering a user message a failed first attempt stored
    if (!params.idempotency_key.empty()) {
        state->idempotency = sessions_.idempotency().claim(state->session.id, params.idempotency_key);
        auto prior = find_prior_attempt(pin, state->session.id, params.idempotency_key);
        if (prior.first && prior.second) {
            // Same answer as the first time; nothing new is stored. The
            // first attempt's daemon may have died before publishing their
            // events (a fleet): the answer waits until the store has them,
            // and the claim is held until then.
            state->observer->on_user_stored(*prior.first);
            auto answer = on_release([state, user = *prior.first, reply = *prior.second] {
                release_holds(*state);
                state->observer->on_complete(user, reply, 0.0);
            });
            sessions_.republish_message(state->session, *prior.first, answer);
            sessions_.republish_message(state->session, *prior.second, std::move(answer));
            return [] {};
        }
        if (prior.first) {
            state->user = *prior.first;
            resumed = true;
        }
    }
    // Before anything is stored or sent (a retry answered above costs
    // nothing): a spent budget refuses the whole send.
    state->payer = payer_of(params.access, state->session, false);
    sessions_.budgets().check(pin->budgets, state->payer);
    if (!resumed) {
        state->user.id = new_uuid();
        state->user.session_id = state->session.id;
        state->user.role = params.role;
        state->user.content = params.content;
        state->user.timestamp = now_us();
        state->user.metadata = params.metadata;
        state->user.structured = params.structured;
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
    // 1c. The history the provider will see: one read of the session's
    // newest messages, made before anything is stored (a tool result is
    // checked against it).
    const HistoryWindow window = history_window_of(state->session);
    const MessageRef user = freeze(state->user); // final now: stored and sent as it is
    {
        HistoryCache::Snapshot found = recent_messages(*state, window.max_messages);
        const std::vector<MessageRef> &history = *found;
        if (!resumed && state->user.role == "tool") check_tool_result(history, state->user, -1);
        // The provider sees the conversation as this send found it, then its
        // message (a resumed send finds its message stored: what came after
        // it is not its conversation), cut to the session's window. The
        // messages are shared with the cache, not copied.
        auto ours = std::find_if(history.begin(), history.end(),
                                 [&](const MessageRef &m) { return m->message.id == state->user.id; });
        std::vector<MessageRef> conversation;
        conversation.reserve(history.size() + 1);
        if (ours != history.end()) {
            conversation.assign(history.begin(), ours + 1);
        } else {
            conversation.assign(history.begin(), history.end());
            conversation.push_back(user);
        }
        state->history = fit_window(std::move(conversation), window);
        // `found` is let go here, before the append below, so that the cache
        // can usually extend its snapshot in place.
    }
    // 2. The user message is durable before anything goes upstream.
    if (!resumed) {
        store_message(*state, user);
        state->session.message_count += 1;
        state->session.last_activity = state->user.timestamp;
        sessions_.publish(SWH_EVENT_MESSAGE_SENT, state->session, &state->user);
    } else {
        sessions_.republish_message(state->session, state->user, nullptr); // see the answered case above
    }
    state->observer->on_user_stored(state->user);

    // After middleware and the session type, which may set it.
    state->system_prompt = system_prompt_of(state->session, state->user.metadata);
    state->params = params_for(state->session, params.params);
    return launch(state);
}

// The newest `limit` messages of the send's session, chronological: from
// the history cache when it holds the session as the row just read shows
// it, else read from the store (and cached).
HistoryCache::Snapshot SendPath::recent_messages(SendState &state, uint32_t limit) {
    HistoryCache &cache = sessions_.history();
    if (HistoryCache::Snapshot cached = cache.lookup(state.cache_epoch, state.session, limit)) return cached;
    MessageQuery query;
    query.session_id = state.session.id;
    query.limit = limit;
    std::vector<Message> messages =
        storage_call(sessions_.gate(), "get_messages",
                     [pin = state.pipeline, query] { return pin->storage->get_messages(query); });
    return cache.fill(state.cache_epoch, state.session, limit, std::move(messages));
}

void SendPath::vet_with_session_type(SendState &state, const Access &access) {
    Pipeline &pipeline_ = *state.pipeline;
    loader::SessionTypeInstance *type = SessionManager::session_type_of(pipeline_, state.session);
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

// Stores one message of a send. Under a message cap the write and the
// reservation it uses up change together, under the session's lock that the
// cap check takes, so the check never counts a message twice (stored and
// still reserved) nor not at all.
void SendPath::store_message(SendState &state, const MessageRef &message) {
    const auto add = [pin = state.pipeline, message] { pin->storage->add_message(*message); };
    if (!state.reservation) {
        storage_call(sessions_.gate(), "add_message", add);
        sessions_.history().appended(state.cache_epoch, message);
        return;
    }
    std::lock_guard lock(sessions_.locks().of(state.session.id));
    storage_call(sessions_.gate(), "add_message", add);
    state.reservation->give_back(1);
    sessions_.history().appended(state.cache_epoch, message);
}

std::function<void()> SendPath::complete(CompletionParams params, std::shared_ptr<SendObserver> observer) {
    const uint64_t cache_epoch = sessions_.history().epoch();
    const std::shared_ptr<Pipeline> pin = params.pipeline ? params.pipeline : sessions_.pipeline();
    Pipeline &pipeline_ = *pin;
    if (params.messages.empty() ||
        (params.messages.back().role != "user" && params.messages.back().role != "tool"))
        throw ApiError(ErrorKind::InvalidRequest, "messages must end with a user message or tool results");
    for (std::size_t i = 0; i < params.messages.size(); ++i)
        if (params.messages[i].role == "tool")
            check_tool_result(
                std::vector<Message>(params.messages.begin(), params.messages.begin() + static_cast<long>(i)),
                params.messages[i], static_cast<long>(i));
    if (!pipeline_.routable(params.provider))
        throw ApiError(ErrorKind::InvalidRequest, "unknown provider '" + params.provider + "'");
    auto state = std::make_shared<SendState>();
    state->pipeline = pin;
    state->cache_epoch = cache_epoch;
    state->started_at = params.received_at_us ? params.received_at_us : now_us();
    state->stream = params.stream;
    state->observer = std::move(observer);
    state->stateless = params.session_id.empty();
    state->finish_on = std::move(params.finish_on);
    state->reply_id = std::move(params.reply_id);
    state->reply_metadata = std::move(params.reply_metadata);
    const std::size_t new_turns =
        state->stateless ? 1 : std::clamp<std::size_t>(params.new_turns, 1, params.messages.size());
    if (state->stateless) {
        state->session.id = new_uuid();
        state->session.provider = params.provider;
        state->session.model = params.model;
        state->session.created_at = state->session.last_activity = state->started_at;
    } else {
        state->session = sessions_.get_session(params.session_id);
        sessions_.authorize(state->session, tenancy_only(params.access), SWH_ACTION_READ);
        state->reservation = sessions_.reserve_messages(pin, state->session.id, new_turns + 1);
        if (state->session.status != SWH_SESSION_ACTIVE)
            throw ApiError(ErrorKind::Conflict,
                           "session '" + params.session_id + "' is " + state->session.status);
        state->session.provider = params.provider; // the request's model routing wins for this exchange
        if (!params.model.empty()) state->session.model = params.model;
    }
    // Before anything is stored or sent: a spent budget refuses the whole exchange.
    state->payer = payer_of(params.access, state->session, state->stateless);
    sessions_.budgets().check(pipeline_.budgets, state->payer);
    // The new turns, stored in order: strictly increasing timestamps keep
    // that order in every store.
    const std::size_t first_new = params.messages.size() - new_turns;
    const int64_t now = now_us();
    for (std::size_t i = first_new; i < params.messages.size(); ++i) {
        Message &turn = params.messages[i];
        if (turn.id.empty()) turn.id = new_uuid();
        turn.session_id = state->session.id;
        turn.timestamp = now + static_cast<int64_t>(i - first_new);
        if (!state->stateless) turn.metadata.update(params.turn_metadata);
    }
    Message &last = params.messages.back();
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
        // Appending to a stored session: the question is durable first,
        // after the turns that came before it in the same request.
        for (std::size_t i = first_new; i + 1 < params.messages.size(); ++i) {
            store_message(*state, freeze(params.messages[i]));
            state->session.message_count += 1;
            sessions_.publish(SWH_EVENT_MESSAGE_SENT, state->session, &params.messages[i]);
        }
        store_message(*state, freeze(state->user));
        state->session.message_count += 1;
        sessions_.publish(SWH_EVENT_MESSAGE_SENT, state->session, &state->user);
    }
    state->observer->on_user_stored(state->user);
    // The client's conversation, as OpenAI clients expect.
    state->history.reserve(params.messages.size());
    for (Message &m : params.messages)
        state->history.push_back(freeze(std::move(m)));
    state->system_prompt = std::move(params.system_prompt);
    state->params = params_for(state->session, params.params);
    return launch(state);
}

std::function<void()> SendPath::launch(std::shared_ptr<SendState> state) {
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

// The first attempt with this key among the session's recent messages: its
// user message and, if it was answered, the reply.
std::pair<std::optional<Message>, std::optional<Message>>
SendPath::find_prior_attempt(const std::shared_ptr<Pipeline> &pin, const std::string &session_id,
                             const std::string &key) {
    MessageQuery query;
    query.session_id = session_id;
    query.limit = kIdempotencyWindow;
    auto text_of = [](const Json &metadata, const char *field) {
        auto it = metadata.find(field);
        return it != metadata.end() && it->is_string() ? it->get<std::string>() : std::string();
    };
    std::optional<Message> user, reply;
    for (auto &m : storage_call(sessions_.gate(), "get_messages",
                                [pin, query] { return pin->storage->get_messages(query); })) {
        if (!user && m.role != "assistant" && text_of(m.metadata, "idempotency_key") == key)
            user = m;
        else if (user && m.role == "assistant" && text_of(m.metadata, "reply_to") == user->id)
            reply = std::move(m);
    }
    return {user, reply};
}

// Starts (or, after a failure, continues) the reply on candidates[attempt].
// A continuation passes what the client has already seen as the assistant
// prefix, so the stream just goes on.
void SendPath::start_attempt(std::shared_ptr<SendState> state) {
    Pipeline &pipeline_ = *state->pipeline;
    const std::string name = state->candidates[state->attempt];
    loader::ProviderInstance *provider = pipeline_.provider(name);
    loader::ProviderRequest request;
    request.session = &state->session;
    request.frozen = &state->history;
    request.model =
        state->attempt == 0 ? state->session.model : std::string(); // a fallback uses its own default
    request.system_prompt = state->system_prompt;
    request.stream = state->stream;
    request.params = state->params;
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
        // The first report, nearly always the only one, is taken whole.
        if (state->provider_metadata.empty() && metadata.is_object())
            state->provider_metadata = std::move(metadata);
        else
            state->provider_metadata.update(metadata);
    };
    callbacks.on_event = [state](const ReplyEvent &event) {
        {
            std::lock_guard lock(state->mutex);
            if (state->stream_failure) return false;
            record_event(*state, event);
            // Stream guardrails judge tool calls on the finished reply: the
            // client hears them after that (release_tool_calls).
            if (state->filter && event.type == ReplyEvent::Type::ToolCall) return true;
        }
        return state->observer->on_reply_event(event);
    };
    callbacks.on_done = [this, state](swh_status status, std::string error) {
        {
            // The upstream's own share, as the HTTP client measured it when
            // done comes from inside its callback; else the whole wait.
            const int64_t wire = upstream_wire_us_in_done();
            std::lock_guard lock(state->mutex);
            state->upstream_us += wire >= 0 ? wire : now_us() - state->upstream_started_at;
        }
        // Storing the reply blocks; done may arrive on an I/O thread. A
        // stateless exchange stores nothing: it never waits behind the store,
        // and where nothing on its way can block it finishes right here.
        if (state->stateless && state->pipeline->stateless_inline) {
            if (!state->finish_on) return finish_send(state, status, std::move(error));
            return state->finish_on([this, state, status, error = std::move(error)]() mutable {
                finish_send(state, status, std::move(error));
            });
        }
        (state->stateless ? post_free_
                          : post_blocking_)([this, state, status, error = std::move(error)]() mutable {
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

void SendPath::cancel_send(const std::shared_ptr<SendState> &state) {
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
void SendPath::release_holds(SendState &state) {
    state.reservation.reset();
    state.idempotency.reset();
}

void SendPath::release_and_report(SendState &state, const ApiError &error) {
    release_holds(state);
    state.observer->on_error(error);
}

void SendPath::finish_send(std::shared_ptr<SendState> state, swh_status status, std::string error) {
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
            sessions_.publish(SWH_EVENT_PROVIDER_ERROR, state->session, &state->user,
                              {{"provider", failed}, {"status", status}, {"error", error}});
        bool cancelled, calls_seen;
        {
            std::lock_guard lock(state->mutex);
            cancelled = state->cancelled;
            state->failures.push_back({{"provider", failed}, {"error", error}});
            // Text goes on where it stopped (assistant_prefix); a tool call
            // cannot. One the client has already seen in part ends the send;
            // one it has not is dropped with the rest of the failed attempt's
            // events, and the fallback answers afresh.
            calls_seen = !state->tool_calls.empty() && state->stream && !state->filter;
            drop_reply_events(*state);
        }
        if (!cancelled && !calls_seen && status != SWH_E_CANCELLED && status != SWH_E_INVALID &&
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
        attach_reply_events(*state, assistant);
    }
    record_usage(*state, assistant);
    assistant.id = state->reply_id.empty() ? new_uuid() : state->reply_id;
    assistant.session_id = state->session.id;
    assistant.role = "assistant";
    assistant.timestamp = std::max(now_us(), state->user.timestamp + 1); // strictly after the question
    const int64_t total_us = now_us() - state->started_at;
    // Put member by member: an initializer list builds and copies each
    // value once more (issue 17).
    Json::object_t &metadata = assistant.metadata.get_ref<Json::object_t &>();
    metadata.emplace("provider", state->candidates[state->attempt]);
    metadata.emplace("reply_to", state->user.id);
    metadata.emplace("response_time_ms", total_us / 1000.0);
    metadata.emplace("streaming", state->stream);
    if (!state->reply_metadata.empty()) assistant.metadata.update(state->reply_metadata);
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
    // Cancelled (its client went away, its deadline passed) before the reply
    // is stored: none is, as for an upstream failure; the user message stays.
    bool cancelled_before_store;
    {
        std::lock_guard lock(state->mutex);
        cancelled_before_store = state->cancelled;
    }
    if (cancelled_before_store) {
        release_and_report(*state,
                           ApiError(ErrorKind::Unavailable, "the reply was cancelled before it was stored"));
        return;
    }
    try {
        assistant = run_assistant_stage(*state, std::move(assistant));
        if (!state->stateless) store_message(*state, freeze(assistant));
    } catch (const ApiError &e) {
        release_and_report(*state, e);
        return;
    }
    if (state->filter) release_tool_calls(*state, assistant);
    state->session.message_count += 1;
    state->session.last_activity = assistant.timestamp;
    // The client is answered (and the Idempotency-Key let go) once the
    // reply's event is done with: with a fleet carrier, once the store has
    // numbered it (and, queued before it, the question's), so a daemon that
    // dies before then leaves a retry that publishes what is missing rather
    // than an acknowledged message no listener ever hears
    // (docs/fleet-events.md "When a daemon dies"). Without a fleet this is
    // at once, on this thread.
    auto reply = std::make_shared<const Message>(std::move(assistant));
    auto answer = on_release([state, reply] {
        double overhead_ms;
        {
            std::lock_guard lock(state->mutex);
            overhead_ms = std::max<int64_t>(0, now_us() - state->started_at - state->upstream_us) / 1000.0;
        }
        release_holds(*state);
        state->observer->on_complete(state->user, *reply, overhead_ms);
    });
    if (!state->stateless)
        sessions_.publish(SWH_EVENT_MESSAGE_SENT, state->session, reply.get(),
                          {{"response_time_ms", reply->metadata.value("response_time_ms", Json())}},
                          std::move(answer));
}

// Called under the state's mutex: a reply event joins what the reply carries.
void SendPath::record_event(SendState &state, const ReplyEvent &event) {
    switch (event.type) {
    case ReplyEvent::Type::ToolCall: {
        // Indexes come from the provider; a gap is filled so order is kept.
        constexpr uint32_t kMaxToolCalls = 128;
        if (event.index >= kMaxToolCalls) return;
        while (state.tool_calls.size() <= event.index)
            state.tool_calls.push_back({{"id", ""}, {"name", ""}, {"arguments", ""}});
        Json &call = state.tool_calls[event.index];
        if (!event.id.empty()) call["id"] = event.id;
        if (!event.name.empty()) call["name"] = event.name;
        call["arguments"] = call["arguments"].get<std::string>() + event.text;
        break;
    }
    case ReplyEvent::Type::Reasoning:
        state.reasoning += event.text;
        break;
    case ReplyEvent::Type::ReasoningSignature:
        state.reasoning_signature += event.text;
        break;
    case ReplyEvent::Type::Finish:
        state.finish_reason = event.text;
        break;
    case ReplyEvent::Type::Usage: {
        if (!state.usage.is_object()) state.usage = Json::object();
        const auto put = [&](const char *key, int64_t value) {
            if (value >= 0) state.usage[key] = value;
        };
        put("input_tokens", event.input_tokens);
        put("output_tokens", event.output_tokens);
        put("cached_input_tokens", event.cached_input_tokens);
        put("reasoning_tokens", event.reasoning_tokens);
        break;
    }
    }
}

// Called under the state's mutex: what a failed attempt reported besides text.
void SendPath::drop_reply_events(SendState &state) {
    state.tool_calls = Json(); // none (null, as a new send starts)
    state.reasoning.clear();
    state.reasoning_signature.clear();
    state.finish_reason.clear();
    state.usage = Json();
}

// The reply's tokens, as its provider reported them, into the traffic ring
// and onto the payer's budgets.
void SendPath::record_usage(SendState &state, const Message &assistant) {
    const auto usage = assistant.provider_metadata.find("usage");
    if (usage == assistant.provider_metadata.end() || !usage->is_object()) return;
    // The neutral names, else the OpenAI-style ones a provider put in its
    // own metadata (the echo provider, 1.0-1.2 plugins).
    const auto count = [&](const char *key, const char *vendor_key) {
        for (const char *name : {key, vendor_key})
            if (const auto it = usage->find(name); it != usage->end() && it->is_number_integer())
                return it->get<int64_t>();
        return int64_t{-1};
    };
    const int64_t input = count("input_tokens", "prompt_tokens"),
                  output = count("output_tokens", "completion_tokens");
    sessions_.traffic().record_tokens(now_us() / 1'000'000, input, output);
    std::string model = state.session.model; // the model that answered, when the provider says
    if (const auto it = assistant.provider_metadata.find("model");
        it != assistant.provider_metadata.end() && it->is_string())
        model = it->get<std::string>();
    sessions_.budgets().charge(state.pipeline->budgets, state.payer, model, state.candidates[state.attempt],
                               input, output);
}

// Called under the state's mutex: tool calls and thinking become the
// reply's structured content; finish reason and usage its provider metadata
// (where a 1.0-1.2 provider put them itself).
void SendPath::attach_reply_events(SendState &state, Message &assistant) {
    if (!state.tool_calls.empty()) assistant.structured["tool_calls"] = std::move(state.tool_calls);
    if (!state.reasoning.empty()) assistant.structured["reasoning"] = std::move(state.reasoning);
    if (!state.reasoning_signature.empty())
        assistant.structured["reasoning_signature"] = std::move(state.reasoning_signature);
    if (!state.finish_reason.empty())
        assistant.provider_metadata["finish_reason"] = state.finish_reason;
    else if (assistant.structured.contains("tool_calls"))
        assistant.provider_metadata["finish_reason"] = "tool_calls";
    if (state.usage.is_object()) {
        // Beside what the provider put in its metadata (a vendor's own keys).
        Json &usage = assistant.provider_metadata["usage"];
        if (!usage.is_object()) usage = Json::object();
        usage.update(state.usage);
    }
}

// With stream guardrails, a reply's tool calls reach the client only once the
// assistant stage has judged (and maybe redacted) them: each as one piece
// with its id and name, then its arguments whole.
void SendPath::release_tool_calls(SendState &state, const Message &assistant) {
    const auto calls = assistant.structured.find("tool_calls");
    if (calls == assistant.structured.end() || !calls->is_array()) return;
    for (std::size_t i = 0; i < calls->size(); ++i) {
        const Json &call = (*calls)[i];
        ReplyEvent head;
        head.index = static_cast<uint32_t>(i);
        head.id = call.value("id", "");
        head.name = call.value("name", "");
        ReplyEvent arguments;
        arguments.index = head.index;
        arguments.text = call.value("arguments", "");
        if (!state.observer->on_reply_event(head) || !state.observer->on_reply_event(arguments)) return;
    }
}

Message SendPath::run_assistant_stage(SendState &state, Message assistant) {
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

SendPath::SendPath(SessionManager &sessions, PostBlocking post_blocking, PostBlocking post_free)
    : sessions_(sessions), post_blocking_(std::move(post_blocking)), post_free_(std::move(post_free)) {}

} // namespace swh
