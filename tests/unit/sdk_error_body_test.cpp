// The SDK's HttpError body is what a plugin's route answers with when it
// refuses a request; it often echoes request text. It must be valid JSON
// (valid UTF-8) whatever that text held.
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>
#include <swarmhost/cpp/plugin.hpp>
#include <swarmhost/cpp/utf8.hpp>

#include <string>

using swh::cpp::HttpError;
using swh::cpp::valid_utf8;

TEST_CASE("sdk utf8: well-formed and ill-formed sequences") {
    CHECK(valid_utf8("plain ascii"));
    CHECK(valid_utf8("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"));
    CHECK_FALSE(valid_utf8("\xff"));
    CHECK_FALSE(valid_utf8("\xc0\xaf"));         // overlong '/'
    CHECK_FALSE(valid_utf8("\xed\xa0\x80"));     // a surrogate
    CHECK_FALSE(valid_utf8("\xf4\x90\x80\x80")); // past U+10FFFF
    CHECK_FALSE(valid_utf8("\xe2\x82"));         // cut short
}

TEST_CASE("sdk HttpError body: invalid UTF-8 from a request becomes U+FFFD, the rest is kept") {
    const HttpError error(404, "not_found", std::string("no attachment 'a\xff\xfe\"b' (caf\xc3\xa9)"));
    const std::string body = error.body();
    REQUIRE(valid_utf8(body));
    const auto parsed = nlohmann::json::parse(body);
    CHECK(parsed["error"]["code"] == "not_found");
    CHECK(parsed["error"]["message"] == "no attachment 'a\xef\xbf\xbd\xef\xbf\xbd\"b' (caf\xc3\xa9)");
}
