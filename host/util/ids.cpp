#include "util/ids.hpp"

#include <cstdint>
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
    // Written digit by digit: snprintf was a tenth of a proxied request's
    // id work (issue 17), and a request takes up to four ids.
    static constexpr char kHex[] = "0123456789abcdef";
    std::string out(36, '-');
    size_t at = 0;
    const auto put = [&](uint64_t bits, int digits) {
        for (int i = digits - 1; i >= 0; --i)
            out[at++] = kHex[(bits >> (4 * i)) & 0xF];
    };
    put(hi >> 32, 8);
    ++at;
    put(hi >> 16, 4);
    ++at;
    put(hi, 4);
    ++at;
    put(lo >> 48, 4);
    ++at;
    put(lo, 12);
    return out;
}

} // namespace swh
