// The API's JSON shapes (docs/http-api.md): sessions and messages out,
// request bodies in, with field-by-field validation errors.
#pragma once

#include "http/openai_chat_request.hpp" // POST /v1/chat/completions' decoder lives there
#include "session/session_manager.hpp"

#include <map>
#include <string>
#include <vector>

namespace swh::http {

Json to_json(const Session &session);
Json to_json(const Message &message);
// What dump_json(to_json(message)) gives, written straight from the frozen
// message (its JSON members are text already): no tree is built.
void append_json(std::string &out, const FrozenMessage &message);
// {"messages":[...]}, the answer of GET /v1/sessions/{id}/messages.
std::string messages_body(const std::vector<MessageRef> &messages);
// The error body of `kind` as text (error_json in http/server.hpp).
std::string error_body(ErrorKind kind, const std::string &message);
// The same with the error's details (ApiError::details_json) among its members.
std::string error_body(const ApiError &error);
// Adds the error's details to a door's error object.
void with_details(Json &error_object, const ApiError &error);
// Serialise for the wire; invalid UTF-8 (e.g. echoed from a bad request) is
// replaced rather than thrown on.
std::string dump_json(const Json &value);

// Parse a request body as a JSON object; ApiError InvalidJson/InvalidRequest.
Json parse_body(const std::string &body);

CreateSessionParams decode_create_session(const Json &body);
SessionPatch decode_session_patch(const Json &body);
SendParams decode_send(const Json &body, const std::string &session_id);

// GET /v1/sessions: what the store filters (user_id, status, limit, offset)
// and what the host filters on top (type, provider: not in the storage ABI's
// filter). `type=plain` means a session without a type.
struct SessionListQuery {
    SessionFilter filter;
    std::string type, provider;
    bool host_filtered() const { return !type.empty() || !provider.empty(); }
    bool matches(const Session &session) const;
};
SessionListQuery decode_session_list_query(const std::map<std::string, std::string> &query);
// GET /v1/admin/traffic: `seconds` of history (default 300, at most the
// ring's 900) in points of `step` seconds (default 5).
struct TrafficQuery {
    uint32_t seconds = 300, step = 5;
};
TrafficQuery decode_traffic_query(const std::map<std::string, std::string> &query);
MessageQuery decode_message_query(const std::map<std::string, std::string> &query,
                                  const std::string &session_id);

} // namespace swh::http
