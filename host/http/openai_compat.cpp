#include "http/openai_compat.hpp"

#include "http/api.hpp"
#include "http/completion_reply.hpp"
#include "http/json_codec.hpp"
#include "http/json_text.hpp"
#include "http/openai_chat_request.hpp"
#include "util/clock.hpp"
#include "util/ids.hpp"

#include <map>
#include <set>

namespace swh::http::openai {

namespace {

constexpr const char *kJson = "application/json";

// A count from provider_metadata.usage: the neutral key (ReplyEvent usage),
// else the OpenAI-style one a 1.0-1.2 provider may have written.
int64_t count_of(const Json &usage, const char *key, const char *older_key) {
    for (const char *k : {key, older_key})
        if (auto it = usage.find(k); it != usage.end() && it->is_number_integer()) return it->get<int64_t>();
    return 0;
}

} // namespace

TokenCounts token_counts(const Message &assistant) {
    static const Json kNoUsage = Json::object();
    const Json &meta = assistant.provider_metadata;
    const auto found = meta.find("usage");
    const Json &usage = found != meta.end() && found->is_object() ? *found : kNoUsage;
    return {count_of(usage, "input_tokens", "prompt_tokens"),
            count_of(usage, "output_tokens", "completion_tokens"),
            count_of(usage, "cached_input_tokens", "cached_tokens"), count_of(usage, "reasoning_tokens", "")};
}

namespace {

Json usage_of(const Message &assistant) {
    const TokenCounts counts = token_counts(assistant);
    return {{"prompt_tokens", counts.input},
            {"completion_tokens", counts.output},
            {"total_tokens", counts.total()},
            {"prompt_tokens_details", {{"cached_tokens", counts.cached}}},
            {"completion_tokens_details", {{"reasoning_tokens", counts.reasoning}}}};
}

} // namespace

// OpenAI's finish reasons; a 1.0-1.2 provider may have reported its
// vendor's own word in metadata (Anthropic's stop_reason), mapped here.
std::string finish_reason_of(const Message &assistant) {
    static const std::map<std::string, std::string> vendor_words = {{"end_turn", "stop"},
                                                                    {"stop_sequence", "stop"},
                                                                    {"max_tokens", "length"},
                                                                    {"tool_use", "tool_calls"}};
    const Json &meta = assistant.provider_metadata;
    std::string reason = meta.contains("finish_reason") && meta["finish_reason"].is_string()
                             ? meta["finish_reason"].get<std::string>()
                             : "";
    if (auto word = vendor_words.find(reason); word != vendor_words.end()) reason = word->second;
    if (reason.empty() || (reason == "stop" && has_tool_calls(assistant)))
        reason = has_tool_calls(assistant) ? "tool_calls" : "stop";
    return reason;
}

namespace {

// A structured tool call's string member; a non-string is written as its
// JSON text (the arguments of a 1.0-1.2 provider may be an object).
void append_member_text(std::string &out, const Json &call, const char *key) {
    const auto it = call.find(key);
    if (it == call.end()) return append_json_string(out, "");
    append_json_string(out, it->is_string() ? it->get_ref<const std::string &>() : dump_json(*it));
}

// The reply as OpenAI's assistant message: content is null when the model
// only called tools. Keys in nlohmann's (sorted) order, as the tree this
// replaced dumped them.
void append_message(std::string &out, const Message &assistant) {
    const bool calls = has_tool_calls(assistant);
    out += "{\"content\":";
    if (assistant.content.empty() && calls)
        out += "null";
    else
        append_json_string(out, assistant.content);
    out += ",\"refusal\":null,\"role\":\"assistant\"";
    if (calls) {
        out += ",\"tool_calls\":[";
        bool first = true;
        for (const Json &call : assistant.structured["tool_calls"]) {
            if (!first) out += ',';
            first = false;
            out += "{\"function\":{\"arguments\":";
            append_member_text(out, call, "arguments");
            out += ",\"name\":";
            append_member_text(out, call, "name");
            out += "},\"id\":";
            append_member_text(out, call, "id");
            out += ",\"type\":\"function\"}";
        }
        out += ']';
    }
    out += '}';
}

void append_usage(std::string &out, const TokenCounts &counts) {
    out += "{\"completion_tokens\":";
    append_json_int(out, counts.output);
    out += ",\"completion_tokens_details\":{\"reasoning_tokens\":";
    append_json_int(out, counts.reasoning);
    out += "},\"prompt_tokens\":";
    append_json_int(out, counts.input);
    out += ",\"prompt_tokens_details\":{\"cached_tokens\":";
    append_json_int(out, counts.cached);
    out += "},\"total_tokens\":";
    append_json_int(out, counts.total());
    out += '}';
}

} // namespace

std::string chat_completion_body(const std::string &id, int64_t created, const std::string &model,
                                 const Message &assistant) {
    std::string out;
    out.reserve(640 + assistant.content.size()); // the usual body in one allocation
    out += "{\"choices\":[{\"finish_reason\":";
    append_json_string(out, finish_reason_of(assistant));
    out += ",\"index\":0,\"logprobs\":null,\"message\":";
    append_message(out, assistant);
    out += "}],\"created\":";
    append_json_int(out, created);
    out += ",\"id\":";
    append_json_string(out, id);
    out += ",\"model\":";
    append_json_string(out, model);
    out += ",\"object\":\"chat.completion\",\"usage\":";
    append_usage(out, token_counts(assistant));
    out += '}';
    return out;
}

namespace {

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
    bool on_reply_event(const ReplyEvent &) override { return !exchange_->client_gone(); }
    void on_complete(const Message &, const Message &assistant, double overhead_ms) override {
        exchange_->respond(200, kJson,
                           chat_completion_body(identity_.id, identity_.created, identity_.model, assistant),
                           {{"X-Swarmhost-Overhead-Ms", format_ms(overhead_ms)}});
    }
    void on_error(const ApiError &error) override { respond_error(*exchange_, error); }

  private:
    std::shared_ptr<Exchange> exchange_;
    Identity identity_;
};

// OpenAI's chunk stream: a first delta with the role, text deltas, tool
// calls as delta.tool_calls (id, type and name on a call's first piece,
// then argument fragments), a last chunk with the finish reason, and with
// stream_options.include_usage a usage chunk with no choices.
class StreamedCompletion : public SendObserver {
  public:
    // `stream_slot`: the caller's key's stream slot, held while the reply streams.
    StreamedCompletion(std::shared_ptr<Exchange> exchange, Identity identity,
                       std::chrono::milliseconds keepalive, std::shared_ptr<void> stream_slot,
                       bool include_usage)
        : exchange_(std::move(exchange)), identity_(std::move(identity)), keepalive_(keepalive),
          stream_slot_(std::move(stream_slot)), include_usage_(include_usage) {
        // A text chunk is the same JSON every time but for its text: dump it
        // once around a marker and keep the two halves, so each chunk costs
        // one string escape instead of building and dumping a JSON tree.
        // Keys come sorted ("choices" first), so nothing a client sent (the
        // model) precedes the marker.
        static constexpr std::string_view kMarker = "\x1f\x1f";
        const std::string whole = dump_json(chunk({{"content", std::string(kMarker)}}, nullptr));
        const std::string quoted = dump_json(Json(std::string(kMarker)));
        const auto at = whole.find(quoted);
        text_prefix_ = whole.substr(0, at);
        text_suffix_ = whole.substr(at + quoted.size());
    }
    void on_user_stored(const Message &) override {
        exchange_->start_stream();
        exchange_->keep_alive(keepalive_);
        started_ = true;
        send({{"role", "assistant"}, {"content", ""}, {"refusal", nullptr}}, nullptr);
    }
    bool on_chunk(std::string_view text) override {
        std::string data = text_prefix_;
        data += dump_json(Json(text));
        data += text_suffix_;
        return exchange_->send_event("", data);
    }
    bool on_reply_event(const ReplyEvent &event) override {
        // Thinking has no place in OpenAI's chunk; finish reason and usage
        // are sent from the stored reply at the end.
        if (event.type != ReplyEvent::Type::ToolCall) return !exchange_->client_gone();
        return send_tool_call(event);
    }
    void on_complete(const Message &, const Message &assistant, double overhead_ms) override {
        Json last = chunk(Json::object(), finish_reason_of(assistant));
        last["swarmhost"] = {{"gateway_overhead_ms", overhead_ms}};
        exchange_->send_event("", dump_json(last));
        if (include_usage_) {
            Json usage = chunk(Json::object(), nullptr);
            usage["choices"] = Json::array();
            usage["usage"] = usage_of(assistant);
            exchange_->send_event("", dump_json(usage));
        }
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
    // A call's first piece opens it with id, type and name (arguments "");
    // every fragment of its arguments follows as its own delta.
    bool send_tool_call(const ReplyEvent &event) {
        if (opened_calls_.insert(event.index).second) {
            const Json open = {{"index", event.index},
                               {"id", event.id},
                               {"type", "function"},
                               {"function", {{"name", event.name}, {"arguments", ""}}}};
            if (!send({{"tool_calls", Json::array({open})}}, nullptr)) return false;
        }
        if (event.text.empty()) return !exchange_->client_gone();
        const Json piece = {{"index", event.index}, {"function", {{"arguments", event.text}}}};
        return send({{"tool_calls", Json::array({piece})}}, nullptr);
    }
    Json chunk(const Json &delta, const Json &finish_reason) const {
        Json body = {{"id", identity_.id},
                     {"object", "chat.completion.chunk"},
                     {"created", identity_.created},
                     {"model", identity_.model},
                     {"choices", Json::array({{{"index", 0},
                                               {"delta", delta},
                                               {"logprobs", nullptr},
                                               {"finish_reason", finish_reason}}})}};
        // The reference: with include_usage every chunk has "usage", null
        // but on the last; without it, no chunk has the key.
        if (include_usage_) body["usage"] = nullptr;
        return body;
    }
    bool send(const Json &delta, const Json &finish_reason) {
        return exchange_->send_event("", dump_json(chunk(delta, finish_reason)));
    }
    std::shared_ptr<Exchange> exchange_;
    Identity identity_;
    std::chrono::milliseconds keepalive_;
    std::shared_ptr<void> stream_slot_;
    bool include_usage_ = false;
    bool started_ = false;
    std::set<uint32_t> opened_calls_;
    std::string text_prefix_; // a text chunk's JSON before its text ...
    std::string text_suffix_; // ... and after it
};

} // namespace

std::pair<std::string, std::string> route_model(const Pipeline &pipeline, const std::string &model) {
    if (pipeline.provider(model)) return {model, ""};
    if (const auto slash = model.find('/');
        slash != std::string::npos && pipeline.provider(model.substr(0, slash)))
        return {model.substr(0, slash), model.substr(slash + 1)};
    return {pipeline.default_provider, model};
}

std::vector<ModelEntry> model_entries(const Pipeline &pipeline) {
    std::vector<ModelEntry> entries;
    for (const auto &[name, provider] : pipeline.providers)
        entries.push_back({name, "swarmhost:" + provider->library().name()});
    for (const auto &[group, members] : pipeline.groups)
        entries.push_back({group, "swarmhost:group"});
    return entries;
}

ModelEntry model_entry(const Pipeline &pipeline, const std::string &id) {
    for (ModelEntry &entry : model_entries(pipeline))
        if (entry.id == id) return std::move(entry);
    throw ApiError(ErrorKind::NotFound, "model '" + id + "' is not a provider or group of this daemon");
}

namespace {
Json model_json(const ModelEntry &entry) {
    return {{"id", entry.id}, {"object", "model"}, {"created", 0}, {"owned_by", entry.owned_by}};
}
} // namespace

Json models(const Pipeline &pipeline) {
    Json data = Json::array();
    for (const ModelEntry &entry : model_entries(pipeline))
        data.push_back(model_json(entry));
    return {{"object", "list"}, {"data", std::move(data)}};
}

Json model(const Pipeline &pipeline, const std::string &id) {
    return model_json(model_entry(pipeline, id));
}

void chat_completions(const Request &request, std::shared_ptr<Exchange> exchange, SessionManager &sessions,
                      const PostBlocking &post_blocking, std::chrono::milliseconds keepalive,
                      const CompletionCaller &caller) {
    // The plain shape skips the tree; anything else is decoded (or refused) the long way.
    std::optional<ChatCompletionRequest> plain =
        decode_plain_chat_completion(request.body, request.session_header);
    ChatCompletionRequest decoded =
        plain ? std::move(*plain) : decode_chat_completion(parse_body(request.body), request.session_header);
    CompletionParams &params = decoded.completion;
    Identity identity;
    identity.model = params.model; // what the client asked for, echoed as OpenAI does
    std::tie(params.provider, params.model) = route_model(*sessions.pipeline(), params.model);
    params.access = caller.access;
    std::shared_ptr<SendObserver> observer;
    if (params.stream)
        observer = std::make_shared<StreamedCompletion>(exchange, identity, keepalive,
                                                        caller.stream_slot ? caller.stream_slot() : nullptr,
                                                        decoded.include_usage);
    else
        observer = std::make_shared<WholeCompletion>(exchange, identity);
    run_completion(sessions, post_blocking, std::move(params), observer, exchange);
}

} // namespace swh::http::openai
