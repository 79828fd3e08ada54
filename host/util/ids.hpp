#pragma once

#include <cstdint>
#include <string>

namespace swh {

// A random UUIDv4 in its 36-character text form.
std::string new_uuid();

// 64 random bits from a per-thread generator seeded by the OS (not for
// secrets: ids and sampling only).
uint64_t random_u64();

} // namespace swh
