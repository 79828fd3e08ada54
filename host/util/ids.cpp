#include "util/ids.hpp"

#include <cstdint>
#include <cstdio>
#include <random>

namespace swh {

uint64_t random_u64() {
    // One generator per thread: no lock on the hot path, seeded from the OS.
    thread_local std::mt19937_64 rng{std::random_device{}()};
    return rng();
}

std::string new_uuid() {
    uint64_t hi = random_u64(), lo = random_u64();
    hi = (hi & 0xFFFFFFFFFFFF0FFFull) | 0x0000000000004000ull; // version 4
    lo = (lo & 0x3FFFFFFFFFFFFFFFull) | 0x8000000000000000ull; // variant 10
    char buf[37];
    std::snprintf(buf, sizeof buf, "%08x-%04x-%04x-%04x-%012llx", static_cast<unsigned>(hi >> 32),
                  static_cast<unsigned>((hi >> 16) & 0xFFFF), static_cast<unsigned>(hi & 0xFFFF),
                  static_cast<unsigned>(lo >> 48), static_cast<unsigned long long>(lo & 0xFFFFFFFFFFFFull));
    return buf;
}

} // namespace swh
