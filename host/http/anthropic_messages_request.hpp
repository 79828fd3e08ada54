// POST /v1/messages, the request side: Anthropic's Messages body turned into
// the host's CompletionParams (neutral generation parameters, structured
// messages). Every top-level field of Anthropic's reference (checked against
// MessageCreateParams of @anthropic-ai/sdk 1.14.0, plus the sampling fields
// older references list) is mapped, passed to the vendor under params.extra,
// honoured by the door, or refused with a 400 naming it the way Anthropic
// names fields ("messages.1.content.0.tool_use_id: ..."); docs/http-api.md,
// "Anthropic Messages door", has the table.
#pragma once

#include "session/session_manager.hpp"

#include <string>

namespace swh::http::anthropic {

// `model` is left as the client named it: openai::route_model (the same
// routing as the chat door) turns it into provider and model.
// Throws ApiError(InvalidRequest) whose message starts with the field's path.
CompletionParams decode_messages_request(const Json &body, const std::string &session_header);

} // namespace swh::http::anthropic
