// The traffic ring the console charts (host/metrics/traffic.hpp): counts land
// in their second, points add up their seconds, percentiles come from the
// latency buckets, and a second the ring has wrapped past reads as empty.
#include "metrics/traffic.hpp"

#include <catch2/catch.hpp>

using swh::TrafficRing;

namespace {

const nlohmann::json &point(const nlohmann::json &series, std::size_t i) {
    return series["points"][i];
}

} // namespace

TEST_CASE("traffic ring: statuses are sorted into errors, refusals and client errors", "[traffic]") {
    TrafficRing ring(60);
    ring.record_request(1000, 200, 1.0);
    ring.record_request(1000, 201, 1.0);
    ring.record_request(1000, 404, 1.0);
    ring.record_request(1000, 422, 1.0);
    ring.record_request(1000, 503, 1.0);
    ring.record_stream_failure(1000, false);
    ring.record_stream_failure(1000, true);
    const auto series = ring.series(1000, 1, 1);
    REQUIRE(series["points"].size() == 1);
    CHECK(point(series, 0)["t"] == 1000);
    CHECK(point(series, 0)["requests"] == 5);
    CHECK(point(series, 0)["client_errors"] == 1);
    CHECK(point(series, 0)["refusals"] == 2);
    CHECK(point(series, 0)["errors"] == 2);
}

TEST_CASE("traffic ring: a point of several seconds sums them, oldest point first", "[traffic]") {
    TrafficRing ring(60);
    for (int64_t s = 991; s <= 1000; ++s)
        ring.record_request(s, 200, 1.0);
    ring.record_tokens(1000, 7, 11);
    ring.record_tokens(996, 3, -1); // output unknown: not counted
    const auto series = ring.series(1000, 10, 5);
    REQUIRE(series["points"].size() == 2);
    CHECK(series["step_seconds"] == 5);
    CHECK(point(series, 0)["t"] == 995);
    CHECK(point(series, 1)["t"] == 1000);
    CHECK(point(series, 0)["requests"] == 5);
    CHECK(point(series, 1)["requests"] == 5);
    CHECK(point(series, 1)["per_second"] == 1.0);
    CHECK(point(series, 1)["input_tokens"] == 10);
    CHECK(point(series, 1)["output_tokens"] == 11);
    CHECK(point(series, 0)["input_tokens"] == 0);
}

TEST_CASE("traffic ring: p50 and p99 come from the latency buckets, never below the truth", "[traffic]") {
    TrafficRing ring(60);
    for (int i = 0; i < 98; ++i)
        ring.record_request(500, 200, 2.0);
    ring.record_request(500, 200, 400.0);
    ring.record_request(500, 200, 400.0);
    const auto p = point(ring.series(500, 1, 1), 0);
    const double p50 = p["p50_ms"], p99 = p["p99_ms"];
    CHECK(p50 >= 2.0);
    CHECK(p50 < 2.0 * 1.35);
    CHECK(p99 >= 400.0);
    CHECK(p99 < 400.0 * 1.35);
    CHECK(point(ring.series(501, 1, 1), 0)["p50_ms"] == 0); // an empty second
}

TEST_CASE("traffic ring: seconds the ring wrapped past are empty, the range is capped at its size",
          "[traffic]") {
    TrafficRing ring(10);
    ring.record_request(100, 200, 1.0);
    ring.record_request(110, 200, 1.0); // same slot, ten seconds later: 100 is gone
    CHECK(point(ring.series(100, 1, 1), 0)["requests"] == 0);
    CHECK(point(ring.series(110, 1, 1), 0)["requests"] == 1);
    const auto all = ring.series(110, 3600, 1);
    CHECK(all["points"].size() == 10);
}
