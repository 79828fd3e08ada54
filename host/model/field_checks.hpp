// The small checks every JSON door makes on a request body, with the API's
// usual wording: "field '<path>' <what>", the path as the client wrote it
// (messages[2].tool_call_id, input[1].call_id). Shared by the OpenAI Chat
// Completions and Responses doors and the conversation items they store.
#pragma once

#include "model/errors.hpp"
#include "model/model.hpp"

#include <functional>
#include <initializer_list>
#include <set>
#include <string>
#include <string_view>

namespace swh::fields {

// Throws ApiError(InvalidRequest): "field '<field>' <what>".
[[noreturn]] void invalid(const std::string &field, const std::string &what);

inline void need(bool ok, const std::string &field, const char *what) {
    if (!ok) invalid(field, what);
}

// "tools" + 2 -> "tools[2]"
std::string at(const std::string &field, std::size_t index);

// OpenAI: "null values mean absent", so a null member counts as absent.
bool present(const Json &object, const char *key);

// The "type" of a part, tool or choice; "" when absent or not a string.
std::string type_of(const Json &object);

// object[key] as a string, else "field '<field>.<key>' must be a string".
const std::string &string_at(const Json &object, const char *key, const std::string &field);

// Keys of an object that the door knows; anything else is refused by name,
// so a field never disappears in silence. `ignored` are keys a client puts
// back into the conversation itself (derived from what the door sent).
// (Lists, not sets: the few names are compared in place, no set is built
// per request; issue 17.)
void only_keys(const Json &object, const std::string &field, std::initializer_list<std::string_view> known,
               std::initializer_list<std::string_view> ignored = {});

// A message's content as a string or a list of parts ("<field>.content[j]"
// in errors): `decode_part` turns one part into its neutral form and adds
// its text to `text`. Returns the joined text; when any part is not text (or
// carries a cache mark), every part lands in structured["parts"], in order.
using PartDecoder = std::function<Json(const Json &part, const std::string &field, std::string &text)>;
std::string decode_content(const Json &content, const std::string &field, const PartDecoder &decode_part,
                           Json &structured);

// The field a refusal of invalid() names ("" when the message is not one).
std::string field_of(const std::string &message);

} // namespace swh::fields
