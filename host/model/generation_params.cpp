#include "model/generation_params.hpp"

#include "model/errors.hpp"

#include <functional>
#include <map>

namespace swh {

namespace {

[[noreturn]] void invalid(const std::string &field, const std::string &what) {
    throw ApiError(ErrorKind::InvalidRequest, field + " " + what);
}

void need(bool ok, const std::string &field, const char *what) {
    if (!ok) invalid(field, what);
}

// A prompt-cache mark: {"type":"ephemeral"} with an optional "ttl" ("5m" or
// "1h"), Anthropic's cache_control. A cost hint, not meaning: a provider
// whose wire has no such mark drops it.
void check_cache_mark(const Json &mark, const std::string &field) {
    need(is_cache_mark(mark), field,
         "must be {\"type\":\"ephemeral\"} with an optional \"ttl\" of \"5m\" or \"1h\"");
}

void check_tool(const Json &tool, const std::string &field) {
    need(tool.is_object(), field, "must be an object");
    for (const auto &[key, value] : tool.items()) {
        const std::string at = field + "." + key;
        if (key == "type")
            need(value == "function", at, "must be \"function\"");
        else if (key == "name")
            need(value.is_string() && !value.get_ref<const std::string &>().empty(), at,
                 "must be a non-empty string");
        else if (key == "description")
            need(value.is_string(), at, "must be a string");
        else if (key == "parameters")
            need(value.is_object(), at, "must be a JSON schema object");
        else if (key == "strict")
            need(value.is_boolean(), at, "must be true or false");
        else if (key == "cache_control")
            check_cache_mark(value, at);
        else
            invalid(at, "is not a tool field (expected type, name, description, parameters, strict, "
                        "cache_control)");
    }
    need(tool.contains("name"), field + ".name", "is required");
}

void check_tool_choice(const Json &choice, const std::string &field) {
    if (choice.is_string()) {
        const auto &mode = choice.get_ref<const std::string &>();
        need(mode == "auto" || mode == "none" || mode == "required", field,
             "must be \"auto\", \"none\", \"required\" or {\"type\":\"function\",\"name\":...}");
        return;
    }
    need(choice.is_object() && choice.value("type", "") == "function" && choice.contains("name") &&
             choice["name"].is_string(),
         field, "must be \"auto\", \"none\", \"required\" or {\"type\":\"function\",\"name\":...}");
}

void check_response_format(const Json &format, const std::string &field) {
    need(format.is_object() && format.contains("type") && format["type"].is_string(), field,
         "must be an object with a string \"type\"");
    const std::string type = format["type"];
    if (type == "text" || type == "json_object") return;
    need(type == "json_schema", field + ".type", "must be \"text\", \"json_object\" or \"json_schema\"");
    need(format.contains("schema") && format["schema"].is_object(), field + ".schema",
         "must be a JSON schema object");
    if (format.contains("name")) need(format["name"].is_string(), field + ".name", "must be a string");
    if (format.contains("strict"))
        need(format["strict"].is_boolean(), field + ".strict", "must be true or false");
}

using Check = std::function<void(const Json &, const std::string &)>;

Check number() {
    return [](const Json &v, const std::string &f) { need(v.is_number(), f, "must be a number"); };
}
Check integer() {
    return [](const Json &v, const std::string &f) { need(v.is_number_integer(), f, "must be an integer"); };
}
Check positive_integer() {
    return [](const Json &v, const std::string &f) {
        need(v.is_number_integer() && v.get<int64_t>() > 0, f, "must be a positive integer");
    };
}
Check string() {
    return [](const Json &v, const std::string &f) { need(v.is_string(), f, "must be a string"); };
}

const std::map<std::string, Check> &param_checks() {
    static const std::map<std::string, Check> checks = {
        {"temperature", number()},
        {"top_p", number()},
        {"presence_penalty", number()},
        {"frequency_penalty", number()},
        {"max_output_tokens", positive_integer()},
        {"seed", integer()},
        {"user", string()},
        {"stop",
         [](const Json &v, const std::string &f) {
             need(v.is_array(), f, "must be a list of strings");
             for (const Json &s : v)
                 need(s.is_string(), f, "must be a list of strings");
         }},
        {"tools",
         [](const Json &v, const std::string &f) {
             need(v.is_array(), f, "must be a list of tools");
             for (std::size_t i = 0; i < v.size(); ++i)
                 check_tool(v[i], f + "[" + std::to_string(i) + "]");
         }},
        {"tool_choice", check_tool_choice},
        {"parallel_tool_calls",
         [](const Json &v, const std::string &f) { need(v.is_boolean(), f, "must be true or false"); }},
        {"response_format", check_response_format},
        {"reasoning_effort",
         [](const Json &v, const std::string &f) {
             need(v == "minimal" || v == "low" || v == "medium" || v == "high", f,
                  "must be \"minimal\", \"low\", \"medium\" or \"high\"");
         }},
        {"extra", [](const Json &v, const std::string &f) { need(v.is_object(), f, "must be an object"); }},
        // Prompt caching: the whole request's mark (Anthropic's automatic
        // caching) and the system prompt's (a plain string in the ABI).
        {"cache_control", check_cache_mark},
        {"system_cache_control", check_cache_mark},
    };
    return checks;
}

void check_tool_call(const Json &call, const std::string &field) {
    need(call.is_object(), field, "must be an object");
    need(call.contains("id") && call["id"].is_string(), field + ".id", "must be a string");
    need(call.contains("name") && call["name"].is_string(), field + ".name", "must be a string");
    need(call.contains("arguments") && call["arguments"].is_string(), field + ".arguments",
         "must be a string (the argument JSON text)");
    if (call.contains("cache_control")) check_cache_mark(call["cache_control"], field + ".cache_control");
}

void check_part(const Json &part, const std::string &field) {
    need(part.is_object() && part.contains("type") && part["type"].is_string(), field,
         "must be an object with a string \"type\"");
    const std::string type = part["type"];
    if (part.contains("cache_control")) check_cache_mark(part["cache_control"], field + ".cache_control");
    if (type == "text") {
        need(part.contains("text") && part["text"].is_string(), field + ".text", "must be a string");
    } else if (type == "image") {
        need(part.contains("url") && part["url"].is_string(), field + ".url",
             "must be a string (an https: or data: URL)");
    } else if (type == "file") {
        need(part.contains("data") || part.contains("file_id") || part.contains("url"), field,
             "needs \"data\", \"file_id\" or \"url\"");
    } else {
        invalid(field + ".type", "must be \"text\", \"image\" or \"file\"");
    }
}

} // namespace

bool is_cache_mark(const Json &mark) {
    if (!mark.is_object() || mark.value("type", Json()) != "ephemeral") return false;
    for (const auto &[key, value] : mark.items())
        if (key != "type" && !(key == "ttl" && (value == "5m" || value == "1h"))) return false;
    return true;
}

const Json &check_params(const Json &params, const std::string &where) {
    need(params.is_object(), where, "must be a JSON object");
    const auto &checks = param_checks();
    for (const auto &[key, value] : params.items()) {
        const auto check = checks.find(key);
        const std::string field = where + "." + key;
        if (check == checks.end()) {
            std::string known;
            for (const auto &[name, unused] : checks)
                known += (known.empty() ? "" : ", ") + name;
            invalid(field, "is not a generation parameter (expected one of: " + known + ")");
        }
        if (!value.is_null()) check->second(value, field);
    }
    return params;
}

const Json &check_structured(const Json &structured, const std::string &where) {
    need(structured.is_object(), where, "must be a JSON object");
    for (const auto &[key, value] : structured.items()) {
        const std::string field = where + "." + key;
        if (key == "parts") {
            need(value.is_array(), field, "must be a list of parts");
            for (std::size_t i = 0; i < value.size(); ++i)
                check_part(value[i], field + "[" + std::to_string(i) + "]");
        } else if (key == "tool_calls") {
            need(value.is_array(), field, "must be a list of tool calls");
            for (std::size_t i = 0; i < value.size(); ++i)
                check_tool_call(value[i], field + "[" + std::to_string(i) + "]");
        } else if (key == "tool_call_id" || key == "reasoning" || key == "reasoning_signature") {
            need(value.is_string(), field, "must be a string");
        } else if (key == "cache_control") {
            check_cache_mark(value, field);
        } else if (key == "is_error") {
            need(value.is_boolean(), field, "must be true or false");
        } else {
            invalid(field, "is not structured content (expected parts, tool_calls, tool_call_id, reasoning, "
                           "reasoning_signature, cache_control, is_error)");
        }
    }
    return structured;
}

} // namespace swh
