#include "openai_wire.hpp"

#include <swarmhost/cpp/sse.hpp>

#include <optional>
#include <utility>

namespace swh::openai {

using cpp::upstream::Emitter;
using cpp::upstream::Problem;
using edge::Failure;

namespace {

std::string dump(const Json &j) {
    return j.dump(-1, ' ', false, Json::error_handler_t::replace);
}

void invalid(const std::string &key, const char *what) {
    throw Failure(SWH_E_INVALID, "openai: config '" + key + "' " + what);
}

void read_string(const Json &c, const char *key, std::string &out) {
    auto it = c.find(key);
    if (it == c.end() || it->is_null()) return;
    if (!it->is_string()) invalid(key, "must be a string");
    out = it->get<std::string>();
}

void read_int(const Json &c, const char *key, int64_t &out, int64_t min, int64_t max) {
    auto it = c.find(key);
    if (it == c.end() || it->is_null()) return;
    if (!it->is_number_integer()) invalid(key, "must be an integer");
    int64_t v = it->get<int64_t>();
    if (v < min || v > max)
        invalid(key, ("must be between " + std::to_string(min) + " and " + std::to_string(max)).c_str());
    out = v;
}

std::string trim_slashes(std::string url) {
    while (!url.empty() && url.back() == '/')
        url.pop_back();
    return url;
}

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

// A short, printable excerpt of a body that is not what we expected.
std::string excerpt(std::string_view body) {
    std::string out;
    for (char c : body.substr(0, 160))
        out.push_back(static_cast<unsigned char>(c) < 0x20 ? ' ' : c);
    if (body.size() > 160) out += "...";
    return out;
}

class DecoderBase : public cpp::upstream::Decoder {
  public:
    explicit DecoderBase(std::string model) : model_(std::move(model)) {}
    std::string error_message(int, std::string_view body) override {
        Json j = Json::parse(body, nullptr, false);
        std::string text = j.is_discarded() ? std::string() : error_text(j);
        return text.empty() ? excerpt(body) : text;
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
            Json j = Json::parse(ev.data, nullptr, false);
            if (j.is_discarded() || !j.is_object()) {
                problem = Problem{SWH_E_UPSTREAM, "the stream carried an event that is not a JSON object: " +
                                                      excerpt(ev.data)};
                return false;
            }
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
        if (problem) return problem;
        if (!ok && parser_.failed())
            return Problem{SWH_E_UPSTREAM, "the stream exceeded the SSE line/event size limit"};
        return std::nullopt;
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
    std::optional<Problem> body(std::string_view bytes, Emitter &) override {
        if (body_.size() + bytes.size() > (64u << 20))
            return Problem{SWH_E_UPSTREAM, "the answer exceeds 64 MiB"};
        body_.append(bytes);
        return std::nullopt;
    }
    std::optional<Problem> end(Emitter &out) override {
        Json j = Json::parse(body_, nullptr, false);
        if (j.is_discarded() || !j.is_object())
            return Problem{SWH_E_UPSTREAM, "the answer is not JSON: " + excerpt(body_)};
        if (j.contains("error"))
            return Problem{SWH_E_UPSTREAM, "the upstream reported an error: " + error_text(j)};
        if (!j.contains("choices") || !j["choices"].is_array() || j["choices"].empty() ||
            !j["choices"][0].is_object() || !j["choices"][0].contains("message"))
            return Problem{SWH_E_UPSTREAM, "the answer has no choices[0].message: " + excerpt(body_)};
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
    std::string body_;
};

} // namespace

Settings parse_settings(const Json &c) {
    if (!c.is_object()) throw Failure(SWH_E_INVALID, "openai: config must be a JSON object");
    Settings s;
    read_string(c, "base_url", s.base_url);
    read_string(c, "api_key_env", s.api_key_env);
    read_string(c, "model", s.model);
    if (auto it = c.find("temperature"); it != c.end() && !it->is_null()) {
        if (!it->is_number()) invalid("temperature", "must be a number");
        s.temperature = it->get<double>();
        if (s.temperature > 2) invalid("temperature", "must be <= 2 (negative = not sent)");
    }
    read_int(c, "max_tokens", s.max_tokens, 0, 10'000'000);
    read_int(c, "timeout_ms", s.timeout_ms, 0, 86'400'000);
    read_int(c, "connect_timeout_ms", s.connect_timeout_ms, 0, 600'000);
    read_int(c, "idle_timeout_ms", s.idle_timeout_ms, 0, 86'400'000);
    read_int(c, "retries", s.retries, 0, 20);
    read_int(c, "retry_base_ms", s.retry_base_ms, 0, 600'000);
    read_int(c, "retry_max_ms", s.retry_max_ms, 0, 3'600'000);
    read_int(c, "max_concurrent", s.max_concurrent, 0, 1'000'000);
    if (auto it = c.find("custom_params"); it != c.end() && !it->is_null()) {
        if (!it->is_object()) invalid("custom_params", "must be a JSON object");
        s.custom_params = *it;
    }
    read_string(c, "api_version", s.api_version);
    if (auto it = c.find("stream_usage"); it != c.end() && !it->is_null()) {
        if (!it->is_boolean()) invalid("stream_usage", "must be true or false");
        s.stream_usage = it->get<bool>();
    }
    for (const auto &[key, value] : c.items()) {
        static const char *known[] = {
            "base_url",     "api_key_env",        "model",           "temperature", "max_tokens",
            "timeout_ms",   "connect_timeout_ms", "idle_timeout_ms", "retries",     "retry_base_ms",
            "retry_max_ms", "max_concurrent",     "custom_params",   "api_version", "stream_usage"};
        bool found = false;
        for (const char *k : known)
            found = found || key == k;
        if (!found) throw Failure(SWH_E_INVALID, "openai: unknown config key '" + key + "'");
    }
    s.base_url = trim_slashes(s.base_url);
    if (s.base_url.rfind("http://", 0) != 0 && s.base_url.rfind("https://", 0) != 0)
        invalid("base_url", "must start with http:// or https://");
    if (s.model.empty()) invalid("model", "must not be empty");
    return s;
}

Json settings_json(const Settings &s) {
    return Json{{"base_url", s.base_url},
                {"api_key_env", s.api_key_env},
                {"model", s.model},
                {"temperature", s.temperature},
                {"max_tokens", s.max_tokens},
                {"timeout_ms", s.timeout_ms},
                {"connect_timeout_ms", s.connect_timeout_ms},
                {"idle_timeout_ms", s.idle_timeout_ms},
                {"retries", s.retries},
                {"retry_base_ms", s.retry_base_ms},
                {"retry_max_ms", s.retry_max_ms},
                {"max_concurrent", s.max_concurrent},
                {"custom_params", s.custom_params},
                {"api_version", s.api_version},
                {"stream_usage", s.stream_usage}};
}

std::string pick_system_prompt(std::string_view request_system, const std::vector<cpp::upstream::Turn> &turns,
                               std::string_view session_config_json) {
    if (!request_system.empty()) return std::string(request_system);
    auto from = [](std::string_view json_text) -> std::string {
        if (json_text.empty()) return {};
        Json j = Json::parse(json_text, nullptr, false);
        if (j.is_object() && j.contains("system_prompt") && j["system_prompt"].is_string())
            return j["system_prompt"].get<std::string>();
        return {};
    };
    for (auto it = turns.rbegin(); it != turns.rend(); ++it) {
        if (it->role == "user") {
            std::string s = from(it->metadata_json);
            if (!s.empty()) return s;
            break;
        }
    }
    return from(session_config_json);
}

std::vector<Attachments> load_attachments(const std::vector<cpp::upstream::Turn> &turns) {
    std::vector<Attachments> out;
    out.reserve(turns.size());
    for (const auto &t : turns)
        out.push_back(t.role == "user" ? multimodal::load_attachments(t.metadata_json, "openai")
                                       : Attachments{});
    return out;
}

Json content_parts(std::string_view text, const Attachments &attachments) {
    Json parts = Json::array();
    if (!text.empty()) parts.push_back({{"type", "text"}, {"text", std::string(text)}});
    for (const auto &a : attachments) {
        const std::string &mime = a.ref.mime_type;
        if (multimodal::is_image(mime)) {
            parts.push_back(
                {{"type", "image_url"},
                 {"image_url", {{"url", "data:" + mime + ";base64," + multimodal::base64_encode(a.bytes)}}}});
        } else if (mime == "application/pdf") {
            parts.push_back(
                {{"type", "file"},
                 {"file",
                  {{"filename", a.ref.name},
                   {"file_data", "data:application/pdf;base64," + multimodal::base64_encode(a.bytes)}}}});
        } else if (mime == "text/plain") {
            parts.push_back({{"type", "text"}, {"text", "Attachment " + a.ref.name + ":\n" + a.bytes}});
        } else {
            throw Failure(SWH_E_INVALID, "openai: attachment '" + a.ref.name + "' has type '" + mime +
                                             "', which Chat Completions cannot take");
        }
    }
    return parts;
}

Json build_body(const Settings &s, const Prompt &p) {
    Json messages = Json::array();
    if (!p.system_prompt.empty()) messages.push_back({{"role", "system"}, {"content", p.system_prompt}});
    for (size_t i = 0; i < p.turns.size(); ++i) {
        const auto &t = p.turns[i];
        if (t.role != "user" && t.role != "assistant" && t.role != "system") continue;
        const bool with_files = t.role == "user" && i < p.attachments.size() && !p.attachments[i].empty();
        messages.push_back({{"role", std::string(t.role)},
                            {"content", with_files ? content_parts(t.content, p.attachments[i])
                                                   : Json(std::string(t.content))}});
    }
    if (!p.assistant_prefix.empty())
        messages.push_back({{"role", "assistant"}, {"content", p.assistant_prefix}});
    Json body = {{"model", p.model.empty() ? s.model : p.model}, {"messages", std::move(messages)}};
    if (s.temperature >= 0) body["temperature"] = s.temperature;
    if (s.max_tokens > 0) body["max_tokens"] = s.max_tokens;
    // custom_params are merged over everything but the conversation and the stream switch
    for (const auto &[key, value] : s.custom_params.items())
        if (key != "messages" && key != "stream" && key != "stream_options") body[key] = value;
    body["stream"] = p.stream;
    if (p.stream && s.stream_usage) body["stream_options"] = {{"include_usage", true}};
    return body;
}

std::string chat_url(const Settings &s) {
    std::string url = s.base_url + "/chat/completions";
    if (!s.api_version.empty()) url += "?api-version=" + s.api_version;
    return url;
}

std::unique_ptr<cpp::upstream::Decoder> make_decoder(bool stream, std::string requested_model) {
    if (stream) return std::make_unique<StreamDecoder>(std::move(requested_model));
    return std::make_unique<WholeDecoder>(std::move(requested_model));
}

} // namespace swh::openai
