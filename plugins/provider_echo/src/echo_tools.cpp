#include "echo_tools.hpp"

#include "echo_reply.hpp"

namespace swh::echo {

using Json = nlohmann::json;

namespace {

const Json *find_tool(const Json &tools, const std::string &name) {
    for (const Json &tool : tools)
        if (tool.is_object() && tool.value("name", "") == name) return &tool;
    return nullptr;
}

const Json *pick_tool(const Json &params, const std::string &user_text) {
    const Json &tools = params["tools"];
    const Json choice = params.value("tool_choice", Json("auto"));
    if (choice.is_object()) return find_tool(tools, choice.value("name", ""));
    for (const Json &tool : tools) {
        const std::string name = tool.is_object() ? tool.value("name", "") : "";
        if (!name.empty() && user_text.find(name) != std::string::npos) return &tool;
    }
    return choice == "required" ? &tools.front() : nullptr;
}

// Every string property of the tool's schema gets the user's text.
std::string arguments_for(const Json &tool, const std::string &user_text) {
    Json arguments = Json::object();
    const Json parameters = tool.value("parameters", Json::object());
    if (parameters.contains("properties") && parameters["properties"].is_object())
        for (const auto &[name, schema] : parameters["properties"].items())
            if (schema.is_object() && schema.value("type", "") == "string") arguments[name] = user_text;
    return arguments.dump(-1, ' ', false, Json::error_handler_t::replace);
}

} // namespace

std::optional<ToolCall> choose_tool_call(const Json &params, const std::vector<Turn> &turns) {
    if (turns.empty() || turns.back().role != "user") return std::nullopt;
    if (!params.contains("tools") || !params["tools"].is_array() || params["tools"].empty())
        return std::nullopt;
    if (params.value("tool_choice", Json("auto")) == "none") return std::nullopt;
    const std::string &user_text = turns.back().content;
    const Json *tool = pick_tool(params, user_text);
    if (tool == nullptr) return std::nullopt;
    return ToolCall{"call_echo_" + std::to_string(turns.size()), tool->value("name", ""),
                    arguments_for(*tool, user_text)};
}

std::optional<std::string> answer_tool_results(const std::vector<Turn> &turns) {
    std::size_t first = turns.size();
    while (first > 0 && turns[first - 1].role == "tool")
        --first;
    if (first == turns.size()) return std::nullopt;
    std::string answer;
    for (std::size_t i = first; i < turns.size(); ++i) {
        const std::string id = turns[i].structured.value("tool_call_id", "");
        std::string name = "tool";
        for (std::size_t j = first; j-- > 0;) {
            const Json calls = turns[j].structured.value("tool_calls", Json::array());
            for (const Json &call : calls)
                if (call.value("id", "") == id) name = call.value("name", name);
        }
        answer += (answer.empty() ? "" : "\n") + name + " returned: " + turns[i].content;
    }
    return answer;
}

std::string apply_limits(std::string &reply, const Json &params) {
    std::string finish = "stop";
    if (params.contains("stop") && params["stop"].is_array())
        for (const Json &stop : params["stop"]) {
            if (!stop.is_string() || stop.get_ref<const std::string &>().empty()) continue;
            if (const auto at = reply.find(stop.get<std::string>()); at != std::string::npos)
                reply.resize(at);
        }
    if (params.contains("max_output_tokens") && params["max_output_tokens"].is_number_integer()) {
        const auto limit = params["max_output_tokens"].get<int64_t>();
        const auto pieces = word_pieces(reply);
        if (limit >= 0 && pieces.size() > static_cast<std::size_t>(limit)) {
            std::string kept;
            for (std::size_t i = 0; i < static_cast<std::size_t>(limit); ++i)
                kept += pieces[i];
            while (!kept.empty() && (kept.back() == ' ' || kept.back() == '\n'))
                kept.pop_back();
            reply = std::move(kept);
            finish = "length";
        }
    }
    return finish;
}

} // namespace swh::echo
