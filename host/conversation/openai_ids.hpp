// The ids of the OpenAI Responses and Conversations doors name where the
// object lives in the session store, so any daemon on the same store finds
// it with no index of its own (docs/conversation-state.md):
//   resp_<session hex><assistant message hex>   a response
//   conv_<session hex>                           a conversation
//   msg_<message hex>                            a message item
//   fco_<message hex>                            a function_call_output item
//   fc_<message hex>_<n>                         the n-th function call of an assistant message
// where <hex> is a host uuid (host/util/ids.hpp) without its dashes.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace swh::conversation {

struct ResponseRef {
    std::string session_id, message_id; // uuids, dashed
};

struct ItemRef {
    std::string message_id;          // uuid, dashed
    std::optional<std::size_t> call; // fc_: which function call of the message
    bool tool_result = false;        // fco_
};

std::string response_id(const std::string &session_id, const std::string &message_id);
std::string conversation_id(const std::string &session_id);
std::string message_item_id(const std::string &message_id);
std::string tool_result_item_id(const std::string &message_id);
std::string call_item_id(const std::string &message_id, std::size_t index);

// nullopt when `id` is not one of ours (the caller answers 404).
std::optional<ResponseRef> parse_response_id(std::string_view id);
std::optional<std::string> parse_conversation_id(std::string_view id);
std::optional<ItemRef> parse_item_id(std::string_view id);

// "0123…" (32 lowercase hex) <-> "01234567-89ab-…" (36, dashed).
std::string hex_of_uuid(std::string_view uuid);
std::optional<std::string> uuid_of_hex(std::string_view hex);

} // namespace swh::conversation
