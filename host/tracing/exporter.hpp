// The batch span exporter: finished spans wait in a bounded queue and one
// thread of its own sends them in batches with OTLP/HTTP (JSON encoding,
// POST {endpoint}/v1/traces) through the host's HTTP client. A request only
// ever appends to the queue under a short lock: a full queue drops the span
// (counted), a slow or dead collector delays nothing but this thread.
#pragma once

#include "tracing/otlp_json.hpp"
#include "tracing/span.hpp"
#include "upstream/http_client.hpp"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace swh::tracing {

struct ExporterSettings {
    std::string endpoint; // "http://127.0.0.1:4318": the collector's base address
    Resource resource;
    std::size_t batch = 512;                                  // spans per export request at most
    std::size_t queue = 4096;                                 // spans waiting at most; more are dropped
    std::chrono::milliseconds flush{1000};                    // a partial batch waits at most this long
    std::chrono::milliseconds timeout{10000};                 // one export request
    std::vector<std::pair<std::string, std::string>> headers; // e.g. an auth header of the collector
};

class BatchExporter : public SpanSink {
  public:
    // `http` outlives the exporter.
    BatchExporter(ExporterSettings settings, HttpClient &http);
    // Sends what is queued (until an export fails: the rest is dropped), then joins.
    ~BatchExporter() override;
    BatchExporter(const BatchExporter &) = delete;
    BatchExporter &operator=(const BatchExporter &) = delete;

    void submit(SpanRecord span) override;

    struct Stats {
        uint64_t exported = 0;        // spans the collector accepted
        uint64_t dropped_full = 0;    // spans dropped because the queue was full
        uint64_t dropped_failed = 0;  // spans of export requests that failed
        uint64_t export_failures = 0; // export requests that failed
        uint64_t queued = 0;          // spans waiting now
    };
    Stats stats() const;
    // The Prometheus series of stats() for GET /metrics.
    std::string metrics() const;

  private:
    void run();
    bool send(std::vector<SpanRecord> batch); // false = failed (counted)

    const ExporterSettings settings_;
    const std::string url_;
    HttpClient &http_;
    mutable std::mutex mutex_;
    std::condition_variable wake_;
    std::deque<SpanRecord> queue_;
    bool stopping_ = false;
    std::atomic<uint64_t> exported_{0}, dropped_full_{0}, dropped_failed_{0}, failures_{0};
    std::thread thread_; // last: starts once everything above exists
};

} // namespace swh::tracing
