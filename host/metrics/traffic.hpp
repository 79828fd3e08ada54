// The daemon's own traffic over the last minutes, second by second: requests,
// latency percentiles, tokens, errors and refusals. /metrics has counters
// only (a scraper computes rates), but the operator's console draws charts
// without a Prometheus beside it, so the host keeps a small ring of
// per-second buckets and answers it as JSON (GET /v1/admin/traffic).
#pragma once

#include <array>
#include <cstdint>
#include <mutex>
#include <nlohmann/json.hpp>
#include <vector>

namespace swh {

class TrafficRing {
  public:
    // Latency buckets: bucket i holds [kBase * kGrowth^(i-1), kBase * kGrowth^i) ms.
    static constexpr std::size_t kLatencyBuckets = 48;

    explicit TrafficRing(std::size_t seconds = 900);

    // One answered request: `status` its HTTP status (a stream counts as 200
    // when it starts), `latency_ms` from the request read to the first byte.
    void record_request(int64_t now_s, int status, double latency_ms);
    // A stream that began and then failed (its last event was `error`).
    void record_stream_failure(int64_t now_s, bool refusal);
    // A provider's reply (usage the provider reported; negative = unknown).
    void record_tokens(int64_t now_s, int64_t input_tokens, int64_t output_tokens);

    // The last `seconds` up to `now_s`, `step` seconds a point:
    // {"end","step_seconds","points":[{"t","requests","per_second","p50_ms","p99_ms",
    //  "errors","client_errors","refusals","input_tokens","output_tokens"}…]}
    nlohmann::json series(int64_t now_s, std::size_t seconds, std::size_t step) const;
    std::size_t capacity() const { return slots_.size(); }

  private:
    struct Slot {
        int64_t second = -1; // which second this slot holds; -1 = never used
        uint64_t requests = 0, errors = 0, client_errors = 0, refusals = 0;
        uint64_t input_tokens = 0, output_tokens = 0;
        std::array<uint32_t, kLatencyBuckets> latency{};
    };
    // The slot of `now_s`, emptied first when it still holds an older second.
    Slot &slot_for(int64_t now_s);
    const Slot *slot_at(int64_t second) const;

    mutable std::mutex mutex_;
    std::vector<Slot> slots_;
};

} // namespace swh
