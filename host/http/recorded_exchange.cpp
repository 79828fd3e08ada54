#include "http/recorded_exchange.hpp"

#include "util/clock.hpp"

namespace swh::http {

void RecordedExchange::record(int status) {
    if (recorded_.exchange(true)) return;
    const int64_t now = now_us();
    traffic_.record_request(now / 1'000'000, status, static_cast<double>(now - received_at_us()) / 1000.0);
}

void RecordedExchange::respond(int status, std::string content_type, std::string body,
                               std::vector<std::pair<std::string, std::string>> extra_headers) {
    record(status);
    inner_->respond(status, std::move(content_type), std::move(body), std::move(extra_headers));
}

void RecordedExchange::start_stream() {
    record(200);
    inner_->start_stream();
}

bool RecordedExchange::send_event(std::string_view event, std::string_view data, std::string_view id) {
    // A stream's last `error` event: the reply failed after it began (a
    // stream guardrail's refusal carries the code `rejected`).
    if (event == "error")
        traffic_.record_stream_failure(now_us() / 1'000'000,
                                       data.find("\"code\":\"rejected\"") != std::string_view::npos);
    return inner_->send_event(event, data, id);
}

} // namespace swh::http
