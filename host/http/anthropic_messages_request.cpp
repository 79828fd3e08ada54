#include "http/anthropic_messages_request.hpp"

#include "model/field_checks.hpp"
#include "model/generation_params.hpp"

#include <functional>
#include <map>
#include <set>

namespace swh::http::anthropic {

namespace {

// ------------------------------------------------------------ small checks

// Every refusal reads "<path>: <what>", the path dotted as Anthropic's own
// errors write it ("messages.1.content.0.tool_use_id"), so a client's error
// handling reads ours like Anthropic's ("max_tokens: Field required").
[[noreturn]] void invalid(const std::string &path, const std::string &what) {
    throw ApiError(ErrorKind::InvalidRequest, path + ": " + what);
}

void need(bool ok, const std::string &path, const char *what) {
    if (!ok) invalid(path, what);
}

std::string at(const std::string &path, std::size_t index) {
    return path + "." + std::to_string(index);
}

std::string member(const std::string &path, const std::string &key) {
    return path.empty() ? key : path + "." + key;
}

// Optional fields of the reference are nullable: null counts as absent, as
// on the OpenAI doors; a block's "type" is read the same way too.
using fields::present;
using fields::type_of;

const std::string &string_at(const Json &object, const char *key, const std::string &path) {
    need(present(object, key), member(path, key), "Field required");
    need(object[key].is_string(), member(path, key), "Input should be a valid string");
    return object[key].get_ref<const std::string &>();
}

// Keys of an object the door knows; anything else is refused by name, so a
// field never disappears in silence.
void only_keys(const Json &object, const std::string &path, const std::set<std::string> &known) {
    for (const auto &[key, value] : object.items()) {
        if (known.count(key) || value.is_null()) continue;
        std::string list;
        for (const auto &k : known)
            list += (list.empty() ? "" : ", ") + k;
        invalid(member(path, key), "not supported by this door (it takes: " + list + ")");
    }
}

// A block's cache_control (a prompt-cache breakpoint), checked; null when
// the block has none. The neutral form carries it where the block lands (a
// part, a tool, a tool call, a message's text, the system prompt), so the
// anthropic provider sends it back where Anthropic's wire has it; other
// providers drop it (a cost hint, not meaning).
Json cache_mark(const Json &block, const std::string &path) {
    if (!present(block, "cache_control")) return nullptr;
    need(is_cache_mark(block["cache_control"]), member(path, "cache_control"),
         "Input should be {\"type\":\"ephemeral\"} with an optional \"ttl\" of \"5m\" or \"1h\"");
    return block["cache_control"];
}

// Puts a block's mark on its neutral form (nothing when it has none).
void put_cache_mark(Json &neutral, const Json &block, const std::string &path) {
    if (Json mark = cache_mark(block, path); !mark.is_null()) neutral["cache_control"] = std::move(mark);
}

// ------------------------------------------------------------------ tools

// A client tool {name, description, input_schema, strict} -> the neutral
// {"type":"function","name",...}. Server tools (web search, code execution,
// bash, ...) run at Anthropic: no other vendor has them.
Json decode_tool(const Json &tool, const std::string &path) {
    need(tool.is_object(), path, "Input should be a valid dictionary");
    const std::string type = type_of(tool);
    if (!type.empty() && type != "custom")
        invalid(member(path, "type"), "'" + type + "' is a server tool, which this door does not run");
    only_keys(tool, path, {"type", "name", "description", "input_schema", "strict", "cache_control"});
    const std::string &name = string_at(tool, "name", path);
    need(!name.empty(), member(path, "name"), "String should have at least 1 character");
    need(present(tool, "input_schema"), member(path, "input_schema"), "Field required");
    need(tool["input_schema"].is_object(), member(path, "input_schema"),
         "Input should be a valid dictionary");
    Json neutral = {{"type", "function"}, {"name", name}, {"parameters", tool["input_schema"]}};
    if (present(tool, "description")) neutral["description"] = string_at(tool, "description", path);
    if (present(tool, "strict")) {
        need(tool["strict"].is_boolean(), member(path, "strict"), "Input should be a valid boolean");
        neutral["strict"] = tool["strict"];
    }
    put_cache_mark(neutral, tool, path);
    return neutral;
}

void decode_tools(const Json &tools, const std::string &key, CompletionParams &params) {
    need(tools.is_array(), key, "Input should be a valid list");
    Json neutral = Json::array();
    for (std::size_t i = 0; i < tools.size(); ++i)
        neutral.push_back(decode_tool(tools[i], at(key, i)));
    params.params["tools"] = std::move(neutral);
}

// auto / any / tool / none -> "auto" / "required" / {"type":"function","name"}
// / "none"; disable_parallel_tool_use -> parallel_tool_calls: false.
void decode_tool_choice(const Json &choice, const std::string &key, CompletionParams &params) {
    need(choice.is_object(), key, "Input should be a valid dictionary");
    const std::string type = type_of(choice);
    if (type == "none") {
        only_keys(choice, key, {"type"});
        params.params["tool_choice"] = "none";
        return;
    }
    if (type == "tool")
        only_keys(choice, key, {"type", "name", "disable_parallel_tool_use"});
    else
        only_keys(choice, key, {"type", "disable_parallel_tool_use"});
    if (type == "auto")
        params.params["tool_choice"] = "auto";
    else if (type == "any")
        params.params["tool_choice"] = "required";
    else if (type == "tool")
        params.params["tool_choice"] = {{"type", "function"}, {"name", string_at(choice, "name", key)}};
    else
        invalid(key, "Input tag '" + type +
                         "' does not match any of the expected tags: 'auto', 'any', 'tool', "
                         "'none'");
    if (present(choice, "disable_parallel_tool_use")) {
        const Json &flag = choice["disable_parallel_tool_use"];
        need(flag.is_boolean(), member(key, "disable_parallel_tool_use"), "Input should be a valid boolean");
        if (flag.get<bool>()) params.params["parallel_tool_calls"] = false;
    }
}

// ------------------------------------------------------- top-level fields

// The reasoning_effort whose budget (as the anthropic provider plugin spends
// it: minimal 1024, low 4096, medium 8192, high 16384) is the largest not
// above the client's budget_tokens; so a budget of exactly one of those
// reaches Anthropic unchanged, and another vendor gets the nearest effort.
std::string effort_for_budget(int64_t budget) {
    if (budget < 4096) return "minimal";
    if (budget < 8192) return "low";
    if (budget < 16384) return "medium";
    return "high";
}

// {type: enabled, budget_tokens} -> reasoning_effort; {type: disabled} ->
// nothing (no thinking is what every vendor does unasked). adaptive and
// between_tools let the model decide when to think: no neutral form.
void decode_thinking(const Json &thinking, const std::string &key, CompletionParams &params) {
    need(thinking.is_object(), key, "Input should be a valid dictionary");
    const std::string type = type_of(thinking);
    if (type == "disabled") {
        only_keys(thinking, key, {"type"});
        return;
    }
    if (type != "enabled")
        invalid(member(key, "type"), "'" + type +
                                         "' is not supported by this door (the neutral form has no adaptive "
                                         "thinking): send {\"type\":\"enabled\",\"budget_tokens\":N} or "
                                         "{\"type\":\"disabled\"}");
    only_keys(thinking, key, {"type", "budget_tokens", "display"});
    if (present(thinking, "display") && thinking["display"] != "summarized")
        invalid(member(key, "display"),
                "only \"summarized\" is supported by this door (thinking is relayed as "
                "the provider reports it)");
    const std::string budget_path = member(key, "enabled.budget_tokens");
    need(present(thinking, "budget_tokens"), budget_path, "Field required");
    const Json &budget = thinking["budget_tokens"];
    need(budget.is_number_integer() && budget.get<int64_t>() >= 1024, budget_path,
         "Input should be greater than or equal to 1024");
    const auto max_tokens = params.params.find("max_output_tokens");
    if (max_tokens != params.params.end() && budget.get<int64_t>() >= max_tokens->get<int64_t>())
        invalid("max_tokens", "`max_tokens` must be greater than `thinking.budget_tokens`");
    params.params["reasoning_effort"] = effort_for_budget(budget.get<int64_t>());
}

// metadata.user_id -> the neutral user (the vendor's abuse tracking).
void decode_metadata(const Json &metadata, const std::string &key, CompletionParams &params) {
    need(metadata.is_object(), key, "Input should be a valid dictionary");
    only_keys(metadata, key, {"user_id"});
    if (present(metadata, "user_id")) params.params["user"] = string_at(metadata, "user_id", key);
}

void decode_stop_sequences(const Json &stops, const std::string &key, CompletionParams &params) {
    need(stops.is_array(), key, "Input should be a valid list");
    for (std::size_t i = 0; i < stops.size(); ++i)
        need(stops[i].is_string(), at(key, i), "Input should be a valid string");
    if (!stops.empty()) params.params["stop"] = stops;
}

// A text block's text; its cache mark (checked) goes to `mark` when it has one.
std::string decode_text_block(const Json &block, const std::string &path, Json &mark) {
    only_keys(block, path, {"type", "text", "cache_control"});
    if (Json own = cache_mark(block, path); !own.is_null()) mark = std::move(own);
    return string_at(block, "text", path);
}

// Text blocks joined, with the last block's mark that has one.
std::string decode_text_blocks(const Json &content, const std::string &path, Json &mark) {
    std::string text;
    for (std::size_t i = 0; i < content.size(); ++i) {
        const std::string block_path = at(path, i);
        need(type_of(content[i]) == "text", member(block_path, "type"), "Input should be 'text'");
        text += decode_text_block(content[i], block_path, mark);
    }
    return text;
}

// The system prompt (a string or text blocks) joins the one the provider
// gets. The ABI's system prompt is a plain string, so its blocks' cache marks
// become one mark on all of it (params.system_cache_control, the last mark
// given): Anthropic caches the prefix up to a mark, and the joined prompt is
// one block.
void append_system(CompletionParams &params, const Json &content, const std::string &path) {
    std::string text;
    if (content.is_string()) {
        text = content.get<std::string>();
    } else {
        need(content.is_array(), path, "Input should be a valid string or a list of text blocks");
        Json mark;
        text = decode_text_blocks(content, path, mark);
        if (!mark.is_null()) params.params["system_cache_control"] = std::move(mark);
    }
    params.system_prompt += (params.system_prompt.empty() ? "" : "\n") + text;
}

using FieldRule = std::function<void(const Json &value, const std::string &key, CompletionParams &)>;

FieldRule unit_interval(const char *neutral) {
    return [neutral](const Json &v, const std::string &key, CompletionParams &p) {
        need(v.is_number(), key, "Input should be a valid number");
        need(v.get<double>() >= 0.0, key, "Input should be greater than or equal to 0");
        need(v.get<double>() <= 1.0, key, "Input should be less than or equal to 1");
        p.params[neutral] = v;
    };
}

// A vendor key the neutral form has no place for: copied under params.extra
// into the vendor's request body untouched (provider.h).
FieldRule extra() {
    return [](const Json &v, const std::string &key, CompletionParams &p) { p.params["extra"][key] = v; };
}

FieldRule refused(const char *why) {
    return [why](const Json &, const std::string &key, CompletionParams &) {
        invalid(key, std::string("not supported by this door: ") + why);
    };
}

// Every body field of Anthropic's Messages reference; model, max_tokens and
// messages are read apart (max_tokens first: thinking checks against it).
const std::map<std::string, FieldRule> &field_rules() {
    static const std::map<std::string, FieldRule> rules = {
        // mapped into the neutral params
        {"temperature", unit_interval("temperature")},
        {"top_p", unit_interval("top_p")},
        {"stop_sequences", decode_stop_sequences},
        {"metadata", decode_metadata},
        {"tools", decode_tools},
        {"tool_choice", decode_tool_choice},
        {"thinking", decode_thinking},
        // vendor keys, passed through under params.extra
        {"top_k",
         [](const Json &v, const std::string &key, CompletionParams &p) {
             need(v.is_number_integer() && v.get<int64_t>() >= 0, key,
                  "Input should be a valid non-negative integer");
             p.params["extra"][key] = v;
         }},
        {"service_tier", extra()},
        {"inference_geo", extra()},
        {"speed", extra()},
        {"cache_control",
         [](const Json &v, const std::string &key, CompletionParams &p) {
             p.params["cache_control"] = cache_mark(Json{{key, v}}, "");
         }},
        // honoured by the door itself
        {"system",
         [](const Json &v, const std::string &key, CompletionParams &p) { append_system(p, v, key); }},
        {"stream",
         [](const Json &v, const std::string &key, CompletionParams &p) {
             need(v.is_boolean(), key, "Input should be a valid boolean");
             p.stream = v.get<bool>();
         }},
        // refused, naming the field
        {"container", refused("containers serve Anthropic's server tools, which this door does not run")},
        {"diagnostics", refused("the reply has no diagnostics (cache miss reasons are Anthropic's own)")},
        {"output_config", refused("output formats and effort have no neutral form yet")},
    };
    return rules;
}

void decode_fields(const Json &body, CompletionParams &params) {
    const auto &rules = field_rules();
    for (const auto &[key, value] : body.items()) {
        if (key == "model" || key == "max_tokens" || key == "messages" || value.is_null()) continue;
        const auto rule = rules.find(key);
        if (rule == rules.end()) invalid(key, "Extra inputs are not permitted");
        rule->second(value, key, params);
    }
}

// ---------------------------------------------------------------- messages

// An image block's source -> the neutral image part (a data: URL for bytes).
Json decode_image(const Json &block, const std::string &path) {
    only_keys(block, path, {"type", "source", "cache_control"});
    const std::string source_path = member(path, "source");
    need(present(block, "source") && block["source"].is_object(), source_path, "Field required");
    const Json &source = block["source"];
    const std::string type = type_of(source);
    if (type == "base64") {
        only_keys(source, source_path, {"type", "media_type", "data"});
        return {{"type", "image"},
                {"url", "data:" + string_at(source, "media_type", source_path) + ";base64," +
                            string_at(source, "data", source_path)}};
    }
    if (type == "url") {
        only_keys(source, source_path, {"type", "url"});
        return {{"type", "image"}, {"url", string_at(source, "url", source_path)}};
    }
    invalid(member(source_path, "type"),
            "'" + type +
                "' is not supported by this door (send a base64 or url source; files uploaded to "
                "Anthropic have no neutral form)");
}

// A base64 PDF document -> the neutral file part.
Json decode_document(const Json &block, const std::string &path) {
    only_keys(block, path, {"type", "source", "cache_control"});
    const std::string source_path = member(path, "source");
    need(present(block, "source") && block["source"].is_object(), source_path, "Field required");
    const Json &source = block["source"];
    if (type_of(source) != "base64")
        invalid(member(source_path, "type"),
                "'" + type_of(source) + "' is not supported by this door (send a base64 PDF source)");
    only_keys(source, source_path, {"type", "media_type", "data"});
    return {{"type", "file"},
            {"media_type", string_at(source, "media_type", source_path)},
            {"data", string_at(source, "data", source_path)}};
}

// A tool_result's content: a string or text blocks (the neutral tool result
// is text). is_error: true makes the text "Error: <text>" (a provider that
// reads only the text, as OpenAI's wire has no error flag, tells the model so)
// and sets `failed` (structured.is_error: the anthropic provider sends the
// flag and the text as it was).
std::string decode_tool_result_text(const Json &block, const std::string &path, Json &mark, bool &failed) {
    std::string text;
    if (present(block, "content")) {
        const Json &content = block["content"];
        const std::string content_path = member(path, "content");
        if (content.is_string()) {
            text = content.get<std::string>();
        } else {
            need(content.is_array(), content_path, "Input should be a valid string or a list of blocks");
            for (std::size_t i = 0; i < content.size(); ++i)
                if (type_of(content[i]) != "text")
                    invalid(member(at(content_path, i), "type"),
                            "'" + type_of(content[i]) +
                                "' is not supported in a tool_result by this door "
                                "(a neutral tool result is text)");
            // A mark inside the result marks the whole (one-text) result.
            text = decode_text_blocks(content, content_path, mark);
        }
    }
    if (present(block, "is_error")) {
        need(block["is_error"].is_boolean(), member(path, "is_error"), "Input should be a valid boolean");
        failed = block["is_error"].get<bool>();
        if (failed) text = "Error: " + text;
    }
    return text;
}

// What one Anthropic message of the request is being turned into.
struct Conversation {
    CompletionParams &params;
    // tool_use ids of the message before (Anthropic: a tool_result answers
    // the message right before it, and every tool_use there is answered).
    std::set<std::string> asked;
    std::size_t asked_at = 0;
};

Message user_message(std::string text, Json parts, bool only_text) {
    Message message;
    message.role = "user";
    message.content = std::move(text);
    if (!only_text) message.structured["parts"] = std::move(parts);
    return message;
}

// A user message's blocks, in order: text, image and document blocks make
// user messages, each tool_result a neutral tool message.
void decode_user(const Json &content, const std::string &path, Conversation &conversation) {
    std::set<std::string> answered;
    std::string text;
    Json parts = Json::array();
    bool only_text = true;
    auto flush = [&] {
        if (parts.empty()) return;
        conversation.params.messages.push_back(user_message(std::move(text), std::move(parts), only_text));
        text.clear();
        parts = Json::array();
        only_text = true;
    };
    for (std::size_t j = 0; j < content.size(); ++j) {
        const Json &block = content[j];
        const std::string block_path = at(path, j);
        const std::string type = type_of(block);
        if (type == "text") {
            Json mark;
            const std::string piece = decode_text_block(block, block_path, mark);
            text += piece;
            parts.push_back({{"type", "text"}, {"text", piece}});
            // A marked text block keeps the parts, so the mark stays on it.
            if (!mark.is_null()) {
                parts.back()["cache_control"] = std::move(mark);
                only_text = false;
            }
        } else if (type == "image" || type == "document") {
            parts.push_back(type == "image" ? decode_image(block, block_path)
                                            : decode_document(block, block_path));
            put_cache_mark(parts.back(), block, block_path);
            only_text = false;
        } else if (type == "tool_result") {
            flush();
            only_keys(block, block_path, {"type", "tool_use_id", "content", "is_error", "cache_control"});
            const std::string &id = string_at(block, "tool_use_id", block_path);
            if (!conversation.asked.count(id))
                invalid(block_path, "unexpected `tool_use_id` found in `tool_result` blocks: " + id +
                                        ". Each `tool_result` block must have a corresponding `tool_use` "
                                        "block in the previous message.");
            answered.insert(id);
            Message result;
            result.role = "tool";
            Json mark = cache_mark(block, block_path);
            bool failed = false;
            result.content = decode_tool_result_text(block, block_path, mark, failed);
            if (failed) result.structured["is_error"] = true;
            result.structured["tool_call_id"] = id;
            if (!mark.is_null()) result.structured["cache_control"] = std::move(mark);
            conversation.params.messages.push_back(std::move(result));
        } else {
            invalid(member(block_path, "type"),
                    "'" + type + "' blocks are not supported in a user message by this door");
        }
    }
    flush();
    std::string missing;
    for (const std::string &id : conversation.asked)
        if (!answered.count(id)) missing += (missing.empty() ? "" : ", ") + id;
    if (!missing.empty())
        invalid(
            "messages." + std::to_string(conversation.asked_at),
            "`tool_use` ids were found without `tool_result` blocks immediately after: " + missing +
                ". Each `tool_use` block must have a corresponding `tool_result` block in the next message.");
}

// An assistant message: text, tool_use -> tool_calls (input as its JSON
// text), one signed thinking block -> reasoning + reasoning_signature.
Message decode_assistant(const Json &content, const std::string &path, std::set<std::string> &asked) {
    Message message;
    message.role = "assistant";
    Json calls = Json::array();
    bool thought = false;
    for (std::size_t j = 0; j < content.size(); ++j) {
        const Json &block = content[j];
        const std::string block_path = at(path, j);
        const std::string type = type_of(block);
        if (type == "text") {
            // The neutral message has one text: a mark on any of its blocks
            // marks it (the anthropic provider sends it as one block).
            Json mark;
            message.content += decode_text_block(block, block_path, mark);
            if (!mark.is_null()) message.structured["cache_control"] = std::move(mark);
        } else if (type == "tool_use") {
            only_keys(block, block_path, {"type", "id", "name", "input", "caller", "cache_control"});
            if (present(block, "caller") && type_of(block["caller"]) != "direct")
                invalid(member(block_path, "caller"), "only a direct caller is supported by this door");
            const std::string &id = string_at(block, "id", block_path);
            need(present(block, "input") && block["input"].is_object(), member(block_path, "input"),
                 "Input should be a valid dictionary");
            calls.push_back({{"id", id},
                             {"name", string_at(block, "name", block_path)},
                             {"arguments", block["input"].dump()}});
            put_cache_mark(calls.back(), block, block_path);
            asked.insert(id);
        } else if (type == "thinking") {
            // The neutral message keeps one thinking text with its signature.
            need(!thought, block_path, "only one thinking block per message is supported by this door");
            only_keys(block, block_path, {"type", "thinking", "signature"});
            message.structured["reasoning"] = string_at(block, "thinking", block_path);
            message.structured["reasoning_signature"] = string_at(block, "signature", block_path);
            thought = true;
        } else {
            invalid(member(block_path, "type"),
                    "'" + type + "' blocks are not supported in an assistant message by this door");
        }
    }
    if (!calls.empty()) message.structured["tool_calls"] = std::move(calls);
    return message;
}

// Content as a string (one text block) or a list of blocks.
Json blocks_of(const Json &message, const std::string &path) {
    need(present(message, "content"), member(path, "content"), "Field required");
    const Json &content = message["content"];
    if (content.is_string()) return Json::array({{{"type", "text"}, {"text", content}}});
    need(content.is_array() && !content.empty(), member(path, "content"),
         "Input should be a valid string or a non-empty list of blocks");
    for (std::size_t j = 0; j < content.size(); ++j)
        need(content[j].is_object() && !type_of(content[j]).empty(), at(member(path, "content"), j),
             "Input should be a valid dictionary with a string \"type\"");
    return content;
}

void decode_message(const Json &m, std::size_t index, Conversation &conversation) {
    const std::string path = at("messages", index);
    need(m.is_object(), path, "Input should be a valid dictionary");
    only_keys(m, path, {"role", "content"});
    const std::string role = present(m, "role") && m["role"].is_string() ? m["role"] : "";
    const std::string content_path = member(path, "content");
    if (role == "system") {
        append_system(conversation.params, m.contains("content") ? m["content"] : Json(), content_path);
        return;
    }
    const Json blocks = blocks_of(m, path);
    if (role == "user") {
        decode_user(blocks, content_path, conversation);
        conversation.asked.clear();
    } else if (role == "assistant") {
        conversation.asked.clear();
        conversation.asked_at = index;
        conversation.params.messages.push_back(decode_assistant(blocks, content_path, conversation.asked));
    } else {
        invalid(member(path, "role"), "Input should be 'user', 'assistant' or 'system'");
    }
    check_structured(conversation.params.messages.back().structured, path);
}

void decode_messages(const Json &messages, CompletionParams &params) {
    need(messages.is_array(), "messages", "Input should be a valid list");
    Conversation conversation{params, {}, 0};
    std::size_t last_turn = 0;
    for (std::size_t i = 0; i < messages.size(); ++i) {
        decode_message(messages[i], i, conversation);
        if (messages[i].value("role", "") != "system") last_turn = i;
    }
    need(!params.messages.empty(), "messages", "at least one user message is required");
    // A final assistant turn asks the model to continue it (prefill): the
    // neutral completion has no such turn.
    if (params.messages.back().role == "assistant")
        invalid(at("messages", last_turn),
                "a final assistant message (prefill) is not supported by this door");
}

} // namespace

CompletionParams decode_messages_request(const Json &body, const std::string &session_header) {
    need(body.is_object(), "body", "Input should be a valid dictionary");
    CompletionParams params;
    need(present(body, "model"), "model", "Field required");
    need(body["model"].is_string() && !body["model"].get<std::string>().empty(), "model",
         "Input should be a non-empty string");
    params.model = body["model"].get<std::string>();
    // max_tokens is required, and refused exactly as Anthropic refuses it.
    need(present(body, "max_tokens"), "max_tokens", "Field required");
    need(body["max_tokens"].is_number_integer() && body["max_tokens"].get<int64_t>() >= 1, "max_tokens",
         "Input should be a valid integer greater than or equal to 1");
    params.params["max_output_tokens"] = body["max_tokens"];
    need(present(body, "messages"), "messages", "Field required");
    decode_fields(body, params);
    decode_messages(body["messages"], params);
    // The door's own translation is checked against the neutral form too, so
    // a mapping mistake here is a 400, never a confused provider.
    check_params(params.params, "params");
    params.session_id = session_header;
    return params;
}

} // namespace swh::http::anthropic
