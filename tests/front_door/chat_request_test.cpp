// The chat-completions request decoder (host/http/openai_chat_request): what
// an OpenAI body becomes in the host's neutral form. The daemon tests
// (test_chat_fields.py, test_chat_tools.py) see the same through HTTP; here
// the exact neutral params and structured messages are compared, which no
// provider or store has to echo back.
#include "http/openai_chat_request.hpp"

#include <catch2/catch.hpp>

using swh::ApiError;
using swh::Json;
using swh::http::decode_chat_completion;

namespace {

Json body_with(Json fields) {
    Json body = {{"model", "echo"}, {"messages", Json::array({{{"role", "user"}, {"content", "hi"}}})}};
    body.update(fields);
    return body;
}

// The message of the ApiError the decoder throws for `body`.
std::string refusal(const Json &body) {
    try {
        decode_chat_completion(body, "");
    } catch (const ApiError &e) {
        return e.what();
    }
    return "(accepted)";
}

} // namespace

TEST_CASE("chat request: sampling fields map to the neutral params") {
    const auto request = decode_chat_completion(body_with({{"temperature", 0.5},
                                                           {"top_p", 0.9},
                                                           {"max_completion_tokens", 12},
                                                           {"stop", "END"},
                                                           {"seed", 3},
                                                           {"presence_penalty", 0.25},
                                                           {"frequency_penalty", -0.5},
                                                           {"user", "u"},
                                                           {"reasoning_effort", "high"},
                                                           {"parallel_tool_calls", false}}),
                                                "");
    CHECK(request.completion.params == Json{{"temperature", 0.5},
                                            {"top_p", 0.9},
                                            {"max_output_tokens", 12},
                                            {"stop", {"END"}},
                                            {"seed", 3},
                                            {"presence_penalty", 0.25},
                                            {"frequency_penalty", -0.5},
                                            {"user", "u"},
                                            {"reasoning_effort", "high"},
                                            {"parallel_tool_calls", false}});
    CHECK(decode_chat_completion(body_with({{"max_tokens", 7}}), "").completion.params ==
          Json{{"max_output_tokens", 7}});
}

TEST_CASE("chat request: tools, tool_choice and response_format flatten into the neutral form") {
    const Json tool = {{"type", "function"},
                       {"function",
                        {{"name", "get_weather"},
                         {"description", "d"},
                         {"parameters", {{"type", "object"}}},
                         {"strict", true}}}};
    const auto request = decode_chat_completion(
        body_with({{"tools", {tool}},
                   {"tool_choice", {{"type", "function"}, {"function", {{"name", "get_weather"}}}}},
                   {"response_format",
                    {{"type", "json_schema"},
                     {"json_schema", {{"name", "w"}, {"schema", {{"type", "object"}}}, {"strict", true}}}}}}),
        "");
    const Json &params = request.completion.params;
    CHECK(params["tools"] == Json::array({{{"type", "function"},
                                           {"name", "get_weather"},
                                           {"description", "d"},
                                           {"parameters", {{"type", "object"}}},
                                           {"strict", true}}}));
    CHECK(params["tool_choice"] == Json{{"type", "function"}, {"name", "get_weather"}});
    CHECK(params["response_format"] ==
          Json{{"type", "json_schema"}, {"name", "w"}, {"schema", {{"type", "object"}}}, {"strict", true}});
    CHECK(decode_chat_completion(body_with({{"tool_choice", "required"}}), "").completion.params ==
          Json{{"tool_choice", "required"}});
}

TEST_CASE("chat request: vendor fields travel under params.extra, untouched") {
    const Json vendor = {{"logit_bias", {{"50256", -100}}},
                         {"metadata", {{"k", "v"}}},
                         {"store", true},
                         {"service_tier", "flex"},
                         {"prediction", {{"type", "content"}, {"content", "x"}}},
                         {"prompt_cache_key", "k"},
                         {"prompt_cache_options", {{"mode", "explicit"}}},
                         {"prompt_cache_retention", "24h"},
                         {"safety_identifier", "s"},
                         {"verbosity", "low"},
                         {"web_search_options", {{"search_context_size", "low"}}},
                         {"moderation", {{"model", "omni-moderation-latest"}}}};
    CHECK(decode_chat_completion(body_with(vendor), "").completion.params == Json{{"extra", vendor}});
    // Values of the reference the neutral form lacks go to the vendor as sent.
    CHECK(decode_chat_completion(body_with({{"reasoning_effort", "none"}}), "").completion.params ==
          Json{{"extra", {{"reasoning_effort", "none"}}}});
}

TEST_CASE("chat request: the door's own fields") {
    const auto streamed = decode_chat_completion(
        body_with({{"stream", true}, {"stream_options", {{"include_usage", true}}}}), "");
    CHECK(streamed.completion.stream);
    CHECK(streamed.include_usage);
    const auto plain = decode_chat_completion(body_with({{"n", 1}, {"modalities", {"text"}}}), "session-1");
    CHECK_FALSE(plain.completion.stream);
    CHECK_FALSE(plain.include_usage);
    CHECK(plain.completion.session_id == "session-1");
    CHECK(plain.completion.params == Json::object());
}

TEST_CASE("chat request: refusals name the field first") {
    CHECK(refusal(body_with({{"n", 2}})).rfind("field 'n' must be 1", 0) == 0);
    CHECK(refusal(body_with({{"tools",
                              {{{"type", "function"}, {"function", {{"name", "f"}, {"parameters", 1}}}}}}}))
              .rfind("field 'tools[0].function.parameters' ", 0) == 0);
    CHECK(refusal(body_with({{"functions", Json::array()}})).rfind("field 'functions' ", 0) == 0);
    CHECK(refusal(body_with({{"frobnicate", 1}})).rfind("field 'frobnicate' ", 0) == 0);
}

TEST_CASE("chat request: content parts become structured parts, the text stays joined") {
    const Json content = {
        {{"type", "text"}, {"text", "look "}},
        {{"type", "image_url"}, {"image_url", {{"url", "https://x/cat.png"}, {"detail", "high"}}}},
        {{"type", "file"},
         {"file", {{"file_data", "data:application/pdf;base64,JVBE"}, {"filename", "a.pdf"}}}},
        {{"type", "file"}, {"file", {{"file_id", "file-1"}}}},
        {{"type", "text"}, {"text", "here"}}};
    const auto request =
        decode_chat_completion(body_with({{"messages", {{{"role", "user"}, {"content", content}}}}}), "");
    const auto &message = request.completion.messages.at(0);
    CHECK(message.content == "look here");
    CHECK(message.structured["parts"] ==
          Json::array(
              {{{"type", "text"}, {"text", "look "}},
               {{"type", "image"}, {"url", "https://x/cat.png"}, {"detail", "high"}},
               {{"type", "file"}, {"media_type", "application/pdf"}, {"data", "JVBE"}, {"filename", "a.pdf"}},
               {{"type", "file"}, {"file_id", "file-1"}},
               {{"type", "text"}, {"text", "here"}}}));
    // Text-only parts stay plain text: nothing structured to carry.
    const auto plain = decode_chat_completion(
        body_with({{"messages", {{{"role", "user"}, {"content", {{{"type", "text"}, {"text", "a"}}}}}}}}),
        "");
    CHECK(plain.completion.messages.at(0).structured == Json::object());
}

TEST_CASE("chat request: a tool loop's messages keep calls and call ids") {
    const Json messages = {
        {{"role", "system"}, {"content", "s"}},
        {{"role", "user"}, {"content", "weather?"}},
        {{"role", "assistant"},
         {"content", nullptr},
         {"refusal", nullptr},
         {"tool_calls",
          {{{"id", "call_1"},
            {"type", "function"},
            {"function", {{"name", "get_weather"}, {"arguments", "{\"city\":\"Oslo\"}"}}}}}}},
        {{"role", "tool"}, {"tool_call_id", "call_1"}, {"content", "sunny"}}};
    const auto request = decode_chat_completion(body_with({{"messages", messages}}), "");
    const auto &turns = request.completion.messages;
    REQUIRE(turns.size() == 3);
    CHECK(request.completion.system_prompt == "s");
    CHECK(turns[1].role == "assistant");
    CHECK(turns[1].content.empty());
    CHECK(turns[1].structured["tool_calls"] ==
          Json::array({{{"id", "call_1"}, {"name", "get_weather"}, {"arguments", "{\"city\":\"Oslo\"}"}}}));
    CHECK(turns[2].role == "tool");
    CHECK(turns[2].content == "sunny");
    CHECK(turns[2].structured == Json{{"tool_call_id", "call_1"}});

    Json unknown = messages;
    unknown[3]["tool_call_id"] = "call_2";
    CHECK(refusal(body_with({{"messages", unknown}})).rfind("field 'messages[3].tool_call_id' ", 0) == 0);
}

// cache_control as OpenAI-compatible clients of Anthropic models send it: a
// user part keeps its mark; a system, assistant or tool message's text parts
// become one text whose mark is the last one given.
TEST_CASE("chat request: cache marks land on the neutral form") {
    const Json mark = {{"type", "ephemeral"}};
    const Json hour = {{"type", "ephemeral"}, {"ttl", "1h"}};
    auto text = [](const char *t, const Json &m) {
        Json part = {{"type", "text"}, {"text", t}};
        if (!m.is_null()) part["cache_control"] = m;
        return part;
    };
    const Json call = {
        {"id", "call_1"}, {"type", "function"}, {"function", {{"name", "f"}, {"arguments", "{}"}}}};
    const auto request = decode_chat_completion(
        body_with(
            {{"cache_control", hour},
             {"tools", {{{"type", "function"}, {"function", {{"name", "f"}}}, {"cache_control", mark}}}},
             {"messages",
              {{{"role", "system"}, {"content", {text("a", hour), text("b", mark)}}},
               {{"role", "user"}, {"content", {text("q", Json()), text("r", mark)}}},
               {{"role", "assistant"}, {"content", {text("ok", mark)}}, {"tool_calls", {call}}},
               {{"role", "tool"}, {"tool_call_id", "call_1"}, {"content", {text("done", mark)}}}}}}),
        "");
    const auto &params = request.completion.params;
    CHECK(params["cache_control"] == hour);
    CHECK(params["system_cache_control"] == mark);
    CHECK(params["tools"][0]["cache_control"] == mark);
    const auto &messages = request.completion.messages;
    REQUIRE(messages.size() == 3);
    CHECK(messages[0].structured == Json{{"parts", {text("q", Json()), text("r", mark)}}});
    CHECK(messages[1].structured["cache_control"] == mark);
    CHECK_FALSE(messages[1].structured.contains("parts"));
    CHECK(messages[2].structured == Json{{"tool_call_id", "call_1"}, {"cache_control", mark}});
    CHECK(refusal(body_with({{"cache_control", {{"type", "forever"}}}})).find("cache_control") !=
          std::string::npos);
}
