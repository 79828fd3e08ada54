// POST /v1/chat/completions, the request side: OpenAI's Chat Completions body
// turned into the host's CompletionParams (neutral generation parameters,
// structured messages). Every top-level field of OpenAI's reference is
// mapped, passed to the vendor under params.extra, honoured by the door, or
// refused with a 400 naming it; docs/openai-compat.md has the table.
#pragma once

#include "session/session_manager.hpp"

#include <optional>
#include <string>
#include <string_view>

namespace swh::http {

struct ChatCompletionRequest {
    // `model` is left as the client named it; openai::route_model turns it
    // into provider and model.
    CompletionParams completion;
    // stream_options.include_usage: a last chunk with "choices":[] and the
    // usage, and "usage":null on every other chunk.
    bool include_usage = false;
};

// Throws ApiError(InvalidRequest) naming the field (and message index).
ChatCompletionRequest decode_chat_completion(const Json &body, const std::string &session_header);

// The plain shape most calls have, read straight from the body's text with
// no nlohmann tree (issue 17): "model", "messages" whose entries hold only a
// "role" (system, developer, user or assistant) and a string "content", an
// optional boolean "stream", no other key, none repeated, valid UTF-8. For
// that shape the result is what decode_chat_completion(parse_body(body))
// gives (tests/fuzz/fuzz_request_body.cpp checks it on every input);
// nullopt for anything else, which the caller decodes the long way (and
// which that way may refuse, naming the field).
std::optional<ChatCompletionRequest> decode_plain_chat_completion(std::string_view body,
                                                                  const std::string &session_header);

// OpenAI's reasoning effort (`field` as the client named it) into the
// neutral params: reasoning_effort, or extra.reasoning_effort for the
// values the neutral form does not have. Shared with the Responses door.
void map_reasoning_effort(const Json &value, const std::string &field, Json &params);

// The completion part only (kept for tests/fuzz, which drives the decoder).
CompletionParams decode_completion(const Json &body, const std::string &session_header);

} // namespace swh::http
