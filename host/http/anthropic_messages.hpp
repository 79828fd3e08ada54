// The Anthropic Messages front door: POST /v1/messages, streamed or not, so
// Anthropic's clients (and the tools built on them) work unchanged against
// any provider of the manifest. `model` routes as on the chat door
// (openai::route_model); an optional X-Swarmhost-Session header appends the
// exchange to a stored session. The request side is
// http/anthropic_messages_request.hpp; docs/http-api.md, "Anthropic Messages
// door", has the field table, the event sequence and the error shapes.
#pragma once

#include "http/openai_compat.hpp"
#include "http/server.hpp"
#include "session/session_manager.hpp"

#include <chrono>
#include <string>
#include <vector>

namespace swh::http::anthropic {

// Whether a request path is this door's (/v1/messages and below): its
// errors, the dispatcher's 401/404/405/429 included, are in Anthropic's
// shape, the only one its clients parse.
bool owns_path(const std::vector<std::string> &segments);

// {"type":"error","error":{"type":"invalid_request_error",...,"message":...}}
std::string anthropic_error_body(ErrorKind kind, const std::string &message);
// With the status of `error`'s kind and its headers (WWW-Authenticate,
// Retry-After, `extra_headers`).
void respond_anthropic_error(Exchange &exchange, const ApiError &error,
                             std::vector<std::pair<std::string, std::string>> extra_headers = {});

// GET /v1/models and /v1/models/{id} in Anthropic's shape, for a request
// that carries anthropic-version (its clients' models.list / retrieve):
// {"data":[{"type":"model","id","display_name","created_at"}],"has_more",
// "first_id","last_id"} and one such model.
Json models(const Pipeline &pipeline);
Json model(const Pipeline &pipeline, const std::string &id);

void messages(const Request &request, std::shared_ptr<Exchange> exchange, SessionManager &sessions,
              const PostBlocking &post_blocking, std::chrono::milliseconds keepalive,
              const openai::CompletionCaller &caller = {});

} // namespace swh::http::anthropic
