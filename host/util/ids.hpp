#pragma once

#include <string>

namespace swh {

// A random UUIDv4 in its 36-character text form.
std::string new_uuid();

} // namespace swh
