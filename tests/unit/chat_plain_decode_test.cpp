// The plain chat request decoder: which bodies it takes, and that for those
// it gives exactly what the full decoder gives (tests/fuzz/chat_request_diff.hpp;
// fuzz_request_body checks the same on every input it makes).
#include "../fuzz/chat_request_diff.hpp"

#include <catch2/catch.hpp>
#include <string>

using swh::http::decode_plain_chat_completion;

TEST_CASE("the plain decoder takes the plain shape and agrees with the full decoder", "[chat_plain]") {
    const std::string taken[] = {
        R"({"model":"up","messages":[{"role":"user","content":"hello world"}]})",
        R"({"messages":[{"content":"hi","role":"user"}],"model":"gpt-4o-mini","stream":true})",
        R"({"model":"m","stream":false,"messages":[{"role":"system","content":"Be brief."},)"
        R"({"role":"developer","content":"Use English."},{"role":"user","content":"a"},)"
        R"({"role":"assistant","content":""},{"role":"user","content":"caf\u00e9 \"q\" \n \ud83d\ude00"}]})",
        R"({"model":"m","messages":[{"role":"system","content":"only a system turn"}]})",
        " {\"model\" : \"m\" ,\n \"messages\" : [ { \"role\" : \"user\" , \"content\" : \"nul \\u0000 "
        "inside\" } ] } ",
    };
    for (const std::string &body : taken) {
        INFO(body);
        const auto plain = decode_plain_chat_completion(body, "s");
        REQUIRE(plain.has_value());
        CHECK(plain->completion.session_id == "s");
        CHECK(swh::testing::chat_request_difference(body).empty());
    }
    const auto plain = decode_plain_chat_completion(taken[2], "");
    REQUIRE(plain);
    CHECK(plain->completion.system_prompt == "Be brief.\nUse English.");
    CHECK(plain->completion.messages.size() == 3);
    CHECK(plain->completion.messages[2].content == "caf\xC3\xA9 \"q\" \n \xF0\x9F\x98\x80");
}

TEST_CASE("the plain decoder leaves every other body to the full decoder", "[chat_plain]") {
    const std::string declined[] = {
        "",
        "not json",
        R"([{"model":"m"}])",
        R"({"model":"m"})",                                                              // no messages
        R"({"model":"","messages":[{"role":"user","content":"a"}]})",                    // empty model
        R"({"model":"m","messages":[]})",                                                // no turns
        R"({"model":"m","model":"n","messages":[{"role":"user","content":"a"}]})",       // repeated key
        R"({"model":"m","messages":[{"role":"user","content":"a","content":"b"}]})",     // repeated in a turn
        R"({"model":"m","temperature":0.5,"messages":[{"role":"user","content":"a"}]})", // another field
        R"({"model":"m","stream":null,"messages":[{"role":"user","content":"a"}]})",
        R"({"model":"m","messages":[{"role":"tool","content":"a","tool_call_id":"c"}]})",
        R"({"model":"m","messages":[{"role":"user","content":[{"type":"text","text":"a"}]}]})",
        R"({"model":"m","messages":[{"role":"user","content":null}]})",
        R"({"model":"m","messages":[{"role":"user"}]})",
        R"({"model":"m","messages":[{"role":"user","content":"a","name":"x"}]})",
        R"({"model":"m","messages":[{"role":"function","content":"a"}]})",
        R"({"model":"m","messages":[{"role":"user","content":"lone \ud800 surrogate"}]})",
        "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"bad \xC3\x28 utf8\"}]}",
    };
    for (const std::string &body : declined) {
        INFO(body);
        CHECK_FALSE(decode_plain_chat_completion(body, "s").has_value());
    }
}
