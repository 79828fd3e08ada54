#include "http/completion_reply.hpp"

#include "http/deadlines.hpp"

#include <charconv>
#include <spdlog/spdlog.h>

namespace swh::http {

std::string format_ms(double ms) {
    // to_chars rounds the exact binary value as printf's %.3f does, without
    // printf's format parsing and locale (a tenth of the reply's cost).
    char text[64];
    const auto written = std::to_chars(text, text + sizeof text, ms, std::chars_format::fixed, 3);
    if (written.ec != std::errc()) return "0.000"; // beyond 10^60 ms: not a duration
    return std::string(text, written.ptr);
}

void run_completion(SessionManager &sessions, const PostBlocking &post, CompletionParams params,
                    std::shared_ptr<SendObserver> observer, std::shared_ptr<Exchange> exchange) {
    params.received_at_us = exchange->received_at_us();
    observer = under_deadline(std::move(observer), exchange);
    std::shared_ptr<Pipeline> pin = sessions.pipeline();
    const bool inline_run = params.session_id.empty() && pin->stateless_inline;
    if (inline_run) {
        params.pipeline = std::move(pin);
        params.finish_on = [exchange](std::function<void()> work) { exchange->dispatch(std::move(work)); };
    }
    auto run = [&sessions, params = std::move(params), observer, exchange]() mutable {
        // Its deadline passed while it waited for a worker: not started, nothing stored.
        if (exchange->deadline_passed()) return;
        try {
            exchange->on_client_gone(sessions.complete(std::move(params), observer));
        } catch (const ApiError &e) {
            observer->on_error(e);
        } catch (const std::exception &e) {
            spdlog::error("completion failed: {}", e.what());
            observer->on_error(ApiError(ErrorKind::Internal, "internal error"));
        }
    };
    // Nothing on a stateless exchange's way may block (Pipeline::stateless_inline):
    // it starts on this thread instead of waiting for a worker.
    if (inline_run)
        run();
    else
        post(std::move(run));
}

} // namespace swh::http
