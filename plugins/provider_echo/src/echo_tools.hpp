// The echo provider's deterministic tool behaviour and generation limits
// (ABI 1.3), as pure functions on the neutral forms of
// sdk/include/swarmhost/provider.h: a full tool loop with no keys.
#pragma once

#include <nlohmann/json.hpp>

#include <optional>
#include <string>
#include <vector>

namespace swh::echo {

// One message of the request as the tool logic needs it.
struct Turn {
    std::string role, content;
    nlohmann::json structured = nlohmann::json::object();
};

struct ToolCall {
    std::string id, name, arguments;
};

// When the request offers tools, tool_choice is not "none" and the last
// message is the user's: the call echo makes (the named tool_choice, else the
// first tool whose name appears in the user's text, else, for "required",
// the first tool); nullopt = answer with text.
std::optional<ToolCall> choose_tool_call(const nlohmann::json &params, const std::vector<Turn> &turns);

// When the conversation ends with tool results: "<tool> returned: <result>",
// one line per trailing result (the tool named by the earlier call with that
// id); nullopt otherwise.
std::optional<std::string> answer_tool_results(const std::vector<Turn> &turns);

// The reply cut at the first "stop" sequence ("stop") and to
// max_output_tokens words ("length"). Returns the finish reason.
std::string apply_limits(std::string &reply, const nlohmann::json &params);

} // namespace swh::echo
