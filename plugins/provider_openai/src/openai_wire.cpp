#include "openai_wire.hpp"

#include <swarmhost/cpp/sse.hpp>

#include <optional>
#include <utility>

namespace swh::openai {

using cpp::upstream::Emitter;
using cpp::upstream::Problem;
using edge::Failure;

namespace {

using cpp::http_provider::dump;
using cpp::http_provider::excerpt;

std::string error_text(const Json &j) {
    // {"error":{"message":..,"type":..,"code":..}} (also plain {"error":"..."} from some servers)
    if (!j.is_object() || !j.contains("error")) return {};
    const Json &e = j["error"];
    if (e.is_string()) return e.get<std::string>();
    if (!e.is_object()) return dump(e);
    std::string text = e.value("message", std::string());
    std::string type = e.contains("type") && e["type"].is_string() ? e["type"].get<std::string>() : "";
    std::string code = e.contains("code") && e["code"].is_string() ? e["code"].get<std::string>() : "";
    if (!type.empty() || !code.empty())
        text += " (" + type + (type.empty() || code.empty() ? "" : ", ") + code + ")";
    return text;
}

class DecoderBase : public cpp::upstream::Decoder {
  public:
    explicit DecoderBase(std::string model) : model_(std::move(model)) {}
    std::string error_message(int, std::string_view body) override {
        return cpp::http_provider::error_message(body, error_text);
    }

  protected:
    void report(Emitter &out) {
        Json meta = {{"model", model_.empty() ? Json(nullptr) : Json(model_)},
                     {"finish_reason", finish_reason_.empty() ? Json(nullptr) : Json(finish_reason_)}};
        if (!usage_.is_null()) meta["usage"] = usage_;
        if (!fingerprint_.empty()) meta["system_fingerprint"] = fingerprint_;
        out.metadata(id_, dump(meta));
    }
    void note(const Json &obj) {
        if (obj.contains("id") && obj["id"].is_string()) id_ = obj["id"].get<std::string>();
        if (obj.contains("model") && obj["model"].is_string()) model_ = obj["model"].get<std::string>();
        if (obj.contains("system_fingerprint") && obj["system_fingerprint"].is_string())
            fingerprint_ = obj["system_fingerprint"].get<std::string>();
        if (obj.contains("usage") && obj["usage"].is_object()) usage_ = obj["usage"];
    }
    std::string id_, model_, finish_reason_, fingerprint_;
    Json usage_;
};

class StreamDecoder final : public DecoderBase {
  public:
    using DecoderBase::DecoderBase;
    std::optional<Problem> body(std::string_view bytes, Emitter &out) override {
        std::optional<Problem> problem;
        bool ok = parser_.feed(bytes, [&](const cpp::sse::Event &ev) {
            if (ev.data == "[DONE]") {
                done_ = true;
                return true;
            }
            Json j;
            problem = cpp::http_provider::parse_event(ev.data, j);
            if (problem) return false;
            if (j.contains("error")) {
                problem =
                    Problem{SWH_E_UPSTREAM, "the upstream reported an error mid-stream: " + error_text(j)};
                return false;
            }
            note(j);
            if (j.contains("choices") && j["choices"].is_array() && !j["choices"].empty()) {
                const Json &choice = j["choices"][0];
                if (choice.contains("finish_reason") && choice["finish_reason"].is_string())
                    finish_reason_ = choice["finish_reason"].get<std::string>();
                if (choice.contains("delta") && choice["delta"].is_object()) {
                    const Json &delta = choice["delta"];
                    if (delta.contains("content") && delta["content"].is_string()) {
                        ++pieces_;
                        if (!out.text(delta["content"].get_ref<const std::string &>())) return false;
                    }
                }
            }
            return true;
        });
        return cpp::http_provider::feed_outcome(ok, parser_, std::move(problem));
    }
    std::optional<Problem> end(Emitter &out) override {
        if (!done_ && finish_reason_.empty())
            return Problem{SWH_E_UPSTREAM, id_.empty() ? "the answer is not an OpenAI event stream"
                                                       : "the stream ended before its end ([DONE])"};
        report(out);
        return std::nullopt;
    }

  private:
    cpp::sse::Parser parser_;
    bool done_ = false;
    size_t pieces_ = 0;
};

class WholeDecoder final : public DecoderBase {
  public:
    using DecoderBase::DecoderBase;
    std::optional<Problem> body(std::string_view bytes, Emitter &) override { return body_.add(bytes); }
    std::optional<Problem> end(Emitter &out) override {
        Json j;
        if (auto problem = body_.parse(j)) return problem;
        if (j.contains("error"))
            return Problem{SWH_E_UPSTREAM, "the upstream reported an error: " + error_text(j)};
        if (!j.contains("choices") || !j["choices"].is_array() || j["choices"].empty() ||
            !j["choices"][0].is_object() || !j["choices"][0].contains("message"))
            return Problem{SWH_E_UPSTREAM, "the answer has no choices[0].message: " + excerpt(body_.text())};
        note(j);
        const Json &choice = j["choices"][0];
        if (choice.contains("finish_reason") && choice["finish_reason"].is_string())
            finish_reason_ = choice["finish_reason"].get<std::string>();
        const Json &message = choice["message"];
        if (message.contains("content") && message["content"].is_string()) {
            if (!out.text(message["content"].get_ref<const std::string &>())) return std::nullopt;
        }
        report(out);
        return std::nullopt;
    }

  private:
    cpp::http_provider::WholeBody body_;
};

} // namespace

void Settings::check() const {
    namespace http = cpp::http_provider;
    if (temperature > 2) http::invalid("openai", "temperature", "must be <= 2 (negative = not sent)");
    http::check_range("openai", "max_tokens", max_tokens, 0, 10'000'000);
}

Json Settings::to_json() const {
    Json j = cpp::http_provider::http_json(http);
    j["temperature"] = temperature;
    j["max_tokens"] = max_tokens;
    j["api_version"] = api_version;
    j["stream_usage"] = stream_usage;
    return j;
}

Json content_parts(std::string_view text, const Attachments &attachments) {
    Json parts = Json::array();
    if (!text.empty()) parts.push_back({{"type", "text"}, {"text", std::string(text)}});
    for (const auto &a : attachments) {
        const std::string &mime = a.ref.mime_type;
        if (cpp::attachments::is_image(mime)) {
            parts.push_back(
                {{"type", "image_url"},
                 {"image_url",
                  {{"url", "data:" + mime + ";base64," + cpp::attachments::base64_encode(a.bytes)}}}});
        } else if (mime == "application/pdf") {
            parts.push_back({{"type", "file"},
                             {"file",
                              {{"filename", a.ref.name},
                               {"file_data", "data:application/pdf;base64," +
                                                 cpp::attachments::base64_encode(a.bytes)}}}});
        } else if (mime == "text/plain") {
            parts.push_back({{"type", "text"}, {"text", "Attachment " + a.ref.name + ":\n" + a.bytes}});
        } else {
            throw Failure(SWH_E_INVALID, "openai: attachment '" + a.ref.name + "' has type '" + mime +
                                             "', which Chat Completions cannot take");
        }
    }
    return parts;
}

Json build_body(const Settings &s, const Call &call, const std::vector<Attachments> &attachments) {
    Json messages = Json::array();
    if (!call.system_prompt.empty())
        messages.push_back({{"role", "system"}, {"content", call.system_prompt}});
    for (size_t i = 0; i < call.turns.size(); ++i) {
        const auto &t = call.turns[i];
        if (t.role != "user" && t.role != "assistant" && t.role != "system") continue;
        const bool with_files = t.role == "user" && i < attachments.size() && !attachments[i].empty();
        messages.push_back({{"role", std::string(t.role)},
                            {"content", with_files ? content_parts(t.content, attachments[i])
                                                   : Json(std::string(t.content))}});
    }
    if (!call.assistant_prefix.empty())
        messages.push_back({{"role", "assistant"}, {"content", call.assistant_prefix}});
    Json body = {{"model", call.model.empty() ? s.http.model : call.model},
                 {"messages", std::move(messages)}};
    if (s.temperature >= 0) body["temperature"] = s.temperature;
    if (s.max_tokens > 0) body["max_tokens"] = s.max_tokens;
    // custom_params are merged over everything but the conversation and the stream switch
    for (const auto &[key, value] : s.http.custom_params.items())
        if (key != "messages" && key != "stream" && key != "stream_options") body[key] = value;
    body["stream"] = call.stream;
    if (call.stream && s.stream_usage) body["stream_options"] = {{"include_usage", true}};
    return body;
}

std::string chat_url(const Settings &s) {
    std::string url = s.http.base_url + "/chat/completions";
    if (!s.api_version.empty()) url += "?api-version=" + s.api_version;
    return url;
}

std::unique_ptr<cpp::upstream::Decoder> make_decoder(bool stream, std::string requested_model) {
    if (stream) return std::make_unique<StreamDecoder>(std::move(requested_model));
    return std::make_unique<WholeDecoder>(std::move(requested_model));
}

} // namespace swh::openai
