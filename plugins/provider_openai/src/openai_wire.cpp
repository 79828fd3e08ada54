#include "openai_wire.hpp"

#include <swarmhost/cpp/json_text.hpp>
#include <swarmhost/cpp/sse.hpp>

#include <simdjson.h>

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

// The answers are read with simdjson's DOM parser rather than nlohmann's:
// a proxied completion spent a fifth of its instructions building and
// destroying the reply's nlohmann tree (issue 17, callgrind), and a stream
// pays that per chunk. The error answers, rare, still go through nlohmann
// (error_text) for their messages.
namespace dom = simdjson::dom;

// Answers nest a handful of levels (choices, message, tool_calls, function):
// a parser's stacks are sized for 64, not simdjson's default 1024 (9 KB). A
// parser lives for one parse: one kept by each decoder held its buffers, some
// 12 KB, for every open stream between its chunks (issue 17, target 6: 10,000
// streams); allocating them again costs a streamed chunk far less than the
// rest of its relay. (One parser per thread would pin this plugin in memory:
// glibc keeps a library loaded while a thread has destructors of its
// thread_local objects to run, and a reload unloads the plugin.)
constexpr std::size_t kMaxDepth = 64;

// `text` as a JSON object in `out`, valid while `parser` lives and parses
// nothing else; the error otherwise (INCORRECT_TYPE when it is JSON but not
// an object).
simdjson::error_code parse_object(dom::parser &parser, std::string_view text, dom::object &out) {
    if (auto e = parser.allocate(text.size(), kMaxDepth); e != simdjson::SUCCESS)
        return e; // the shallow stacks
    dom::element doc;
    if (auto e = parser.parse(text.data(), text.size(), true).get(doc); e != simdjson::SUCCESS) return e;
    return doc.get_object().get(out);
}

// What a problem says about a text parse_object refused: `otherwise` (e.g.
// "not JSON") unless it nests too deep, then the text's start.
std::string refused(simdjson::error_code error, std::string_view otherwise, std::string_view text) {
    const std::string why = error == simdjson::DEPTH_ERROR
                                ? "JSON nested deeper than " + std::to_string(kMaxDepth) + " levels"
                                : std::string(otherwise);
    return why + ": " + excerpt(text);
}

// The string member `key` of `obj`, else "" (absent, or not a string).
std::string_view string_member(dom::object obj, std::string_view key) {
    std::string_view value;
    return obj[key].get_string().get(value) == simdjson::SUCCESS ? value : std::string_view();
}

// The object member `key`, if `obj` has one that is an object.
std::optional<dom::object> object_member(dom::object obj, std::string_view key) {
    dom::object value;
    if (obj[key].get_object().get(value) != simdjson::SUCCESS) return std::nullopt;
    return value;
}

// A count of usage, -1 when absent or not an integer (as count_or_unknown).
int64_t count_member(dom::object obj, std::string_view key) {
    int64_t value = -1;
    return obj[key].get_int64().get(value) == simdjson::SUCCESS ? value : -1;
}

namespace json_text = cpp::json_text;

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
        if (!usage_json_.empty() && !out.usage(usage_)) return false;
        report(out);
        return true;
    }
    // One entry of message.tool_calls or delta.tool_calls as a reply event;
    // `position` stands in for a missing index. The argument text is passed
    // on as the upstream wrote it, valid JSON or not.
    static bool tool_call(dom::element call_element, size_t position, Emitter &out) {
        dom::object call;
        if (call_element.get_object().get(call) != simdjson::SUCCESS) return true; // nothing to tell
        uint32_t index = static_cast<uint32_t>(std::min<size_t>(position, UINT32_MAX));
        if (uint64_t i = 0; call["index"].get_uint64().get(i) == simdjson::SUCCESS)
            index = static_cast<uint32_t>(std::min<uint64_t>(i, UINT32_MAX));
        std::string arguments;
        std::string_view name;
        if (dom::object fn; call["function"].get_object().get(fn) == simdjson::SUCCESS) {
            name = string_member(fn, "name");
            if (dom::element a; fn["arguments"].get(a) == simdjson::SUCCESS)
                arguments = a.is_string() ? std::string(a.get_string().value_unsafe()) : simdjson::minify(a);
        }
        const std::string_view id = string_member(call, "id");
        if (id.empty() && name.empty() && arguments.empty()) return true;
        return out.tool_call(index, id, name, arguments);
    }
    static bool tool_calls(dom::object holder, Emitter &out) {
        dom::array calls;
        if (holder["tool_calls"].get_array().get(calls) != simdjson::SUCCESS) return true;
        size_t position = 0;
        for (dom::element call : calls)
            if (!tool_call(call, position++, out)) return false;
        return true;
    }
    // Thinking text of the servers that send it (DeepSeek, vLLM, llama.cpp).
    static bool reasoning(dom::object holder, Emitter &out) {
        return out.reasoning(string_member(holder, "reasoning_content"));
    }
    // The metadata the host stores with the reply, written as text.
    void report(Emitter &out) {
        std::string meta = "{\"finish_reason\":";
        json_text::append_string_or_null(meta, finish_reason_);
        meta += ",\"model\":";
        json_text::append_string_or_null(meta, model_);
        if (!fingerprint_.empty()) {
            meta += ",\"system_fingerprint\":";
            json_text::append_string(meta, fingerprint_);
        }
        if (!usage_json_.empty()) meta += ",\"usage\":" + usage_json_;
        meta += '}';
        out.metadata(id_, meta);
    }
    void note(dom::object obj) {
        for (const auto field : obj) {
            const std::string_view key = field.key;
            if (key == "id" || key == "model" || key == "system_fingerprint") {
                std::string_view text;
                if (field.value.get_string().get(text) != simdjson::SUCCESS) continue;
                (key == "id" ? id_ : key == "model" ? model_ : fingerprint_).assign(text);
            } else if (key == "usage" && field.value.is_object()) {
                const dom::object usage = field.value.get_object().value_unsafe();
                usage_json_ = simdjson::minify(field.value);
                usage_.input_tokens = count_member(usage, "prompt_tokens");
                usage_.output_tokens = count_member(usage, "completion_tokens");
                usage_.cached_input_tokens = usage_.reasoning_tokens = -1;
                if (auto d = object_member(usage, "prompt_tokens_details"))
                    usage_.cached_input_tokens = count_member(*d, "cached_tokens");
                if (auto d = object_member(usage, "completion_tokens_details"))
                    usage_.reasoning_tokens = count_member(*d, "reasoning_tokens");
            }
        }
    }
    // The first choice, when `obj` has a non-empty choices array.
    static std::optional<dom::element> first_choice(dom::object obj) {
        dom::array choices;
        dom::element first;
        if (obj["choices"].get_array().get(choices) != simdjson::SUCCESS) return std::nullopt;
        if (choices.at(0).get(first) != simdjson::SUCCESS) return std::nullopt;
        return first;
    }
    void note_finish_reason(dom::object choice) {
        std::string_view reason;
        if (choice["finish_reason"].get_string().get(reason) == simdjson::SUCCESS)
            finish_reason_.assign(reason);
    }
    std::string id_, model_, finish_reason_, fingerprint_;
    std::string usage_json_; // the upstream's usage object as text; empty = none
    cpp::provider::Usage usage_;
};

class StreamDecoder final : public DecoderBase {
  public:
    using DecoderBase::DecoderBase;
    std::optional<Problem> body(std::string_view bytes, Emitter &out) override {
        std::optional<Problem> problem;
        bool ok = parser_sse_.feed(bytes, [&](const cpp::sse::Event &ev) {
            if (ev.data == "[DONE]") {
                done_ = true;
                return true;
            }
            dom::parser parser;
            dom::object j;
            if (const auto error = parse_object(parser, ev.data, j); error != simdjson::SUCCESS) {
                problem = Problem{SWH_E_UPSTREAM, "the stream carried an event that is " +
                                                      refused(error, "not a JSON object", ev.data)};
                return false;
            }
            if (dom::element e; j["error"].get(e) == simdjson::SUCCESS) {
                problem = Problem{SWH_E_UPSTREAM, "the upstream reported an error mid-stream: " +
                                                      error_text(Json::parse(ev.data, nullptr, false))};
                return false;
            }
            note(j);
            dom::object choice;
            if (auto first = first_choice(j); first && first->get_object().get(choice) == simdjson::SUCCESS) {
                note_finish_reason(choice);
                if (dom::object delta; choice["delta"].get_object().get(delta) == simdjson::SUCCESS) {
                    if (!reasoning(delta, out)) return false;
                    if (std::string_view text; delta["content"].get_string().get(text) == simdjson::SUCCESS) {
                        ++pieces_;
                        if (!out.text(text)) return false;
                    }
                    if (!tool_calls(delta, out)) return false;
                }
            }
            return true;
        });
        return cpp::http_provider::feed_outcome(ok, parser_sse_, std::move(problem));
    }
    std::optional<Problem> end(Emitter &out) override {
        if (!done_ && finish_reason_.empty())
            return Problem{SWH_E_UPSTREAM, id_.empty() ? "the answer is not an OpenAI event stream"
                                                       : "the stream ended before its end ([DONE])"};
        finish(out);
        return std::nullopt;
    }

  private:
    cpp::sse::Parser parser_sse_;
    bool done_ = false;
    size_t pieces_ = 0;
};

class WholeDecoder final : public DecoderBase {
  public:
    using DecoderBase::DecoderBase;
    std::optional<Problem> body(std::string_view bytes, Emitter &) override { return body_.add(bytes); }
    std::optional<Problem> end(Emitter &out) override {
        dom::parser parser;
        dom::object j;
        if (const auto error = parse_object(parser, body_.text(), j); error != simdjson::SUCCESS)
            return Problem{SWH_E_UPSTREAM, "the answer is " + refused(error, "not JSON", body_.text())};
        if (dom::element e; j["error"].get(e) == simdjson::SUCCESS)
            return Problem{SWH_E_UPSTREAM, "the upstream reported an error: " +
                                               error_text(Json::parse(body_.text(), nullptr, false))};
        dom::object choice;
        dom::element message_element;
        const auto first = first_choice(j);
        if (!first || first->get_object().get(choice) != simdjson::SUCCESS ||
            choice["message"].get(message_element) != simdjson::SUCCESS)
            return Problem{SWH_E_UPSTREAM, "the answer has no choices[0].message: " + excerpt(body_.text())};
        note(j);
        note_finish_reason(choice);
        if (dom::object message; message_element.get_object().get(message) == simdjson::SUCCESS) {
            if (!reasoning(message, out)) return std::nullopt;
            if (std::string_view text; message["content"].get_string().get(text) == simdjson::SUCCESS) {
                if (!out.text(text)) return std::nullopt;
            }
            if (!tool_calls(message, out)) return std::nullopt;
        }
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

// An assistant turn with tool calls, as Chat Completions wants them back
// (content null when there is no text). Reasoning is not sent: the wire has
// no field for it in a request.
Json assistant_with_calls(std::string_view content, const std::vector<cpp::neutral::ToolCall> &calls) {
    Json wire = Json::array();
    for (const auto &c : calls)
        wire.push_back({{"id", c.id},
                        {"type", "function"},
                        {"function", {{"name", c.name}, {"arguments", c.arguments}}}});
    return {{"role", "assistant"},
            {"content", content.empty() ? Json(nullptr) : Json(std::string(content))},
            {"tool_calls", std::move(wire)}};
}

// {"role":<role>,"content":<content>} appended to `out`.
void append_text_message(std::string &out, std::string_view role, std::string_view content) {
    out += "{\"role\":";
    json_text::append_string(out, role);
    out += ",\"content\":";
    json_text::append_string(out, content);
    out += '}';
}

// The conversation as the JSON text of "messages". Plain text turns, nearly
// every turn, are written straight into the text; parts, attachments and
// tool calls are built as JSON values and dumped in place.
std::string messages_of(const Call &call, const std::vector<Attachments> &attachments) {
    std::string out = "[";
    const auto next = [&out] {
        if (out.size() > 1) out += ',';
    };
    if (!call.system_prompt.empty()) {
        next();
        append_text_message(out, "system", call.system_prompt);
    }
    for (size_t i = 0; i < call.turns.size(); ++i) {
        const auto &t = call.turns[i];
        const Json structured = cpp::neutral::structured_of(t.structured_json, i, "openai");
        if (t.role == "system") {
            next();
            append_text_message(out, "system", t.content);
        } else if (t.role == "user") {
            const bool with_files = i < attachments.size() && !attachments[i].empty();
            next();
            if (!with_files && cpp::neutral::parts_of(structured, i, "openai").empty()) {
                append_text_message(out, "user", t.content);
            } else {
                out += "{\"role\":\"user\",\"content\":";
                out += dump(user_content(call, i, structured, with_files ? &attachments[i] : nullptr));
                out += '}';
            }
        } else if (t.role == "assistant") {
            const auto calls = cpp::neutral::tool_calls_of(structured, i, "openai");
            next();
            if (calls.empty())
                append_text_message(out, "assistant", t.content);
            else
                out += dump(assistant_with_calls(t.content, calls));
        } else if (t.role == "tool") {
            const std::string id = string_or(structured, "tool_call_id");
            if (id.empty()) refuse("openai", message_at(i), "has role 'tool' but no structured.tool_call_id");
            next();
            out += "{\"role\":\"tool\",\"tool_call_id\":";
            json_text::append_string(out, id);
            out += ",\"content\":";
            json_text::append_string(out, t.content);
            out += '}';
        }
    }
    if (!call.assistant_prefix.empty()) {
        next();
        append_text_message(out, "assistant", call.assistant_prefix);
    }
    out += ']';
    return out;
}

// The body's top-level members as JSON text, in the order first set. A later
// set replaces a member's value, as assigning into a JSON object would: the
// config's defaults, then custom_params, the call's parameters, params.extra.
class Members {
  public:
    Members() { members_.reserve(8); }
    void set_text(std::string_view key, std::string text) {
        for (auto &[k, v] : members_)
            if (k == key) {
                v = std::move(text);
                return;
            }
        members_.emplace_back(std::string(key), std::move(text));
    }
    void set(std::string_view key, const Json &value) { set_text(key, dump(value)); }
    void set_string(std::string_view key, std::string_view value) {
        std::string text;
        json_text::append_string(text, value);
        set_text(key, std::move(text));
    }
    void set_int(std::string_view key, int64_t value) {
        std::string text;
        json_text::append_int(text, value);
        set_text(key, std::move(text));
    }
    void set_bool(std::string_view key, bool value) { set_text(key, value ? "true" : "false"); }
    void erase(std::string_view key) {
        std::erase_if(members_, [key](const auto &member) { return member.first == key; });
    }
    std::string text() const {
        size_t size = 2;
        for (const auto &[k, v] : members_)
            size += k.size() + v.size() + 4;
        std::string out;
        out.reserve(size);
        out += '{';
        for (const auto &[k, v] : members_) {
            if (out.size() > 1) out += ',';
            json_text::append_string(out, k); // a key of custom_params or extra may need escapes
            out += ':';
            out += v;
        }
        out += '}';
        return out;
    }

  private:
    std::vector<std::pair<std::string, std::string>> members_;
};

// Keys merged over the body (custom_params, params.extra) may not replace
// the conversation or the stream switch: the plugin decides those. A
// "model" among them is the model asked for.
void merge(Members &body, const Json &keys, std::string &model) {
    for (const auto &[key, value] : keys.items()) {
        if (key == "messages" || key == "stream" || key == "stream_options") continue;
        if (key == "model") model = value.is_string() ? value.get<std::string>() : std::string();
        body.set(key, value);
    }
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
void apply_params(const Settings &s, const Json &neutral, Members &body, std::string &model) {
    if (!neutral.is_object() || neutral.empty()) return; // most calls carry none: nothing to map or refuse
    cpp::neutral::Params p(neutral, "openai");
    p.drop_cache_marks(); // Chat Completions has no cache marks (a cost hint, not meaning)
    for (const char *key : {"temperature", "top_p", "presence_penalty", "frequency_penalty"})
        if (auto v = p.take_number(key)) body.set(key, *v);
    if (auto v = p.take_integer("seed")) body.set_int("seed", *v);
    if (auto v = p.take_integer("max_output_tokens")) {
        body.erase("max_tokens"); // the config's default gives way to the call's
        body.set_int(s.max_tokens_field, *v);
    }
    if (auto stop = p.take_stop(); !stop.empty()) body.set("stop", stop);
    if (auto v = p.take_string("user")) body.set_string("user", *v);
    if (auto tools = cpp::neutral::take_tools(p); !tools.empty()) body.set("tools", tools_of(tools));
    if (auto choice = cpp::neutral::take_tool_choice(p))
        body.set("tool_choice", choice->mode == "function"
                                    ? Json{{"type", "function"}, {"function", {{"name", choice->name}}}}
                                    : Json(choice->mode));
    if (auto v = p.take_bool("parallel_tool_calls")) body.set_bool("parallel_tool_calls", *v);
    if (auto format = cpp::neutral::take_response_format(p))
        body.set("response_format", response_format_of(*format));
    if (auto v = p.take_string("reasoning_effort")) body.set_string("reasoning_effort", *v);
    const Json extra = p.take_extra();
    p.finish();
    merge(body, extra, model);
}

} // namespace

Body build_body(const Settings &s, const Call &call, const std::vector<Attachments> &attachments) {
    Body out;
    out.model = call.model.empty() ? s.http.model : call.model;
    Members body;
    body.set_string("model", out.model);
    body.set_text("messages", messages_of(call, attachments));
    if (s.temperature >= 0) body.set("temperature", s.temperature);
    if (s.max_tokens > 0) body.set_int("max_tokens", s.max_tokens);
    merge(body, s.http.custom_params, out.model);
    apply_params(s, call.params, body, out.model);
    body.set_bool("stream", call.stream);
    if (call.stream && s.stream_usage) body.set_text("stream_options", "{\"include_usage\":true}");
    out.json = body.text();
    return out;
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
