#include "http/api.hpp"

#include "console/console.hpp"
#include "http/anthropic_messages.hpp"
#include "http/completion_reply.hpp"
#include "http/deadlines.hpp"
#include "http/json_codec.hpp"
#include "http/openai_compat.hpp"
#include "http/openai_conversations.hpp"
#include "http/recorded_exchange.hpp"
#include "http/route_table.hpp"
#include "tracing/span.hpp"
#include "util/clock.hpp"

#include <algorithm>
#include <charconv>
#include <spdlog/spdlog.h>
#include <swarmhost/cpp/utf8.hpp>

namespace swh::http {

namespace {

constexpr const char *kJson = "application/json";
// The daemon's own time on a proxied exchange (not spent waiting upstream).
constexpr const char *kOverheadHeader = "X-Swarmhost-Overhead-Ms";

// Header values and path segments end up in JSON (stored messages, error
// messages): they must be UTF-8. Throws ApiError 400 naming the first that
// is not (it was a 500 from the serialiser, or an error body that was not
// JSON).
void require_utf8_text(const Request &request) {
    const std::pair<const char *, const std::string *> headers[] = {
        {"Idempotency-Key", &request.idempotency_key},
        {"X-Swarmhost-Session", &request.session_header},
        {"X-Swarmhost-User", &request.caller_user_id}};
    for (const auto &[name, value] : headers)
        if (!cpp::valid_utf8(*value))
            throw ApiError(ErrorKind::InvalidRequest, std::string("header ") + name + " is not valid UTF-8");
    for (std::size_t i = 0; i < request.segments.size(); ++i)
        if (!cpp::valid_utf8(request.segments[i]))
            throw ApiError(ErrorKind::InvalidRequest, "path segment " + std::to_string(i + 1) +
                                                          " is not valid UTF-8 once percent-decoded");
}

// Last-Event-ID is what an earlier stream of this route sent as `id:`: a
// decimal sequence number. Anything else is refused, not ignored, so a client
// never believes it resumed when it did not.
std::optional<uint64_t> last_event_id(const Request &request) {
    const std::string &text = request.last_event_id;
    if (text.empty()) return std::nullopt;
    uint64_t value = 0;
    const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (error != std::errc() || end != text.data() + text.size())
        throw ApiError(ErrorKind::InvalidRequest,
                       "header Last-Event-ID must be an event id this route sent (a decimal number)");
    return value;
}

void respond_json(Exchange &exchange, int status, const Json &body) {
    exchange.respond(status, kJson, status == 204 ? std::string() : dump_json(body));
}

// Answers one non-streamed send once the reply is stored.
class WholeReply : public SendObserver {
  public:
    explicit WholeReply(std::shared_ptr<Exchange> exchange) : exchange_(std::move(exchange)) {}
    void on_user_stored(const Message &) override {}
    bool on_chunk(std::string_view) override { return !exchange_->client_gone(); }
    void on_complete(const Message &user, const Message &assistant, double overhead_ms) override {
        const Json body = {{"user_message", to_json(user)}, {"assistant_message", to_json(assistant)}};
        exchange_->respond(201, kJson, dump_json(body), {{kOverheadHeader, format_ms(overhead_ms)}});
    }
    void on_error(const ApiError &error) override { respond_error(*exchange_, error); }

  private:
    std::shared_ptr<Exchange> exchange_;
};

// Relays a send as server-sent events (docs/http-api.md, Streaming).
class StreamedReply : public SendObserver {
  public:
    // `stream_slot`: the caller's key's stream slot, held while the reply streams.
    StreamedReply(std::shared_ptr<Exchange> exchange, std::chrono::milliseconds keepalive,
                  std::shared_ptr<void> stream_slot)
        : exchange_(std::move(exchange)), keepalive_(keepalive), stream_slot_(std::move(stream_slot)) {}
    void on_user_stored(const Message &user) override {
        exchange_->start_stream();
        exchange_->keep_alive(keepalive_);
        started_ = true;
        exchange_->send_event("user_message", dump_json(to_json(user)));
    }
    bool on_chunk(std::string_view text) override {
        return exchange_->send_event("chunk", dump_json(Json{{"text", text}}));
    }
    // Tool calls and thinking stream as their own events; the finish reason
    // and usage arrive with the stored assistant_message.
    bool on_reply_event(const ReplyEvent &event) override {
        switch (event.type) {
        case ReplyEvent::Type::ToolCall: {
            Json piece = {{"index", event.index}, {"arguments", event.text}};
            if (!event.id.empty()) piece["id"] = event.id;
            if (!event.name.empty()) piece["name"] = event.name;
            return exchange_->send_event("tool_call", dump_json(piece));
        }
        case ReplyEvent::Type::Reasoning:
            return exchange_->send_event("reasoning", dump_json(Json{{"text", event.text}}));
        default:
            return !exchange_->client_gone();
        }
    }
    void on_complete(const Message &, const Message &assistant, double overhead_ms) override {
        exchange_->send_event("assistant_message", dump_json(to_json(assistant)));
        // Headers are long gone on a stream: the overhead rides on `done`.
        exchange_->send_event("done", dump_json(Json{{"gateway_overhead_ms", overhead_ms}}));
        exchange_->end_stream();
    }
    void on_error(const ApiError &error) override {
        if (!started_) {
            respond_error(*exchange_, error);
            return;
        }
        exchange_->send_event("error", error_body(error.kind(), error.what()));
        exchange_->end_stream();
    }

  private:
    std::shared_ptr<Exchange> exchange_;
    std::chrono::milliseconds keepalive_;
    std::shared_ptr<void> stream_slot_;
    bool started_ = false;
};

// A session type's event may end the streams of users who lost access to
// the session: {"revoke_access": ["bob"], ...} (docs/session-types.md).
bool revokes(const SessionEvent &event, const std::string &listener) {
    const auto it = event.data.find("revoke_access");
    if (it == event.data.end() || !it->is_array()) return false;
    return std::any_of(it->begin(), it->end(), [&](const Json &user) { return user == listener; });
}

Access access_of(const auth::Principal &principal) {
    return Access{principal.user, principal.tenant(), !(principal.authenticated && principal.admin),
                  principal.key_id};
}

// GET /v1/sessions with a type or provider: the store filters by user and
// status only, so the host reads its pages in order and keeps the matches;
// offset and limit count matching sessions. Ends at the store's last page.
std::vector<Session> list_matching(SessionManager &sessions, const SessionListQuery &query) {
    constexpr uint32_t kPage = 500;
    SessionFilter page = query.filter;
    page.limit = kPage;
    page.offset = 0;
    std::vector<Session> found;
    uint32_t skipped = 0;
    for (;;) {
        std::vector<Session> batch = sessions.list_sessions(page);
        for (Session &session : batch) {
            if (!query.matches(session)) continue;
            if (skipped < query.filter.offset) {
                ++skipped;
                continue;
            }
            found.push_back(std::move(session));
            if (query.filter.limit != 0 && found.size() == query.filter.limit) return found;
        }
        if (batch.size() < kPage) return found;
        page.offset += kPage;
    }
}

// An error in the shape of the door the path belongs to: the Anthropic
// door's clients parse only Anthropic's, its 401, 404 and 405 included.
void respond_error_for(const std::vector<std::string> &parts, Exchange &exchange, const ApiError &error,
                       std::vector<std::pair<std::string, std::string>> extra_headers = {}) {
    if (anthropic::owns_path(parts))
        return anthropic::respond_anthropic_error(exchange, error, std::move(extra_headers));
    std::vector<std::pair<std::string, std::string>> headers = error_headers(error);
    headers.insert(headers.end(), extra_headers.begin(), extra_headers.end());
    exchange.respond(http_status(error.kind()), kJson, error_body(error), std::move(headers));
}

void method_not_allowed(const std::vector<std::string> &parts, Exchange &exchange, const std::string &method,
                        const std::string &allow) {
    respond_error_for(parts, exchange,
                      ApiError(ErrorKind::MethodNotAllowed,
                               "method " + method + " is not allowed here (allowed: " + allow + ")"),
                      {{"Allow", allow}});
}

} // namespace

void respond_error(Exchange &exchange, ErrorKind kind, const std::string &message,
                   std::vector<std::pair<std::string, std::string>> extra_headers) {
    exchange.respond(http_status(kind), kJson, error_body(kind, message), std::move(extra_headers));
}

std::vector<std::pair<std::string, std::string>> error_headers(const ApiError &error) {
    std::vector<std::pair<std::string, std::string>> headers;
    if (error.kind() == ErrorKind::Unauthorized) headers.emplace_back("WWW-Authenticate", "Bearer");
    if (error.retry_after_seconds() >= 0)
        headers.emplace_back("Retry-After", std::to_string(error.retry_after_seconds()));
    // A spent budget comes back at the end of its window, hours away: the
    // official clients retry a 429 after sleeping the whole Retry-After, a
    // hang to their caller. x-should-retry (the vendors' own header, obeyed
    // by both clients) tells them to raise at once instead.
    if (error.kind() == ErrorKind::BudgetExceeded) headers.emplace_back("x-should-retry", "false");
    return headers;
}

void respond_error(Exchange &exchange, const ApiError &error) {
    exchange.respond(http_status(error.kind()), kJson, error_body(error), error_headers(error));
}

ApiHandler::ApiHandler(SessionManager &sessions, MetricsRegistry &metrics, auth::Authenticator &auth,
                       PostBlocking post_blocking, std::chrono::milliseconds sse_keepalive,
                       PostBlocking post_free)
    : sessions_(sessions), metrics_(metrics), auth_(auth), post_blocking_(std::move(post_blocking)),
      post_free_(post_free ? std::move(post_free) : post_blocking_), keepalive_(sse_keepalive) {}

void ApiHandler::blocking_json(std::shared_ptr<Exchange> exchange, int status, std::function<Json()> job,
                               bool uses_storage) {
    blocking_text(
        std::move(exchange), status,
        [status, job = std::move(job)] {
            const Json body = job();
            return status == 204 ? std::string() : dump_json(body);
        },
        uses_storage);
}

void ApiHandler::blocking_text(std::shared_ptr<Exchange> exchange, int status,
                               std::function<std::string()> job, bool uses_storage) {
    (uses_storage ? post_blocking_
                  : post_free_)([exchange = std::move(exchange), status, job = std::move(job)] {
        try {
            exchange->respond(status, kJson, job());
        } catch (const ApiError &e) {
            respond_error(*exchange, e); // keeps Retry-After
        } catch (const std::exception &e) {
            spdlog::error("internal error: {}", e.what());
            respond_error(*exchange, ErrorKind::Internal, "internal error");
        }
    });
}

void ApiHandler::handle(Request request, std::shared_ptr<Exchange> exchange) {
    // The console's files need no key (they hold no data; the API calls
    // they make do), and are not traffic the console should chart.
    if (console::owns_path(request.segments)) return console::serve(request, *exchange);
    exchange = std::make_shared<RecordedExchange>(std::move(exchange), sessions_.traffic());
    // Limits counted in the store (limits: { shared: storage }) make the key
    // check a store call: it waits on a worker, never on an I/O thread.
    if (auth_.uses_store())
        return post_blocking_([this, request = std::move(request), exchange]() mutable {
            handle_here(std::move(request), std::move(exchange));
        });
    handle_here(std::move(request), std::move(exchange));
}

void ApiHandler::handle_here(Request request, std::shared_ptr<Exchange> exchange) {
    // A copy: `request` is moved into the session type's route below.
    const std::vector<std::string> parts = request.segments;
    const std::string &method = request.method;
    auth::Principal principal;
    tracing::Span auth_span = tracing::start_span("auth");
    try {
        require_utf8_text(request);
        principal = auth_.authenticate(request.authorization, request.api_key, request.caller_user_id,
                                       request.client_address);
        if (auth_span.recording()) {
            auth_span.set("swarmhost.auth.authenticated", principal.authenticated);
            if (!principal.key_id.empty()) auth_span.set("swarmhost.auth.key_id", principal.key_id);
        }
        auth_span.end();
    } catch (const ApiError &e) {
        auth_span.set_error(e.what());
        auth_span.end();
        // Load balancers probe /healthz without a key: they get the verdict only.
        if (parts == std::vector<std::string>{"healthz"} && e.kind() == ErrorKind::Unauthorized)
            return post_free_([this, exchange] {
                const bool healthy = sessions_.health()["status"] == "healthy";
                respond_json(*exchange, healthy ? 200 : 503,
                             Json{{"status", healthy ? "healthy" : "unhealthy"}});
            });
        return respond_error_for(parts, *exchange, e);
    }
    request.authorization.clear(); // nothing below needs the key itself
    request.api_key.clear();
    request.caller_user_id = principal.user;
    const Access access = access_of(principal);
    const auto require_admin = [&principal](const std::string &what) {
        if (!principal.admin)
            throw ApiError(ErrorKind::Forbidden, what + " needs an admin API key (key '" + principal.key_id +
                                                     "' has the role 'user')");
    };
    try {
        const RouteMatch match = match_host_route(method, parts);
        if (!match.route) {
            if (!match.allowed.empty()) return method_not_allowed(parts, *exchange, method, match.allowed);
            // /v1/sessions/{id}/<path> that is not the host's: the session type's.
            if (parts.size() >= 4 && parts[0] == "v1" && parts[1] == "sessions") {
                arm_deadline(request, kSessionTypeRoutesDoor, exchange);
                return session_type_route(std::move(request), access, parts, exchange);
            }
            throw ApiError(ErrorKind::NotFound, "no route for " + request.path);
        }
        if (match.route->caller == Caller::Admin)
            require_admin(std::string(match.route->method) + " " + request.path);
        arm_deadline(request, deadline_door(match.route->id), exchange);
        return dispatch(match.route->id, std::move(request), principal, parts, exchange);
    } catch (const ApiError &e) {
        respond_error_for(parts, *exchange, e); // keeps Retry-After
    }
}

// The request's deadline, by its door (http/deadlines.hpp). The callback
// holds the exchange until the answer ends (the server drops it then).
void ApiHandler::arm_deadline(const Request &request, std::string_view door,
                              const std::shared_ptr<Exchange> &exchange) {
    if (door.empty()) return;
    const DeadlineLimits limits = deadline_limits(request, door);
    if (!limits.any()) return;
    exchange->set_deadline(limits, [this, door = std::string(door), exchange](const DeadlinePassed &passed) {
        metrics_.add("swarmhost_request_deadlines_passed_total",
                     dump_json(Json{{"door", door}, {"limit", passed.limit}}), 1);
        // A stream is ended by its door's own last event once the cancel
        // makes the send report (under_deadline).
        if (!passed.streaming) respond_deadline_error(door, *exchange, deadline_error(passed));
    });
}

// One route of kHostRoutes, already matched and its caller checked.
void ApiHandler::dispatch(RouteId route, Request request, const auth::Principal &principal,
                          const std::vector<std::string> &parts, std::shared_ptr<Exchange> exchange) {
    const Access access = access_of(principal);
    const std::string id = parts.size() > 2 ? parts[2] : std::string();
    switch (route) {
    case RouteId::Healthz:
        return post_free_([this, exchange] { // health() waits on the store at most storage_timeout_ms
            Json report = sessions_.health();
            respond_json(*exchange, report["status"] == "healthy" ? 200 : 503, report);
        });
    case RouteId::Metrics:
        return exchange->respond(200, "text/plain; version=0.0.4; charset=utf-8", metrics_text());
    case RouteId::Plugins:
        return respond_json(*exchange, 200, plugins_report());
    case RouteId::Models:
        // Anthropic's clients always send anthropic-version; OpenAI's never do.
        return respond_json(*exchange, 200,
                            request.anthropic_version.empty() ? openai::models(*sessions_.pipeline())
                                                              : anthropic::models(*sessions_.pipeline()));
    case RouteId::ModelGet:
        if (request.anthropic_version.empty())
            return respond_json(*exchange, 200, openai::model(*sessions_.pipeline(), parts[2]));
        try {
            return respond_json(*exchange, 200, anthropic::model(*sessions_.pipeline(), parts[2]));
        } catch (const ApiError &e) {
            return anthropic::respond_anthropic_error(*exchange, e); // the shape its client parses
        }
    case RouteId::Providers:
    case RouteId::ProviderGet:
    case RouteId::ProviderPatch:
        return providers_route(route, request, parts, exchange);
    case RouteId::AdminReload:
        if (!reloader_) throw ApiError(ErrorKind::Unavailable, "this daemon cannot reload");
        return blocking_json(exchange, 200, [this] { return reloader_(); });
    case RouteId::AdminManifestCheck:
        if (!checker_) throw ApiError(ErrorKind::Unavailable, "this daemon cannot check its manifest");
        return blocking_json(exchange, 200, [this] { return checker_(); });
    case RouteId::AdminRoutes:
        return respond_json(*exchange, 200, routes_report());
    case RouteId::AdminTraffic: {
        const TrafficQuery query = decode_traffic_query(request.query);
        return respond_json(*exchange, 200,
                            sessions_.traffic().series(now_us() / 1'000'000, query.seconds, query.step));
    }
    case RouteId::ChatCompletions: {
        openai::CompletionCaller caller{access,
                                        [this, principal] { return auth_.acquire_stream(principal); }};
        // A stateless completion stores nothing: it runs where storage waits cannot starve it.
        const PostBlocking &post = request.session_header.empty() ? post_free_ : post_blocking_;
        return openai::chat_completions(request, exchange, sessions_, post, keepalive_, caller);
    }
    case RouteId::AnthropicMessages: {
        openai::CompletionCaller caller{access,
                                        [this, principal] { return auth_.acquire_stream(principal); }};
        const PostBlocking &post = request.session_header.empty() ? post_free_ : post_blocking_;
        return anthropic::messages(request, exchange, sessions_, post, keepalive_, caller);
    }
    case RouteId::ResponsesCreate:
    case RouteId::ResponseGet:
    case RouteId::ResponseDelete:
    case RouteId::ResponseInputItems:
    case RouteId::ConversationsCreate:
    case RouteId::ConversationGet:
    case RouteId::ConversationUpdate:
    case RouteId::ConversationDelete:
    case RouteId::ConversationItemsList:
    case RouteId::ConversationItemsCreate:
    case RouteId::ConversationItemGet:
    case RouteId::ConversationItemDelete:
        return openai_state_route(route, request, principal, parts, exchange);
    case RouteId::SessionsCreate: {
        Json body = parse_body(request.body);
        if (principal.tenant()) {
            // A user key creates sessions for its own user only.
            if (!body.contains("user_id")) body["user_id"] = principal.user;
            if (body["user_id"] != principal.user)
                throw ApiError(ErrorKind::Forbidden, "key '" + principal.key_id +
                                                         "' creates sessions only for user '" +
                                                         principal.user + "'");
        }
        auto params = decode_create_session(body);
        return blocking_json(exchange, 201, [this, params = std::move(params)]() mutable {
            return to_json(sessions_.create_session(std::move(params)));
        });
    }
    case RouteId::SessionsList: {
        auto query = decode_session_list_query(request.query);
        if (principal.tenant()) query.filter.user_id = principal.user; // only their own sessions
        return blocking_json(exchange, 200, [this, query] {
            Json list = Json::array();
            for (const auto &s : query.host_filtered() ? list_matching(sessions_, query)
                                                       : sessions_.list_sessions(query.filter))
                list.push_back(to_json(s));
            return Json{{"sessions", std::move(list)}};
        });
    }
    case RouteId::SessionGet:
        return blocking_json(exchange, 200, [this, id, access] {
            Session session = sessions_.get_session(id);
            sessions_.authorize(session, access, SWH_ACTION_READ);
            return to_json(session);
        });
    case RouteId::SessionPatch: {
        auto patch = decode_session_patch(parse_body(request.body));
        return blocking_json(exchange, 200, [this, id, patch, access] {
            sessions_.authorize(id, access, SWH_ACTION_ADMIN);
            return to_json(sessions_.update_session(id, patch));
        });
    }
    case RouteId::SessionDelete:
        return blocking_json(exchange, 204, [this, id, access] {
            sessions_.authorize(id, access, SWH_ACTION_ADMIN);
            sessions_.delete_session(id);
            return Json();
        });
    case RouteId::SessionArchive:
        return blocking_json(exchange, 200, [this, id, access] {
            sessions_.authorize(id, access, SWH_ACTION_ADMIN);
            return to_json(sessions_.archive_session(id));
        });
    case RouteId::SessionEvents:
        return session_events(id, principal, last_event_id(request), exchange);
    case RouteId::SessionBudget:
        return blocking_json(exchange, 200, [this, id, access] {
            sessions_.authorize(sessions_.get_session(id), access, SWH_ACTION_READ);
            const std::shared_ptr<Pipeline> pin = sessions_.pipeline();
            return sessions_.budgets().report(pin->budgets, budgets::Scope::Session, id);
        });
    case RouteId::Budgets:
        return blocking_json(exchange, 200, [this, principal] { return budgets_report(principal); });
    case RouteId::MessagesSend:
        return send_message(request, principal, id, exchange);
    case RouteId::MessagesList: {
        auto query = decode_message_query(request.query, id);
        // Written as text, not as a tree: the read path of a conversation
        // (issue 17 target 4).
        return blocking_text(exchange, 200, [this, query, access] {
            return messages_body(sessions_.read_messages(query, access));
        });
    }
    }
}

void ApiHandler::send_message(const Request &request, const auth::Principal &principal,
                              const std::string &session_id, std::shared_ptr<Exchange> exchange) {
    SendParams params = decode_send(parse_body(request.body), session_id);
    if (request.idempotency_key.size() > 255)
        throw ApiError(ErrorKind::InvalidRequest, "Idempotency-Key is longer than 255 characters");
    params.idempotency_key = request.idempotency_key;
    params.access = access_of(principal);
    params.received_at_us = exchange->received_at_us();
    std::shared_ptr<SendObserver> observer;
    if (params.stream)
        observer = std::make_shared<StreamedReply>(exchange, keepalive_, auth_.acquire_stream(principal));
    else
        observer = std::make_shared<WholeReply>(exchange);
    observer = under_deadline(std::move(observer), exchange);
    post_blocking_([this, params = std::move(params), observer, exchange] {
        // Its deadline passed while it waited for a worker: not started, nothing stored.
        if (exchange->deadline_passed()) return;
        try {
            auto cancel = sessions_.send_message(params, observer);
            // A client that went away stops the upstream request.
            exchange->on_client_gone(std::move(cancel));
        } catch (const ApiError &e) {
            observer->on_error(e);
        } catch (const std::exception &e) {
            spdlog::error("send failed: {}", e.what());
            observer->on_error(ApiError(ErrorKind::Internal, "internal error"));
        }
    });
}

// METHOD /v1/sessions/{id}/<path> of the session's type: the host routes,
// the plugin answers (docs/session-types.md).
void ApiHandler::session_type_route(Request request, const Access &access,
                                    const std::vector<std::string> &parts,
                                    std::shared_ptr<Exchange> exchange) {
    SessionRouteRequest route;
    route.access = access;
    route.session_id = parts[2];
    route.method = request.method;
    route.segments.assign(parts.begin() + 3, parts.end());
    route.query = std::move(request.raw_query);
    route.content_type = std::move(request.content_type);
    route.body = std::move(request.body);
    post_blocking_([this, route = std::move(route), exchange]() mutable {
        try {
            SessionRouteAnswer answer = sessions_.handle_route(std::move(route));
            exchange->respond(answer.status, answer.content_type.empty() ? kJson : answer.content_type,
                              std::move(answer.body));
        } catch (const RouteMethodNotAllowed &e) {
            respond_error(*exchange, e.kind(), e.what(), {{"Allow", e.allow()}});
        } catch (const ApiError &e) {
            respond_error(*exchange, e);
        } catch (const std::exception &e) {
            spdlog::error("session type route failed: {}", e.what());
            respond_error(*exchange, ErrorKind::Internal, "internal error");
        }
    });
}

// GET /v1/sessions/{id}/events: `ready`, then the session's events as they
// happen, until the client goes away, the session is deleted or the daemon
// stops.
void ApiHandler::session_events(const std::string &session_id, const auth::Principal &principal,
                                std::optional<uint64_t> last_event_id, std::shared_ptr<Exchange> exchange) {
    post_blocking_([this, session_id, principal, last_event_id, exchange] {
        std::shared_ptr<void> slot;
        try {
            sessions_.authorize(sessions_.get_session(session_id), access_of(principal), SWH_ACTION_READ);
            slot = auth_.acquire_stream(principal);
        } catch (const ApiError &e) {
            return respond_error(*exchange, e);
        } catch (const std::exception &e) {
            spdlog::error("events: {}", e.what());
            return respond_error(*exchange, ErrorKind::Internal, "internal error");
        }
        exchange->start_stream();
        exchange->keep_alive(keepalive_);
        auto relay = [exchange, slot, listener = principal.user](const SessionEvent &event) {
            if (exchange->client_gone()) return false;
            Json data = event.message   ? to_json(*event.message)
                        : event.session ? to_json(*event.session)
                                        : event.data;
            // false: the client is gone, or fell behind and was dropped
            if (!exchange->send_event(event.type, dump_json(data), event.id)) return false;
            if (event.type == "session_deleted" || event.type == "shutdown" || revokes(event, listener)) {
                exchange->end_stream();
                return false;
            }
            return true;
        };
        // Subscribed before `ready` goes out: a client that waits for it
        // misses nothing published afterwards. In a fleet the carrier sends
        // `ready` once it has replayed what came after Last-Event-ID and
        // knows where the listener starts (fleet_events.hpp).
        std::shared_ptr<EventBus::Subscription> subscription =
            sessions_.events().subscribe(session_id, relay, last_event_id);
        if (!sessions_.events().in_fleet())
            exchange->send_event("ready", dump_json(Json{{"session_id", session_id}}));
        exchange->on_client_gone([subscription]() mutable { subscription.reset(); });
    });
}

// The OpenAI Responses and Conversations doors: state on the session store,
// errors in OpenAI's shape (http/openai_responses.hpp).
void ApiHandler::openai_state_route(RouteId route, const Request &request, const auth::Principal &principal,
                                    const std::vector<std::string> &parts,
                                    std::shared_ptr<Exchange> exchange) {
    const openai::DoorContext door{sessions_, post_blocking_, keepalive_,
                                   openai::CompletionCaller{access_of(principal), [this, principal] {
                                                                return auth_.acquire_stream(principal);
                                                            }}};
    const std::string id = parts.size() > 2 ? parts[2] : std::string();
    const std::string item = parts.size() > 4 ? parts[4] : std::string();
    switch (route) {
    case RouteId::ResponsesCreate:
        return openai::responses_create(request, exchange, door);
    case RouteId::ResponseGet:
        return openai::responses_retrieve(id, exchange, door);
    case RouteId::ResponseDelete:
        return openai::responses_delete(id, exchange, door);
    case RouteId::ResponseInputItems:
        return openai::responses_input_items(id, request.query, exchange, door);
    case RouteId::ConversationsCreate:
        return openai::conversations_create(request, exchange, door);
    case RouteId::ConversationGet:
        return openai::conversation_retrieve(id, exchange, door);
    case RouteId::ConversationUpdate:
        return openai::conversation_update(id, request, exchange, door);
    case RouteId::ConversationDelete:
        return openai::conversation_delete(id, exchange, door);
    case RouteId::ConversationItemsList:
        return openai::conversation_items_list(id, request.query, exchange, door);
    case RouteId::ConversationItemsCreate:
        return openai::conversation_items_create(id, request, exchange, door);
    case RouteId::ConversationItemGet:
        return openai::conversation_item_retrieve(id, item, exchange, door);
    case RouteId::ConversationItemDelete:
        return openai::conversation_item_delete(id, item, exchange, door);
    default:
        throw ApiError(ErrorKind::Internal, "not an OpenAI state route");
    }
}

// GET /v1/providers, GET|PATCH /v1/providers/{name}: the guide's
// get_provider_metadata and update_provider_config. Plugins leave secrets
// out of their metadata (an API key is named by api_key_env, never shown).
void ApiHandler::providers_route(RouteId route, const Request &request, const std::vector<std::string> &parts,
                                 std::shared_ptr<Exchange> exchange) {
    // Held by every job below, so a reload cannot unload the providers they use.
    const std::shared_ptr<Pipeline> pipeline = sessions_.pipeline();
    auto describe = [pipeline](const std::string &name, loader::ProviderInstance &provider) {
        Json fallback = Json::array();
        if (auto it = pipeline->fallbacks.find(name); it != pipeline->fallbacks.end()) fallback = it->second;
        return Json{{"name", name},
                    {"plugin", provider.library().name()},
                    {"default", name == pipeline->default_provider},
                    {"fallback", fallback},
                    {"metadata", provider.metadata()}};
    };
    if (route == RouteId::Providers)
        return blocking_json(
            exchange, 200,
            [pipeline, describe] {
                Json list = Json::array();
                for (const auto &[name, provider] : pipeline->providers)
                    list.push_back(describe(name, *provider));
                return Json{{"providers", std::move(list)}};
            },
            false);
    const std::string name = parts[2];
    loader::ProviderInstance *provider = pipeline->provider(name);
    if (!provider) throw ApiError(ErrorKind::NotFound, "provider '" + name + "' not found");
    if (route == RouteId::ProviderGet)
        return blocking_json(
            exchange, 200, [name, provider, describe] { return describe(name, *provider); }, false);
    Json changes = parse_body(request.body);
    blocking_json(exchange, 200, [name, provider, describe, changes] {
        try {
            provider->update_config(changes);
        } catch (const loader::PluginError &e) {
            throw ApiError(e.status() == SWH_E_UNSUPPORTED || e.status() == SWH_E_INVALID
                               ? ErrorKind::InvalidRequest
                               : ErrorKind::Internal,
                           e.what());
        }
        return describe(name, *provider);
    });
}

// GET /v1/budgets: an admin sees every key and user this daemon has charged
// or the manifest names; a user key its own key and user.
Json ApiHandler::budgets_report(const auth::Principal &principal) {
    const std::shared_ptr<Pipeline> pin = sessions_.pipeline();
    budgets::Ledger &ledger = sessions_.budgets();
    std::set<std::pair<budgets::Scope, std::string>> whose;
    if (principal.admin)
        whose = ledger.known(pin->budgets);
    else {
        if (!principal.key_id.empty()) whose.emplace(budgets::Scope::Key, principal.key_id);
        if (!principal.user.empty()) whose.emplace(budgets::Scope::User, principal.user);
    }
    Json list = Json::array();
    for (const auto &[scope, name] : whose)
        list.push_back(ledger.report(pin->budgets, scope, name));
    return Json{{"window", pin->budgets.window},
                {"configured", pin->budgets.configured},
                {"budgets", std::move(list)}};
}

std::string ApiHandler::metrics_text() const {
    std::string text =
        "# TYPE swarmhost_build_info gauge\nswarmhost_build_info{version=\"" SWH_VERSION "\"} 1\n";
    text += metrics_.render();
    if (server_metrics_) text += server_metrics_();
    text += auth_.render_metrics();
    text += sessions_.budgets().render_metrics();
    const StorageGate::Stats storage = sessions_.storage_stats();
    text += prometheus_series("swarmhost_storage_calls_waiting", "gauge", {{"", storage.waiting}});
    text += prometheus_series("swarmhost_storage_calls_overdue", "gauge", {{"", storage.overdue}});
    text +=
        prometheus_series("swarmhost_storage_calls_timed_out_total", "counter", {{"", storage.timed_out}});
    const HistoryCache::Stats history = sessions_.history_stats();
    text += prometheus_series("swarmhost_history_cache_hits_total", "counter", {{"", history.hits}});
    text += prometheus_series("swarmhost_history_cache_misses_total", "counter", {{"", history.misses}});
    text += prometheus_series("swarmhost_history_cache_sessions", "gauge", {{"", history.entries}});
    text += prometheus_series("swarmhost_history_cache_bytes", "gauge", {{"", history.bytes}});
    const std::shared_ptr<Pipeline> pin = sessions_.pipeline();
    const Pipeline &pipeline = *pin;
    if (pipeline.hooks && !pipeline.hooks->empty()) {
        const auto stats = pipeline.hooks->stats();
        auto series = [&](const char *name, const char *type, auto value_of) {
            std::vector<PrometheusSample> samples;
            for (const auto &s : stats)
                samples.push_back({"{hook=\"" + prometheus_escape(s.name) + "\"}", value_of(s)});
            text += prometheus_series(name, type, samples);
        };
        series("swarmhost_hook_events_delivered_total", "counter",
               [](const HookStats &s) { return s.delivered; });
        series("swarmhost_hook_events_failed_total", "counter", [](const HookStats &s) { return s.failed; });
        series("swarmhost_hook_events_dropped_total", "counter",
               [](const HookStats &s) { return s.dropped; });
        series("swarmhost_hook_events_handled_elsewhere_total", "counter",
               [](const HookStats &s) { return s.elsewhere; });
        series("swarmhost_hook_queue_length", "gauge", [](const HookStats &s) { return s.queued; });
        text += pipeline.hooks->render_metrics();
    }
    return text;
}

Json ApiHandler::plugins_report() const {
    const std::shared_ptr<Pipeline> pin = sessions_.pipeline();
    const Pipeline &pipeline = *pin;
    Json instances = Json::array();
    instances.push_back({{"name", pipeline.storage->name()},
                         {"plugin", pipeline.storage->library().name()},
                         {"kind", "storage"}});
    for (const auto &[name, provider] : pipeline.providers)
        instances.push_back({{"name", name}, {"plugin", provider->library().name()}, {"kind", "provider"}});
    for (const auto &spec : pipeline.middleware.ordered()) // in execution order
        instances.push_back({{"name", spec.instance->name()},
                             {"plugin", spec.instance->library().name()},
                             {"kind", "middleware"}});
    if (pipeline.hooks)
        for (const loader::HookInstance *hook : pipeline.hooks->instances())
            instances.push_back(
                {{"name", hook->name()}, {"plugin", hook->library().name()}, {"kind", "hook"}});
    for (const auto &[name, type] : pipeline.session_types) {
        Json routes = Json::array();
        for (const auto &route : type->routes())
            routes.push_back(route.method + " /v1/sessions/{id}/" + route.path);
        instances.push_back({{"name", name},
                             {"plugin", type->library().name()},
                             {"kind", "session_type"},
                             {"routes", std::move(routes)}});
    }
    Json report = pipeline.catalog.is_object() ? pipeline.catalog : Json::object();
    report["instances"] = std::move(instances);
    return report;
}

// GET /v1/admin/routes: every route the daemon answers, with where it finds
// its session and the action it needs there (docs/security.md). A session
// type's routes act on the session in their path; the type checks the action.
Json ApiHandler::routes_report() const {
    Json routes = Json::array();
    for (const HostRoute &route : kHostRoutes) {
        // (Appended, not `"/" + std::string(...)`: GCC 12 at -O3 warns a false
        // -Wrestrict on that form, which -Werror turns into a Release build failure.)
        std::string path = "/";
        path += route.path;
        routes.push_back({{"method", route.method},
                          {"path", std::move(path)},
                          {"session", scope_name(route.session)},
                          {"action", route.action},
                          {"caller", caller_name(route.caller)},
                          {"source", "host"}});
    }
    const std::shared_ptr<Pipeline> pin = sessions_.pipeline();
    for (const auto &[name, type] : pin->session_types)
        for (const auto &route : type->routes())
            routes.push_back({{"method", route.method},
                              {"path", "/v1/sessions/{id}/" + route.path},
                              {"session", scope_name(SessionScope::Path)},
                              {"action", ""},
                              {"caller", caller_name(Caller::User)},
                              {"source", "session_type:" + name}});
    return Json{{"routes", std::move(routes)}};
}

} // namespace swh::http
