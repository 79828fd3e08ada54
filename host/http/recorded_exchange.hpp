// An Exchange that tells the traffic ring (metrics/traffic.hpp) how its
// request ended: the status and the time to the first byte, and whether a
// stream that began failed. Every other call goes to the exchange it wraps.
#pragma once

#include "http/server.hpp"
#include "metrics/traffic.hpp"

#include <atomic>

namespace swh::http {

class RecordedExchange : public Exchange {
  public:
    RecordedExchange(std::shared_ptr<Exchange> inner, TrafficRing &traffic)
        : inner_(std::move(inner)), traffic_(traffic) {}

    void respond(int status, std::string content_type, std::string body,
                 std::vector<std::pair<std::string, std::string>> extra_headers = {}) override;
    void start_stream() override;
    bool send_event(std::string_view event, std::string_view data, std::string_view id = {}) override;
    void end_stream() override { inner_->end_stream(); }
    bool client_gone() const override { return inner_->client_gone(); }
    void on_client_gone(std::function<void()> callback) override {
        inner_->on_client_gone(std::move(callback));
    }
    using Exchange::keep_alive;
    void keep_alive(std::chrono::milliseconds interval, std::string_view event,
                    std::string_view data) override {
        inner_->keep_alive(interval, event, data);
    }
    void dispatch(std::function<void()> work) override { inner_->dispatch(std::move(work)); }
    int64_t received_at_us() const override { return inner_->received_at_us(); }
    void set_deadline(DeadlineLimits limits, std::function<void(const DeadlinePassed &)> passed) override {
        inner_->set_deadline(limits, std::move(passed));
    }
    std::optional<DeadlinePassed> deadline_passed() const override { return inner_->deadline_passed(); }
    bool upstream_activity() override { return inner_->upstream_activity(); }

  private:
    // Once per request: the first respond or start_stream is the answer.
    void record(int status);

    std::shared_ptr<Exchange> inner_;
    TrafficRing &traffic_;
    std::atomic<bool> recorded_{false};
};

} // namespace swh::http
