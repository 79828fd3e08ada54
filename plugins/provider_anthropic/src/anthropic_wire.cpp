#include "anthropic_wire.hpp"

#include <swarmhost/cpp/sse.hpp>

#include <algorithm>
#include <cstdint>
#include <map>
#include <optional>
#include <utility>

namespace swh::anthropic {

using cpp::upstream::Emitter;
using cpp::upstream::Problem;
using edge::Failure;

namespace {

using cpp::http_provider::dump;
using cpp::http_provider::excerpt;
using cpp::neutral::find;
using cpp::neutral::message_at;
using cpp::neutral::refuse;
using cpp::neutral::string_or;

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
    // The finish reason and usage as reply events, then the metadata; false
    // = the client went away.
    bool finish(Emitter &out) {
        if (!stop_.empty() && !out.finish(finish_reason_of(stop_))) return false;
        if (usage_.is_object() && !out.usage(usage_event())) return false;
        report(out);
        return true;
    }
    // Anthropic's input_tokens leaves out what was read from or written to
    // the cache; the neutral input count is all of the prompt.
    cpp::provider::Usage usage_event() const {
        cpp::provider::Usage u;
        const int64_t in = cpp::neutral::count_or_unknown(usage_, "input_tokens");
        const int64_t read = cpp::neutral::count_or_unknown(usage_, "cache_read_input_tokens");
        const int64_t written = cpp::neutral::count_or_unknown(usage_, "cache_creation_input_tokens");
        u.input_tokens = in < 0 ? -1 : cpp::neutral::count_sum(cpp::neutral::count_sum(in, read), written);
        u.cached_input_tokens = read;
        u.output_tokens = cpp::neutral::count_or_unknown(usage_, "output_tokens");
        return u; // thinking tokens are not reported apart: reasoning stays -1
    }
    void report(Emitter &out) {
        Json meta = {{"model", model_.empty() ? Json(nullptr) : Json(model_)},
                     {"finish_reason", stop_.empty() ? Json(nullptr) : Json(finish_reason_of(stop_))},
                     {"stop_reason", stop_.empty() ? Json(nullptr) : Json(stop_)}};
        // Which stop sequence ended the reply: the neutral finish reason
        // ("stop") cannot say, and a client of Anthropic's wire reads it.
        if (!stop_sequence_.empty()) meta["stop_sequence"] = stop_sequence_;
        if (!usage_.is_null()) {
            Json usage = usage_;
            // Counts only (a float such as 3.7e42 is no count: converting it
            // is undefined, which fuzz_vendor_stream found).
            const int64_t in = std::max<int64_t>(0, cpp::neutral::count_or_unknown(usage_, "input_tokens"));
            const int64_t outn =
                std::max<int64_t>(0, cpp::neutral::count_or_unknown(usage_, "output_tokens"));
            usage["prompt_tokens"] = in;
            usage["completion_tokens"] = outn;
            usage["total_tokens"] = cpp::neutral::count_sum(in, outn);
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
    std::string model_, ws_, id_, stop_, stop_sequence_;
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
            } else if (type == "content_block_start") {
                return block_start(j, out);
            } else if (type == "content_block_delta") {
                return block_delta(j, out);
            } else if (type == "content_block_stop") {
                return block_stop(j, out);
            } else if (type == "message_delta") {
                const Json &d = j.contains("delta") ? j["delta"] : Json();
                stop_ = str_or(d, "stop_reason", stop_);
                stop_sequence_ = str_or(d, "stop_sequence", stop_sequence_);
                if (j.contains("usage")) merge_usage(j["usage"]);
            } else if (type == "message_stop") {
                stopped_ = true;
            } else if (type == "error") {
                const std::string etype = j.contains("error") ? str_or(j["error"], "type") : "";
                problem = Problem{etype == "rate_limit_error" ? SWH_E_RATE_LIMITED : SWH_E_UPSTREAM,
                                  "the upstream reported an error mid-stream: " + error_text(j)};
                return false;
            }
            // ping and unknown events: nothing to do
            return true;
        });
        return cpp::http_provider::feed_outcome(ok, parser_, std::move(problem));
    }
    std::optional<Problem> end(Emitter &out) override {
        if (!stopped_)
            return Problem{SWH_E_UPSTREAM, started_ ? "the stream ended before message_stop"
                                                    : "the answer is not an Anthropic event stream"};
        finish(out);
        return std::nullopt;
    }

  private:
    // A content block of the stream, by its block index. Tool calls are
    // numbered apart (0, 1, ...): block indexes count text and thinking too.
    struct Block {
        std::string type;
        uint32_t tool = 0;      // tool_use: the tool call's index
        bool has_input = false; // tool_use: a non-empty input fragment came
    };
    static int64_t index_of(const Json &j) {
        const Json *i = find(j, "index");
        return i != nullptr && i->is_number_integer() ? i->get<int64_t>() : -1;
    }
    bool block_start(const Json &j, Emitter &out) {
        const Json *cb = find(j, "content_block");
        if (cb == nullptr) return true;
        Block &block = blocks_[index_of(j)];
        block.type = str_or(*cb, "type");
        if (block.type == "tool_use") {
            block.tool = next_tool_++;
            return out.tool_call(block.tool, str_or(*cb, "id"), str_or(*cb, "name"), "");
        }
        if (block.type == "text") return relay(str_or(*cb, "text"), out);
        return true;
    }
    bool block_delta(const Json &j, Emitter &out) {
        const Json *d = find(j, "delta");
        if (d == nullptr) return true;
        const std::string type = str_or(*d, "type");
        if (type == "text_delta") return relay(str_or(*d, "text"), out);
        if (type == "thinking_delta") return out.reasoning(str_or(*d, "thinking"));
        if (type == "signature_delta") return out.signature(str_or(*d, "signature"));
        if (type == "input_json_delta") {
            auto it = blocks_.find(index_of(j));
            const std::string piece = str_or(*d, "partial_json");
            if (it == blocks_.end() || it->second.type != "tool_use" || piece.empty()) return true;
            it->second.has_input = true;
            return out.tool_call(it->second.tool, "", "", piece);
        }
        return true;
    }
    // A tool call without input fragments has the empty object as input,
    // as in a non-streamed answer.
    bool block_stop(const Json &j, Emitter &out) {
        auto it = blocks_.find(index_of(j));
        if (it == blocks_.end() || it->second.type != "tool_use" || it->second.has_input) return true;
        return out.tool_call(it->second.tool, "", "", "{}");
    }

    cpp::sse::Parser parser_;
    bool started_ = false, stopped_ = false;
    std::map<int64_t, Block> blocks_;
    uint32_t next_tool_ = 0;
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
        stop_sequence_ = str_or(j, "stop_sequence");
        if (j.contains("usage")) merge_usage(j["usage"]);
        uint32_t tool = 0; // tool calls are numbered apart from the blocks
        for (const auto &block : j["content"])
            if (!emit_block(block, tool, out)) return std::nullopt;
        finish(out);
        return std::nullopt;
    }

  private:
    // One block of the answer, in order: text, thinking (and its signature)
    // or a tool call whose input goes on as its JSON text.
    bool emit_block(const Json &block, uint32_t &tool, Emitter &out) {
        const std::string type = str_or(block, "type");
        if (type == "text") return relay(str_or(block, "text"), out);
        if (type == "thinking")
            return out.reasoning(str_or(block, "thinking")) && out.signature(str_or(block, "signature"));
        if (type != "tool_use") return true; // redacted_thinking, server tools: not relayed
        const Json *input = find(block, "input");
        return out.tool_call(tool++, str_or(block, "id"), str_or(block, "name"),
                             input == nullptr ? "{}" : dump(*input));
    }

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
    j["drop_params"] = drop_params;
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

namespace {

// A neutral cache mark goes back on the block it was on (cache_control).
Json marked(Json block, const Json &mark) {
    if (!mark.is_null()) block["cache_control"] = mark;
    return block;
}

// One neutral content part as a Messages content block.
Json block_of(const Json &part, const std::string &where) {
    const std::string type = string_or(part, "type");
    if (type == "text") return {{"type", "text"}, {"text", string_or(part, "text")}};
    if (type == "image") {
        const auto image = cpp::neutral::image_of(part, where, "anthropic");
        if (!image.url.empty()) return {{"type", "image"}, {"source", {{"type", "url"}, {"url", image.url}}}};
        return {{"type", "image"},
                {"source", {{"type", "base64"}, {"media_type", image.media_type}, {"data", image.base64}}}};
    }
    if (type == "file") {
        if (!string_or(part, "file_id").empty())
            refuse("anthropic", where,
                   "is a file by id, which the Messages API cannot resolve (send its data)");
        const std::string mime = string_or(part, "media_type");
        if (mime != "application/pdf")
            refuse("anthropic", where,
                   "is a file of type '" + mime + "', which the Messages API cannot take (application/pdf)");
        return {{"type", "document"},
                {"source", {{"type", "base64"}, {"media_type", mime}, {"data", string_or(part, "data")}}}};
    }
    refuse("anthropic", where + ".type", "'" + type + "' is not a content part type (text, image, file)");
}

// A user turn with parts: files of its attachments first (as before), then
// its parts in order; empty text blocks are left out (the API refuses them).
Json user_blocks(size_t i, const Json &parts, const Attachments *files) {
    Json blocks = files != nullptr ? content_blocks("", *files) : Json::array();
    for (size_t j = 0; j < parts.size(); ++j) {
        Json block = marked(block_of(parts[j], message_at(i) + ".parts[" + std::to_string(j) + "]"),
                            cpp::neutral::cache_mark_of(parts[j]));
        if (block["type"] == "text" && block["text"] == "") continue;
        blocks.push_back(std::move(block));
    }
    return blocks;
}

// A stored tool call's arguments as the input object the API wants.
Json input_of(const cpp::neutral::ToolCall &c, size_t i, size_t k) {
    if (c.arguments.empty()) return Json::object(); // a call without arguments
    Json input = Json::parse(c.arguments, nullptr, false);
    if (input.is_discarded() || !input.is_object())
        refuse("anthropic", message_at(i) + ".tool_calls[" + std::to_string(k) + "].arguments",
               "is not a JSON object, which Anthropic's tool_use input must be");
    return input;
}

// An assistant turn as blocks: signed thinking first, the text, then the
// tool calls; a plain string when it is text only; null when empty.
Json assistant_content(const Call &call, size_t i, const Json &structured) {
    const auto &t = call.turns[i];
    Json blocks = Json::array();
    const std::string thinking = string_or(structured, "reasoning");
    const std::string signature = string_or(structured, "reasoning_signature");
    if (!thinking.empty() && !signature.empty()) // unsigned thinking cannot be sent back
        blocks.push_back({{"type", "thinking"}, {"thinking", thinking}, {"signature", signature}});
    const auto calls = cpp::neutral::tool_calls_of(structured, i, "anthropic");
    const Json mark = cpp::neutral::cache_mark_of(structured);
    if (blocks.empty() && calls.empty() && mark.is_null())
        return t.content.empty() ? Json() : Json(std::string(t.content));
    if (!t.content.empty())
        blocks.push_back(marked({{"type", "text"}, {"text", std::string(t.content)}}, mark));
    for (size_t k = 0; k < calls.size(); ++k)
        blocks.push_back(marked({{"type", "tool_use"},
                                 {"id", calls[k].id},
                                 {"name", calls[k].name},
                                 {"input", input_of(calls[k], i, k)}},
                                calls[k].cache_control));
    return blocks.empty() ? Json() : blocks;
}

Json tool_result(const Call &call, size_t i, const Json &structured) {
    const std::string id = string_or(structured, "tool_call_id");
    if (id.empty()) refuse("anthropic", message_at(i), "has role 'tool' but no structured.tool_call_id");
    Json block = {{"type", "tool_result"}, {"tool_use_id", id}};
    std::string_view text = call.turns[i].content;
    // A failed result's text starts "Error: " for providers without the
    // flag (docs/http-api.md): Anthropic's wire has it, so the flag goes
    // and the text is sent as the tool wrote it.
    if (const Json *failed = find(structured, "is_error"); failed != nullptr && *failed == true) {
        block["is_error"] = true;
        if (text.substr(0, 7) == "Error: ") text.remove_prefix(7);
    }
    if (!text.empty()) block["content"] = std::string(text);
    return marked(std::move(block), cpp::neutral::cache_mark_of(structured));
}

// A plain user text: a string, or one text block when it carries a cache mark.
Json user_text(std::string_view text, const Json &structured) {
    const Json mark = cpp::neutral::cache_mark_of(structured);
    if (mark.is_null()) return std::string(text);
    return Json::array({marked({{"type", "text"}, {"text", std::string(text)}}, mark)});
}

struct Conversation {
    std::string system;
    Json messages = Json::array();
};

// The turns as Messages turns: system text to the top-level field, a run of
// tool results as one user message of tool_result blocks.
Conversation conversation_of(const Call &call, const std::vector<Attachments> &attachments) {
    Conversation c{call.system_prompt, Json::array()};
    bool in_results = false; // the last message is a user message of tool results
    for (size_t i = 0; i < call.turns.size(); ++i) {
        const auto &t = call.turns[i];
        const Json structured = cpp::neutral::structured_of(t.structured_json, i, "anthropic");
        const bool results = t.role == "tool";
        if (t.role == "system") { // the API has no system turns: they join the system field
            if (!t.content.empty()) c.system += (c.system.empty() ? "" : "\n\n") + std::string(t.content);
        } else if (results) {
            if (!in_results) c.messages.push_back({{"role", "user"}, {"content", Json::array()}});
            c.messages.back()["content"].push_back(tool_result(call, i, structured));
        } else if (t.role == "user") {
            const Attachments *files =
                i < attachments.size() && !attachments[i].empty() ? &attachments[i] : nullptr;
            const Json &parts = cpp::neutral::parts_of(structured, i, "anthropic");
            if (!parts.empty())
                c.messages.push_back({{"role", "user"}, {"content", user_blocks(i, parts, files)}});
            else if (files != nullptr)
                c.messages.push_back({{"role", "user"}, {"content", content_blocks(t.content, *files)}});
            else if (!t.content.empty()) // the API rejects empty text blocks
                c.messages.push_back({{"role", "user"}, {"content", user_text(t.content, structured)}});
        } else if (t.role == "assistant") {
            Json content = assistant_content(call, i, structured);
            if (!content.is_null())
                c.messages.push_back({{"role", "assistant"}, {"content", std::move(content)}});
        }
        if (t.role != "system") in_results = results;
    }
    return c;
}

// reasoning_effort as a thinking budget (tokens the model may think for;
// the API's minimum is 1024).
int64_t thinking_budget(const cpp::neutral::Params &p, const std::string &effort) {
    if (effort == "minimal") return 1024;
    if (effort == "low") return 4096;
    if (effort == "medium") return 8192;
    if (effort == "high") return 16384;
    p.refuse("reasoning_effort", "must be minimal, low, medium or high");
}

// max_tokens and thinking: without a call's max_output_tokens the answer
// keeps the config's max_tokens and the budget comes on top; with one, the
// budget must fit under it (the API wants budget < max_tokens).
void apply_limits(const Settings &s, cpp::neutral::Params &p, Json &body) {
    const auto max_output = p.take_integer("max_output_tokens");
    body["max_tokens"] = max_output ? *max_output : s.max_tokens;
    const auto effort = p.take_string("reasoning_effort");
    if (!effort) return;
    int64_t budget = thinking_budget(p, *effort);
    if (!max_output) {
        body["max_tokens"] = s.max_tokens + budget;
    } else {
        budget = std::min(budget, *max_output - 1);
        if (budget < 1024)
            p.refuse("reasoning_effort",
                     "needs max_output_tokens above 1024 on Anthropic (thinking takes >= 1024)");
    }
    body["thinking"] = {{"type", "enabled"}, {"budget_tokens", budget}};
}

// tool_choice, with parallel_tool_calls=false as disable_parallel_tool_use
// (which the API takes on auto, any and tool only).
void apply_tool_choice(cpp::neutral::Params &p, Json &body) {
    const auto choice = cpp::neutral::take_tool_choice(p);
    const auto parallel = p.take_bool("parallel_tool_calls");
    Json wire;
    if (choice) {
        if (choice->mode == "auto") wire = {{"type", "auto"}};
        if (choice->mode == "required") wire = {{"type", "any"}};
        if (choice->mode == "none") wire = {{"type", "none"}};
        if (choice->mode == "function") wire = {{"type", "tool"}, {"name", choice->name}};
    }
    if (parallel == false && (wire.is_null() || wire["type"] != "none")) {
        if (wire.is_null()) wire = {{"type", "auto"}};
        wire["disable_parallel_tool_use"] = true;
    }
    if (!wire.is_null()) body["tool_choice"] = std::move(wire);
}

Json tools_of(const std::vector<cpp::neutral::Tool> &tools) {
    Json out = Json::array();
    for (const auto &t : tools) {
        Json tool = {{"name", t.name},
                     {"input_schema", t.parameters.is_null() ? Json{{"type", "object"}} : t.parameters}};
        if (!t.description.empty()) tool["description"] = t.description;
        out.push_back(marked(std::move(tool), t.cache_control)); // strict: dropped (see the README)
    }
    return out;
}

// Keys merged over the body (custom_params, params.extra) may not replace
// the conversation or the stream switch.
void merge(Json &body, const Json &keys) {
    for (const auto &[key, value] : keys.items())
        if (key != "messages" && key != "stream") body[key] = value;
}

// The request's cache mark (automatic caching) as the top-level field; the
// system prompt's on the system as one text block (the ABI's system prompt
// is one string; a mark with no system prompt has nothing to mark).
void apply_cache_marks(cpp::neutral::Params &p, Json &body) {
    if (const Json *mark = p.take("cache_control")) body["cache_control"] = *mark;
    const Json *system_mark = p.take("system_cache_control");
    if (system_mark != nullptr && body.contains("system") && body["system"].is_string())
        body["system"] = Json::array({marked({{"type", "text"}, {"text", body["system"]}}, *system_mark)});
}

// The neutral generation parameters as Messages fields, then params.extra;
// what the API has no field for is refused by name unless the config's
// drop_params names it.
void apply_params(const Settings &s, const Json &neutral, Json &body) {
    cpp::neutral::Params p(neutral, "anthropic");
    p.drop(s.drop_params);
    apply_limits(s, p, body);
    if (auto v = p.take_number("temperature")) {
        if (*v > 1) p.refuse("temperature", "must be <= 1 on Anthropic");
        body["temperature"] = *v;
    }
    if (auto v = p.take_number("top_p")) body["top_p"] = *v;
    if (auto stop = p.take_stop(); !stop.empty()) body["stop_sequences"] = stop;
    if (auto v = p.take_string("user")) body["metadata"] = {{"user_id", *v}};
    if (auto tools = cpp::neutral::take_tools(p); !tools.empty()) body["tools"] = tools_of(tools);
    apply_tool_choice(p, body);
    apply_cache_marks(p, body);
    if (auto format = cpp::neutral::take_response_format(p); format && (*format)["type"] != "text")
        p.refuse("response_format",
                 "(" + string_or(*format, "type") +
                     ") has no faithful Messages API equivalent; use a tool or ask in the prompt");
    const Json extra = p.take_extra();
    p.finish();
    merge(body, extra);
}

} // namespace

Json build_body(const Settings &s, const Call &call, const std::vector<Attachments> &attachments,
                std::string &trimmed_ws) {
    Conversation c = conversation_of(call, attachments);
    trimmed_ws.clear();
    if (!call.assistant_prefix.empty()) {
        std::string prefill = call.assistant_prefix;
        size_t keep = prefill.find_last_not_of(" \t\r\n");
        if (keep == std::string::npos) {
            trimmed_ws = prefill; // whitespace only: no prefill turn at all
        } else {
            trimmed_ws = prefill.substr(keep + 1);
            prefill.erase(keep + 1);
            c.messages.push_back({{"role", "assistant"}, {"content", prefill}});
        }
    }
    Json body = {{"model", call.model.empty() ? s.http.model : call.model},
                 {"max_tokens", s.max_tokens},
                 {"messages", std::move(c.messages)}};
    if (!c.system.empty()) body["system"] = c.system;
    if (s.temperature >= 0) body["temperature"] = s.temperature;
    merge(body, s.http.custom_params);
    apply_params(s, call.params, body);
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
