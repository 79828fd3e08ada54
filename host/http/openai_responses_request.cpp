#include "http/openai_responses_request.hpp"

#include "http/openai_chat_request.hpp"
#include "model/field_checks.hpp"
#include "model/generation_params.hpp"

#include <functional>
#include <map>

namespace swh::http {

namespace {

using namespace fields; // the shared checks: invalid, need, at, present, only_keys…

// Responses tools are flat, as the neutral form: {"type":"function","name",
// "description","parameters","strict"}. The hosted tools (web_search,
// file_search, computer_use, mcp, code_interpreter…) run at OpenAI and have
// no neutral form: refused by name.
Json decode_tool(const Json &tool, const std::string &field) {
    need(tool.is_object(), field, "must be an object");
    const std::string type = type_of(tool);
    if (type != "function")
        invalid(field + ".type", "'" + type + "' is not supported: only function tools have a neutral form");
    only_keys(tool, field, {"type", "name", "description", "parameters", "strict"});
    need(!string_at(tool, "name", field).empty(), field + ".name", "must not be empty");
    Json neutral = Json::object();
    for (const auto &[key, value] : tool.items())
        if (!value.is_null()) neutral[key] = value;
    return neutral;
}

Json decode_tool_choice(const Json &choice) {
    if (choice.is_string()) {
        need(choice == "auto" || choice == "none" || choice == "required", "tool_choice",
             "must be \"auto\", \"none\", \"required\" or {\"type\":\"function\",\"name\":..}");
        return choice;
    }
    need(choice.is_object(), "tool_choice", "must be a string or an object");
    if (type_of(choice) != "function")
        invalid("tool_choice.type",
                "'" + type_of(choice) + "' is not supported: only function tool choices have a neutral form");
    only_keys(choice, "tool_choice", {"type", "name"});
    return {{"type", "function"}, {"name", string_at(choice, "name", "tool_choice")}};
}

// text.format: {"type":"text"} | {"type":"json_object"} |
// {"type":"json_schema","name","schema","strict"} -> the neutral
// response_format (the same flat shape).
void decode_text(const Json &text, ResponsesRequest &r) {
    need(text.is_object(), "text", "must be an object");
    only_keys(text, "text", {"format", "verbosity"});
    if (present(text, "verbosity")) r.params["extra"]["verbosity"] = text["verbosity"];
    if (!present(text, "format")) return;
    const Json &format = text["format"];
    const std::string type = type_of(format);
    need(type == "text" || type == "json_object" || type == "json_schema", "text.format.type",
         "must be \"text\", \"json_object\" or \"json_schema\"");
    if (type != "json_schema") {
        only_keys(format, "text.format", {"type"});
        r.params["response_format"] = {{"type", type}};
        return;
    }
    if (present(format, "description"))
        invalid("text.format.description",
                "is not supported yet (the neutral response_format has no description)");
    only_keys(format, "text.format", {"type", "name", "schema", "strict"});
    Json neutral = {{"type", "json_schema"}, {"name", string_at(format, "name", "text.format")}};
    need(present(format, "schema") && format["schema"].is_object(), "text.format.schema",
         "must be a JSON schema object");
    neutral["schema"] = format["schema"];
    if (present(format, "strict")) {
        need(format["strict"].is_boolean(), "text.format.strict", "must be true or false");
        neutral["strict"] = format["strict"];
    }
    r.params["response_format"] = std::move(neutral);
}

void decode_reasoning(const Json &reasoning, ResponsesRequest &r) {
    need(reasoning.is_object(), "reasoning", "must be an object");
    // summary/generate_summary: reasoning summaries are not returned by this
    // door (the output carries no reasoning items yet).
    only_keys(reasoning, "reasoning", {"effort"});
    if (present(reasoning, "effort")) map_reasoning_effort(reasoning["effort"], "reasoning.effort", r.params);
}

using FieldRule = std::function<void(const Json &value, const std::string &key, ResponsesRequest &)>;

FieldRule number_param() {
    return [](const Json &v, const std::string &key, ResponsesRequest &r) {
        need(v.is_number(), key, "must be a number");
        r.params[key] = v;
    };
}

FieldRule echoed(FieldRule rule) {
    return [rule = std::move(rule)](const Json &v, const std::string &key, ResponsesRequest &r) {
        rule(v, key, r);
        r.envelope[key] = v;
    };
}

FieldRule extra() {
    return [](const Json &v, const std::string &key, ResponsesRequest &r) { r.params["extra"][key] = v; };
}

FieldRule refused(const char *why) {
    return [why](const Json &, const std::string &key, ResponsesRequest &) { invalid(key, why); };
}

void decode_conversation(const Json &v, const std::string &key, ResponsesRequest &r) {
    if (v.is_string()) {
        r.conversation = v.get<std::string>();
        return;
    }
    need(v.is_object(), key, "must be a conversation id or {\"id\": ..}");
    only_keys(v, key, {"id"});
    r.conversation = string_at(v, "id", key);
}

const std::map<std::string, FieldRule> &field_rules() {
    static const std::map<std::string, FieldRule> rules = {
        // honoured by the door
        {"input", [](const Json &v, const std::string &key,
                     ResponsesRequest &r) { r.input = conversation::decode_items(v, key); }},
        {"instructions", echoed([](const Json &v, const std::string &key, ResponsesRequest &r) {
             need(v.is_string(), key, "must be a string");
             r.instructions = v.get<std::string>();
         })},
        {"previous_response_id",
         [](const Json &v, const std::string &key, ResponsesRequest &r) {
             need(v.is_string() && !v.get_ref<const std::string &>().empty(), key, "must be a response id");
             r.previous_response_id = v.get<std::string>();
         }},
        {"conversation", decode_conversation},
        {"store", echoed([](const Json &v, const std::string &key, ResponsesRequest &r) {
             need(v.is_boolean(), key, "must be true or false");
             r.store = v.get<bool>();
         })},
        {"stream",
         [](const Json &v, const std::string &key, ResponsesRequest &r) {
             need(v.is_boolean(), key, "must be true or false");
             r.stream = v.get<bool>();
         }},
        {"stream_options",
         [](const Json &v, const std::string &key, ResponsesRequest &) {
             // include_obfuscation pads deltas for OpenAI's own transport: never done here.
             need(v.is_object(), key, "must be an object");
             only_keys(v, key, {"include_obfuscation"});
         }},
        {"metadata",
         echoed([](const Json &v, const std::string &key, ResponsesRequest &) { check_metadata(v, key); })},
        {"background",
         [](const Json &v, const std::string &key, ResponsesRequest &) {
             need(v == false, key, "must be false: background responses are not supported");
         }},
        {"truncation", echoed([](const Json &v, const std::string &key, ResponsesRequest &) {
             need(v == "disabled", key,
                  "must be \"disabled\": the door never drops history (\"auto\" is not supported)");
         })},
        // mapped into the neutral params
        {"temperature", echoed(number_param())},
        {"top_p", echoed(number_param())},
        {"max_output_tokens", echoed([](const Json &v, const std::string &key, ResponsesRequest &r) {
             need(v.is_number_integer() && v.get<int64_t>() > 0, key, "must be a positive integer");
             r.params[key] = v;
         })},
        {"tools", echoed([](const Json &v, const std::string &key, ResponsesRequest &r) {
             need(v.is_array(), key, "must be a list of tools");
             Json tools = Json::array();
             for (std::size_t i = 0; i < v.size(); ++i)
                 tools.push_back(decode_tool(v[i], at(key, i)));
             r.params["tools"] = std::move(tools);
         })},
        {"tool_choice", echoed([](const Json &v, const std::string &, ResponsesRequest &r) {
             r.params["tool_choice"] = decode_tool_choice(v);
         })},
        {"parallel_tool_calls", echoed([](const Json &v, const std::string &key, ResponsesRequest &r) {
             need(v.is_boolean(), key, "must be true or false");
             r.params[key] = v;
         })},
        {"text", echoed([](const Json &v, const std::string &, ResponsesRequest &r) { decode_text(v, r); })},
        {"reasoning",
         echoed([](const Json &v, const std::string &, ResponsesRequest &r) { decode_reasoning(v, r); })},
        {"user", echoed([](const Json &v, const std::string &key, ResponsesRequest &r) {
             need(v.is_string(), key, "must be a string");
             r.params["user"] = v;
         })},
        // vendor keys, passed under params.extra
        {"safety_identifier", extra()},
        {"service_tier", extra()},
        {"prompt_cache_key", extra()},
        {"prompt_cache_retention", extra()},
        // refused, naming the field
        {"include", refused("is not supported: this door returns no extra output data")},
        {"max_tool_calls", refused("is not supported: built-in tools do not run here")},
        {"prompt", refused("is not supported: stored prompts live at OpenAI")},
        {"top_logprobs", refused("is not supported: this door cannot return log probabilities")},
    };
    return rules;
}

} // namespace

const Json &check_metadata(const Json &metadata, const std::string &field) {
    need(metadata.is_object(), field, "must be an object of strings");
    need(metadata.size() <= 16, field, "may hold at most 16 keys");
    for (const auto &[key, value] : metadata.items()) {
        need(key.size() <= 64, field + "." + key, "names a key longer than 64 characters");
        need(value.is_string() && value.get_ref<const std::string &>().size() <= 512, field + "." + key,
             "must be a string of at most 512 characters");
    }
    return metadata;
}

std::string ResponsesRequest::system_prompt() const {
    if (instructions.empty()) return input.system_prompt;
    if (input.system_prompt.empty()) return instructions;
    return instructions + "\n" + input.system_prompt;
}

ResponsesRequest decode_responses_request(const Json &body) {
    ResponsesRequest request;
    if (!present(body, "model") || !body["model"].is_string() || body["model"].get<std::string>().empty())
        invalid("model", "is required and must be a non-empty string");
    request.model = body["model"].get<std::string>();
    if (!present(body, "input")) invalid("input", "is required");
    const auto &rules = field_rules();
    for (const auto &[key, value] : body.items()) {
        if (key == "model" || value.is_null()) continue;
        const auto rule = rules.find(key);
        if (rule == rules.end())
            invalid(key, "is not a Responses request field this door knows (docs/http-api.md)");
        rule->second(value, key, request);
    }
    if (present(body, "stream_options") && !request.stream)
        invalid("stream_options", "is only allowed with \"stream\": true");
    if (!request.previous_response_id.empty() && !request.conversation.empty())
        invalid("previous_response_id",
                "cannot be used together with 'conversation': a response continues one or the other");
    if (request.input.messages.empty()) invalid("input", "must hold at least one user message or item");
    const std::string last = request.input.messages.back().role;
    if (last != "user" && last != "tool")
        invalid("input", "must end with a user message or a function_call_output");
    check_params(request.params, "params");
    request.envelope["store"] = request.store;
    return request;
}

} // namespace swh::http
