// parse_json (simdjson first, nlohmann where they could differ) must give
// exactly the tree Json::parse gives: the same value types (unsigned vs
// signed vs float), the same last-wins duplicate keys, the same refusals.
#include "util/json_parse.hpp"

#include <catch2/catch.hpp>
#include <string>

using Json = nlohmann::json;

namespace {

bool same(const Json &a, const Json &b) {
    if (a.type() != b.type()) return false;
    if (a.is_object()) {
        if (a.size() != b.size()) return false;
        for (auto it = a.begin(); it != a.end(); ++it)
            if (!b.contains(it.key()) || !same(it.value(), b[it.key()])) return false;
        return true;
    }
    if (a.is_array()) {
        if (a.size() != b.size()) return false;
        for (size_t i = 0; i < a.size(); ++i)
            if (!same(a[i], b[i])) return false;
        return true;
    }
    if (a.is_number_float()) return a.dump() == b.dump();
    return a == b;
}

} // namespace

TEST_CASE("parse_json reads what Json::parse reads, type for type", "[json_parse]") {
    const std::string texts[] = {
        R"({"id":"chatcmpl-1","object":"chat.completion","created":1765000000,"model":"gpt-4o-mini",)"
        R"("choices":[{"index":0,"message":{"role":"assistant","content":"hi","refusal":null},)"
        R"("logprobs":null,"finish_reason":"stop"}],"usage":{"prompt_tokens":9,"completion_tokens":12,)"
        R"("total_tokens":21,"prompt_tokens_details":{"cached_tokens":0}}})",
        R"({"a":1,"a":2,"b":[true,false,null],"c":{"a":{"b":{}}},"d":[]})",
        R"({"n":[0,-0,1,-1,9223372036854775807,9223372036854775808,18446744073709551615,-9223372036854775808]})",
        R"({"z": -0 ,"y":[ -0],"date":"2024-07-18","neg":-0.5,"e":-0e1})",
        R"({"model":"gpt-4o-mini-2024-07-18","zero":0,"text":"a -0 in a string"})",
        R"(-0)",
        R"({"big":18446744073709551616,"neg":-9223372036854775809,"huge":1e999})",
        R"({"f":[0.0,-0.0,1.5,-2.25e-3,1e10,1E+2,3.141592653589793,5e-324,1.7976931348623157e308]})",
        R"({"s":"quote \" backslash \\ slash \/ \b\f\n\r\t \u0001 \u00e9 \ud83d\ude00 é"})",
        "{\"bad utf8\":\"\xC3\x28\"}",
        "\xEF\xBB\xBF{\"bom\":1}",
        R"([1,2,3])",
        R"("just a string")",
        R"(42)",
        R"({"unterminated":)",
        R"({"trailing":1},)",
        R"({"lone surrogate":"\ud800"})",
        R"({'single':1})",
        "",
        "  {\"spaces\" :\t[ 1 , 2 ]\n}  ",
    };
    for (const std::string &text : texts) {
        INFO(text);
        const Json expected = Json::parse(text, nullptr, false);
        const Json got = swh::parse_json(text);
        CHECK(got.is_discarded() == expected.is_discarded());
        if (!expected.is_discarded()) CHECK(same(got, expected));
    }
    // Larger than the texts a thread keeps its parser for (a parser of its
    // own), then a small one again (the thread's parser).
    const std::string large = "{\"a\":\"" + std::string(20000, 'x') + "\",\"n\":[1,-2,3.5]}";
    CHECK(same(swh::parse_json(large), Json::parse(large)));
    CHECK(same(swh::parse_json(texts[0]), Json::parse(texts[0])));
    // Deeper than simdjson's own limit: nlohmann still reads it.
    const std::string deep = std::string(2000, '[') + std::string(2000, ']');
    CHECK(same(swh::parse_json(deep), Json::parse(deep)));
}
