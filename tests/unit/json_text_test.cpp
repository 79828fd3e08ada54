// JSON written as text (host/http/json_text.hpp, json_codec's append_json):
// the same bytes nlohmann's dump gives for the same value, and valid JSON
// whatever the bytes (a tampered store), so the read path can skip trees.
#include "http/json_codec.hpp"
#include "http/json_text.hpp"
#include "loader/abi_convert.hpp"

#include <catch2/catch.hpp>
#include <string>

using swh::Json;
using swh::http::append_json_string;

namespace {

std::string as_json_string(std::string_view text) {
    std::string out;
    append_json_string(out, text);
    return out;
}

std::string nlohmann_dump(const std::string &text) {
    return Json(text).dump(-1, ' ', false, Json::error_handler_t::replace);
}

} // namespace

TEST_CASE("strings are written as nlohmann dumps them", "[json_text]") {
    static constexpr char kWithNul[] = "nul \0 and \x01 \x1f \x7f";
    const std::string samples[] = {
        "",
        "plain ascii",
        "quote \" backslash \\ slash / tab \t newline \n return \r",
        std::string(kWithNul, sizeof kWithNul - 1), // the NUL inside counts
        "\b\f",
        "caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80", // é € 😀
        "<script>alert(1)</script>",
    };
    for (const std::string &s : samples) {
        INFO(s);
        CHECK(as_json_string(s) == nlohmann_dump(s));
    }
}

TEST_CASE("a byte that needs more than a copy is found wherever it sits in a long string", "[json_text]") {
    // The writer skips eight plain bytes at a time; each special byte is put
    // at every offset of a 24-byte run, so each lands in every lane of a word
    // and in the tail the word loop leaves.
    const std::string specials[] = {"\"", "\\",   std::string(1, '\0'), "\x1f",
                                    "\n", "\x7f", "\xC3\xA9",           "\xFF"};
    for (const std::string &special : specials) {
        for (std::size_t at = 0; at <= 24; ++at) {
            std::string s(24, 'a');
            s.insert(at, special);
            INFO(at << " " << as_json_string(s));
            CHECK(as_json_string(s) == nlohmann_dump(s));
        }
    }
}

TEST_CASE("invalid UTF-8 becomes U+FFFD and the answer stays valid JSON", "[json_text]") {
    const std::string bad[] = {
        "\xFF",
        "abc\xC3",
        "\xC0\xAF", // lone, truncated, overlong
        "\xED\xA0\x80",
        "\xF4\x90\x80\x80",
        "\xE2\x82", // surrogate, > U+10FFFF, truncated
        "ok\x80"
        "ok",
        "\xF0\x9F\x98", // stray continuation, truncated
    };
    for (const std::string &s : bad) {
        INFO(s);
        const std::string written = as_json_string(s);
        REQUIRE(Json::accept(written));
        CHECK(Json::parse(written).get<std::string>().find("\xEF\xBF\xBD") != std::string::npos);
    }
    CHECK(as_json_string("a\xFF"
                         "b") == "\"a\xEF\xBF\xBD"
                                 "b\"");
}

TEST_CASE("a message is written as dump_json(to_json(message)) gives it", "[json_text]") {
    swh::Message m;
    m.id = "msg_1";
    m.session_id = "sess_\"1\"";
    m.role = "assistant";
    m.content = "line one\nline two \xE2\x82\xAC";
    m.timestamp = 1767225600123456;
    m.metadata = Json{{"client", "bench"}, {"n", 3}, {"nested", {{"a", Json::array({1, 2})}}}};
    m.provider_message_id = "chatcmpl-9";
    m.provider_metadata = Json{{"model", "gpt"}, {"usage", {{"total_tokens", 12}}}};

    SECTION("plain text") {}
    SECTION("structured members merge in by key") {
        m.structured = Json{{"tool_calls", Json::array({{{"id", "call_1"}, {"name", "f"}}})},
                            {"reasoning", "because"},
                            {"a_first", true}};
    }
    SECTION("a structured member of a fixed member's name wins, as in to_json") {
        m.structured = Json{{"content", Json::array({{{"type", "text"}, {"text", "hi"}}})}, {"zz", nullptr}};
    }
    SECTION("null metadata") {
        m.metadata = Json();
        m.provider_metadata = Json::object();
    }
    const swh::MessageRef frozen = swh::freeze(m);
    std::string written;
    swh::http::append_json(written, *frozen);
    CHECK(written == swh::http::dump_json(swh::http::to_json(m)));
    const std::string body = swh::http::messages_body({frozen, frozen});
    CHECK(Json::parse(body) ==
          Json{{"messages", Json::array({swh::http::to_json(m), swh::http::to_json(m)})}});
}

TEST_CASE("may_hold_key is false only when the text cannot name the key", "[json_text]") {
    using swh::cpp::json_text::may_hold_key;
    CHECK_FALSE(may_hold_key("", "system_prompt"));
    CHECK_FALSE(may_hold_key("{}", "system_prompt"));
    CHECK_FALSE(may_hold_key(R"({"client":"bench","n":3})", "attachments"));
    CHECK(may_hold_key(R"({"system_prompt":"Be brief."})", "system_prompt"));
    // An escape can spell the name; such a text is always parsed.
    const std::string escaped = R"({"system\u005fprompt":"Be brief."})";
    CHECK(Json::parse(escaped).contains("system_prompt"));
    CHECK(may_hold_key(escaped, "system_prompt"));
}

TEST_CASE("a session's JSON members reach the ABI as nlohmann dumps them", "[json_text]") {
    const auto context_text = [](const swh::Session &s) {
        const swh::loader::SessionAbi abi(s);
        return std::string(abi.get()->context_json.ptr, abi.get()->context_json.len);
    };
    swh::Session s;
    // The default context is written from a constant, not dumped.
    CHECK(context_text(s) == s.context.dump());
    CHECK(context_text(s) == swh::kDefaultSessionContextText);
    s.context["user_context"]["name"] = "Ada";
    CHECK(context_text(s) == s.context.dump());
    s.context = Json{{"user_context", Json::object()}, {"system_context", Json::array()}};
    CHECK(context_text(s) == s.context.dump());
}
