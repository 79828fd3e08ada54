// The Responses request decoder (host/http/openai_responses_request), the
// items <-> messages conversion and the ids and history rules of the state
// room (host/conversation): exact neutral forms, compared here where no
// provider or store has to echo them back. test_responses.py sees the same
// through HTTP.
#include "conversation/items.hpp"
#include "conversation/openai_ids.hpp"
#include "conversation/state.hpp"
#include "http/openai_responses_request.hpp"
#include "model/field_checks.hpp"

#include <catch2/catch.hpp>

using swh::ApiError;
using swh::Json;
using swh::Message;
namespace cv = swh::conversation;
using swh::http::decode_responses_request;

namespace {

Json body_with(Json fields) {
    Json body = {{"model", "echo"}, {"input", "hi"}};
    body.update(fields);
    return body;
}

// The field the ApiError thrown for `body` names ("(accepted)" if none).
std::string refused_field(const Json &body) {
    try {
        decode_responses_request(body);
    } catch (const ApiError &e) {
        return swh::fields::field_of(e.what());
    }
    return "(accepted)";
}

Message reply(std::string id, std::string parent, std::string text) {
    Message m;
    m.id = std::move(id);
    m.role = "assistant";
    m.content = std::move(text);
    m.metadata = {{"openai", {{"response", Json::object()}, {"parent", std::move(parent)}}}};
    return m;
}

Message input(std::string id, std::string of, std::string text) {
    Message m;
    m.id = std::move(id);
    m.role = "user";
    m.content = std::move(text);
    m.metadata = {{"openai", {{"response", std::move(of)}}}};
    return m;
}

} // namespace

TEST_CASE("responses request: a string input is one user turn, fields map to the neutral params") {
    const Json tool = {{"type", "function"}, {"name", "f"}, {"parameters", {{"type", "object"}}}};
    const auto r = decode_responses_request(body_with(
        {{"instructions", "be brief"},
         {"temperature", 0.5},
         {"top_p", 0.25},
         {"max_output_tokens", 9},
         {"tools", Json::array({tool})},
         {"tool_choice", {{"type", "function"}, {"name", "f"}}},
         {"parallel_tool_calls", false},
         {"text", {{"format", {{"type", "json_schema"}, {"name", "n"}, {"schema", {{"type", "object"}}}}}}},
         {"reasoning", {{"effort", "high"}}},
         {"safety_identifier", "s"},
         {"metadata", {{"k", "v"}}},
         {"store", false},
         {"stream", true}}));
    REQUIRE(r.input.messages.size() == 1);
    CHECK(r.input.messages[0].role == "user");
    CHECK(r.input.messages[0].content == "hi");
    CHECK(r.system_prompt() == "be brief");
    CHECK_FALSE(r.store);
    CHECK(r.stream);
    CHECK(r.params == Json{{"temperature", 0.5},
                           {"top_p", 0.25},
                           {"max_output_tokens", 9},
                           {"tools", Json::array({tool})},
                           {"tool_choice", {{"type", "function"}, {"name", "f"}}},
                           {"parallel_tool_calls", false},
                           {"response_format",
                            {{"type", "json_schema"}, {"name", "n"}, {"schema", {{"type", "object"}}}}},
                           {"reasoning_effort", "high"},
                           {"extra", {{"safety_identifier", "s"}}}});
    CHECK(r.envelope["metadata"] == Json{{"k", "v"}});
    CHECK(r.envelope["instructions"] == "be brief");
    CHECK(r.envelope["store"] == false);
}

TEST_CASE("responses request: items become messages, calls join the assistant turn before them") {
    const Json items = Json::array(
        {{{"role", "developer"}, {"content", "sys"}},
         {{"role", "user"},
          {"content",
           Json::array({{{"type", "input_text"}, {"text", "look "}},
                        {{"type", "input_image"}, {"image_url", "https://x/i.png"}, {"detail", "low"}}})}},
         {{"type", "message"},
          {"role", "assistant"},
          {"id", "msg_1"},
          {"status", "completed"},
          {"content",
           Json::array({{{"type", "output_text"}, {"text", "calling"}, {"annotations", Json::array()}}})}},
         {{"type", "function_call"}, {"call_id", "c1"}, {"name", "f"}, {"arguments", "{}"}, {"id", "fc_1"}},
         {{"type", "function_call"}, {"call_id", "c2"}, {"name", "g"}, {"arguments", "{\"a\":1}"}},
         {{"type", "function_call_output"}, {"call_id", "c1"}, {"output", "one"}},
         {{"type", "function_call_output"},
          {"call_id", "c2"},
          {"output", Json::array({{{"type", "input_text"}, {"text", "two"}}})}}});
    const auto r = decode_responses_request(body_with({{"input", items}, {"instructions", "inst"}}));
    const auto &m = r.input.messages;
    REQUIRE(m.size() == 4);
    CHECK(r.system_prompt() == "inst\nsys");
    CHECK(m[0].content == "look ");
    CHECK(m[0].structured["parts"] ==
          Json::array({{{"type", "text"}, {"text", "look "}},
                       {{"type", "image"}, {"url", "https://x/i.png"}, {"detail", "low"}}}));
    CHECK(m[1].role == "assistant");
    CHECK(m[1].content == "calling");
    CHECK(m[1].structured["tool_calls"] ==
          Json::array({{{"id", "c1"}, {"name", "f"}, {"arguments", "{}"}},
                       {{"id", "c2"}, {"name", "g"}, {"arguments", "{\"a\":1}"}}}));
    CHECK(m[2].role == "tool");
    CHECK(m[2].structured["tool_call_id"] == "c1");
    CHECK(m[3].content == "two");
    CHECK(r.input.fields == std::vector<std::string>{"input[1]", "input[2]", "input[5]", "input[6]"});
    CHECK_NOTHROW(cv::check_call_ids({}, r.input));
}

TEST_CASE("responses request: what cannot be honoured is refused by name") {
    CHECK(refused_field(body_with({{"tools", Json::array({{{"type", "web_search"}}})}})) == "tools[0].type");
    CHECK(refused_field(body_with({{"tool_choice", {{"type", "mcp"}}}})) == "tool_choice.type");
    CHECK(refused_field(body_with({{"include", Json::array({"x"})}})) == "include");
    CHECK(refused_field(body_with({{"background", true}})) == "background");
    CHECK(refused_field(body_with({{"truncation", "auto"}})) == "truncation");
    CHECK(refused_field(body_with({{"reasoning", {{"summary", "auto"}}}})) == "reasoning.summary");
    CHECK(refused_field(body_with({{"unknown_field", 1}})) == "unknown_field");
    CHECK(refused_field(body_with({{"previous_response_id", "resp_x"}, {"conversation", "conv_y"}})) ==
          "previous_response_id");
    CHECK(refused_field(body_with({{"stream_options", Json::object()}})) == "stream_options");
    CHECK(refused_field(body_with({{"text",
                                    {{"format",
                                      {{"type", "json_schema"},
                                       {"name", "n"},
                                       {"schema", Json::object()},
                                       {"description", "d"}}}}}})) == "text.format.description");
    CHECK(refused_field(body_with({{"input", Json::array({{{"type", "reasoning"}}})}})) == "input[0].type");
    CHECK(refused_field(
              body_with({{"input", Json::array({{{"role", "user"}, {"content", "x"}, {"name", "n"}}})}})) ==
          "input[0].name");
    CHECK(refused_field(body_with({{"metadata", {{"k", 1}}}})) == "metadata.k");
    CHECK(refused_field(body_with({{"input", Json::array({{{"role", "assistant"}, {"content", "x"}}})}})) ==
          "input");
    CHECK(refused_field(Json{{"input", "x"}}) == "model");
    CHECK(refused_field(body_with({{"temperature", 0.1}})) == "(accepted)");
}

TEST_CASE("responses request: a function_call_output must answer a call") {
    const auto r = decode_responses_request(body_with(
        {{"input", Json::array({{{"role", "user"}, {"content", "x"}},
                                {{"type", "function_call_output"}, {"call_id", "c9"}, {"output", "o"}}})}}));
    try {
        cv::check_call_ids({}, r.input);
        FAIL("accepted");
    } catch (const ApiError &e) {
        CHECK(swh::fields::field_of(e.what()) == "input[1].call_id");
    }
    Message earlier;
    earlier.role = "assistant";
    earlier.structured["tool_calls"] = Json::array({{{"id", "c9"}, {"name", "f"}, {"arguments", "{}"}}});
    CHECK_NOTHROW(cv::check_call_ids({earlier}, r.input));
}

TEST_CASE("ids: where an object lives, and nothing else parses") {
    const std::string session = "0123abcd-0000-4000-8000-00000000beef";
    const std::string message = "fedc0000-1111-4222-9333-444455556666";
    const std::string id = cv::response_id(session, message);
    CHECK(id == std::string("resp_") + "0123abcd000040008000" + "00000000beef" +
                    "fedc0000111142229333444455556666");
    const auto ref = cv::parse_response_id(id);
    REQUIRE(ref);
    CHECK(ref->session_id == session);
    CHECK(ref->message_id == message);
    CHECK(cv::parse_conversation_id(cv::conversation_id(session)) == session);
    CHECK_FALSE(cv::parse_response_id("resp_" + std::string(64, 'G')));
    CHECK_FALSE(cv::parse_response_id(id + "0"));
    CHECK_FALSE(cv::parse_conversation_id("conv_xyz"));
    const auto call = cv::parse_item_id(cv::call_item_id(message, 3));
    REQUIRE(call);
    CHECK(call->message_id == message);
    CHECK(call->call == std::optional<std::size_t>(3));
    CHECK(cv::parse_item_id(cv::tool_result_item_id(message))->tool_result);
    CHECK_FALSE(cv::parse_item_id("fc_" + cv::hex_of_uuid(message) + "_x"));
}

TEST_CASE("history: a reply's line, not the other replies interleaved with it") {
    cv::StoredObject chain;
    chain.session.metadata = {{"openai", {{"kind", "responses"}}}};
    // Two requests continued a1 at once (b and c); then d continued c.
    chain.messages = {input("u1", "a1", "one"), reply("a1", "", "r1"),   input("ub", "b1", "b"),
                      input("uc", "c1", "c"),   reply("b1", "a1", "rb"), reply("c1", "a1", "rc"),
                      input("ud", "d1", "d"),   reply("d1", "c1", "rd")};
    std::vector<std::string> ids;
    for (const Message &m : cv::history_through(chain, "d1"))
        ids.push_back(m.id);
    CHECK(ids == std::vector<std::string>{"u1", "a1", "uc", "c1", "ud", "d1"});
    ids.clear();
    for (const Message &m : cv::history_through(chain, "b1"))
        ids.push_back(m.id);
    CHECK(ids == std::vector<std::string>{"u1", "a1", "ub", "b1"});
    CHECK(cv::inputs_of(chain.messages, "c1").size() == 1);
    // A removed item leaves the history.
    chain.session.metadata["openai"]["deleted_items"] = Json::array({cv::message_item_id("uc")});
    CHECK(cv::history_through(chain, "d1").size() == 5);
}

TEST_CASE("items: an assistant message shows its text and each call, removed ones are left out") {
    Message m;
    m.id = "fedc0000-1111-4222-9333-444455556666";
    m.role = "assistant";
    m.content = "text";
    m.structured["tool_calls"] = Json::array({{{"id", "c1"}, {"name", "f"}, {"arguments", "{}"}},
                                              {{"id", "c2"}, {"name", "g"}, {"arguments", "[]"}}});
    const Json items = cv::items_of(m);
    REQUIRE(items.size() == 3);
    CHECK(items[0]["type"] == "message");
    CHECK(items[0]["content"][0]["type"] == "output_text");
    CHECK(cv::output_text_of(items) == "text");
    CHECK(items[2] == Json{{"id", cv::call_item_id(m.id, 1)},
                           {"type", "function_call"},
                           {"status", "completed"},
                           {"call_id", "c2"},
                           {"name", "g"},
                           {"arguments", "[]"}});
    const std::set<std::string> deleted = {cv::message_item_id(m.id), cv::call_item_id(m.id, 0)};
    CHECK(cv::items_of(m, deleted).size() == 1);
    const auto kept = cv::without_items({m}, deleted);
    REQUIRE(kept.size() == 1);
    CHECK(kept[0].content.empty());
    CHECK(kept[0].structured["tool_calls"].size() == 1);
    CHECK(kept[0].structured["tool_calls"][0]["id"] == "c2");
}
