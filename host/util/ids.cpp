#include "util/ids.hpp"

#include <array>
#include <cstdint>
#include <cstring>
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
    // Written a byte (two digits) at a time from a table: snprintf was a
    // tenth of a proxied request's id work (issue 17), and a request takes
    // up to four ids.
    static constexpr auto kPairs = [] {
        constexpr char kHex[] = "0123456789abcdef";
        std::array<char, 512> pairs{};
        for (std::size_t i = 0; i < 256; ++i) {
            pairs[2 * i] = kHex[i >> 4];
            pairs[2 * i + 1] = kHex[i & 0xF];
        }
        return pairs;
    }();
    std::string out(36, '-');
    char *at = out.data();
    const auto put = [&](uint64_t bits, int bytes) {
        for (int i = bytes - 1; i >= 0; --i) {
            std::memcpy(at, &kPairs[2 * ((bits >> (8 * i)) & 0xFF)], 2);
            at += 2;
        }
    };
    put(hi >> 32, 4);
    ++at;
    put(hi >> 16, 2);
    ++at;
    put(hi, 2);
    ++at;
    put(lo >> 48, 2);
    ++at;
    put(lo, 6);
    return out;
}

} // namespace swh
