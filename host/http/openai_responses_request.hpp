// POST /v1/responses, the request side: OpenAI's Responses body turned into
// what the door needs: the new turns (conversation/items.hpp), the neutral
// generation parameters, where the state lives (previous_response_id,
// conversation, store), and the envelope a stored response keeps and shows
// back (instructions, tools, text, metadata… as the client sent them). Every
// field is honoured, mapped, passed under params.extra or refused with a 400
// naming it; docs/http-api.md has the table.
#pragma once

#include "conversation/items.hpp"
#include "model/model.hpp"

#include <string>

namespace swh::http {

struct ResponsesRequest {
    std::string model;                // as the client named it (openai::route_model routes it)
    conversation::DecodedItems input; // the new turns
    std::string instructions;         // this request's only: never carried to the next
    Json params = Json::object();     // neutral generation parameters
    bool stream = false;
    bool store = true;
    std::string previous_response_id; // "" = none
    std::string conversation;         // "" = none
    // What the Response object echoes: instructions, tools, tool_choice,
    // temperature, top_p, max_output_tokens, parallel_tool_calls, text,
    // metadata, user, reasoning, truncation, store (with their defaults).
    Json envelope = Json::object();
    // The system prompt the provider gets: instructions, then the request's
    // system/developer items.
    std::string system_prompt() const;
};

// Throws ApiError(InvalidRequest) naming the field ("field 'tools[0].type' …").
ResponsesRequest decode_responses_request(const Json &body);

// Conversation metadata as OpenAI takes it: at most 16 string values, keys
// up to 64 characters, values up to 512. `field` names it in errors.
const Json &check_metadata(const Json &metadata, const std::string &field);

} // namespace swh::http
