// libFuzzer target: the SSE parser provider plugins use
// (sdk/cpp/include/swarmhost/cpp/sse.hpp).
//
// Input layout: byte 0 picks the limits and whether the callback stops early,
// bytes 1..4 are split seeds, the rest is the event-stream body. The body is
// parsed three ways - in one feed, byte by byte, and in pseudo-random pieces
// - and the header's promise "feed it the bytes in pieces of any size" is
// checked: all three must report the same events, the same failed/stopped
// state, finish(), last_event_id and retry_ms. Small limits make the
// limit paths reachable; a mismatch or a sanitizer report is a finding.
#include <swarmhost/cpp/sse.hpp>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

namespace sse = swh::cpp::sse;

namespace {

struct Outcome {
    std::vector<std::string> events; // "type\x1f" "data\x1f" "id"
    bool failed = false, stopped = false, finished = false, last_feed = true;
    std::string last_id;
    int64_t retry = -1;
    bool operator==(const Outcome &o) const {
        return events == o.events && failed == o.failed && stopped == o.stopped && finished == o.finished &&
               last_id == o.last_id && retry == o.retry;
    }
};

template <class NextPiece>
Outcome parse(std::string_view body, sse::Limits limits, std::size_t stop_after, NextPiece next_piece) {
    Outcome out;
    sse::Parser parser(limits);
    auto on_event = [&](const sse::Event &e) {
        out.events.push_back(std::string(e.type) + '\x1f' + std::string(e.data) + '\x1f' + std::string(e.id));
        return stop_after == 0 || out.events.size() < stop_after;
    };
    std::size_t pos = 0;
    while (pos < body.size()) {
        std::size_t n = next_piece(body.size() - pos);
        out.last_feed = parser.feed(body.substr(pos, n), on_event);
        pos += n;
    }
    out.failed = parser.failed();
    out.stopped = parser.stopped();
    out.finished = parser.finish();
    out.last_id = parser.last_event_id();
    out.retry = parser.retry_ms();
    // reset() must give a parser that behaves like a new one.
    parser.reset();
    if (parser.failed() || parser.stopped() || !parser.finish() || !parser.last_event_id().empty() ||
        parser.retry_ms() != -1) {
        std::fprintf(stderr, "fuzz_sse: reset() left state behind\n");
        std::abort();
    }
    return out;
}

void dump(const char *name, const Outcome &o) {
    std::fprintf(stderr, "%s: %zu events failed=%d stopped=%d finish=%d id='%s' retry=%lld\n", name,
                 o.events.size(), o.failed, o.stopped, o.finished, o.last_id.c_str(),
                 static_cast<long long>(o.retry));
    for (const auto &e : o.events)
        std::fprintf(stderr, "  [%s]\n", e.c_str());
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 5) return 0;
    const uint8_t mode = data[0];
    uint32_t seed =
        uint32_t(data[1]) | uint32_t(data[2]) << 8 | uint32_t(data[3]) << 16 | uint32_t(data[4]) << 24;
    std::string_view body(reinterpret_cast<const char *>(data + 5), size - 5);

    sse::Limits limits; // defaults, or small ones so inputs can reach them
    if (mode & 1) limits.max_line_bytes = 1 + (mode >> 2 & 0x1f);
    if (mode & 2) limits.max_event_bytes = 1 + (mode >> 4 & 0x0f) * 3;
    const std::size_t stop_after = (mode & 0x80) ? 1 + (seed & 3) : 0;

    Outcome whole = parse(body, limits, stop_after, [](std::size_t left) { return left; });
    Outcome bytes = parse(body, limits, stop_after, [](std::size_t) { return std::size_t(1); });
    Outcome pieces = parse(body, limits, stop_after, [&](std::size_t left) {
        seed = seed * 1103515245u + 12345u;
        std::size_t n = 1 + (seed >> 16) % 7;
        return n < left ? n : left;
    });
    if (!(whole == bytes) || !(whole == pieces)) {
        std::fprintf(stderr, "fuzz_sse: the same body split differently gave different results\n");
        dump("whole", whole);
        dump("bytes", bytes);
        dump("pieces", pieces);
        std::abort();
    }
    return 0;
}
