// The door of tracing: every request gets a server span, child of the
// client's W3C `traceparent` when it sent a valid one, and that span is
// made current while the request is handled (tracing/span.hpp). The span
// ends when the answer is given (or the stream ends).
#pragma once

#include "http/server.hpp"
#include "tracing/tracer.hpp"

#include <memory>
#include <string>

namespace swh::http {

// Wraps the daemon's handler: a server span per request.
class TracingHandler : public RequestHandler {
  public:
    TracingHandler(RequestHandler &inner, const tracing::Tracer &tracer) : inner_(inner), tracer_(tracer) {}
    void handle(Request request, std::shared_ptr<Exchange> exchange) override;

  private:
    RequestHandler &inner_;
    const tracing::Tracer &tracer_;
};

// The session a request addresses: X-Swarmhost-Session or /v1/sessions/{id}/…; "" if none.
std::string session_of(const Request &request);

} // namespace swh::http
