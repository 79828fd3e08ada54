// The OpenAI Responses door: POST /v1/responses (plain and streamed),
// GET|DELETE /v1/responses/{id}, GET /v1/responses/{id}/input_items, with
// the state on the session store (conversation/state.hpp). Errors come in
// OpenAI's shape {"error":{"message","type","param","code"}} so the official
// clients raise their own error classes. docs/http-api.md, "Responses".
#pragma once

#include "http/openai_compat.hpp"
#include "http/server.hpp"
#include "session/session_manager.hpp"

#include <chrono>
#include <map>

namespace swh::http::openai {

// How the Responses and Conversations routes answer.
struct DoorContext {
    SessionManager &sessions;
    PostBlocking post; // the storage workers
    std::chrono::milliseconds keepalive;
    CompletionCaller caller;
};

void responses_create(const Request &request, std::shared_ptr<Exchange> exchange, const DoorContext &door);
void responses_retrieve(const std::string &id, std::shared_ptr<Exchange> exchange, const DoorContext &door);
void responses_delete(const std::string &id, std::shared_ptr<Exchange> exchange, const DoorContext &door);
void responses_input_items(const std::string &id, const std::map<std::string, std::string> &query,
                           std::shared_ptr<Exchange> exchange, const DoorContext &door);

// ---- shared with the Conversations door (http/openai_conversations.cpp)

// OpenAI's error body: type from the status (invalid_request_error,
// authentication_error, rate_limit_error, server_error…), param from the
// field a refusal names.
std::string openai_error_body(const ApiError &error);
void respond_openai_error(Exchange &exchange, const ApiError &error);
// Runs `job` on `post`'s workers and answers its JSON (or its error, in OpenAI's shape).
void openai_json(std::shared_ptr<Exchange> exchange, const PostBlocking &post, int status,
                 std::function<Json()> job);
// A cursor page of `items` (oldest first) as OpenAI lists: ?order=asc|desc
// (default desc), ?after=<item id>, ?limit=1..100 (default 20);
// {"object":"list","data","first_id","last_id","has_more"}.
Json list_page(const Json &items, const std::map<std::string, std::string> &query);

} // namespace swh::http::openai
