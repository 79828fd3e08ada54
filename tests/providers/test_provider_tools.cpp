// ABI 1.3 through the real openai and anthropic plugins against
// tools/fake_upstream: the neutral parameters and structured messages become
// each vendor's exact request (asserted on the bodies the fake recorded), and
// each vendor's answer (tool calls, thinking, finish reason, usage) becomes
// reply events, streamed and not. The fake calls every offered tool with
// {"text": <last user text>} and answers a tool result with "Tool said: ...".
#include "provider_fixture.hpp"

#include <catch2/catch.hpp>

using namespace swh;
using namespace swh::test;

namespace {

using Type = ReplyEvent::Type;

const Json kWeatherSchema = {
    {"type", "object"}, {"properties", {{"city", {{"type", "string"}}}}}, {"required", {"city"}}};

Json weather_tool() {
    return {{"type", "function"},
            {"name", "get_weather"},
            {"description", "Weather of a city"},
            {"parameters", kWeatherSchema},
            {"strict", true}};
}

Json time_tool() {
    return {{"type", "function"}, {"name", "get_time"}, {"parameters", {{"type", "object"}}}};
}

// The single usage event of a reply.
ReplyEvent usage_of(Collected &c) {
    auto usage = c.of(Type::Usage);
    REQUIRE(usage.size() == 1);
    return usage[0];
}

std::string finish_of(Collected &c) {
    auto finish = c.of(Type::Finish);
    REQUIRE(finish.size() == 1);
    return finish[0].text;
}

} // namespace

// ------------------------------------------------------------------ OpenAI

TEST_CASE("openai: every neutral parameter becomes its Chat Completions field: extra is merged last") {
    Fixture f;
    loader::ProviderInstance p(load("swh_provider_openai"), "openai", f.openai_config({{"max_tokens", 50}}));
    f.say("weather in Oslo");
    f.request.params = {
        {"temperature", 0.3},
        {"top_p", 0.9},
        {"max_output_tokens", 77},
        {"stop", {"END"}},
        {"seed", 7},
        {"presence_penalty", 0.1},
        {"frequency_penalty", 0.2},
        {"user", "user-1"},
        {"tools", {weather_tool(), time_tool()}},
        {"tool_choice", {{"type", "function"}, {"name", "get_weather"}}},
        {"parallel_tool_calls", false},
        {"response_format",
         {{"type", "json_schema"}, {"name", "w"}, {"schema", {{"type", "object"}}}, {"strict", true}}},
        {"reasoning_effort", "low"},
        {"extra", {{"service_tier", "flex"}, {"top_p", 0.5}, {"prompt_cache_key", "k1"}}}};
    const bool stream = GENERATE(false, true);
    CAPTURE(stream);
    f.request.stream = stream;
    Collected c;
    run(p, f.request, c);
    REQUIRE(c.status == SWH_OK);
    const Json body = f.fake.requests()[0]["body"];
    CHECK(body["temperature"] == 0.3);
    CHECK(body["top_p"] == 0.5); // extra wins over the mapped key
    CHECK(body["max_completion_tokens"] == 77);
    CHECK_FALSE(body.contains("max_tokens")); // the config default gives way to the call's
    CHECK(body["stop"] == Json::array({"END"}));
    CHECK(body["seed"] == 7);
    CHECK(body["presence_penalty"] == 0.1);
    CHECK(body["frequency_penalty"] == 0.2);
    CHECK(body["user"] == "user-1");
    CHECK(body["tools"] ==
          Json::array({{{"type", "function"},
                        {"function",
                         {{"name", "get_weather"},
                          {"description", "Weather of a city"},
                          {"parameters", kWeatherSchema},
                          {"strict", true}}}},
                       {{"type", "function"},
                        {"function", {{"name", "get_time"}, {"parameters", {{"type", "object"}}}}}}}));
    CHECK(body["tool_choice"] == Json{{"type", "function"}, {"function", {{"name", "get_weather"}}}});
    CHECK(body["parallel_tool_calls"] == false);
    CHECK(body["response_format"] ==
          Json{{"type", "json_schema"},
               {"json_schema", {{"name", "w"}, {"schema", {{"type", "object"}}}, {"strict", true}}}});
    CHECK(body["reasoning_effort"] == "low");
    CHECK(body["service_tier"] == "flex");
    CHECK(body["stream"] == stream);
    CHECK(body.contains("stream_options") == stream);

    // the answer: one forced call, its events, finish and usage
    const Json calls = c.tool_calls();
    REQUIRE(calls.size() == 1);
    CHECK(calls[0]["id"].get<std::string>().rfind("call_", 0) == 0);
    CHECK(calls[0]["name"] == "get_weather");
    CHECK(calls[0]["arguments"] == R"({"text": "weather in Oslo"})");
    CHECK(c.text().empty());
    CHECK(finish_of(c) == "tool_calls");
    const ReplyEvent usage = usage_of(c);
    CHECK(usage.input_tokens == 3);
    CHECK(usage.reasoning_tokens == 4);
    CHECK(usage.cached_input_tokens == 0); // one message: nothing before it to cache
    CHECK(usage.output_tokens == 4 + 4);
    CHECK(c.metadata["finish_reason"] == "tool_calls");
    if (stream) { // the first piece carries id and name, the rest argument fragments
        auto pieces = c.of(Type::ToolCall);
        REQUIRE(pieces.size() > 2);
        CHECK(pieces[0].name == "get_weather");
        CHECK(pieces[1].id.empty());
        CHECK(pieces[1].name.empty());
    }
}

TEST_CASE("openai: a tool loop: assistant tool_calls and tool results in Chat Completions' shape") {
    Fixture f;
    loader::ProviderInstance p(load("swh_provider_openai"), "openai", f.openai_config());
    f.request.params = {{"tools", {weather_tool(), time_tool()}},
                        {"extra", {{"prompt_cache_key", "conv-1"}}}};
    f.say("weather and time in Oslo");
    const bool stream = GENERATE(false, true);
    CAPTURE(stream);
    f.request.stream = stream;

    Collected first;
    run(p, f.request, first);
    REQUIRE(first.status == SWH_OK);
    const Json calls = first.tool_calls();
    REQUIRE(calls.size() == 2); // parallel calls: each offered tool, indexes 0 and 1
    CHECK(calls[0]["name"] == "get_weather");
    CHECK(calls[1]["name"] == "get_time");
    CHECK(finish_of(first) == "tool_calls");

    // the stored form of that reply, then both results
    Json stored = Json::array();
    for (const auto &call : calls)
        stored.push_back(call);
    f.history.push_back(msg(f.session, "assistant", "", {{"tool_calls", stored}}));
    f.history.push_back(msg(f.session, "tool", "12 degrees", {{"tool_call_id", calls[0]["id"]}}));
    f.history.push_back(msg(f.session, "tool", "noon", {{"tool_call_id", calls[1]["id"]}}));
    f.fake.reset();
    Collected second;
    run(p, f.request, second);
    REQUIRE(second.status == SWH_OK);
    CHECK(second.text() == "Tool said: 12 degrees; noon");
    CHECK(second.tool_calls().empty());
    CHECK(finish_of(second) == "stop");
    CHECK(usage_of(second).cached_input_tokens == 7); // words of the messages before the last (5 + 2)
    const Json messages = f.fake.requests()[0]["body"]["messages"];
    REQUIRE(messages.size() == 4);
    CHECK(messages[1] ==
          Json{{"role", "assistant"},
               {"content", nullptr},
               {"tool_calls",
                {{{"id", calls[0]["id"]},
                  {"type", "function"},
                  {"function", {{"name", "get_weather"}, {"arguments", calls[0]["arguments"]}}}},
                 {{"id", calls[1]["id"]},
                  {"type", "function"},
                  {"function", {{"name", "get_time"}, {"arguments", calls[1]["arguments"]}}}}}}});
    CHECK(messages[2] == Json{{"role", "tool"}, {"tool_call_id", calls[0]["id"]}, {"content", "12 degrees"}});
    CHECK(messages[3] == Json{{"role", "tool"}, {"tool_call_id", calls[1]["id"]}, {"content", "noon"}});
}

TEST_CASE("openai: tool_choice none/required and parallel_tool_calls pass through") {
    Fixture f;
    loader::ProviderInstance p(load("swh_provider_openai"), "openai", f.openai_config());
    f.say("hi");
    for (const char *choice : {"none", "required", "auto"}) {
        DYNAMIC_SECTION("tool_choice=" << choice) {
            f.request.params = {{"tools", {weather_tool()}}, {"tool_choice", choice}};
            Collected c;
            run(p, f.request, c);
            REQUIRE(c.status == SWH_OK);
            CHECK(f.fake.requests()[0]["body"]["tool_choice"] == choice);
            CHECK(c.tool_calls().size() == (std::string(choice) == "none" ? 0u : 1u));
        }
    }
}

TEST_CASE("openai: tool-call arguments that are not valid JSON are passed on as the upstream sent them") {
    Fixture f;
    loader::ProviderInstance p(load("swh_provider_openai"), "openai", f.openai_config());
    f.request.params = {{"tools", {weather_tool()}}};
    f.say("Oslo [fake:badargs]");
    const bool stream = GENERATE(false, true);
    CAPTURE(stream);
    f.request.stream = stream;
    Collected c;
    run(p, f.request, c);
    CHECK(c.status == SWH_OK);
    const Json calls = c.tool_calls();
    REQUIRE(calls.size() == 1);
    CHECK(calls[0]["arguments"] == R"({"text": "Oslo [fake:badargs])"); // cut short, as sent
    CHECK(Json::parse(calls[0]["arguments"].get<std::string>(), nullptr, false).is_discarded());
}

TEST_CASE("openai: user parts become text, image_url and file parts: an image it cannot take is refused") {
    Fixture f;
    loader::ProviderInstance p(load("swh_provider_openai"), "openai", f.openai_config());
    const std::string png =
        "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==";
    const std::string pdf = "JVBERi0xLjQKMSAwIG9iaiA8PD4+IGVuZG9iagp0cmFpbGVyIDw8Pj4KJSVFT0YK";
    SECTION("parts") {
        f.history.push_back(
            msg(f.session, "user", "look",
                {{"parts",
                  {{{"type", "text"}, {"text", "look"}},
                   {{"type", "image"}, {"url", "data:image/png;base64," + png}, {"detail", "low"}},
                   {{"type", "image"}, {"url", "https://example.invalid/cat.jpg"}},
                   {{"type", "file"},
                    {"filename", "a.pdf"},
                    {"media_type", "application/pdf"},
                    {"data", pdf}}}}}));
        Collected c;
        run(p, f.request, c);
        REQUIRE(c.status == SWH_OK);
        CHECK(c.text().find("[saw image/png 70 bytes") != std::string::npos);
        const Json content = f.fake.requests()[0]["body"]["messages"][0]["content"];
        CHECK(
            content ==
            Json::array(
                {{{"type", "text"}, {"text", "look"}},
                 {{"type", "image_url"},
                  {"image_url", {{"url", "data:image/png;base64," + png}, {"detail", "low"}}}},
                 {{"type", "image_url"}, {"image_url", {{"url", "https://example.invalid/cat.jpg"}}}},
                 {{"type", "file"},
                  {"file", {{"filename", "a.pdf"}, {"file_data", "data:application/pdf;base64," + pdf}}}}}));
    }
    SECTION("an image type it cannot take: SWH_E_INVALID naming the message and part, nothing sent") {
        f.say("first");
        f.history.push_back(msg(f.session, "user", "look",
                                {{"parts",
                                  {{{"type", "text"}, {"text", "look"}},
                                   {{"type", "image"}, {"url", "data:image/tiff;base64,AAAA"}}}}}));
        Collected c;
        CHECK_THROWS_WITH(p.start(f.request, c.callbacks()), Catch::Contains("(invalid)") &&
                                                                 Catch::Contains("messages[1].parts[1]") &&
                                                                 Catch::Contains("image/tiff"));
        CHECK(f.fake.requests().empty());
    }
    SECTION("a parameter the wire does not know is refused by name") {
        f.say("hi");
        f.request.params = {{"top_k", 3}};
        Collected c;
        CHECK_THROWS_WITH(p.start(f.request, c.callbacks()),
                          Catch::Contains("(invalid)") && Catch::Contains("params.top_k"));
    }
}

// --------------------------------------------------------------- Anthropic

TEST_CASE(
    "anthropic: every neutral parameter becomes its Messages field: thinking, text and tool_use come back") {
    Fixture f;
    loader::ProviderInstance p(load("swh_provider_anthropic"), "anthropic", f.anthropic_config());
    f.say("weather in Oslo");
    f.request.params = {{"temperature", 0.3},
                        {"top_p", 0.9},
                        {"max_output_tokens", 3000},
                        {"stop", {"END"}},
                        {"user", "user-1"},
                        {"tools", {weather_tool(), time_tool()}},
                        {"parallel_tool_calls", false},
                        {"reasoning_effort", "low"},
                        {"extra", {{"top_k", 5}}}};
    const bool stream = GENERATE(false, true);
    CAPTURE(stream);
    f.request.stream = stream;
    Collected c;
    run(p, f.request, c);
    REQUIRE(c.status == SWH_OK);
    const Json body = f.fake.requests()[0]["body"];
    CHECK(body["max_tokens"] == 3000);
    CHECK(body["temperature"] == 0.3);
    CHECK(body["top_p"] == 0.9);
    CHECK(body["stop_sequences"] == Json::array({"END"}));
    CHECK(body["metadata"] == Json{{"user_id", "user-1"}});
    CHECK(body["tools"] == Json::array({{{"name", "get_weather"},
                                         {"description", "Weather of a city"},
                                         {"input_schema", kWeatherSchema}},
                                        {{"name", "get_time"}, {"input_schema", {{"type", "object"}}}}}));
    CHECK(body["tool_choice"] == Json{{"type", "auto"}, {"disable_parallel_tool_use", true}});
    CHECK(body["thinking"] ==
          Json{{"type", "enabled"}, {"budget_tokens", 2999}}); // low (4096) under max_tokens
    CHECK(body["top_k"] == 5);
    CHECK(body["messages"] == Json::array({{{"role", "user"}, {"content", "weather in Oslo"}}}));

    CHECK(c.joined(Type::Reasoning) == "Thinking about: weather in Oslo");
    CHECK(c.joined(Type::ReasoningSignature).rfind("sig_fake_", 0) == 0);
    CHECK(c.text() == "Calling get_weather.");
    const Json calls = c.tool_calls();
    REQUIRE(calls.size() == 1); // tool call 0, though it is content block 2
    CHECK(calls[0]["id"].get<std::string>().rfind("toolu_", 0) == 0);
    CHECK(calls[0]["name"] == "get_weather");
    CHECK(Json::parse(calls[0]["arguments"].get<std::string>()) == Json{{"text", "weather in Oslo"}});
    CHECK(finish_of(c) == "tool_calls");
    const ReplyEvent usage = usage_of(c);
    CHECK(usage.input_tokens == 3);
    CHECK(usage.cached_input_tokens == 0);
    CHECK(usage.output_tokens > 0);
    CHECK(usage.reasoning_tokens == -1);
    CHECK(c.metadata["stop_reason"] == "tool_use");
}

TEST_CASE(
    "anthropic: tool_choice auto/none/required/named: what has no field is refused by name or dropped") {
    Fixture f;
    f.say("hi");
    loader::ProviderInstance p(load("swh_provider_anthropic"), "anthropic", f.anthropic_config());
    const std::vector<std::pair<Json, Json>> cases = {
        {"auto", {{"type", "auto"}}},
        {"none", {{"type", "none"}}},
        {"required", {{"type", "any"}}},
        {{{"type", "function"}, {"name", "get_time"}}, {{"type", "tool"}, {"name", "get_time"}}}};
    for (const auto &[neutral, wire] : cases) {
        f.fake.reset();
        f.request.params = {{"tools", {weather_tool(), time_tool()}}, {"tool_choice", neutral}};
        Collected c;
        run(p, f.request, c);
        CHECK(c.status == SWH_OK);
        CHECK(f.fake.requests()[0]["body"]["tool_choice"] == wire);
        CHECK(c.tool_calls().size() == (neutral == "none" ? 0u : neutral.is_object() ? 1u : 2u));
    }
    for (const auto &[params, named] : std::vector<std::pair<Json, std::string>>{
             {{{"seed", 7}}, "params.seed"},
             {{{"presence_penalty", 0.5}}, "params.presence_penalty"},
             {{{"temperature", 1.5}}, "params.temperature"},
             {{{"response_format",
                {{"type", "json_schema"}, {"name", "x"}, {"schema", {{"type", "object"}}}}}},
              "params.response_format"},
             {{{"reasoning_effort", "high"}, {"max_output_tokens", 1000}}, "params.reasoning_effort"}}) {
        f.request.params = params;
        Collected c;
        CHECK_THROWS_WITH(p.start(f.request, c.callbacks()),
                          Catch::Contains("(invalid)") && Catch::Contains(named));
    }
    SECTION("drop_params drops instead") {
        loader::ProviderInstance dropping(
            load("swh_provider_anthropic"), "anthropic",
            f.anthropic_config({{"drop_params", {"seed", "frequency_penalty"}}}));
        f.fake.reset();
        f.request.params = {{"seed", 7}, {"frequency_penalty", 0.1}};
        Collected c;
        run(dropping, f.request, c);
        CHECK(c.status == SWH_OK);
        const Json body = f.fake.requests()[0]["body"];
        CHECK_FALSE(body.contains("seed"));
        CHECK_FALSE(body.contains("frequency_penalty"));
    }
}

TEST_CASE(
    "anthropic: a tool loop: tool_use blocks, signed thinking first, tool results in one user message") {
    Fixture f;
    loader::ProviderInstance p(load("swh_provider_anthropic"), "anthropic", f.anthropic_config());
    f.request.params = {{"tools", {weather_tool(), time_tool()}},
                        {"extra", {{"cache_control", {{"type", "ephemeral"}}}}}};
    f.say("weather and time in Oslo");
    const bool stream = GENERATE(false, true);
    CAPTURE(stream);
    f.request.stream = stream;
    Collected first;
    run(p, f.request, first);
    REQUIRE(first.status == SWH_OK);
    const Json calls = first.tool_calls();
    REQUIRE(calls.size() == 2);
    f.history.push_back(
        msg(f.session, "assistant", first.text(),
            {{"tool_calls", calls}, {"reasoning", "I should look"}, {"reasoning_signature", "sig-1"}}));
    f.history.push_back(msg(f.session, "tool", "12 degrees", {{"tool_call_id", calls[0]["id"]}}));
    f.history.push_back(msg(f.session, "tool", "noon", {{"tool_call_id", calls[1]["id"]}}));
    f.fake.reset();
    Collected second;
    run(p, f.request, second);
    REQUIRE(second.status == SWH_OK);
    CHECK(second.text() == "Tool said: 12 degrees; noon");
    CHECK(finish_of(second) == "stop");
    const ReplyEvent usage = usage_of(second);
    // the words before the last message (5 + 3), all read from the cache: the
    // fake reports input_tokens 0 and cache_read_input_tokens 8, the event the sum
    CHECK(usage.cached_input_tokens == 8);
    CHECK(usage.input_tokens == 8);
    const Json messages = f.fake.requests()[0]["body"]["messages"];
    REQUIRE(messages.size() == 3);
    CHECK(messages[1] == Json{{"role", "assistant"},
                              {"content",
                               {{{"type", "thinking"}, {"thinking", "I should look"}, {"signature", "sig-1"}},
                                {{"type", "text"}, {"text", "Calling get_weather, get_time."}},
                                {{"type", "tool_use"},
                                 {"id", calls[0]["id"]},
                                 {"name", "get_weather"},
                                 {"input", {{"text", "weather and time in Oslo"}}}},
                                {{"type", "tool_use"},
                                 {"id", calls[1]["id"]},
                                 {"name", "get_time"},
                                 {"input", {{"text", "weather and time in Oslo"}}}}}}});
    CHECK(messages[2] ==
          Json{{"role", "user"},
               {"content",
                {{{"type", "tool_result"}, {"tool_use_id", calls[0]["id"]}, {"content", "12 degrees"}},
                 {{"type", "tool_result"}, {"tool_use_id", calls[1]["id"]}, {"content", "noon"}}}}});
}

TEST_CASE(
    "anthropic: stored arguments that are not JSON are refused naming the message, streamed bad ones pass") {
    Fixture f;
    loader::ProviderInstance p(load("swh_provider_anthropic"), "anthropic", f.anthropic_config());
    SECTION("history") {
        f.say("hi");
        f.history.push_back(msg(
            f.session, "assistant", "",
            {{"tool_calls", {{{"id", "call_1"}, {"name", "get_weather"}, {"arguments", "{\"city\": "}}}}}));
        f.history.push_back(msg(f.session, "tool", "sunny", {{"tool_call_id", "call_1"}}));
        Collected c;
        CHECK_THROWS_WITH(p.start(f.request, c.callbacks()),
                          Catch::Contains("(invalid)") &&
                              Catch::Contains("messages[1].tool_calls[0].arguments"));
        CHECK(f.fake.requests().empty());
    }
    SECTION("streamed from the upstream") {
        f.say("Oslo [fake:badargs]");
        f.request.params = {{"tools", {weather_tool()}}};
        f.request.stream = true;
        Collected c;
        run(p, f.request, c);
        CHECK(c.status == SWH_OK);
        REQUIRE(c.tool_calls().size() == 1);
        CHECK(c.tool_calls()[0]["arguments"] == R"({"text": "Oslo [fake:badargs])");
    }
}

TEST_CASE("anthropic: image parts become url/base64 image blocks: an image it cannot take is refused") {
    Fixture f;
    loader::ProviderInstance p(load("swh_provider_anthropic"), "anthropic", f.anthropic_config());
    const std::string png =
        "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==";
    SECTION("blocks") {
        f.history.push_back(msg(f.session, "user", "look",
                                {{"parts",
                                  {{{"type", "text"}, {"text", "look"}},
                                   {{"type", "image"}, {"url", "data:image/png;base64," + png}},
                                   {{"type", "image"}, {"url", "https://example.invalid/cat.jpg"}}}}}));
        Collected c;
        run(p, f.request, c);
        REQUIRE(c.status == SWH_OK);
        CHECK(c.text().find("[saw image/png 70 bytes") != std::string::npos);
        CHECK(f.fake.requests()[0]["body"]["messages"][0]["content"] ==
              Json::array({{{"type", "text"}, {"text", "look"}},
                           {{"type", "image"},
                            {"source", {{"type", "base64"}, {"media_type", "image/png"}, {"data", png}}}},
                           {{"type", "image"},
                            {"source", {{"type", "url"}, {"url", "https://example.invalid/cat.jpg"}}}}}));
    }
    SECTION("refused") {
        f.say("first");
        f.history.push_back(msg(f.session, "user", "",
                                {{"parts", {{{"type", "image"}, {"url", "data:image/bmp;base64,Qk0="}}}}}));
        Collected c;
        CHECK_THROWS_WITH(p.start(f.request, c.callbacks()), Catch::Contains("(invalid)") &&
                                                                 Catch::Contains("messages[1].parts[0]") &&
                                                                 Catch::Contains("image/bmp"));
        CHECK(f.fake.requests().empty());
    }
}

// ---------------------------------------------------- one vendor to the other

TEST_CASE("a tool loop started on one vendor continues on the other, from the neutral stored form") {
    Fixture f;
    loader::ProviderInstance openai(load("swh_provider_openai"), "openai", f.openai_config());
    loader::ProviderInstance anthropic(load("swh_provider_anthropic"), "anthropic", f.anthropic_config());
    const bool openai_first = GENERATE(true, false);
    const bool stream = GENERATE(false, true);
    CAPTURE(openai_first, stream);
    loader::ProviderInstance &first = openai_first ? openai : anthropic;
    loader::ProviderInstance &second = openai_first ? anthropic : openai;
    f.request.stream = stream;
    f.request.params = {{"tools", {weather_tool()}}, {"tool_choice", "required"}};
    if (!openai_first) f.request.params["reasoning_effort"] = "minimal"; // signed thinking to carry over
    f.say("weather in Oslo");

    Collected a;
    run(first, f.request, a);
    REQUIRE(a.status == SWH_OK);
    const Json calls = a.tool_calls();
    REQUIRE(calls.size() == 1);
    Json structured = {{"tool_calls", calls}};
    if (!a.joined(Type::Reasoning).empty()) {
        structured["reasoning"] = a.joined(Type::Reasoning);
        structured["reasoning_signature"] = a.joined(Type::ReasoningSignature);
    }
    f.history.push_back(msg(f.session, "assistant", a.text(), structured));
    f.history.push_back(msg(f.session, "tool", "sunny", {{"tool_call_id", calls[0]["id"]}}));
    f.request.params.erase("reasoning_effort");
    f.fake.reset();

    Collected b;
    run(second, f.request, b);
    REQUIRE(b.status == SWH_OK);
    CHECK(b.text() == "Tool said: sunny");
    CHECK(finish_of(b) == "stop");
    const Json messages = f.fake.requests()[0]["body"]["messages"];
    if (openai_first) { // Chat Completions' call as Anthropic blocks
        REQUIRE(messages.size() == 3);
        CHECK(messages[1]["content"] == Json::array({{{"type", "tool_use"},
                                                      {"id", calls[0]["id"]},
                                                      {"name", "get_weather"},
                                                      {"input", {{"text", "weather in Oslo"}}}}}));
        CHECK(messages[2]["content"][0]["tool_use_id"] == calls[0]["id"]);
    } else { // Anthropic's call (thinking left out) as Chat Completions' tool_calls
        REQUIRE(messages.size() == 3);
        CHECK(messages[1]["content"] == "Calling get_weather.");
        CHECK(messages[1]["tool_calls"][0]["id"] == calls[0]["id"]);
        CHECK(Json::parse(messages[1]["tool_calls"][0]["function"]["arguments"].get<std::string>()) ==
              Json{{"text", "weather in Oslo"}});
        CHECK(messages[2] == Json{{"role", "tool"}, {"tool_call_id", calls[0]["id"]}, {"content", "sunny"}});
    }
}
