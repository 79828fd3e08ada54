// The content filter on tool-call arguments: string values are filtered after
// their escapes are resolved, the result is still valid JSON with the same
// structure, keys, numbers and spacing; invalid JSON is filtered as text.
#include "tool_arguments.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <string>

using swh::content_filter::Filter;
using swh::content_filter::filter_arguments;
using swh::content_filter::Options;
using Json = nlohmann::json;

namespace {

Filter filter_of(std::vector<std::string> words, std::string replacement = "[FILTERED]",
                 std::vector<std::string> regexes = {}) {
    Options o;
    o.blocked_words = std::move(words);
    o.regexes = std::move(regexes);
    o.replacement = std::move(replacement);
    o.case_insensitive = true;
    return Filter(o);
}

} // namespace

TEST_CASE("tool arguments: string values are redacted, the rest is kept byte for byte") {
    const Filter filter = filter_of({"secret"});
    const std::string in =
        R"({ "city" : "the Secret place",  "days": 3.50, "secret": true, "tags": ["a secret", "ok"] })";
    auto out = filter_arguments(filter, in);
    CHECK(out.json);
    CHECK(out.matches == 2);
    CHECK(out.patterns == std::set<std::string>{"secret"});
    CHECK(
        out.text ==
        R"({ "city" : "the [FILTERED] place",  "days": 3.50, "secret": true, "tags": ["a [FILTERED]", "ok"] })");
    CHECK(Json::accept(out.text));
}

TEST_CASE("tool arguments: nothing matched leaves the text identical") {
    const Filter filter = filter_of({"secret"});
    const std::string in = R"({"city":"Oslo \u00e9\n","n":[1,2,{"k":"v"}]})";
    auto out = filter_arguments(filter, in);
    CHECK(out.json);
    CHECK(out.matches == 0);
    CHECK(out.text == in);
}

TEST_CASE("tool arguments: escapes are resolved before matching and the result re-escaped") {
    // "\u0073ecret" is "secret"; a replacement with quotes and a backslash
    // must come out escaped, so the arguments stay valid JSON.
    const Filter filter = filter_of({"secret"}, R"(["x"\])");
    const std::string in = R"({"q":"a \u0073ecret \"quoted\" caf\u00e9","nested":{"deep":["SECRET"]}})";
    auto out = filter_arguments(filter, in);
    CHECK(out.json);
    CHECK(out.matches == 2);
    REQUIRE(Json::accept(out.text));
    const Json parsed = Json::parse(out.text);
    CHECK(parsed["q"] == "a [\"x\"\\] \"quoted\" caf\xc3\xa9");
    CHECK(parsed["nested"]["deep"][0] == "[\"x\"\\]");
}

TEST_CASE("tool arguments: keys are not filtered, a top-level string value is") {
    const Filter filter = filter_of({"secret"});
    auto keys = filter_arguments(filter, R"({"secret" :"fine"})");
    CHECK(keys.matches == 0);
    CHECK(keys.text == R"({"secret" :"fine"})");
    auto scalar = filter_arguments(filter, R"("secret")");
    CHECK(scalar.json);
    CHECK(scalar.text == R"("[FILTERED]")");
}

TEST_CASE("tool arguments: invalid JSON is filtered as plain text") {
    const Filter filter = filter_of({"secret"}, "[FILTERED]", {R"(\d{3}-\d{4})"});
    auto out = filter_arguments(filter, R"({"city": "secret 555-1234)");
    CHECK_FALSE(out.json);
    CHECK(out.matches == 2);
    CHECK(out.text == R"({"city": "[FILTERED] [FILTERED])");
    auto empty = filter_arguments(filter, "");
    CHECK_FALSE(empty.json);
    CHECK(empty.text.empty());
}
