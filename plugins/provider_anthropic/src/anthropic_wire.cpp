#include "anthropic_wire.hpp"

#include <swarmhost/cpp/sse.hpp>

#include <optional>
#include <utility>

namespace swh::anthropic {

using cpp::upstream::Emitter;
using cpp::upstream::Problem;
using edge::Failure;

namespace {

std::string dump(const Json &j) {
    return j.dump(-1, ' ', false, Json::error_handler_t::replace);
}

void invalid(const std::string &key, const char *what) {
    throw Failure(SWH_E_INVALID, "anthropic: config '" + key + "' " + what);
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

std::string excerpt(std::string_view body) {
    std::string out;
    for (char c : body.substr(0, 160))
        out.push_back(static_cast<unsigned char>(c) < 0x20 ? ' ' : c);
    if (body.size() > 160) out += "...";
    return out;
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
        Json j = Json::parse(body, nullptr, false);
        std::string text = j.is_discarded() ? std::string() : error_text(j);
        return text.empty() ? excerpt(body) : text;
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
            Json j = Json::parse(ev.data, nullptr, false);
            if (j.is_discarded() || !j.is_object()) {
                problem = Problem{SWH_E_UPSTREAM, "the stream carried an event that is not a JSON object: " +
                                                      excerpt(ev.data)};
                return false;
            }
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
        if (problem) return problem;
        if (!ok && parser_.failed())
            return Problem{SWH_E_UPSTREAM, "the stream exceeded the SSE line/event size limit"};
        return std::nullopt;
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
        if (str_or(j, "type") == "error")
            return Problem{SWH_E_UPSTREAM, "the upstream reported an error: " + error_text(j)};
        if (str_or(j, "type") != "message" || !j.contains("content") || !j["content"].is_array())
            return Problem{SWH_E_UPSTREAM, "the answer is not a message: " + excerpt(body_)};
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
    std::string body_;
};

} // namespace

Settings parse_settings(const Json &c) {
    if (!c.is_object()) throw Failure(SWH_E_INVALID, "anthropic: config must be a JSON object");
    Settings s;
    read_string(c, "base_url", s.base_url);
    read_string(c, "api_key_env", s.api_key_env);
    read_string(c, "model", s.model);
    read_string(c, "anthropic_version", s.anthropic_version);
    if (auto it = c.find("temperature"); it != c.end() && !it->is_null()) {
        if (!it->is_number()) invalid("temperature", "must be a number");
        s.temperature = it->get<double>();
        if (s.temperature > 1) invalid("temperature", "must be <= 1 (negative = not sent)");
    }
    read_int(c, "max_tokens", s.max_tokens, 1, 10'000'000);
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
    for (const auto &[key, value] : c.items()) {
        static const char *known[] = {"base_url",          "api_key_env",        "model",
                                      "anthropic_version", "temperature",        "max_tokens",
                                      "timeout_ms",        "connect_timeout_ms", "idle_timeout_ms",
                                      "retries",           "retry_base_ms",      "retry_max_ms",
                                      "max_concurrent",    "custom_params"};
        bool found = false;
        for (const char *k : known)
            found = found || key == k;
        if (!found) throw Failure(SWH_E_INVALID, "anthropic: unknown config key '" + key + "'");
    }
    while (!s.base_url.empty() && s.base_url.back() == '/')
        s.base_url.pop_back();
    if (s.base_url.rfind("http://", 0) != 0 && s.base_url.rfind("https://", 0) != 0)
        invalid("base_url", "must start with http:// or https://");
    if (s.model.empty()) invalid("model", "must not be empty");
    if (s.anthropic_version.empty()) invalid("anthropic_version", "must not be empty");
    return s;
}

Json settings_json(const Settings &s) {
    return Json{{"base_url", s.base_url},
                {"api_key_env", s.api_key_env},
                {"model", s.model},
                {"anthropic_version", s.anthropic_version},
                {"temperature", s.temperature},
                {"max_tokens", s.max_tokens},
                {"timeout_ms", s.timeout_ms},
                {"connect_timeout_ms", s.connect_timeout_ms},
                {"idle_timeout_ms", s.idle_timeout_ms},
                {"retries", s.retries},
                {"retry_base_ms", s.retry_base_ms},
                {"retry_max_ms", s.retry_max_ms},
                {"max_concurrent", s.max_concurrent},
                {"custom_params", s.custom_params}};
}

std::string pick_system_prompt(std::string_view request_system, const std::vector<cpp::upstream::Turn> &turns,
                               std::string_view session_config_json) {
    if (!request_system.empty()) return std::string(request_system);
    auto from = [](std::string_view json_text) -> std::string {
        if (json_text.empty()) return {};
        Json j = Json::parse(json_text, nullptr, false);
        return str_or(j, "system_prompt");
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
        out.push_back(t.role == "user" ? multimodal::load_attachments(t.metadata_json, "anthropic")
                                       : Attachments{});
    return out;
}

Json content_blocks(std::string_view text, const Attachments &attachments) {
    Json blocks = Json::array();
    auto base64_source = [](const multimodal::LoadedAttachment &a) {
        return Json{{"type", "base64"},
                    {"media_type", a.ref.mime_type},
                    {"data", multimodal::base64_encode(a.bytes)}};
    };
    // Files first, then the question: the order Anthropic recommends.
    for (const auto &a : attachments) {
        const std::string &mime = a.ref.mime_type;
        if (multimodal::is_image(mime))
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

Json build_body(const Settings &s, const Prompt &p, std::string &trimmed_ws) {
    std::string system = p.system_prompt;
    Json messages = Json::array();
    for (size_t i = 0; i < p.turns.size(); ++i) {
        const auto &t = p.turns[i];
        if (t.role == "system") { // the API has no system turns: they join the system field
            if (!t.content.empty()) system += (system.empty() ? "" : "\n\n") + std::string(t.content);
            continue;
        }
        if (t.role != "user" && t.role != "assistant") continue;
        if (t.role == "user" && i < p.attachments.size() && !p.attachments[i].empty()) {
            messages.push_back({{"role", "user"}, {"content", content_blocks(t.content, p.attachments[i])}});
            continue;
        }
        if (t.content.empty()) continue; // the API rejects empty text blocks
        messages.push_back({{"role", std::string(t.role)}, {"content", std::string(t.content)}});
    }
    trimmed_ws.clear();
    if (!p.assistant_prefix.empty()) {
        std::string prefill = p.assistant_prefix;
        size_t keep = prefill.find_last_not_of(" \t\r\n");
        if (keep == std::string::npos) {
            trimmed_ws = prefill; // whitespace only: no prefill turn at all
        } else {
            trimmed_ws = prefill.substr(keep + 1);
            prefill.erase(keep + 1);
            messages.push_back({{"role", "assistant"}, {"content", prefill}});
        }
    }
    Json body = {{"model", p.model.empty() ? s.model : p.model},
                 {"max_tokens", s.max_tokens},
                 {"messages", std::move(messages)}};
    if (!system.empty()) body["system"] = system;
    if (s.temperature >= 0) body["temperature"] = s.temperature;
    for (const auto &[key, value] : s.custom_params.items())
        if (key != "messages" && key != "stream") body[key] = value;
    body["stream"] = p.stream;
    return body;
}

std::string messages_url(const Settings &s) {
    // base_url is the API root without /v1 (as in Anthropic's own clients);
    // one ending in /v1 is accepted too.
    const std::string_view b = s.base_url;
    if (b.size() >= 3 && b.substr(b.size() - 3) == "/v1") return s.base_url + "/messages";
    return s.base_url + "/v1/messages";
}

std::unique_ptr<cpp::upstream::Decoder> make_decoder(bool stream, std::string requested_model,
                                                     std::string trimmed_ws) {
    if (stream) return std::make_unique<StreamDecoder>(std::move(requested_model), std::move(trimmed_ws));
    return std::make_unique<WholeDecoder>(std::move(requested_model), std::move(trimmed_ws));
}

} // namespace swh::anthropic
