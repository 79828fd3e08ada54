#include "http/openai_compat.hpp"

#include "http/api.hpp"
#include "http/json_codec.hpp"
#include "util/clock.hpp"
#include "util/ids.hpp"

#include <spdlog/spdlog.h>

namespace swh::http::openai {

namespace {

constexpr const char *kJson = "application/json";

Json usage_of(const Message &assistant) {
    const Json &meta = assistant.provider_metadata;
    Json usage = meta.contains("usage") && meta["usage"].is_object() ? meta["usage"] : Json::object();
    const int64_t prompt = usage.value("prompt_tokens", usage.value("input_tokens", 0));
    const int64_t completion = usage.value("completion_tokens", usage.value("output_tokens", 0));
    return {
        {"prompt_tokens", prompt}, {"completion_tokens", completion}, {"total_tokens", prompt + completion}};
}

std::string finish_reason_of(const Message &assistant) {
    const Json &meta = assistant.provider_metadata;
    return meta.contains("finish_reason") && meta["finish_reason"].is_string()
               ? meta["finish_reason"].get<std::string>()
               : "stop";
}

// Shared identity of one completion across its chunks.
struct Identity {
    std::string id = "chatcmpl-" + new_uuid();
    int64_t created = now_us() / 1'000'000;
    std::string model;
};

class WholeCompletion : public SendObserver {
  public:
    WholeCompletion(std::shared_ptr<Exchange> exchange, Identity identity)
        : exchange_(std::move(exchange)), identity_(std::move(identity)) {}
    void on_user_stored(const Message &) override {}
    bool on_chunk(std::string_view) override { return !exchange_->client_gone(); }
    void on_complete(const Message &, const Message &assistant, double overhead_ms) override {
        const Json body = {
            {"id", identity_.id},
            {"object", "chat.completion"},
            {"created", identity_.created},
            {"model", identity_.model},
            {"choices", Json::array({{{"index", 0},
                                      {"message", {{"role", "assistant"}, {"content", assistant.content}}},
                                      {"logprobs", nullptr},
                                      {"finish_reason", finish_reason_of(assistant)}}})},
            {"usage", usage_of(assistant)}};
        char overhead[32];
        std::snprintf(overhead, sizeof overhead, "%.3f", overhead_ms);
        exchange_->respond(200, kJson, dump_json(body), {{"X-Swarmhost-Overhead-Ms", overhead}});
    }
    void on_error(const ApiError &error) override { respond_error(*exchange_, error); }

  private:
    std::shared_ptr<Exchange> exchange_;
    Identity identity_;
};

class StreamedCompletion : public SendObserver {
  public:
    // `stream_slot`: the caller's key's stream slot, held while the reply streams.
    StreamedCompletion(std::shared_ptr<Exchange> exchange, Identity identity,
                       std::chrono::milliseconds keepalive, std::shared_ptr<void> stream_slot)
        : exchange_(std::move(exchange)), identity_(std::move(identity)), keepalive_(keepalive),
          stream_slot_(std::move(stream_slot)) {}
    void on_user_stored(const Message &) override {
        exchange_->start_stream();
        exchange_->keep_alive(keepalive_);
        started_ = true;
        send({{"role", "assistant"}, {"content", ""}}, nullptr);
    }
    bool on_chunk(std::string_view text) override { return send({{"content", text}}, nullptr); }
    void on_complete(const Message &, const Message &assistant, double overhead_ms) override {
        Json last = chunk(Json::object(), finish_reason_of(assistant));
        last["usage"] = usage_of(assistant);
        last["swarmhost"] = {{"gateway_overhead_ms", overhead_ms}};
        exchange_->send_event("", dump_json(last));
        exchange_->send_event("", "[DONE]");
        exchange_->end_stream();
    }
    void on_error(const ApiError &error) override {
        if (!started_) return respond_error(*exchange_, error);
        // OpenAI streams report a failure as a data line with an error object.
        exchange_->send_event("", error_body(error.kind(), error.what()));
        exchange_->end_stream();
    }

  private:
    Json chunk(const Json &delta, const Json &finish_reason) const {
        return {{"id", identity_.id},
                {"object", "chat.completion.chunk"},
                {"created", identity_.created},
                {"model", identity_.model},
                {"choices", Json::array({{{"index", 0},
                                          {"delta", delta},
                                          {"logprobs", nullptr},
                                          {"finish_reason", finish_reason}}})}};
    }
    bool send(const Json &delta, const Json &finish_reason) {
        return exchange_->send_event("", dump_json(chunk(delta, finish_reason)));
    }
    std::shared_ptr<Exchange> exchange_;
    Identity identity_;
    std::chrono::milliseconds keepalive_;
    std::shared_ptr<void> stream_slot_;
    bool started_ = false;
};

} // namespace

std::pair<std::string, std::string> route_model(const Pipeline &pipeline, const std::string &model) {
    if (pipeline.provider(model)) return {model, ""};
    if (const auto slash = model.find('/');
        slash != std::string::npos && pipeline.provider(model.substr(0, slash)))
        return {model.substr(0, slash), model.substr(slash + 1)};
    return {pipeline.default_provider, model};
}

Json models(const Pipeline &pipeline) {
    Json data = Json::array();
    for (const auto &[name, provider] : pipeline.providers)
        data.push_back({{"id", name},
                        {"object", "model"},
                        {"created", 0},
                        {"owned_by", "swarmhost:" + provider->library().name()}});
    for (const auto &[group, members] : pipeline.groups)
        data.push_back({{"id", group}, {"object", "model"}, {"created", 0}, {"owned_by", "swarmhost:group"}});
    return {{"object", "list"}, {"data", std::move(data)}};
}

void chat_completions(const Request &request, std::shared_ptr<Exchange> exchange, SessionManager &sessions,
                      const PostBlocking &post_blocking, std::chrono::milliseconds keepalive,
                      const CompletionCaller &caller) {
    auto params = decode_completion(parse_body(request.body), request.session_header);
    Identity identity;
    identity.model = params.model; // what the client asked for, echoed as OpenAI does
    std::tie(params.provider, params.model) = route_model(*sessions.pipeline(), params.model);
    params.access = caller.access;
    std::shared_ptr<SendObserver> observer;
    if (params.stream)
        observer = std::make_shared<StreamedCompletion>(exchange, identity, keepalive,
                                                        caller.stream_slot ? caller.stream_slot() : nullptr);
    else
        observer = std::make_shared<WholeCompletion>(exchange, identity);
    post_blocking([&sessions, params = std::move(params), observer, exchange]() mutable {
        try {
            exchange->on_client_gone(sessions.complete(std::move(params), observer));
        } catch (const ApiError &e) {
            observer->on_error(e);
        } catch (const std::exception &e) {
            spdlog::error("chat completion failed: {}", e.what());
            observer->on_error(ApiError(ErrorKind::Internal, "internal error"));
        }
    });
}

} // namespace swh::http::openai
