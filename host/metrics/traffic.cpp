#include "metrics/traffic.hpp"

#include <algorithm>
#include <cmath>

namespace swh {

namespace {

constexpr double kBaseMs = 0.05; // upper bound of bucket 0
constexpr double kGrowth = 1.35; // 48 buckets reach about 50 minutes

std::size_t bucket_of(double ms) {
    if (!(ms > kBaseMs)) return 0; // also NaN
    const double index = std::ceil(std::log(ms / kBaseMs) / std::log(kGrowth));
    return std::min<std::size_t>(static_cast<std::size_t>(index), TrafficRing::kLatencyBuckets - 1);
}

// The upper bound of bucket i: a percentile is reported as the bound of the
// bucket it falls in (at most 35 % high, never low).
double bucket_bound_ms(std::size_t i) {
    return kBaseMs * std::pow(kGrowth, static_cast<double>(i));
}

double percentile_ms(const std::array<uint64_t, TrafficRing::kLatencyBuckets> &hist, uint64_t total,
                     double fraction) {
    if (total == 0) return 0;
    const auto rank = static_cast<uint64_t>(std::ceil(fraction * static_cast<double>(total)));
    uint64_t seen = 0;
    for (std::size_t i = 0; i < hist.size(); ++i) {
        seen += hist[i];
        if (seen >= std::max<uint64_t>(rank, 1)) return bucket_bound_ms(i);
    }
    return bucket_bound_ms(hist.size() - 1);
}

} // namespace

TrafficRing::TrafficRing(std::size_t seconds) : slots_(std::max<std::size_t>(seconds, 1)) {}

TrafficRing::Slot &TrafficRing::slot_for(int64_t now_s) {
    Slot &slot = slots_[static_cast<std::size_t>(now_s) % slots_.size()];
    if (slot.second != now_s) {
        slot = Slot{};
        slot.second = now_s;
    }
    return slot;
}

const TrafficRing::Slot *TrafficRing::slot_at(int64_t second) const {
    if (second < 0) return nullptr;
    const Slot &slot = slots_[static_cast<std::size_t>(second) % slots_.size()];
    return slot.second == second ? &slot : nullptr;
}

void TrafficRing::record_request(int64_t now_s, int status, double latency_ms) {
    std::lock_guard lock(mutex_);
    Slot &slot = slot_for(now_s);
    ++slot.requests;
    if (status >= 500)
        ++slot.errors;
    else if (status == 422) // a middleware or the session's type refused
        ++slot.refusals;
    else if (status >= 400)
        ++slot.client_errors;
    ++slot.latency[bucket_of(latency_ms)];
}

void TrafficRing::record_stream_failure(int64_t now_s, bool refusal) {
    std::lock_guard lock(mutex_);
    Slot &slot = slot_for(now_s);
    ++(refusal ? slot.refusals : slot.errors);
}

void TrafficRing::record_tokens(int64_t now_s, int64_t input_tokens, int64_t output_tokens) {
    std::lock_guard lock(mutex_);
    Slot &slot = slot_for(now_s);
    if (input_tokens > 0) slot.input_tokens += static_cast<uint64_t>(input_tokens);
    if (output_tokens > 0) slot.output_tokens += static_cast<uint64_t>(output_tokens);
}

nlohmann::json TrafficRing::series(int64_t now_s, std::size_t seconds, std::size_t step) const {
    seconds = std::clamp<std::size_t>(seconds, 1, slots_.size());
    step = std::clamp<std::size_t>(step, 1, seconds);
    const std::size_t points = seconds / step;
    nlohmann::json list = nlohmann::json::array();
    std::lock_guard lock(mutex_);
    // Oldest point first; each point covers the `step` seconds ending at t.
    for (std::size_t p = points; p-- > 0;) {
        const int64_t end = now_s - static_cast<int64_t>(p * step);
        uint64_t requests = 0, errors = 0, client_errors = 0, refusals = 0, in = 0, out = 0;
        std::array<uint64_t, kLatencyBuckets> hist{};
        for (std::size_t s = 0; s < step; ++s) {
            const Slot *slot = slot_at(end - static_cast<int64_t>(s));
            if (!slot) continue;
            requests += slot->requests;
            errors += slot->errors;
            client_errors += slot->client_errors;
            refusals += slot->refusals;
            in += slot->input_tokens;
            out += slot->output_tokens;
            for (std::size_t i = 0; i < kLatencyBuckets; ++i)
                hist[i] += slot->latency[i];
        }
        list.push_back({{"t", end},
                        {"requests", requests},
                        {"per_second", static_cast<double>(requests) / static_cast<double>(step)},
                        {"p50_ms", percentile_ms(hist, requests, 0.50)},
                        {"p99_ms", percentile_ms(hist, requests, 0.99)},
                        {"errors", errors},
                        {"client_errors", client_errors},
                        {"refusals", refusals},
                        {"input_tokens", in},
                        {"output_tokens", out}});
    }
    return {{"end", now_s}, {"step_seconds", step}, {"points", std::move(list)}};
}

} // namespace swh
