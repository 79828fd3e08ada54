#include "http/anthropic_messages.hpp"

#include "http/anthropic_messages_request.hpp"
#include "http/api.hpp"
#include "http/completion_reply.hpp"
#include "http/json_codec.hpp"
#include "util/ids.hpp"

#include <algorithm>
#include <map>
#include <set>

namespace swh::http::anthropic {

namespace {

constexpr const char *kJson = "application/json";

// Anthropic's error types by the host's error kinds; the status stays the
// kind's (docs/http-api.md has both columns).
const char *error_type(ErrorKind kind) {
    switch (kind) {
    case ErrorKind::Unauthorized:
        return "authentication_error";
    case ErrorKind::Forbidden:
        return "permission_error";
    case ErrorKind::NotFound:
        return "not_found_error";
    case ErrorKind::Conflict:
        return "conflict_error";
    case ErrorKind::RateLimited:
        return "rate_limit_error";
    case ErrorKind::BudgetExceeded:
        return "budget_exceeded";
    case ErrorKind::Unavailable:
        return "overloaded_error";
    case ErrorKind::Timeout:
        return "timeout_error";
    case ErrorKind::Upstream:
    case ErrorKind::Internal:
        return "api_error";
    default:
        return "invalid_request_error";
    }
}

Json error_json_of(ErrorKind kind, const std::string &message) {
    return {{"type", "error"}, {"error", {{"type", error_type(kind)}, {"message", message}}}};
}

// What a message's model ended on, in Anthropic's words. An Anthropic
// provider's own stop_reason (provider metadata) is kept when it says more
// than the neutral finish reason can (stop_sequence, pause_turn, ...).
std::string stop_reason_of(const Message &assistant) {
    static const std::set<std::string> anthropic_words = {"end_turn",
                                                          "max_tokens",
                                                          "stop_sequence",
                                                          "tool_use",
                                                          "pause_turn",
                                                          "refusal",
                                                          "model_context_window_exceeded"};
    static const std::map<std::string, std::string> neutral_words = {{"stop", "end_turn"},
                                                                     {"length", "max_tokens"},
                                                                     {"tool_calls", "tool_use"},
                                                                     {"content_filter", "refusal"}};
    const std::string neutral = openai::finish_reason_of(assistant); // the neutral words
    const auto vendor = assistant.provider_metadata.find("stop_reason");
    if (vendor != assistant.provider_metadata.end() && vendor->is_string() &&
        anthropic_words.count(*vendor) && (neutral != "tool_calls" || *vendor == "tool_use"))
        return *vendor;
    const auto word = neutral_words.find(neutral);
    return word == neutral_words.end() ? "end_turn" : word->second;
}

// The stop sequence that ended the reply, when the provider reported it.
Json stop_sequence_of(const Message &assistant) {
    const auto it = assistant.provider_metadata.find("stop_sequence");
    return it != assistant.provider_metadata.end() && it->is_string() ? *it : Json();
}

// Anthropic's usage object; the members the door has no counts for are null.
Json usage_object(int64_t input, int64_t output, int64_t cache_written, int64_t cache_read) {
    return {{"input_tokens", input},
            {"output_tokens", output},
            {"cache_creation_input_tokens", cache_written},
            {"cache_read_input_tokens", cache_read},
            {"cache_creation", nullptr},
            {"server_tool_use", nullptr},
            {"output_tokens_details", nullptr},
            {"service_tier", nullptr},
            {"inference_geo", nullptr},
            {"speed", nullptr}};
}

// Anthropic's usage of a reply: its input_tokens leaves out what was read
// from or written to the prompt cache (the neutral input count is all of the
// prompt; what was written is known from an Anthropic provider's metadata).
Json usage_json(const Message &assistant) {
    const openai::TokenCounts usage = openai::token_counts(assistant);
    int64_t written = 0;
    if (const auto it = assistant.provider_metadata.find("usage");
        it != assistant.provider_metadata.end() && it->is_object()) {
        const auto count = it->find("cache_creation_input_tokens");
        if (count != it->end() && count->is_number_integer()) written = count->get<int64_t>();
    }
    return usage_object(std::max<int64_t>(0, usage.input - usage.cached - written), usage.output, written,
                        usage.cached);
}

// A tool call's arguments as the block's `input`: the model's JSON when it
// parses (an object, as Anthropic's models write), else the text itself as
// a JSON string, so nothing the model wrote is dropped.
Json input_of(const std::string &arguments) {
    if (arguments.empty()) return Json::object();
    Json parsed = Json::parse(arguments, nullptr, false);
    return parsed.is_discarded() ? Json(arguments) : parsed;
}

Json text_block(const std::string &text) {
    return {{"type", "text"}, {"text", text}, {"citations", nullptr}};
}

Json tool_use_block(const std::string &id, const std::string &name, Json input) {
    return {{"type", "tool_use"},
            {"id", id},
            {"name", name},
            {"input", std::move(input)},
            {"caller", {{"type", "direct"}}}};
}

Json thinking_block(const std::string &thinking, const std::string &signature) {
    return {{"type", "thinking"}, {"thinking", thinking}, {"signature", signature}};
}

// Thinking first, as Anthropic orders it; the text (also when empty and
// nothing else was said); then the tool calls.
Json content_of(const Message &assistant) {
    Json content = Json::array();
    const Json &structured = assistant.structured;
    if (structured.contains("reasoning") || structured.contains("reasoning_signature"))
        content.push_back(
            thinking_block(structured.value("reasoning", ""), structured.value("reasoning_signature", "")));
    const bool calls = has_tool_calls(assistant);
    if (!assistant.content.empty() || !calls) content.push_back(text_block(assistant.content));
    if (calls)
        for (const Json &call : structured["tool_calls"])
            content.push_back(tool_use_block(call.value("id", ""), call.value("name", ""),
                                             input_of(call.value("arguments", ""))));
    return content;
}

// Shared identity of one message across its events.
struct Identity {
    std::string id = "msg_" + new_uuid();
    std::string model; // as the client asked for it, echoed as Anthropic does
};

Json message_json(const Identity &identity, Json content, Json stop_reason, Json stop_sequence, Json usage) {
    return {{"id", identity.id},
            {"type", "message"},
            {"role", "assistant"},
            {"model", identity.model},
            {"content", std::move(content)},
            {"stop_reason", std::move(stop_reason)},
            {"stop_sequence", std::move(stop_sequence)},
            {"stop_details", nullptr},
            {"container", nullptr},
            {"diagnostics", nullptr},
            {"usage", std::move(usage)}};
}

class WholeMessage : public SendObserver {
  public:
    WholeMessage(std::shared_ptr<Exchange> exchange, Identity identity)
        : exchange_(std::move(exchange)), identity_(std::move(identity)) {}
    void on_user_stored(const Message &) override {}
    bool on_chunk(std::string_view) override { return !exchange_->client_gone(); }
    bool on_reply_event(const ReplyEvent &) override { return !exchange_->client_gone(); }
    void on_complete(const Message &, const Message &assistant, double overhead_ms) override {
        const Json body = message_json(identity_, content_of(assistant), stop_reason_of(assistant),
                                       stop_sequence_of(assistant), usage_json(assistant));
        exchange_->respond(200, kJson, dump_json(body),
                           {{"X-Swarmhost-Overhead-Ms", format_ms(overhead_ms)}});
    }
    void on_error(const ApiError &error) override { respond_anthropic_error(*exchange_, error); }

  private:
    std::shared_ptr<Exchange> exchange_;
    Identity identity_;
};

// Anthropic's event stream: message_start (no content yet), then per content
// block content_block_start / content_block_delta... / content_block_stop
// (text_delta, input_json_delta, thinking_delta and signature_delta), then
// message_delta (stop reason, usage) and message_stop; `ping` as keep-alive.
// The neutral reply interleaves text, thinking and tool-call pieces; each
// change of kind closes the open block and opens the next.
class StreamedMessage : public SendObserver {
  public:
    // `stream_slot`: the caller's key's stream slot, held while the reply streams.
    StreamedMessage(std::shared_ptr<Exchange> exchange, Identity identity,
                    std::chrono::milliseconds keepalive, std::shared_ptr<void> stream_slot)
        : exchange_(std::move(exchange)), identity_(std::move(identity)), keepalive_(keepalive),
          stream_slot_(std::move(stream_slot)) {}
    void on_user_stored(const Message &) override {
        exchange_->start_stream();
        exchange_->keep_alive(keepalive_, "ping", kPing);
        started_ = true;
        // Token counts are known at the end: message_delta carries them all.
        const Json start = {
            {"type", "message_start"},
            {"message", message_json(identity_, Json::array(), nullptr, nullptr, usage_object(0, 0, 0, 0))}};
        if (send("message_start", start)) exchange_->send_event("ping", kPing); // as Anthropic sends one
    }
    bool on_chunk(std::string_view text) override {
        if (text.empty()) return !exchange_->client_gone();
        if (open_ != Block::Text && !open(Block::Text, text_block(""))) return false;
        return delta({{"type", "text_delta"}, {"text", text}});
    }
    bool on_reply_event(const ReplyEvent &event) override {
        switch (event.type) {
        case ReplyEvent::Type::ToolCall:
            return tool_call(event);
        case ReplyEvent::Type::Reasoning:
            if (open_ != Block::Thinking && !open(Block::Thinking, thinking_block("", ""))) return false;
            return event.text.empty() || delta({{"type", "thinking_delta"}, {"thinking", event.text}});
        case ReplyEvent::Type::ReasoningSignature:
            return signature(event.text);
        default: // finish reason and usage go out from the stored reply, at the end
            return !exchange_->client_gone();
        }
    }
    void on_complete(const Message &, const Message &assistant, double overhead_ms) override {
        // A reply with nothing in it still has its (empty) text block, as
        // the non-streamed message does.
        if (next_index_ == 0) open(Block::Text, text_block(""));
        close();
        Json usage = usage_json(assistant);
        for (const char *unused : {"cache_creation", "service_tier", "inference_geo", "speed"})
            usage.erase(unused); // not members of message_delta's usage
        const Json message_delta = {{"type", "message_delta"},
                                    {"delta",
                                     {{"stop_reason", stop_reason_of(assistant)},
                                      {"stop_sequence", stop_sequence_of(assistant)},
                                      {"stop_details", nullptr},
                                      {"container", nullptr}}},
                                    {"usage", std::move(usage)},
                                    // The daemon's own time (a swarmhost extension; clients ignore it).
                                    {"swarmhost", {{"gateway_overhead_ms", overhead_ms}}}};
        send("message_delta", message_delta);
        send("message_stop", {{"type", "message_stop"}});
        exchange_->end_stream();
    }
    void on_error(const ApiError &error) override {
        if (!started_) return respond_anthropic_error(*exchange_, error);
        // After the stream began: Anthropic's `error` event, then the end.
        exchange_->send_event("error", anthropic_error_body(error.kind(), error.what()));
        exchange_->end_stream();
    }

  private:
    enum class Block { None, Text, Thinking, ToolUse };
    static constexpr const char *kPing = R"({"type":"ping"})";

    bool send(const char *event, const Json &data) { return exchange_->send_event(event, dump_json(data)); }
    bool delta(const Json &piece, int index = -1) {
        return send(
            "content_block_delta",
            {{"type", "content_block_delta"}, {"index", index < 0 ? open_index_ : index}, {"delta", piece}});
    }
    bool open(Block kind, Json content_block) {
        if (!close()) return false;
        open_ = kind;
        open_index_ = next_index_++;
        if (kind == Block::Thinking) thinking_index_ = open_index_;
        return send("content_block_start", {{"type", "content_block_start"},
                                            {"index", open_index_},
                                            {"content_block", std::move(content_block)}});
    }
    // A thinking block's signature goes out whole before the block stops
    // (the client keeps the last signature_delta, so pieces are joined here).
    bool close() {
        if (open_ == Block::None) return true;
        if (open_ == Block::Thinking && !signature_.empty()) {
            if (!delta({{"type", "signature_delta"}, {"signature", signature_}})) return false;
            signature_.clear();
        }
        open_ = Block::None;
        return send("content_block_stop", {{"type", "content_block_stop"}, {"index", open_index_}});
    }
    bool signature(const std::string &piece) {
        if (open_ == Block::Thinking || thinking_index_ < 0) {
            if (open_ != Block::Thinking && !open(Block::Thinking, thinking_block("", ""))) return false;
            signature_ += piece;
            return !exchange_->client_gone();
        }
        // The thinking block already ended: its signature joins it late.
        sent_signature_ += piece;
        return delta({{"type", "signature_delta"}, {"signature", sent_signature_}}, thinking_index_);
    }
    // A call's first piece opens its tool_use block (id and name, input {});
    // argument fragments follow as input_json_delta on that block.
    bool tool_call(const ReplyEvent &event) {
        auto block = call_blocks_.find(event.index);
        if (block == call_blocks_.end()) {
            if (!open(Block::ToolUse, tool_use_block(event.id, event.name, Json::object()))) return false;
            block = call_blocks_.emplace(event.index, open_index_).first;
        }
        if (event.text.empty()) return !exchange_->client_gone();
        return delta({{"type", "input_json_delta"}, {"partial_json", event.text}}, block->second);
    }

    std::shared_ptr<Exchange> exchange_;
    Identity identity_;
    std::chrono::milliseconds keepalive_;
    std::shared_ptr<void> stream_slot_;
    bool started_ = false;
    Block open_ = Block::None;
    int open_index_ = -1, next_index_ = 0, thinking_index_ = -1;
    std::map<uint32_t, int> call_blocks_; // the reply's tool call index -> its block index
    std::string signature_, sent_signature_;
};

// A provider or group as Anthropic's model object. The daemon has no
// release dates for them: created_at is the epoch, as OpenAI's `created` 0.
Json model_json(const openai::ModelEntry &entry) {
    return {{"type", "model"},
            {"id", entry.id},
            {"display_name", entry.id},
            {"created_at", "1970-01-01T00:00:00Z"}};
}

} // namespace

Json models(const Pipeline &pipeline) {
    Json data = Json::array();
    for (const openai::ModelEntry &entry : openai::model_entries(pipeline))
        data.push_back(model_json(entry));
    // One page holds them all (a manifest names a handful): has_more false.
    const Json first = data.empty() ? Json() : data.front()["id"];
    const Json last = data.empty() ? Json() : data.back()["id"];
    return {{"data", std::move(data)}, {"has_more", false}, {"first_id", first}, {"last_id", last}};
}

Json model(const Pipeline &pipeline, const std::string &id) {
    return model_json(openai::model_entry(pipeline, id));
}

bool owns_path(const std::vector<std::string> &segments) {
    return segments.size() >= 2 && segments[0] == "v1" && segments[1] == "messages";
}

std::string anthropic_error_body(ErrorKind kind, const std::string &message) {
    return dump_json(error_json_of(kind, message));
}

void respond_anthropic_error(Exchange &exchange, const ApiError &error,
                             std::vector<std::pair<std::string, std::string>> extra_headers) {
    std::vector<std::pair<std::string, std::string>> headers = error_headers(error);
    headers.insert(headers.end(), extra_headers.begin(), extra_headers.end());
    Json body = error_json_of(error.kind(), error.what());
    with_details(body["error"], error);
    exchange.respond(http_status(error.kind()), kJson, dump_json(body), std::move(headers));
}

void messages(const Request &request, std::shared_ptr<Exchange> exchange, SessionManager &sessions,
              const PostBlocking &post_blocking, std::chrono::milliseconds keepalive,
              const openai::CompletionCaller &caller) {
    CompletionParams params = decode_messages_request(parse_body(request.body), request.session_header);
    Identity identity;
    identity.model = params.model;
    std::tie(params.provider, params.model) = openai::route_model(*sessions.pipeline(), params.model);
    params.access = caller.access;
    std::shared_ptr<SendObserver> observer;
    if (params.stream)
        observer = std::make_shared<StreamedMessage>(exchange, identity, keepalive,
                                                     caller.stream_slot ? caller.stream_slot() : nullptr);
    else
        observer = std::make_shared<WholeMessage>(exchange, identity);
    run_completion(sessions, post_blocking, std::move(params), observer, exchange);
}

} // namespace swh::http::anthropic
