#include "http/openai_chat_request.hpp"

#include "model/field_checks.hpp"
#include "model/generation_params.hpp"
#include "util/json_parse.hpp"

#include <simdjson.h>
#include <swarmhost/cpp/utf8.hpp>

#include <functional>
#include <map>
#include <set>

namespace swh::http {

namespace {

using namespace fields; // the shared checks: invalid, need, at, present, only_keys…

// --------------------------------------------------------- cache marks

// cache_control ({"type":"ephemeral"}, optional ttl) on a content part or a
// tool, as OpenAI-compatible clients of Anthropic models send it (Anthropic's
// prompt-cache breakpoint; OpenAI's own wire has none): carried in the
// neutral form for the anthropic provider, dropped by the others.
void put_cache_mark(Json &neutral, const Json &object, const std::string &field) {
    if (!present(object, "cache_control")) return;
    need(is_cache_mark(object["cache_control"]), field + ".cache_control",
         "must be {\"type\":\"ephemeral\"} with an optional \"ttl\" of \"5m\" or \"1h\"");
    neutral["cache_control"] = object["cache_control"];
}

// The text-only parts of a system, assistant or tool message become its one
// text: their last cache mark, if any, marks that text; `structured.parts`
// is dropped (they are all text). Returns the mark (null when none).
Json lift_cache_mark(Json &structured) {
    Json mark;
    if (!structured.contains("parts")) return mark;
    for (const Json &part : structured["parts"])
        if (part.contains("cache_control")) mark = part["cache_control"];
    structured.erase("parts");
    return mark;
}

// ------------------------------------------------------------------ tools

// {"type":"function","function":{name, description, parameters, strict}} ->
// the neutral {"type":"function","name",...}.
Json decode_tool(const Json &tool, const std::string &field) {
    need(tool.is_object(), field, "must be an object");
    need(type_of(tool) == "function", field + ".type",
         "must be \"function\" (custom tools have no neutral form)");
    only_keys(tool, field, {"type", "function", "cache_control"});
    need(present(tool, "function") && tool["function"].is_object(), field + ".function", "must be an object");
    const Json &function = tool["function"];
    const std::string where = field + ".function";
    only_keys(function, where, {"name", "description", "parameters", "strict"});
    const std::string &name = string_at(function, "name", where);
    need(!name.empty(), where + ".name", "must not be empty");
    Json neutral = {{"type", "function"}, {"name", name}};
    if (present(function, "description")) neutral["description"] = string_at(function, "description", where);
    if (present(function, "parameters")) {
        need(function["parameters"].is_object(), where + ".parameters", "must be a JSON schema object");
        neutral["parameters"] = function["parameters"];
    }
    if (present(function, "strict")) {
        need(function["strict"].is_boolean(), where + ".strict", "must be true or false");
        neutral["strict"] = function["strict"];
    }
    put_cache_mark(neutral, tool, field);
    return neutral;
}

Json decode_tools(const Json &tools) {
    need(tools.is_array(), "tools", "must be a list of tools");
    Json neutral = Json::array();
    for (std::size_t i = 0; i < tools.size(); ++i)
        neutral.push_back(decode_tool(tools[i], at("tools", i)));
    return neutral;
}

Json decode_tool_choice(const Json &choice) {
    if (choice.is_string()) {
        need(
            choice == "auto" || choice == "none" || choice == "required", "tool_choice",
            "must be \"auto\", \"none\", \"required\" or {\"type\":\"function\",\"function\":{\"name\":..}}");
        return choice;
    }
    need(choice.is_object(), "tool_choice", "must be a string or an object");
    need(type_of(choice) == "function", "tool_choice.type",
         "must be \"function\" (allowed_tools and custom tool choices have no neutral form)");
    only_keys(choice, "tool_choice", {"type", "function"});
    need(present(choice, "function") && choice["function"].is_object(), "tool_choice.function",
         "must be an object");
    only_keys(choice["function"], "tool_choice.function", {"name"});
    return {{"type", "function"}, {"name", string_at(choice["function"], "name", "tool_choice.function")}};
}

// {"type":"json_schema","json_schema":{name, description, schema, strict}}
// flattens into the neutral {"type":"json_schema","name",..,"schema",..}.
Json decode_response_format(const Json &format) {
    need(format.is_object(), "response_format", "must be an object");
    const std::string type = type_of(format);
    if (type == "text" || type == "json_object") {
        only_keys(format, "response_format", {"type"});
        return {{"type", type}};
    }
    need(type == "json_schema", "response_format.type",
         "must be \"text\", \"json_object\" or \"json_schema\"");
    only_keys(format, "response_format", {"type", "json_schema"});
    need(present(format, "json_schema") && format["json_schema"].is_object(), "response_format.json_schema",
         "must be an object");
    const Json &spec = format["json_schema"];
    const std::string where = "response_format.json_schema";
    // description: the neutral response_format has no place for it yet, and
    // the vendor plugins would drop it; refused rather than lost.
    if (present(spec, "description"))
        invalid(where + ".description",
                "is not supported yet (the neutral response_format has no description)");
    only_keys(spec, where, {"name", "schema", "strict"});
    Json neutral = {{"type", "json_schema"}, {"name", string_at(spec, "name", where)}};
    need(present(spec, "schema") && spec["schema"].is_object(), where + ".schema",
         "must be a JSON schema object");
    neutral["schema"] = spec["schema"];
    if (present(spec, "strict")) {
        need(spec["strict"].is_boolean(), where + ".strict", "must be true or false");
        neutral["strict"] = spec["strict"];
    }
    return neutral;
}

// ------------------------------------------------------- top-level fields

// What one top-level field turns into. Each writes into the request being
// built; `value` is never null (null means absent and is skipped).
using FieldRule = std::function<void(const Json &value, const std::string &key, ChatCompletionRequest &)>;

FieldRule number_param(const char *neutral) {
    return [neutral](const Json &v, const std::string &key, ChatCompletionRequest &r) {
        need(v.is_number(), key, "must be a number");
        r.completion.params[neutral] = v;
    };
}

FieldRule integer_param(const char *neutral, bool positive) {
    return [neutral, positive](const Json &v, const std::string &key, ChatCompletionRequest &r) {
        need(v.is_number_integer() && (!positive || v.get<int64_t>() > 0), key,
             positive ? "must be a positive integer" : "must be an integer");
        r.completion.params[neutral] = v;
    };
}

FieldRule string_param(const char *neutral) {
    return [neutral](const Json &v, const std::string &key, ChatCompletionRequest &r) {
        need(v.is_string(), key, "must be a string");
        r.completion.params[neutral] = v;
    };
}

// A vendor key the neutral form has no place for: copied under params.extra
// into the vendor's request body untouched (provider.h).
FieldRule extra() {
    return [](const Json &v, const std::string &key, ChatCompletionRequest &r) {
        r.completion.params["extra"][key] = v;
    };
}

FieldRule refused(const char *why) {
    return [why](const Json &, const std::string &key, ChatCompletionRequest &) { invalid(key, why); };
}

void decode_stop(const Json &v, const std::string &key, ChatCompletionRequest &r) {
    if (v.is_string()) {
        r.completion.params["stop"] = Json::array({v});
        return;
    }
    need(v.is_array(), key, "must be a string or a list of strings");
    for (std::size_t i = 0; i < v.size(); ++i)
        need(v[i].is_string(), at(key, i), "must be a string");
    r.completion.params["stop"] = v;
}

void decode_reasoning_effort(const Json &v, const std::string &key, ChatCompletionRequest &r) {
    map_reasoning_effort(v, key, r.completion.params);
}

// max_tokens (deprecated) and max_completion_tokens both bound the output;
// two different bounds in one request is a client bug worth naming.
FieldRule max_output_tokens() {
    return [](const Json &v, const std::string &key, ChatCompletionRequest &r) {
        need(v.is_number_integer() && v.get<int64_t>() > 0, key, "must be a positive integer");
        Json &params = r.completion.params;
        if (params.contains("max_output_tokens") && params["max_output_tokens"] != v)
            invalid(key, "differs from the other of max_tokens / max_completion_tokens; give one");
        params["max_output_tokens"] = v;
    };
}

void decode_stream_options(const Json &v, const std::string &key, ChatCompletionRequest &r) {
    need(v.is_object(), key, "must be an object");
    // include_obfuscation pads deltas against a network side channel of
    // OpenAI's own transport; this door never pads, either value is accepted.
    only_keys(v, key, {"include_usage", "include_obfuscation"});
    for (const char *flag : {"include_usage", "include_obfuscation"})
        if (present(v, flag)) need(v[flag].is_boolean(), key + "." + flag, "must be true or false");
    r.include_usage = present(v, "include_usage") && v["include_usage"].get<bool>();
}

void decode_modalities(const Json &v, const std::string &key, ChatCompletionRequest &) {
    need(v.is_array(), key, "must be a list");
    for (std::size_t i = 0; i < v.size(); ++i)
        need(v[i] == "text", at(key, i), "must be \"text\": this door returns text only (no audio output)");
}

void decode_n(const Json &v, const std::string &key, ChatCompletionRequest &) {
    need(v.is_number_integer() && v.get<int64_t>() == 1, key,
         "must be 1: only n = 1 is supported (send n requests for n choices)");
}

// logprobs: false is the default and costs nothing; true asks for
// something this door cannot return (the ABI carries no log probabilities).
void decode_logprobs(const Json &v, const std::string &key, ChatCompletionRequest &) {
    need(v.is_boolean(), key, "must be true or false");
    if (v.get<bool>()) invalid(key, "is not supported: this door cannot return log probabilities");
}

void decode_stream(const Json &v, const std::string &key, ChatCompletionRequest &r) {
    need(v.is_boolean(), key, "must be true or false");
    r.completion.stream = v.get<bool>();
}

void decode_bool_param(const Json &v, const std::string &key, ChatCompletionRequest &r) {
    need(v.is_boolean(), key, "must be true or false");
    r.completion.params[key] = v;
}

// Every request field of OpenAI's Chat Completions reference (openai-node
// ChatCompletionCreateParamsBase). `model` and `messages` are read apart.
const std::map<std::string, FieldRule> &field_rules() {
    static const std::map<std::string, FieldRule> rules = {
        // mapped into the neutral params
        {"temperature", number_param("temperature")},
        {"top_p", number_param("top_p")},
        {"presence_penalty", number_param("presence_penalty")},
        {"frequency_penalty", number_param("frequency_penalty")},
        {"max_tokens", max_output_tokens()},
        {"max_completion_tokens", max_output_tokens()},
        {"seed", integer_param("seed", false)},
        {"user", string_param("user")},
        {"stop", decode_stop},
        {"tools", [](const Json &v, const std::string &,
                     ChatCompletionRequest &r) { r.completion.params["tools"] = decode_tools(v); }},
        {"tool_choice",
         [](const Json &v, const std::string &, ChatCompletionRequest &r) {
             r.completion.params["tool_choice"] = decode_tool_choice(v);
         }},
        {"parallel_tool_calls", decode_bool_param},
        {"response_format",
         [](const Json &v, const std::string &, ChatCompletionRequest &r) {
             r.completion.params["response_format"] = decode_response_format(v);
         }},
        {"reasoning_effort", decode_reasoning_effort},
        {"cache_control",
         [](const Json &v, const std::string &key, ChatCompletionRequest &r) {
             put_cache_mark(r.completion.params, Json{{key, v}}, "");
         }},
        // vendor keys, passed through under params.extra
        {"logit_bias", extra()},
        {"metadata", extra()},
        {"store", extra()},
        {"service_tier", extra()},
        {"prediction", extra()},
        {"prompt_cache_key", extra()},
        {"prompt_cache_options", extra()},
        {"prompt_cache_retention", extra()},
        {"safety_identifier", extra()},
        {"verbosity", extra()},
        {"web_search_options", extra()},
        {"moderation", extra()},
        // honoured by the door itself
        {"stream", decode_stream},
        {"stream_options", decode_stream_options},
        {"n", decode_n},
        {"modalities", decode_modalities},
        {"logprobs", decode_logprobs},
        // refused, naming the field
        {"top_logprobs", refused("is not supported: this door cannot return log probabilities")},
        {"audio", refused("is not supported: this door returns text only (no audio output)")},
        {"functions", refused("is deprecated and not supported: send \"tools\" instead")},
        {"function_call", refused("is deprecated and not supported: send \"tool_choice\" instead")},
    };
    return rules;
}

void decode_fields(const Json &body, ChatCompletionRequest &request) {
    const auto &rules = field_rules();
    for (const auto &[key, value] : body.items()) {
        if (key == "model" || key == "messages" || value.is_null()) continue;
        const auto rule = rules.find(key);
        if (rule == rules.end())
            invalid(key, "is not a Chat Completions request field this door knows (docs/openai-compat.md)");
        rule->second(value, key, request);
    }
    if (present(body, "stream_options") && !request.completion.stream)
        invalid("stream_options", "is only allowed with \"stream\": true");
}

// ---------------------------------------------------------------- messages

// data:<media type>;base64,<data> -> the neutral file's media_type + data.
void put_file_data(Json &part, const std::string &file_data) {
    const std::string marker = ";base64,";
    const auto comma = file_data.find(marker);
    if (file_data.rfind("data:", 0) == 0 && comma != std::string::npos) {
        part["media_type"] = file_data.substr(5, comma - 5);
        part["data"] = file_data.substr(comma + marker.size());
    } else {
        part["data"] = file_data;
    }
}

Json decode_image_part(const Json &part, const std::string &field) {
    only_keys(part, field, {"type", "image_url", "cache_control"});
    need(present(part, "image_url") && part["image_url"].is_object(), field + ".image_url",
         "must be an object");
    const Json &image = part["image_url"];
    only_keys(image, field + ".image_url", {"url", "detail"});
    Json neutral = {{"type", "image"}, {"url", string_at(image, "url", field + ".image_url")}};
    if (present(image, "detail")) neutral["detail"] = string_at(image, "detail", field + ".image_url");
    put_cache_mark(neutral, part, field);
    return neutral;
}

Json decode_file_part(const Json &part, const std::string &field) {
    only_keys(part, field, {"type", "file", "cache_control"});
    need(present(part, "file") && part["file"].is_object(), field + ".file", "must be an object");
    const Json &file = part["file"];
    const std::string where = field + ".file";
    only_keys(file, where, {"file_data", "file_id", "filename"});
    need(present(file, "file_data") || present(file, "file_id"), where, "needs \"file_data\" or \"file_id\"");
    Json neutral = {{"type", "file"}};
    if (present(file, "file_data")) put_file_data(neutral, string_at(file, "file_data", where));
    if (present(file, "file_id")) neutral["file_id"] = string_at(file, "file_id", where);
    if (present(file, "filename")) neutral["filename"] = string_at(file, "filename", where);
    put_cache_mark(neutral, part, field);
    return neutral;
}

// Which content parts a role may send (the reference's unions).
enum class PartSet { Text, Assistant, User };

// One content part -> its neutral part; text goes into `text` too.
Json decode_part(const Json &part, const std::string &field, PartSet allowed, std::string &text) {
    const std::string type = type_of(part);
    need(!type.empty(), field, "must be an object with a string \"type\"");
    if (type == "text" || (type == "refusal" && allowed == PartSet::Assistant)) {
        // An assistant's refusal is what it said: it stays in the text.
        only_keys(part, field, {"type", type, "cache_control"});
        text += string_at(part, type.c_str(), field);
        Json neutral = {{"type", "text"}, {"text", part[type]}};
        put_cache_mark(neutral, part, field);
        return neutral;
    }
    if (allowed == PartSet::User && type == "image_url") return decode_image_part(part, field);
    if (allowed == PartSet::User && type == "file") return decode_file_part(part, field);
    if (allowed == PartSet::User && type == "input_audio")
        invalid(field, "is an input_audio part: audio input is not supported by this door");
    invalid(field + ".type", "'" + type + "' is not a content part this message may carry");
}

// Content as a string or a list of parts. Returns the joined text; parts
// other than text land in `structured.parts` (with the text parts, in order).
std::string decode_content(const Json &message, const std::string &field, PartSet allowed, Json &structured) {
    if (!present(message, "content")) return "";
    return fields::decode_content(
        message["content"], field,
        [allowed](const Json &part, const std::string &where, std::string &text) {
            return decode_part(part, where, allowed, text);
        },
        structured);
}

Json decode_tool_call(const Json &call, const std::string &field) {
    need(call.is_object(), field, "must be an object");
    need(!present(call, "type") || type_of(call) == "function", field + ".type",
         "must be \"function\" (custom tool calls have no neutral form)");
    only_keys(call, field, {"id", "type", "function"});
    const std::string &id = string_at(call, "id", field);
    need(!id.empty(), field + ".id", "must not be empty");
    need(present(call, "function") && call["function"].is_object(), field + ".function", "must be an object");
    // parsed_arguments: the openai client's own parse of `arguments`.
    only_keys(call["function"], field + ".function", {"name", "arguments"}, {"parsed_arguments"});
    return {{"id", id},
            {"name", string_at(call["function"], "name", field + ".function")},
            {"arguments", string_at(call["function"], "arguments", field + ".function")}};
}

Message decode_assistant(const Json &m, const std::string &field) {
    if (present(m, "function_call"))
        invalid(field + ".function_call", "is deprecated and not supported: send \"tool_calls\" instead");
    if (present(m, "audio")) invalid(field + ".audio", "is not supported: this door returns no audio");
    // parsed: the openai client's own parse of `content`, sent back by its
    // tool runner with the message we returned.
    only_keys(m, field, {"role", "content", "refusal", "tool_calls"}, {"parsed"});
    Message message;
    message.role = "assistant";
    message.content = decode_content(m, field, PartSet::Assistant, message.structured);
    if (present(m, "refusal")) message.content += string_at(m, "refusal", field);
    if (present(m, "tool_calls")) {
        need(m["tool_calls"].is_array(), field + ".tool_calls", "must be a list");
        Json calls = Json::array();
        for (std::size_t k = 0; k < m["tool_calls"].size(); ++k)
            calls.push_back(decode_tool_call(m["tool_calls"][k], at(field + ".tool_calls", k)));
        if (!calls.empty()) message.structured["tool_calls"] = std::move(calls);
    }
    if (Json mark = lift_cache_mark(message.structured); !mark.is_null())
        message.structured["cache_control"] = std::move(mark);
    return message;
}

// A tool result answers a call of an earlier assistant message of this
// request; checked here so the error names the client's own index (the
// send path checks again, counting without the system turns).
void check_answers_a_call(const std::vector<Message> &earlier, const std::string &id,
                          const std::string &field) {
    for (const Message &m : earlier)
        if (made_tool_call(m, id)) return;
    invalid(field + ".tool_call_id", "'" + id + "' matches no tool call of an earlier assistant message");
}

Message decode_tool_result(const Json &m, const std::string &field, const std::vector<Message> &earlier) {
    only_keys(m, field, {"role", "content", "tool_call_id"});
    Message message;
    message.role = "tool";
    Json parts = Json::object();
    message.content = decode_content(m, field, PartSet::Text, parts);
    if (Json mark = lift_cache_mark(parts); !mark.is_null())
        message.structured["cache_control"] = std::move(mark);
    const std::string &id = string_at(m, "tool_call_id", field);
    need(!id.empty(), field + ".tool_call_id", "must not be empty");
    check_answers_a_call(earlier, id, field);
    message.structured["tool_call_id"] = id;
    return message;
}

void check_role(const Json &m, const std::string &field, const std::string &role) {
    static const std::set<std::string> roles = {"system", "developer", "user", "assistant", "tool"};
    need(!role.empty(), field + ".role", "must be a string");
    if (role == "function")
        invalid(field + ".role", "'function' is deprecated and not supported: send role \"tool\" instead");
    if (!roles.count(role))
        invalid(field + ".role", "'" + role + "' is not system, developer, user, assistant or tool");
    if (present(m, "name"))
        invalid(field + ".name", "is not supported (participant names have no neutral form)");
}

void decode_message(const Json &m, std::size_t index, CompletionParams &params) {
    const std::string field = at("messages", index);
    need(m.is_object(), field, "must be an object");
    const std::string role = present(m, "role") && m["role"].is_string() ? m["role"] : "";
    check_role(m, field, role);
    if (role == "system" || role == "developer") {
        only_keys(m, field, {"role", "content"});
        Json parts = Json::object();
        const std::string text = decode_content(m, field, PartSet::Text, parts);
        params.system_prompt += (params.system_prompt.empty() ? "" : "\n") + text;
        // The ABI's system prompt is one string: a mark on it marks all of it.
        if (Json mark = lift_cache_mark(parts); !mark.is_null())
            params.params["system_cache_control"] = std::move(mark);
        return;
    }
    Message message;
    if (role == "user") {
        only_keys(m, field, {"role", "content"});
        message.role = "user";
        message.content = decode_content(m, field, PartSet::User, message.structured);
    } else if (role == "assistant") {
        message = decode_assistant(m, field);
    } else {
        message = decode_tool_result(m, field, params.messages);
    }
    check_structured(message.structured, field);
    params.messages.push_back(std::move(message));
}

} // namespace

// The neutral form knows minimal..high; the other values of the reference
// (none, xhigh, max) reach an OpenAI-wire vendor untouched under extra.
void map_reasoning_effort(const Json &v, const std::string &field, Json &params) {
    static const std::set<std::string> neutral = {"minimal", "low", "medium", "high"};
    static const std::set<std::string> vendor = {"none", "xhigh", "max"};
    need(v.is_string(), field, "must be a string");
    if (neutral.count(v.get<std::string>()))
        params["reasoning_effort"] = v;
    else if (vendor.count(v.get<std::string>()))
        params["extra"]["reasoning_effort"] = v;
    else
        invalid(field, "must be one of none, minimal, low, medium, high, xhigh, max");
}

ChatCompletionRequest decode_chat_completion(const Json &body, const std::string &session_header) {
    ChatCompletionRequest request;
    CompletionParams &params = request.completion;
    if (!present(body, "model") || !body["model"].is_string() || body["model"].get<std::string>().empty())
        invalid("model", "is required and must be a non-empty string");
    params.model = body["model"].get<std::string>();
    if (!present(body, "messages") || !body["messages"].is_array() || body["messages"].empty())
        invalid("messages", "is required and must be a non-empty list");
    decode_fields(body, request);
    for (std::size_t i = 0; i < body["messages"].size(); ++i)
        decode_message(body["messages"][i], i, params);
    // The door's own translation is checked against the neutral form too, so
    // a mapping mistake here is a 400, never a confused provider.
    check_params(params.params, "params");
    params.session_id = session_header;
    return request;
}

namespace {

namespace dom = simdjson::dom;

// The string `value`, when it is one and valid UTF-8 (simdjson may pass an
// escaped lone surrogate that nlohmann refuses).
std::optional<std::string_view> plain_string(dom::element value) {
    std::string_view text;
    if (value.get_string().get(text) != simdjson::SUCCESS || !cpp::valid_utf8(text)) return std::nullopt;
    return text;
}

// One {"role":..., "content": "..."} into `params`; false when it is not of
// the plain shape.
bool plain_message(dom::element element, CompletionParams &params) {
    dom::object object;
    if (element.get_object().get(object) != simdjson::SUCCESS) return false;
    std::optional<std::string_view> role, content;
    for (const dom::key_value_pair field : object) {
        std::optional<std::string_view> *slot = field.key == "role"      ? &role
                                                : field.key == "content" ? &content
                                                                         : nullptr;
        if (slot == nullptr || slot->has_value()) return false; // another key, or one repeated
        *slot = plain_string(field.value);
        if (!slot->has_value()) return false;
    }
    if (!role || !content) return false;
    if (*role == "system" || *role == "developer") {
        if (!params.system_prompt.empty()) params.system_prompt += '\n';
        params.system_prompt += *content;
        return true;
    }
    if (*role != "user" && *role != "assistant") return false;
    Message message;
    message.role = *role;
    message.content = *content;
    params.messages.push_back(std::move(message));
    return true;
}

std::optional<ChatCompletionRequest> plain_request(dom::element root) {
    dom::object object;
    if (root.get_object().get(object) != simdjson::SUCCESS) return std::nullopt;
    std::optional<std::string_view> model;
    std::optional<dom::array> messages;
    std::optional<bool> stream;
    for (const dom::key_value_pair field : object) {
        if (field.key == "model" && !model) {
            if (!(model = plain_string(field.value)) || model->empty()) return std::nullopt;
        } else if (field.key == "messages" && !messages) {
            dom::array list;
            if (field.value.get_array().get(list) != simdjson::SUCCESS || list.size() == 0)
                return std::nullopt;
            messages = list;
        } else if (field.key == "stream" && !stream) {
            bool value = false;
            if (field.value.get_bool().get(value) != simdjson::SUCCESS) return std::nullopt;
            stream = value;
        } else {
            return std::nullopt; // another field, or one repeated
        }
    }
    if (!model || !messages) return std::nullopt;
    ChatCompletionRequest request;
    CompletionParams &params = request.completion;
    params.model = *model;
    params.stream = stream.value_or(false);
    params.messages.reserve(messages->size());
    for (const dom::element message : *messages)
        if (!plain_message(message, params)) return std::nullopt;
    return request;
}

} // namespace

std::optional<ChatCompletionRequest> decode_plain_chat_completion(std::string_view body,
                                                                  const std::string &session_header) {
    std::optional<ChatCompletionRequest> request;
    with_simdjson(body, [&request](const dom::element &root) { request = plain_request(root); });
    if (request) request->completion.session_id = session_header;
    return request;
}

CompletionParams decode_completion(const Json &body, const std::string &session_header) {
    return decode_chat_completion(body, session_header).completion;
}

} // namespace swh::http
