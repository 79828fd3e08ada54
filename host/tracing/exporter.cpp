#include "tracing/exporter.hpp"

#include "metrics/registry.hpp"

#include <future>
#include <spdlog/spdlog.h>

namespace swh::tracing {

namespace {

std::string traces_url(std::string endpoint) {
    while (!endpoint.empty() && endpoint.back() == '/')
        endpoint.pop_back();
    return endpoint + "/v1/traces";
}

} // namespace

BatchExporter::BatchExporter(ExporterSettings settings, HttpClient &http)
    : settings_(std::move(settings)), url_(traces_url(settings_.endpoint)), http_(http),
      thread_([this] { run(); }) {}

BatchExporter::~BatchExporter() {
    {
        std::lock_guard lock(mutex_);
        stopping_ = true;
    }
    wake_.notify_all();
    thread_.join();
}

void BatchExporter::submit(SpanRecord span) {
    bool batch_ready = false;
    {
        std::lock_guard lock(mutex_);
        if (queue_.size() >= settings_.queue) {
            dropped_full_.fetch_add(1, std::memory_order_relaxed);
            return;
        }
        queue_.push_back(std::move(span));
        batch_ready = queue_.size() == settings_.batch;
    }
    if (batch_ready) wake_.notify_one();
}

void BatchExporter::run() {
    std::unique_lock lock(mutex_);
    for (;;) {
        // A full batch goes at once; a partial one after the flush interval.
        wake_.wait_for(lock, settings_.flush,
                       [this] { return stopping_ || queue_.size() >= settings_.batch; });
        if (queue_.empty()) {
            if (stopping_) return;
            continue;
        }
        const std::size_t n = std::min(queue_.size(), settings_.batch);
        std::vector<SpanRecord> batch(
            std::make_move_iterator(queue_.begin()),
            std::make_move_iterator(queue_.begin() + static_cast<std::ptrdiff_t>(n)));
        queue_.erase(queue_.begin(), queue_.begin() + static_cast<std::ptrdiff_t>(n));
        lock.unlock();
        const bool sent = send(std::move(batch));
        lock.lock();
        // Stopping behind a collector that fails: drop the rest rather
        // than make the daemon's exit wait a timeout per batch.
        if (!sent && stopping_) {
            dropped_failed_.fetch_add(queue_.size(), std::memory_order_relaxed);
            queue_.clear();
        }
    }
}

// One export request, waited for on this thread (never on a request's).
// No retry: a failed batch is counted and dropped, so a collector that is
// down costs a bounded amount of work per flush interval.
bool BatchExporter::send(std::vector<SpanRecord> batch) {
    HttpRequest request;
    request.method = "POST";
    request.url = url_;
    request.headers = settings_.headers;
    request.headers.emplace_back("Content-Type", "application/json");
    request.body = encode_export_request(settings_.resource, batch);
    request.timeout_ms = static_cast<uint32_t>(settings_.timeout.count());
    request.connect_timeout_ms = request.timeout_ms;
    auto status = std::make_shared<std::atomic<int>>(0);
    auto body = std::make_shared<std::string>();
    auto outcome = std::make_shared<std::promise<std::string>>(); // "" = the transfer completed
    auto finished = outcome->get_future();
    HttpCallbacks callbacks;
    callbacks.on_response = [status](int code, const auto &) { status->store(code); };
    callbacks.on_body = [body](std::string_view chunk) {
        if (body->size() < 4096) body->append(chunk.substr(0, 4096 - body->size()));
        return true;
    };
    callbacks.on_done = [outcome](swh_status result, std::string error) {
        outcome->set_value(result == SWH_OK ? std::string() : error.empty() ? "transfer failed" : error);
    };
    std::string error;
    try {
        const uint64_t id = http_.start(std::move(request), std::move(callbacks));
        // The client's own timeout ends the transfer; this wait is a backstop.
        if (finished.wait_for(settings_.timeout + std::chrono::seconds(5)) != std::future_status::ready) {
            http_.cancel(id);
            finished.wait(); // cancel always ends in on_done
        }
        error = finished.get();
    } catch (const std::exception &e) {
        error = e.what();
    }
    const int code = status->load();
    if (error.empty() && code >= 200 && code < 300) {
        exported_.fetch_add(batch.size(), std::memory_order_relaxed);
        return true;
    }
    const uint64_t failures = failures_.fetch_add(1, std::memory_order_relaxed) + 1;
    dropped_failed_.fetch_add(batch.size(), std::memory_order_relaxed);
    // A collector that is down fails every flush: the first failure and
    // every hundredth are logged; /metrics counts them all.
    if (failures == 1 || failures % 100 == 0)
        spdlog::warn("tracing: export of {} spans to {} failed ({} failures so far): {}", batch.size(), url_,
                     failures, error.empty() ? "HTTP " + std::to_string(code) + " " + *body : error);
    return false;
}

BatchExporter::Stats BatchExporter::stats() const {
    Stats s;
    s.exported = exported_.load();
    s.dropped_full = dropped_full_.load();
    s.dropped_failed = dropped_failed_.load();
    s.export_failures = failures_.load();
    std::lock_guard lock(mutex_);
    s.queued = queue_.size();
    return s;
}

std::string BatchExporter::metrics() const {
    const Stats s = stats();
    return prometheus_series("swarmhost_trace_spans_exported_total", "counter", {{"", s.exported}}) +
           prometheus_series("swarmhost_trace_spans_dropped_total", "counter",
                             {{"{reason=\"queue_full\"}", s.dropped_full},
                              {"{reason=\"export_failed\"}", s.dropped_failed}}) +
           prometheus_series("swarmhost_trace_export_failures_total", "counter", {{"", s.export_failures}}) +
           prometheus_series("swarmhost_trace_spans_queued", "gauge", {{"", s.queued}});
}

} // namespace swh::tracing
