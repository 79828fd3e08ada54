// The chat.completion object written as text (issue 17: no JSON tree on the
// proxied path) must be the bytes the tree it replaced dumped: the tree is
// rebuilt here, field by field, from OpenAI's reference shape.
#include "http/json_codec.hpp"
#include "http/openai_compat.hpp"

#include <catch2/catch.hpp>

using swh::Json;
using swh::Message;
namespace openai = swh::http::openai;

namespace {

Json reference_body(const std::string &id, int64_t created, const std::string &model, const Message &m) {
    const bool calls = swh::has_tool_calls(m);
    Json message = {{"role", "assistant"},
                    {"content", m.content.empty() && calls ? Json() : Json(m.content)},
                    {"refusal", nullptr}};
    if (calls) {
        message["tool_calls"] = Json::array();
        for (const Json &call : m.structured["tool_calls"])
            message["tool_calls"].push_back(
                {{"id", call.value("id", "")},
                 {"type", "function"},
                 {"function",
                  {{"name", call.value("name", "")}, {"arguments", call.value("arguments", "")}}}});
    }
    const openai::TokenCounts counts = openai::token_counts(m);
    return {{"id", id},
            {"object", "chat.completion"},
            {"created", created},
            {"model", model},
            {"choices", Json::array({{{"index", 0},
                                      {"message", message},
                                      {"logprobs", nullptr},
                                      {"finish_reason", openai::finish_reason_of(m)}}})},
            {"usage",
             {{"prompt_tokens", counts.input},
              {"completion_tokens", counts.output},
              {"total_tokens", counts.input + counts.output},
              {"prompt_tokens_details", {{"cached_tokens", counts.cached}}},
              {"completion_tokens_details", {{"reasoning_tokens", counts.reasoning}}}}}};
}

Message reply(std::string content, Json metadata = Json::object(), Json structured = Json::object()) {
    Message m;
    m.role = "assistant";
    m.content = std::move(content);
    m.provider_metadata = std::move(metadata);
    m.structured = std::move(structured);
    return m;
}

} // namespace

TEST_CASE("a chat.completion written as text equals the dumped tree", "[openai][chat_completion_body]") {
    const Json tool_calls = {
        {"tool_calls",
         {{{"id", "call_1"}, {"name", "get_weather"}, {"arguments", "{\"city\":\"Oslo\"}"}},
          {{"id", "call_2"}, {"name", "n\"q"}, {"arguments", ""}}}}};
    const Message samples[] = {
        reply("hello world"),
        reply(""),
        reply("quotes \" backslash \\ newline \n tab \t nul-free \x01 ü € 𝄞"),
        reply("bad utf-8 \xC3\x28 \xFF end"),
        reply("", {{"finish_reason", "tool_calls"}}, tool_calls),
        reply("with text", {{"finish_reason", "stop"}}, tool_calls),
        reply("neutral usage", {{"finish_reason", "length"},
                                {"usage",
                                 {{"input_tokens", 12},
                                  {"output_tokens", 7},
                                  {"cached_input_tokens", 3},
                                  {"reasoning_tokens", 2}}}}),
        reply("openai-style usage",
              {{"finish_reason", "end_turn"}, {"usage", {{"prompt_tokens", 5}, {"completion_tokens", 9}}}}),
        reply("usage not an object", {{"usage", "n/a"}}),
    };
    for (const Message &m : samples) {
        INFO(m.content);
        const std::string written =
            openai::chat_completion_body("chatcmpl-x\"y", 1765000000, "up/gpt-4o-mini", m);
        CHECK(written ==
              swh::http::dump_json(reference_body("chatcmpl-x\"y", 1765000000, "up/gpt-4o-mini", m)));
        CHECK_NOTHROW(Json::parse(written));
    }
}
