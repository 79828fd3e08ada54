#include "tracing/trace_context.hpp"

#include "util/ids.hpp"

#include <algorithm>
#include <cstring>

namespace swh::tracing {

namespace {

constexpr char kHex[] = "0123456789abcdef";

template <std::size_t N> std::string to_hex(const std::array<uint8_t, N> &bytes) {
    std::string out(2 * N, '0');
    for (std::size_t i = 0; i < N; ++i) {
        out[2 * i] = kHex[bytes[i] >> 4];
        out[2 * i + 1] = kHex[bytes[i] & 0xF];
    }
    return out;
}

// Lowercase only: the spec makes uppercase hex invalid.
int nibble(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
}

template <std::size_t N> bool from_hex(std::string_view text, std::array<uint8_t, N> &out) {
    if (text.size() != 2 * N) return false;
    for (std::size_t i = 0; i < N; ++i) {
        const int hi = nibble(text[2 * i]), lo = nibble(text[2 * i + 1]);
        if (hi < 0 || lo < 0) return false;
        out[i] = static_cast<uint8_t>(hi << 4 | lo);
    }
    return true;
}

template <std::size_t N> bool non_zero(const std::array<uint8_t, N> &bytes) {
    return std::any_of(bytes.begin(), bytes.end(), [](uint8_t b) { return b != 0; });
}

template <std::size_t N> void fill_random(std::array<uint8_t, N> &bytes) {
    do {
        for (std::size_t i = 0; i < N; i += 8) {
            const uint64_t r = random_u64();
            std::memcpy(bytes.data() + i, &r, std::min<std::size_t>(8, N - i));
        }
    } while (!non_zero(bytes));
}

} // namespace

bool TraceId::valid() const {
    return non_zero(bytes);
}
std::string TraceId::hex() const {
    return to_hex(bytes);
}
bool SpanId::valid() const {
    return non_zero(bytes);
}
std::string SpanId::hex() const {
    return to_hex(bytes);
}

TraceId new_trace_id() {
    TraceId id;
    fill_random(id.bytes);
    return id;
}

SpanId new_span_id() {
    SpanId id;
    fill_random(id.bytes);
    return id;
}

std::optional<SpanContext> parse_traceparent(std::string_view header) {
    constexpr std::size_t kLength = 55; // 2 + 1 + 32 + 1 + 16 + 1 + 2
    if (header.size() < kLength) return std::nullopt;
    std::array<uint8_t, 1> version{}, flags{};
    if (!from_hex(header.substr(0, 2), version) || version[0] == 0xFF) return std::nullopt;
    // Version 00 has exactly these fields; a later version may append more.
    if (version[0] == 0 ? header.size() != kLength : header.size() > kLength && header[kLength] != '-')
        return std::nullopt;
    if (header[2] != '-' || header[35] != '-' || header[52] != '-') return std::nullopt;
    SpanContext context;
    if (!from_hex(header.substr(3, 32), context.trace.bytes) ||
        !from_hex(header.substr(36, 16), context.span.bytes) || !from_hex(header.substr(53, 2), flags))
        return std::nullopt;
    if (!context.valid()) return std::nullopt;
    context.sampled = (flags[0] & 0x01) != 0;
    return context;
}

std::string format_traceparent(const SpanContext &context) {
    return "00-" + context.trace.hex() + "-" + context.span.hex() + (context.sampled ? "-01" : "-00");
}

} // namespace swh::tracing
