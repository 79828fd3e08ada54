// The neutral form of generation parameters (swh_provider_request.params_json,
// documented in sdk/include/swarmhost/provider.h) and of a message's
// structured content (swh_message.structured_json). Every door translates
// into these forms; these checks say, naming the field, what is wrong with a
// value before anything is stored or sent upstream.
#pragma once

#include "model/model.hpp"

#include <string>

namespace swh {

// Throws ApiError(InvalidRequest) naming `where` + the key when `params` is
// not a valid neutral parameter object (unknown key, wrong type, a tool
// whose schema is not an object...). Returns it unchanged.
const Json &check_params(const Json &params, const std::string &where);

// A prompt-cache mark (cache_control): {"type":"ephemeral"} with an optional
// "ttl" of "5m" or "1h". The neutral form carries it on tools
// (tools[i].cache_control), on the system prompt (params.system_cache_control),
// on the whole request (params.cache_control), and in structured content on
// a message's text (cache_control), a part and a tool call.
bool is_cache_mark(const Json &mark);

// The same for a message's structured content.
const Json &check_structured(const Json &structured, const std::string &where);

} // namespace swh
