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

// The same for a message's structured content.
const Json &check_structured(const Json &structured, const std::string &where);

} // namespace swh
