// OpenAI Responses/Conversations items <-> the host's neutral messages
// (model/model.hpp). A request's `input` (or a conversation's `items`)
// becomes messages the send path stores and replays to any provider; stored
// messages become the items a response's output, its input_items and a
// conversation's items list show.
#pragma once

#include "model/model.hpp"

#include <set>
#include <string>
#include <vector>

namespace swh::conversation {

struct DecodedItems {
    std::vector<Message> messages; // user / assistant (text, tool calls) / tool, in order
    std::string system_prompt;     // system and developer messages, joined: never stored
    // For each message, where it came from in the request ("input[3]"), so
    // a later check (a tool result's call_id) names the client's own item.
    std::vector<std::string> fields;
};

// `items`: a string (one user message) or a list of items. `field` names the
// list in errors ("input", "items"). Throws ApiError(InvalidRequest) naming
// the item and key ("field 'input[2].content[0].type' …"). Consecutive
// function_call items (and an assistant message before them) become one
// assistant message with structured.tool_calls.
DecodedItems decode_items(const Json &items, const std::string &field);

// A function_call_output must answer a call of an earlier assistant message
// (`earlier`: the stored history, then the new turns before it). Throws
// ApiError(InvalidRequest) naming `<fields[i]>.call_id`.
void check_call_ids(const std::vector<Message> &history, const DecodedItems &decoded);

// A stored message as the items it shows: an assistant message is a message
// item (text) and one function_call item per tool call; a tool result a
// function_call_output; a user message a message item with input parts.
// `deleted`: item ids removed from a conversation (left out).
Json items_of(const Message &message, const std::set<std::string> &deleted = {});

// A response's `output`: its assistant message as output items.
Json output_of(const Message &assistant);

// The text of a message item's output_text parts, as the SDK's output_text.
std::string output_text_of(const Json &output);

// A history with the removed items gone: a message whose every item was
// removed is dropped; an assistant message keeps the calls not removed.
std::vector<Message> without_items(std::vector<Message> messages, const std::set<std::string> &deleted);

} // namespace swh::conversation
