#include "openai_wire.hpp"

#include <swarmhost/cpp/sse.hpp>

#include <algorithm>
#include <cstdint>
#include <optional>
#include <utility>

namespace swh::openai {

using cpp::upstream::Emitter;
using cpp::upstream::Problem;
using edge::Failure;

namespace {

using cpp::http_provider::dump;
using cpp::http_provider::excerpt;
using cpp::neutral::find;
using cpp::neutral::string_or;

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
    // The finish reason and usage as reply events, then the metadata; false
    // = the client went away.
    bool finish(Emitter &out) {
        // "function_call" is the legacy name of a tool call stop
        if (!out.finish(finish_reason_ == "function_call" ? "tool_calls" : finish_reason_)) return false;
        if (usage_.is_object() && !usage_out(out)) return false;
        report(out);
        return true;
    }
    bool usage_out(Emitter &out) const {
        cpp::provider::Usage u;
        u.input_tokens = cpp::neutral::count_or_unknown(usage_, "prompt_tokens");
        u.output_tokens = cpp::neutral::count_or_unknown(usage_, "completion_tokens");
        if (const Json *d = find(usage_, "prompt_tokens_details"))
            u.cached_input_tokens = cpp::neutral::count_or_unknown(*d, "cached_tokens");
        if (const Json *d = find(usage_, "completion_tokens_details"))
            u.reasoning_tokens = cpp::neutral::count_or_unknown(*d, "reasoning_tokens");
        return out.usage(u);
    }
    // One entry of message.tool_calls or delta.tool_calls as a reply event;
    // `position` stands in for a missing index. The argument text is passed
    // on as the upstream wrote it, valid JSON or not.
    static bool tool_call(const Json &call, size_t position, Emitter &out) {
        uint32_t index = static_cast<uint32_t>(std::min<size_t>(position, UINT32_MAX));
        if (const Json *i = find(call, "index"); i != nullptr && i->is_number_unsigned())
            index = static_cast<uint32_t>(std::min<uint64_t>(i->get<uint64_t>(), UINT32_MAX));
        const Json *fn = find(call, "function");
        const Json empty = Json::object();
        const Json &f = fn != nullptr ? *fn : empty;
        std::string arguments = string_or(f, "arguments");
        if (const Json *a = find(f, "arguments"); a != nullptr && !a->is_string()) arguments = dump(*a);
        const std::string id = string_or(call, "id"), name = string_or(f, "name");
        if (id.empty() && name.empty() && arguments.empty()) return true;
        return out.tool_call(index, id, name, arguments);
    }
    static bool tool_calls(const Json &holder, Emitter &out) {
        const Json *calls = find(holder, "tool_calls");
        if (calls == nullptr || !calls->is_array()) return true;
        for (size_t i = 0; i < calls->size(); ++i)
            if (!tool_call((*calls)[i], i, out)) return false;
        return true;
    }
    // Thinking text of the servers that send it (DeepSeek, vLLM, llama.cpp).
    static bool reasoning(const Json &holder, Emitter &out) {
        return out.reasoning(string_or(holder, "reasoning_content"));
    }
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
                    if (!reasoning(delta, out)) return false;
                    if (delta.contains("content") && delta["content"].is_string()) {
                        ++pieces_;
                        if (!out.text(delta["content"].get_ref<const std::string &>())) return false;
                    }
                    if (!tool_calls(delta, out)) return false;
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
        finish(out);
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
        if (!reasoning(message, out)) return std::nullopt;
        if (message.contains("content") && message["content"].is_string()) {
            if (!out.text(message["content"].get_ref<const std::string &>())) return std::nullopt;
        }
        if (!tool_calls(message, out)) return std::nullopt;
        finish(out);
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
    if (max_tokens_field != "max_completion_tokens" && max_tokens_field != "max_tokens")
        http::invalid("openai", "max_tokens_field", "must be \"max_completion_tokens\" or \"max_tokens\"");
}

Json Settings::to_json() const {
    Json j = cpp::http_provider::http_json(http);
    j["temperature"] = temperature;
    j["max_tokens"] = max_tokens;
    j["api_version"] = api_version;
    j["stream_usage"] = stream_usage;
    j["max_tokens_field"] = max_tokens_field;
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

namespace {

using cpp::neutral::message_at;
using cpp::neutral::refuse;

// One neutral content part as a Chat Completions part.
Json part_of(const Json &part, const std::string &where) {
    const std::string type = string_or(part, "type");
    if (type == "text") return {{"type", "text"}, {"text", string_or(part, "text")}};
    if (type == "image") {
        const auto image = cpp::neutral::image_of(part, where, "openai");
        Json url = {
            {"url", image.url.empty() ? "data:" + image.media_type + ";base64," + image.base64 : image.url}};
        if (!image.detail.empty()) url["detail"] = image.detail;
        return {{"type", "image_url"}, {"image_url", std::move(url)}};
    }
    if (type == "file") {
        if (const std::string id = string_or(part, "file_id"); !id.empty())
            return {{"type", "file"}, {"file", {{"file_id", id}}}};
        const std::string mime = string_or(part, "media_type");
        if (mime != "application/pdf")
            refuse("openai", where,
                   "is a file of type '" + mime + "', which Chat Completions cannot take (application/pdf)");
        return {{"type", "file"},
                {"file",
                 {{"filename", string_or(part, "filename", "file.pdf")},
                  {"file_data", "data:application/pdf;base64," + string_or(part, "data")}}}};
    }
    refuse("openai", where + ".type", "'" + type + "' is not a content part type (text, image, file)");
}

// A user turn's content: its parts (then any attachments), else the text
// (with attachments as parts), else the plain string.
Json user_content(const Call &call, size_t i, const Json &structured, const Attachments *files) {
    const auto &t = call.turns[i];
    const Json &parts = cpp::neutral::parts_of(structured, i, "openai");
    if (parts.empty())
        return files != nullptr ? content_parts(t.content, *files) : Json(std::string(t.content));
    Json out = Json::array();
    for (size_t j = 0; j < parts.size(); ++j)
        out.push_back(part_of(parts[j], message_at(i) + ".parts[" + std::to_string(j) + "]"));
    if (files != nullptr)
        for (auto &p : content_parts("", *files))
            out.push_back(std::move(p));
    return out;
}

// An assistant turn; its tool calls as Chat Completions wants them back
// (content null when there is no text). Reasoning is not sent: the wire has
// no field for it in a request.
Json assistant_message(const Call &call, size_t i, const Json &structured) {
    const auto &t = call.turns[i];
    const auto calls = cpp::neutral::tool_calls_of(structured, i, "openai");
    if (calls.empty()) return {{"role", "assistant"}, {"content", std::string(t.content)}};
    Json wire = Json::array();
    for (const auto &c : calls)
        wire.push_back({{"id", c.id},
                        {"type", "function"},
                        {"function", {{"name", c.name}, {"arguments", c.arguments}}}});
    return {{"role", "assistant"},
            {"content", t.content.empty() ? Json(nullptr) : Json(std::string(t.content))},
            {"tool_calls", std::move(wire)}};
}

Json tool_message(const Call &call, size_t i, const Json &structured) {
    const std::string id = string_or(structured, "tool_call_id");
    if (id.empty()) refuse("openai", message_at(i), "has role 'tool' but no structured.tool_call_id");
    return {{"role", "tool"}, {"tool_call_id", id}, {"content", std::string(call.turns[i].content)}};
}

Json messages_of(const Call &call, const std::vector<Attachments> &attachments) {
    Json messages = Json::array();
    if (!call.system_prompt.empty())
        messages.push_back({{"role", "system"}, {"content", call.system_prompt}});
    for (size_t i = 0; i < call.turns.size(); ++i) {
        const auto &t = call.turns[i];
        const Json structured = cpp::neutral::structured_of(t.structured_json, i, "openai");
        if (t.role == "system") {
            messages.push_back({{"role", "system"}, {"content", std::string(t.content)}});
        } else if (t.role == "user") {
            const bool with_files = i < attachments.size() && !attachments[i].empty();
            messages.push_back(
                {{"role", "user"},
                 {"content", user_content(call, i, structured, with_files ? &attachments[i] : nullptr)}});
        } else if (t.role == "assistant") {
            messages.push_back(assistant_message(call, i, structured));
        } else if (t.role == "tool") {
            messages.push_back(tool_message(call, i, structured));
        }
    }
    if (!call.assistant_prefix.empty())
        messages.push_back({{"role", "assistant"}, {"content", call.assistant_prefix}});
    return messages;
}

// Keys merged over the body (custom_params, params.extra) may not replace
// the conversation or the stream switch: the plugin decides those.
void merge(Json &body, const Json &keys) {
    for (const auto &[key, value] : keys.items())
        if (key != "messages" && key != "stream" && key != "stream_options") body[key] = value;
}

Json tools_of(const std::vector<cpp::neutral::Tool> &tools) {
    Json out = Json::array();
    for (const auto &t : tools) {
        Json fn = {{"name", t.name}};
        if (!t.description.empty()) fn["description"] = t.description;
        if (!t.parameters.is_null()) fn["parameters"] = t.parameters;
        if (t.strict) fn["strict"] = *t.strict;
        out.push_back({{"type", "function"}, {"function", std::move(fn)}});
    }
    return out;
}

Json response_format_of(const Json &format) {
    if (string_or(format, "type") != "json_schema") return {{"type", string_or(format, "type")}};
    Json schema = {{"name", string_or(format, "name", "response")}, {"schema", format["schema"]}};
    if (const Json *strict = find(format, "strict"); strict != nullptr && strict->is_boolean())
        schema["strict"] = *strict;
    return {{"type", "json_schema"}, {"json_schema", std::move(schema)}};
}

// The neutral generation parameters as Chat Completions fields, then
// params.extra; a key not mapped here is refused by name.
void apply_params(const Settings &s, const Json &neutral, Json &body) {
    cpp::neutral::Params p(neutral, "openai");
    p.drop_cache_marks(); // Chat Completions has no cache marks (a cost hint, not meaning)
    for (const char *key : {"temperature", "top_p", "presence_penalty", "frequency_penalty"})
        if (auto v = p.take_number(key)) body[key] = *v;
    if (auto v = p.take_integer("seed")) body["seed"] = *v;
    if (auto v = p.take_integer("max_output_tokens")) {
        body.erase("max_tokens"); // the config's default gives way to the call's
        body[s.max_tokens_field] = *v;
    }
    if (auto stop = p.take_stop(); !stop.empty()) body["stop"] = stop;
    if (auto v = p.take_string("user")) body["user"] = *v;
    if (auto tools = cpp::neutral::take_tools(p); !tools.empty()) body["tools"] = tools_of(tools);
    if (auto choice = cpp::neutral::take_tool_choice(p))
        body["tool_choice"] = choice->mode == "function"
                                  ? Json{{"type", "function"}, {"function", {{"name", choice->name}}}}
                                  : Json(choice->mode);
    if (auto v = p.take_bool("parallel_tool_calls")) body["parallel_tool_calls"] = *v;
    if (auto format = cpp::neutral::take_response_format(p))
        body["response_format"] = response_format_of(*format);
    if (auto v = p.take_string("reasoning_effort")) body["reasoning_effort"] = *v;
    const Json extra = p.take_extra();
    p.finish();
    merge(body, extra);
}

} // namespace

Json build_body(const Settings &s, const Call &call, const std::vector<Attachments> &attachments) {
    Json body = {{"model", call.model.empty() ? s.http.model : call.model},
                 {"messages", messages_of(call, attachments)}};
    if (s.temperature >= 0) body["temperature"] = s.temperature;
    if (s.max_tokens > 0) body["max_tokens"] = s.max_tokens;
    merge(body, s.http.custom_params);
    apply_params(s, call.params, body);
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
