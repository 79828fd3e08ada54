#include "anthropic_wire.hpp"

#include <swarmhost/cpp/sse.hpp>

#include <optional>
#include <utility>

namespace swh::anthropic {

using cpp::upstream::Emitter;
using cpp::upstream::Problem;
using edge::Failure;

namespace {

using cpp::http_provider::dump;
using cpp::http_provider::excerpt;

std::string str_or(const Json &j, const char *key, std::string fallback = {}) {
    return j.is_object() && j.contains(key) && j[key].is_string() ? j[key].get<std::string>() : fallback;
}

std::string error_text(const Json &j) {
    // {"type":"error","error":{"type":"rate_limit_error","message":"..."}}
    if (!j.is_object() || !j.contains("error")) return {};
    const Json &e = j["error"];
    if (e.is_string()) return e.get<std::string>();
    if (!e.is_object()) return dump(e);
    std::string text = str_or(e, "message");
    std::string type = str_or(e, "type");
    if (!type.empty()) text += " (" + type + ")";
    return text;
}

// Anthropic's stop_reason in OpenAI's finish_reason words (the daemon's
// common vocabulary); the original stays in "stop_reason".
std::string finish_reason_of(const std::string &stop) {
    if (stop == "end_turn" || stop == "stop_sequence") return "stop";
    if (stop == "max_tokens") return "length";
    if (stop == "tool_use") return "tool_calls";
    if (stop == "refusal") return "content_filter";
    return stop;
}

class DecoderBase : public cpp::upstream::Decoder {
  public:
    DecoderBase(std::string model, std::string trimmed_ws)
        : model_(std::move(model)), ws_(std::move(trimmed_ws)) {}
    std::string error_message(int, std::string_view body) override {
        return cpp::http_provider::error_message(body, error_text);
    }

  protected:
    // Relays text, first dropping the whitespace trimmed off the prefill.
    bool relay(std::string_view text, Emitter &out) {
        if (!ws_.empty()) {
            size_t n = 0;
            while (n < text.size() && n < ws_.size() && text[n] == ws_[n])
                ++n;
            if (n == text.size() && n < ws_.size()) {
                ws_.erase(0, n);
                return true;
            }
            text.remove_prefix(n);
            ws_.clear();
        }
        return out.text(text);
    }
    void report(Emitter &out) {
        Json meta = {{"model", model_.empty() ? Json(nullptr) : Json(model_)},
                     {"finish_reason", stop_.empty() ? Json(nullptr) : Json(finish_reason_of(stop_))},
                     {"stop_reason", stop_.empty() ? Json(nullptr) : Json(stop_)}};
        if (!usage_.is_null()) {
            Json usage = usage_;
            const int64_t in = usage_.value("input_tokens", int64_t{0});
            const int64_t outn = usage_.value("output_tokens", int64_t{0});
            usage["prompt_tokens"] = in;
            usage["completion_tokens"] = outn;
            usage["total_tokens"] = in + outn;
            meta["usage"] = usage;
        }
        out.metadata(id_, dump(meta));
    }
    void merge_usage(const Json &u) {
        if (!u.is_object()) return;
        if (usage_.is_null()) usage_ = Json::object();
        for (const auto &[k, v] : u.items())
            if (!v.is_null()) usage_[k] = v;
    }
    std::string model_, ws_, id_, stop_;
    Json usage_;
};

class StreamDecoder final : public DecoderBase {
  public:
    using DecoderBase::DecoderBase;
    std::optional<Problem> body(std::string_view bytes, Emitter &out) override {
        std::optional<Problem> problem;
        bool ok = parser_.feed(bytes, [&](const cpp::sse::Event &ev) {
            Json j;
            problem = cpp::http_provider::parse_event(ev.data, j);
            if (problem) return false;
            const std::string type = str_or(j, "type", std::string(ev.type));
            if (type == "message_start") {
                const Json &m = j.contains("message") ? j["message"] : Json();
                id_ = str_or(m, "id", id_);
                model_ = str_or(m, "model", model_);
                if (m.is_object() && m.contains("usage")) merge_usage(m["usage"]);
                started_ = true;
            } else if (type == "content_block_delta") {
                const Json &d = j.contains("delta") ? j["delta"] : Json();
                if (str_or(d, "type") == "text_delta" && d.contains("text") && d["text"].is_string())
                    return relay(d["text"].get_ref<const std::string &>(), out);
            } else if (type == "message_delta") {
                const Json &d = j.contains("delta") ? j["delta"] : Json();
                stop_ = str_or(d, "stop_reason", stop_);
                if (j.contains("usage")) merge_usage(j["usage"]);
            } else if (type == "message_stop") {
                stopped_ = true;
            } else if (type == "error") {
                const std::string etype = j.contains("error") ? str_or(j["error"], "type") : "";
                problem = Problem{etype == "rate_limit_error" ? SWH_E_RATE_LIMITED : SWH_E_UPSTREAM,
                                  "the upstream reported an error mid-stream: " + error_text(j)};
                return false;
            }
            // ping, content_block_start/stop and unknown events: nothing to do
            return true;
        });
        return cpp::http_provider::feed_outcome(ok, parser_, std::move(problem));
    }
    std::optional<Problem> end(Emitter &out) override {
        if (!stopped_)
            return Problem{SWH_E_UPSTREAM, started_ ? "the stream ended before message_stop"
                                                    : "the answer is not an Anthropic event stream"};
        report(out);
        return std::nullopt;
    }

  private:
    cpp::sse::Parser parser_;
    bool started_ = false, stopped_ = false;
};

class WholeDecoder final : public DecoderBase {
  public:
    using DecoderBase::DecoderBase;
    std::optional<Problem> body(std::string_view bytes, Emitter &) override { return body_.add(bytes); }
    std::optional<Problem> end(Emitter &out) override {
        Json j;
        if (auto problem = body_.parse(j)) return problem;
        if (str_or(j, "type") == "error")
            return Problem{SWH_E_UPSTREAM, "the upstream reported an error: " + error_text(j)};
        if (str_or(j, "type") != "message" || !j.contains("content") || !j["content"].is_array())
            return Problem{SWH_E_UPSTREAM, "the answer is not a message: " + excerpt(body_.text())};
        id_ = str_or(j, "id");
        model_ = str_or(j, "model", model_);
        stop_ = str_or(j, "stop_reason");
        if (j.contains("usage")) merge_usage(j["usage"]);
        std::string text;
        for (const auto &block : j["content"])
            if (str_or(block, "type") == "text") text += str_or(block, "text");
        if (!relay(text, out)) return std::nullopt;
        report(out);
        return std::nullopt;
    }

  private:
    cpp::http_provider::WholeBody body_;
};

} // namespace

void Settings::check() const {
    namespace http = cpp::http_provider;
    if (temperature > 1) http::invalid("anthropic", "temperature", "must be <= 1 (negative = not sent)");
    http::check_range("anthropic", "max_tokens", max_tokens, 1, 10'000'000);
    if (anthropic_version.empty()) http::invalid("anthropic", "anthropic_version", "must not be empty");
}

Json Settings::to_json() const {
    Json j = cpp::http_provider::http_json(http);
    j["anthropic_version"] = anthropic_version;
    j["temperature"] = temperature;
    j["max_tokens"] = max_tokens;
    return j;
}

Json content_blocks(std::string_view text, const Attachments &attachments) {
    Json blocks = Json::array();
    auto base64_source = [](const cpp::attachments::LoadedAttachment &a) {
        return Json{{"type", "base64"},
                    {"media_type", a.ref.mime_type},
                    {"data", cpp::attachments::base64_encode(a.bytes)}};
    };
    // Files first, then the question: the order Anthropic recommends.
    for (const auto &a : attachments) {
        const std::string &mime = a.ref.mime_type;
        if (cpp::attachments::is_image(mime))
            blocks.push_back({{"type", "image"}, {"source", base64_source(a)}});
        else if (mime == "application/pdf")
            blocks.push_back({{"type", "document"}, {"source", base64_source(a)}});
        else if (mime == "text/plain")
            blocks.push_back({{"type", "text"}, {"text", "Attachment " + a.ref.name + ":\n" + a.bytes}});
        else
            throw Failure(SWH_E_INVALID, "anthropic: attachment '" + a.ref.name + "' has type '" + mime +
                                             "', which the Messages API cannot take");
    }
    if (!text.empty()) blocks.push_back({{"type", "text"}, {"text", std::string(text)}});
    return blocks;
}

Json build_body(const Settings &s, const Call &call, const std::vector<Attachments> &attachments,
                std::string &trimmed_ws) {
    std::string system = call.system_prompt;
    Json messages = Json::array();
    for (size_t i = 0; i < call.turns.size(); ++i) {
        const auto &t = call.turns[i];
        if (t.role == "system") { // the API has no system turns: they join the system field
            if (!t.content.empty()) system += (system.empty() ? "" : "\n\n") + std::string(t.content);
            continue;
        }
        if (t.role != "user" && t.role != "assistant") continue;
        if (t.role == "user" && i < attachments.size() && !attachments[i].empty()) {
            messages.push_back({{"role", "user"}, {"content", content_blocks(t.content, attachments[i])}});
            continue;
        }
        if (t.content.empty()) continue; // the API rejects empty text blocks
        messages.push_back({{"role", std::string(t.role)}, {"content", std::string(t.content)}});
    }
    trimmed_ws.clear();
    if (!call.assistant_prefix.empty()) {
        std::string prefill = call.assistant_prefix;
        size_t keep = prefill.find_last_not_of(" \t\r\n");
        if (keep == std::string::npos) {
            trimmed_ws = prefill; // whitespace only: no prefill turn at all
        } else {
            trimmed_ws = prefill.substr(keep + 1);
            prefill.erase(keep + 1);
            messages.push_back({{"role", "assistant"}, {"content", prefill}});
        }
    }
    Json body = {{"model", call.model.empty() ? s.http.model : call.model},
                 {"max_tokens", s.max_tokens},
                 {"messages", std::move(messages)}};
    if (!system.empty()) body["system"] = system;
    if (s.temperature >= 0) body["temperature"] = s.temperature;
    for (const auto &[key, value] : s.http.custom_params.items())
        if (key != "messages" && key != "stream") body[key] = value;
    body["stream"] = call.stream;
    return body;
}

std::string messages_url(const Settings &s) {
    // base_url is the API root without /v1 (as in Anthropic's own clients);
    // one ending in /v1 is accepted too.
    const std::string_view b = s.http.base_url;
    if (b.size() >= 3 && b.substr(b.size() - 3) == "/v1") return s.http.base_url + "/messages";
    return s.http.base_url + "/v1/messages";
}

std::unique_ptr<cpp::upstream::Decoder> make_decoder(bool stream, std::string requested_model,
                                                     std::string trimmed_ws) {
    if (stream) return std::make_unique<StreamDecoder>(std::move(requested_model), std::move(trimmed_ws));
    return std::make_unique<WholeDecoder>(std::move(requested_model), std::move(trimmed_ws));
}

} // namespace swh::anthropic
