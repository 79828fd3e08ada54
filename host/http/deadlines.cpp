#include "http/deadlines.hpp"

#include "http/anthropic_messages.hpp"
#include "http/api.hpp"
#include "http/openai_responses.hpp"

#include <charconv>

namespace swh::http {

std::string_view deadline_door(RouteId route) {
    switch (route) {
    case RouteId::ChatCompletions:
        return "chat_completions";
    case RouteId::AnthropicMessages:
        return "messages";
    case RouteId::ResponsesCreate:
    case RouteId::ResponseGet:
    case RouteId::ResponseDelete:
    case RouteId::ResponseInputItems:
        return "responses";
    case RouteId::ConversationsCreate:
    case RouteId::ConversationGet:
    case RouteId::ConversationUpdate:
    case RouteId::ConversationDelete:
    case RouteId::ConversationItemsList:
    case RouteId::ConversationItemsCreate:
    case RouteId::ConversationItemGet:
    case RouteId::ConversationItemDelete:
        return "conversations";
    case RouteId::SessionEvents:
        return "";
    case RouteId::SessionsCreate:
    case RouteId::SessionsList:
    case RouteId::SessionGet:
    case RouteId::SessionPatch:
    case RouteId::SessionDelete:
    case RouteId::SessionArchive:
    case RouteId::SessionBudget:
    case RouteId::MessagesList:
    case RouteId::MessagesSend:
        return "sessions";
    default:
        return "other";
    }
}

DeadlineLimits deadline_limits(const Request &request, std::string_view door) {
    DeadlineLimits limits = request.deadlines ? request.deadlines->for_door(door) : DeadlineLimits{};
    const std::string &text = request.timeout_header;
    if (text.empty()) return limits;
    int64_t ms = 0;
    const auto [end, problem] = std::from_chars(text.data(), text.data() + text.size(), ms);
    if (problem != std::errc() || end != text.data() + text.size() || ms <= 0)
        throw ApiError(ErrorKind::InvalidRequest,
                       "header X-Swarmhost-Timeout-Ms must be a positive number of milliseconds");
    const std::chrono::milliseconds asked(ms);
    // Shorter only: a client cannot lift the operator's limit (0 = none).
    if (limits.request.count() == 0 || asked < limits.request) {
        limits.request = asked;
        limits.request_by_client = true;
    }
    if (limits.stream.count() == 0 || asked < limits.stream) {
        limits.stream = asked;
        limits.stream_by_client = true;
    }
    return limits;
}

ApiError deadline_error(const DeadlinePassed &passed) {
    return ApiError(ErrorKind::Timeout, passed.message());
}

void respond_deadline_error(std::string_view door, Exchange &exchange, const ApiError &error) {
    if (door == "messages") return anthropic::respond_anthropic_error(exchange, error);
    if (door == "responses" || door == "conversations") return openai::respond_openai_error(exchange, error);
    respond_error(exchange, error);
}

namespace {

class DeadlineObserver : public SendObserver {
  public:
    DeadlineObserver(std::shared_ptr<SendObserver> inner, std::shared_ptr<Exchange> exchange)
        : inner_(std::move(inner)), exchange_(std::move(exchange)) {}
    void on_user_stored(const Message &user) override { inner_->on_user_stored(user); }
    bool on_chunk(std::string_view text) override {
        return exchange_->upstream_activity() && inner_->on_chunk(text);
    }
    bool on_reply_event(const ReplyEvent &event) override {
        return exchange_->upstream_activity() && inner_->on_reply_event(event);
    }
    void on_complete(const Message &user, const Message &assistant, double overhead_ms) override {
        // A reply that was being stored when the deadline passed: the client
        // has been told it timed out (docs/reliability.md, "Deadlines").
        if (const auto passed = exchange_->deadline_passed())
            return inner_->on_error(deadline_error(*passed));
        inner_->on_complete(user, assistant, overhead_ms);
    }
    void on_error(const ApiError &error) override {
        if (const auto passed = exchange_->deadline_passed())
            return inner_->on_error(deadline_error(*passed));
        inner_->on_error(error);
    }

  private:
    std::shared_ptr<SendObserver> inner_;
    std::shared_ptr<Exchange> exchange_;
};

} // namespace

std::shared_ptr<SendObserver> under_deadline(std::shared_ptr<SendObserver> door_observer,
                                             std::shared_ptr<Exchange> exchange) {
    return std::make_shared<DeadlineObserver>(std::move(door_observer), std::move(exchange));
}

} // namespace swh::http
