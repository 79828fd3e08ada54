// The Anthropic Messages request decoder (host/http/anthropic_messages_request):
// what an Anthropic body becomes in the host's neutral form, and each refusal
// with the field path Anthropic's own errors use. The daemon tests
// (test_anthropic_messages.py) see the same through HTTP; here the exact
// neutral params and structured messages are compared.
#include "http/anthropic_messages_request.hpp"

#include <catch2/catch.hpp>

using swh::ApiError;
using swh::Json;
using swh::http::anthropic::decode_messages_request;

namespace {

Json user(Json content) {
    return {{"role", "user"}, {"content", std::move(content)}};
}

Json body_with(Json fields) {
    Json body = {{"model", "echo"}, {"max_tokens", 64}, {"messages", Json::array({user("hi")})}};
    if (fields.is_object()) body.update(fields); // `{}` is null
    return body;
}

// The message of the ApiError the decoder throws for `body`.
std::string refusal(const Json &body) {
    try {
        decode_messages_request(body, "");
    } catch (const ApiError &e) {
        return e.what();
    }
    return "(accepted)";
}

const Json kWeather = {
    {"name", "get_weather"},
    {"description", "weather of a city"},
    {"input_schema", {{"type", "object"}, {"properties", {{"city", {{"type", "string"}}}}}}}};

// A user turn, an assistant turn calling get_weather (id toolu_1), and the
// user's tool_result for it: a complete tool round.
Json tool_round(Json result_block) {
    return Json::array({user("weather in Oslo?"),
                        {{"role", "assistant"},
                         {"content", Json::array({{{"type", "text"}, {"text", "Let me check."}},
                                                  {{"type", "tool_use"},
                                                   {"id", "toolu_1"},
                                                   {"name", "get_weather"},
                                                   {"input", {{"city", "Oslo"}}}}})}},
                        user(Json::array({std::move(result_block)}))});
}

} // namespace

TEST_CASE("anthropic request: sampling fields map to the neutral params") {
    const auto params = decode_messages_request(body_with({{"temperature", 0.5},
                                                           {"top_p", 0.9},
                                                           {"top_k", 40},
                                                           {"stop_sequences", {"END", "STOP"}},
                                                           {"metadata", {{"user_id", "u-1"}}},
                                                           {"service_tier", "auto"},
                                                           {"cache_control", {{"type", "ephemeral"}}}}),
                                                "");
    CHECK(params.params == Json{{"max_output_tokens", 64},
                                {"temperature", 0.5},
                                {"top_p", 0.9},
                                {"stop", {"END", "STOP"}},
                                {"user", "u-1"},
                                {"cache_control", {{"type", "ephemeral"}}},
                                {"extra", {{"top_k", 40}, {"service_tier", "auto"}}}});
    CHECK(params.model == "echo");
    CHECK_FALSE(params.stream);
    CHECK(decode_messages_request(body_with({{"stream", true}}), "").stream);
    CHECK(decode_messages_request(body_with({}), "sid-1").session_id == "sid-1");
}

TEST_CASE("anthropic request: system as a string or text blocks, and system turns, make the system prompt") {
    CHECK(decode_messages_request(body_with({{"system", "be brief"}}), "").system_prompt == "be brief");
    const Json blocks =
        Json::array({{{"type", "text"}, {"text", "one"}}, {{"type", "text"}, {"text", "two"}}});
    CHECK(decode_messages_request(body_with({{"system", blocks}}), "").system_prompt == "onetwo");
    const auto params = decode_messages_request(
        body_with({{"system", "top"},
                   {"messages", Json::array({{{"role", "system"}, {"content", "turn"}}, user("hi")})}}),
        "");
    CHECK(params.system_prompt == "top\nturn");
    REQUIRE(params.messages.size() == 1);
    CHECK(params.messages[0].role == "user");
}

TEST_CASE("anthropic request: tools and tool_choice become the neutral form") {
    const auto params = decode_messages_request(
        body_with(
            {{"tools",
              Json::array(
                  {kWeather, {{"name", "noop"}, {"input_schema", {{"type", "object"}}}, {"strict", true}}})},
             {"tool_choice",
              {{"type", "tool"}, {"name", "get_weather"}, {"disable_parallel_tool_use", true}}}}),
        "");
    CHECK(params.params["tools"] == Json::array({{{"type", "function"},
                                                  {"name", "get_weather"},
                                                  {"description", "weather of a city"},
                                                  {"parameters", kWeather["input_schema"]}},
                                                 {{"type", "function"},
                                                  {"name", "noop"},
                                                  {"parameters", {{"type", "object"}}},
                                                  {"strict", true}}}));
    CHECK(params.params["tool_choice"] == Json{{"type", "function"}, {"name", "get_weather"}});
    CHECK(params.params["parallel_tool_calls"] == false);
    const auto choice = [](Json c) {
        return decode_messages_request(body_with({{"tools", {kWeather}}, {"tool_choice", c}}), "").params;
    };
    CHECK(choice({{"type", "auto"}})["tool_choice"] == "auto");
    CHECK_FALSE(choice({{"type", "auto"}}).contains("parallel_tool_calls"));
    CHECK(choice({{"type", "any"}})["tool_choice"] == "required");
    CHECK(choice({{"type", "none"}})["tool_choice"] == "none");
    CHECK_FALSE(
        choice({{"type", "any"}, {"disable_parallel_tool_use", false}}).contains("parallel_tool_calls"));
}

TEST_CASE("anthropic request: thinking budgets map to the nearest reasoning effort not above them") {
    const auto effort = [](int budget) {
        return decode_messages_request(
                   body_with({{"max_tokens", 40000},
                              {"thinking", {{"type", "enabled"}, {"budget_tokens", budget}}}}),
                   "")
            .params.value("reasoning_effort", "");
    };
    CHECK(effort(1024) == "minimal");
    CHECK(effort(4095) == "minimal");
    CHECK(effort(4096) == "low");
    CHECK(effort(8192) == "medium");
    CHECK(effort(16383) == "medium");
    CHECK(effort(16384) == "high");
    CHECK_FALSE(decode_messages_request(body_with({{"thinking", {{"type", "disabled"}}}}), "")
                    .params.contains("reasoning_effort"));
}

TEST_CASE("anthropic request: images and documents become neutral parts, text joined into content") {
    const auto params = decode_messages_request(
        body_with(
            {{"messages",
              Json::array({user(Json::array(
                  {{{"type", "text"}, {"text", "what is "}},
                   {{"type", "image"},
                    {"source", {{"type", "base64"}, {"media_type", "image/png"}, {"data", "AAAA"}}}},
                   {{"type", "image"}, {"source", {{"type", "url"}, {"url", "https://example.test/a.png"}}}},
                   {{"type", "document"},
                    {"source", {{"type", "base64"}, {"media_type", "application/pdf"}, {"data", "JVBE"}}}},
                   {{"type", "text"}, {"text", "this"}}}))})}}),
        "");
    REQUIRE(params.messages.size() == 1);
    CHECK(params.messages[0].content == "what is this");
    CHECK(params.messages[0].structured ==
          Json{{"parts",
                {{{"type", "text"}, {"text", "what is "}},
                 {{"type", "image"}, {"url", "data:image/png;base64,AAAA"}},
                 {{"type", "image"}, {"url", "https://example.test/a.png"}},
                 {{"type", "file"}, {"media_type", "application/pdf"}, {"data", "JVBE"}},
                 {{"type", "text"}, {"text", "this"}}}}});
    // Text blocks only: no parts, the text alone.
    const auto text_only = decode_messages_request(
        body_with({{"messages", {user(Json::array({{{"type", "text"}, {"text", "a"}}}))}}}), "");
    CHECK(text_only.messages[0].structured == Json::object());
}

TEST_CASE("anthropic request: a tool round becomes tool_calls and a tool message") {
    const auto params = decode_messages_request(
        body_with(
            {{"messages", tool_round({{"type", "tool_result"},
                                      {"tool_use_id", "toolu_1"},
                                      {"content", Json::array({{{"type", "text"}, {"text", "sunny"}}})}})}}),
        "");
    REQUIRE(params.messages.size() == 3);
    CHECK(params.messages[1].role == "assistant");
    CHECK(params.messages[1].content == "Let me check.");
    CHECK(params.messages[1].structured ==
          Json{{"tool_calls",
                {{{"id", "toolu_1"}, {"name", "get_weather"}, {"arguments", R"({"city":"Oslo"})"}}}}});
    CHECK(params.messages[2].role == "tool");
    CHECK(params.messages[2].content == "sunny");
    CHECK(params.messages[2].structured == Json{{"tool_call_id", "toolu_1"}});
    // is_error: the flag in structured content, and the text says it for
    // providers that read only the text.
    const auto failed =
        decode_messages_request(body_with({{"messages", tool_round({{"type", "tool_result"},
                                                                    {"tool_use_id", "toolu_1"},
                                                                    {"content", "boom"},
                                                                    {"is_error", true}})}}),
                                "");
    CHECK(failed.messages[2].content == "Error: boom");
    CHECK(failed.messages[2].structured == Json{{"tool_call_id", "toolu_1"}, {"is_error", true}});
}

TEST_CASE("anthropic request: tool results first, then the user's text, in block order") {
    Json messages = tool_round({{"type", "tool_result"}, {"tool_use_id", "toolu_1"}, {"content", "sunny"}});
    messages[2]["content"].push_back({{"type", "text"}, {"text", "and tomorrow?"}});
    const auto params = decode_messages_request(body_with({{"messages", messages}}), "");
    REQUIRE(params.messages.size() == 4);
    CHECK(params.messages[2].role == "tool");
    CHECK(params.messages[3].role == "user");
    CHECK(params.messages[3].content == "and tomorrow?");
}

TEST_CASE("anthropic request: an assistant's signed thinking becomes reasoning") {
    Json messages = tool_round({{"type", "tool_result"}, {"tool_use_id", "toolu_1"}, {"content", "sunny"}});
    const Json thinking = {{"type", "thinking"}, {"thinking", "hmm"}, {"signature", "sig"}};
    messages[1]["content"].insert(messages[1]["content"].begin(), thinking);
    const auto params = decode_messages_request(body_with({{"messages", messages}}), "");
    CHECK(params.messages[1].structured["reasoning"] == "hmm");
    CHECK(params.messages[1].structured["reasoning_signature"] == "sig");
}

TEST_CASE("anthropic request: max_tokens is required, as Anthropic requires it") {
    Json body = body_with({});
    body.erase("max_tokens");
    CHECK(refusal(body) == "max_tokens: Field required");
    CHECK(refusal(body_with({{"max_tokens", 0}})).rfind("max_tokens: ", 0) == 0);
    CHECK(refusal(body_with({{"max_tokens", "10"}})).rfind("max_tokens: ", 0) == 0);
    body = body_with({});
    body.erase("model");
    CHECK(refusal(body) == "model: Field required");
    body = body_with({});
    body.erase("messages");
    CHECK(refusal(body) == "messages: Field required");
}

TEST_CASE("anthropic request: fields it cannot honour are refused by name") {
    CHECK(refusal(body_with({{"frequency_penalty", 1}})) ==
          "frequency_penalty: Extra inputs are not permitted");
    CHECK(refusal(body_with({{"temperature", 1.5}})) ==
          "temperature: Input should be less than or equal to 1");
    CHECK(refusal(body_with({{"container", "c"}})).rfind("container: not supported by this door", 0) == 0);
    CHECK(refusal(body_with({{"output_config", {{"effort", "low"}}}}))
              .rfind("output_config: not supported", 0) == 0);
    CHECK(refusal(body_with({{"diagnostics", {{"previous_message_id", "m"}}}})).rfind("diagnostics: ", 0) ==
          0);
    CHECK(refusal(body_with({{"metadata", {{"tenant", "x"}}}})).rfind("metadata.tenant: not supported", 0) ==
          0);
    CHECK(refusal(body_with({{"thinking", {{"type", "adaptive"}}}})).rfind("thinking.type: 'adaptive'", 0) ==
          0);
    CHECK(refusal(body_with({{"thinking", {{"type", "enabled"}, {"budget_tokens", 512}}}})) ==
          "thinking.enabled.budget_tokens: Input should be greater than or equal to 1024");
    CHECK(refusal(body_with({{"thinking", {{"type", "enabled"}, {"budget_tokens", 2048}}}})) ==
          "max_tokens: `max_tokens` must be greater than `thinking.budget_tokens`");
    CHECK(refusal(body_with({{"tools", {{{"type", "web_search_20250305"}, {"name", "web_search"}}}}})) ==
          "tools.0.type: 'web_search_20250305' is a server tool, which this door does not run");
    CHECK(refusal(body_with({{"tools", {{{"name", "x"}}}}})) == "tools.0.input_schema: Field required");
    CHECK(refusal(body_with({{"tool_choice", {{"type", "sometimes"}}}})).rfind("tool_choice: Input tag", 0) ==
          0);
    CHECK(refusal(body_with({{"tool_choice", {{"type", "auto"}, {"name", "get_weather"}}}}))
              .rfind("tool_choice.name: not supported", 0) == 0);
    CHECK(refusal(body_with({{"messages",
                              {user(Json::array({{{"type", "text"},
                                                  {"text", "x"},
                                                  {"cache_control", {{"type", "persistent"}}}}}))}}}))
              .rfind("messages.0.content.0.cache_control: Input should be", 0) == 0);
    CHECK(refusal(body_with({{"cache_control", {{"type", "ephemeral"}, {"ttl", "2h"}}}}))
              .rfind("cache_control: Input should be", 0) == 0);
    CHECK(refusal(
              body_with({{"messages", {user(Json::array({{{"type", "search_result"}, {"source", "s"}}}))}}}))
              .rfind("messages.0.content.0.type: 'search_result'", 0) == 0);
    CHECK(refusal(body_with({{"messages",
                              {user(Json::array({{{"type", "image"},
                                                  {"source", {{"type", "file"}, {"file_id", "f"}}}}}))}}}))
              .rfind("messages.0.content.0.source.type: 'file'", 0) == 0);
    CHECK(refusal(body_with({{"messages", {{{"role", "tool"}, {"content", "x"}}}}})) ==
          "messages.0.role: Input should be 'user', 'assistant' or 'system'");
}

TEST_CASE("anthropic request: a tool_result must answer a tool_use of the message right before") {
    CHECK(refusal(body_with(
              {{"messages",
                tool_round({{"type", "tool_result"}, {"tool_use_id", "toolu_9"}, {"content", "x"}})}})) ==
          "messages.2.content.0: unexpected `tool_use_id` found in `tool_result` blocks: toolu_9. Each "
          "`tool_result` block must have a corresponding `tool_use` block in the previous message.");
    // A tool_use left unanswered by the next message.
    Json messages = tool_round({{"type", "text"}, {"text", "never mind"}});
    CHECK(refusal(body_with({{"messages", messages}}))
              .rfind("messages.1: `tool_use` ids were found without", 0) == 0);
    // A final assistant turn (prefill) has no neutral form.
    CHECK(refusal(body_with({{"messages", {user("hi"), {{"role", "assistant"}, {"content", "Sure"}}}}})) ==
          "messages.1: a final assistant message (prefill) is not supported by this door");
}

// Claude Code marks its system blocks, its tools and the last block of the
// conversation; each mark lands where the neutral form keeps it.
TEST_CASE("anthropic request: cache marks land on the neutral form where the blocks land") {
    const Json mark = {{"type", "ephemeral"}};
    const Json hour = {{"type", "ephemeral"}, {"ttl", "1h"}};
    Json tool = kWeather;
    tool["cache_control"] = hour;
    Json result = {
        {"type", "tool_result"}, {"tool_use_id", "toolu_1"}, {"content", "sunny"}, {"cache_control", mark}};
    Json messages = tool_round(result);
    messages[1]["content"][1]["cache_control"] = mark;
    messages.push_back(
        {{"role", "assistant"},
         {"content", Json::array({{{"type", "text"}, {"text", "ok"}, {"cache_control", mark}}})}});
    messages.push_back(user(Json::array(
        {{{"type", "text"}, {"text", "a"}}, {{"type", "text"}, {"text", "b"}, {"cache_control", mark}}})));
    const auto params = decode_messages_request(
        body_with({{"system", Json::array({{{"type", "text"}, {"text", "one"}, {"cache_control", hour}},
                                           {{"type", "text"}, {"text", "two"}, {"cache_control", mark}}})},
                   {"tools", {tool}},
                   {"messages", messages}}),
        "");
    CHECK(params.system_prompt == "onetwo");
    CHECK(params.params["system_cache_control"] == mark); // the last mark marks the joined prompt
    CHECK(params.params["tools"][0]["cache_control"] == hour);
    REQUIRE(params.messages.size() == 5);
    CHECK(params.messages[1].structured["tool_calls"][0]["cache_control"] == mark);
    CHECK(params.messages[2].structured == Json{{"tool_call_id", "toolu_1"}, {"cache_control", mark}});
    CHECK(params.messages[3].structured == Json{{"cache_control", mark}});
    CHECK(params.messages[4].content == "ab");
    CHECK(params.messages[4].structured ==
          Json{{"parts",
                {{{"type", "text"}, {"text", "a"}},
                 {{"type", "text"}, {"text", "b"}, {"cache_control", mark}}}}});
    // Unmarked text blocks stay plain text, as before.
    CHECK(decode_messages_request(
              body_with({{"messages", {user(Json::array({{{"type", "text"}, {"text", "x"}}}))}}}), "")
              .messages[0]
              .structured.empty());
}
