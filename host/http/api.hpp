// The routes of docs/http-api.md on top of the SessionManager. Parsing and
// routing happen on the I/O thread; anything that touches storage is posted
// to the worker pool.
#pragma once

#include "auth/authenticator.hpp"
#include "http/route_table.hpp"
#include "http/server.hpp"
#include "loader/plugin_library.hpp"
#include "metrics/registry.hpp"
#include "session/session_manager.hpp"

namespace swh::http {

class ApiHandler : public RequestHandler {
  public:
    // What POST /v1/admin/reload runs (the daemon's reload); may be empty.
    using Reloader = std::function<Json()>;
    void set_reloader(Reloader reloader) { reloader_ = std::move(reloader); }
    // What POST /v1/admin/manifest/check runs: the reload's checks on the
    // manifest file, applying nothing; may be empty.
    void set_checker(Reloader checker) { checker_ = std::move(checker); }
    // Lines GET /metrics adds about the HTTP server (it is built after us).
    using MetricsSource = std::function<std::string()>;
    void set_server_metrics(MetricsSource source) { server_metrics_ = std::move(source); }
    ApiHandler(SessionManager &sessions, MetricsRegistry &metrics, auth::Authenticator &auth,
               PostBlocking post_blocking, std::chrono::milliseconds sse_keepalive = std::chrono::seconds(15),
               PostBlocking post_free = {});
    void handle(Request request, std::shared_ptr<Exchange> exchange) override;

  private:
    // handle(), on the thread it was called on.
    void handle_here(Request request, std::shared_ptr<Exchange> exchange);
    // Runs `job` on a worker and answers with its JSON (or its error).
    // `uses_storage` false: on the threads storage waits never hold.
    void blocking_json(std::shared_ptr<Exchange> exchange, int status, std::function<Json()> job,
                       bool uses_storage = true);
    // The same for a job that writes its JSON answer as text itself.
    void blocking_text(std::shared_ptr<Exchange> exchange, int status, std::function<std::string()> job,
                       bool uses_storage = true);
    void send_message(const Request &request, const auth::Principal &principal, const std::string &session_id,
                      std::shared_ptr<Exchange> exchange);
    void arm_deadline(const Request &request, std::string_view door,
                      const std::shared_ptr<Exchange> &exchange);
    void dispatch(RouteId route, Request request, const auth::Principal &principal,
                  const std::vector<std::string> &parts, std::shared_ptr<Exchange> exchange);
    void session_type_route(Request request, const Access &access, const std::vector<std::string> &parts,
                            std::shared_ptr<Exchange> exchange);
    void session_events(const std::string &session_id, const auth::Principal &principal,
                        std::optional<uint64_t> last_event_id, std::shared_ptr<Exchange> exchange);
    void openai_state_route(RouteId route, const Request &request, const auth::Principal &principal,
                            const std::vector<std::string> &parts, std::shared_ptr<Exchange> exchange);
    Json plugins_report() const;
    Json budgets_report(const auth::Principal &principal);
    Json routes_report() const;
    void providers_route(RouteId route, const Request &request, const std::vector<std::string> &parts,
                         std::shared_ptr<Exchange> exchange);
    std::string metrics_text() const;

    SessionManager &sessions_;
    MetricsRegistry &metrics_;
    auth::Authenticator &auth_;
    PostBlocking post_blocking_;
    PostBlocking post_free_; // jobs that need no storage (see SessionManager)
    std::chrono::milliseconds keepalive_;
    Reloader reloader_;
    Reloader checker_;
    MetricsSource server_metrics_;
};

void respond_error(Exchange &exchange, ErrorKind kind, const std::string &message,
                   std::vector<std::pair<std::string, std::string>> extra_headers = {});
// With a Retry-After header when the error knows one.
void respond_error(Exchange &exchange, const ApiError &error);
// The headers an error answer carries: WWW-Authenticate on a 401, Retry-After
// when the error knows one, x-should-retry: false on a spent budget (every
// door's error shape uses them).
std::vector<std::pair<std::string, std::string>> error_headers(const ApiError &error);

} // namespace swh::http
