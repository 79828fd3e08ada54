// The content filter's streaming matcher: for every way of cutting a text into
// pieces, the streamed output equals the whole-text output, and a stream never
// holds back more than the longest pattern.
#include "filter.hpp"

#include <catch2/catch.hpp>

#include <string>
#include <vector>

using swh::content_filter::Filter;
using swh::content_filter::OptionError;
using swh::content_filter::Options;

namespace {

std::string stream_through(const Filter &filter, const std::vector<std::string> &pieces,
                           std::size_t *max_held = nullptr) {
    Filter::Stream s(filter);
    std::string out;
    for (const auto &p : pieces) {
        out += s.push(p);
        if (max_held) *max_held = std::max(*max_held, s.held());
    }
    out += s.finish();
    return out;
}

// Every cut into two and three pieces, plus byte by byte.
void check_all_splits(const Filter &filter, const std::string &text, const std::string &expected) {
    REQUIRE(filter.apply(text).text == expected);
    for (std::size_t i = 0; i <= text.size(); ++i) {
        std::size_t held = 0;
        INFO("cut at " << i);
        CHECK(stream_through(filter, {text.substr(0, i), text.substr(i)}, &held) == expected);
        CHECK(held <= filter.holdback());
        for (std::size_t j = i; j <= text.size(); j += 3)
            CHECK(stream_through(filter, {text.substr(0, i), text.substr(i, j - i), text.substr(j)}) ==
                  expected);
    }
    std::vector<std::string> bytes;
    for (char c : text)
        bytes.emplace_back(1, c);
    std::size_t held = 0;
    CHECK(stream_through(filter, bytes, &held) == expected);
    CHECK(held <= filter.holdback());
}

} // namespace

TEST_CASE("blocked words, including phrases, split anywhere") {
    Options o;
    o.blocked_words = {"foo bar", "secret"};
    Filter f(o);
    CHECK(f.holdback() == 7);
    check_all_splits(f, "echo#1 say foo bar now, secret!", "echo#1 say [FILTERED] now, [FILTERED]!");
    check_all_splits(f, "nothing to see", "nothing to see");
    check_all_splits(f, "foo barfoo bar", "[FILTERED][FILTERED]");
}

TEST_CASE("case-insensitive words keep the original text around matches") {
    Options o;
    o.blocked_words = {"Darn"};
    o.case_insensitive = true;
    o.replacement = "***";
    check_all_splits(Filter(o), "DARN it, darn IT, Darned", "*** it, *** IT, ***ed");
}

TEST_CASE("longest match wins at the same start, and per-pattern replacements") {
    Options o;
    o.blocked_words = {"foo", "foo bar"};
    o.replacements = {{"foo", "<f>"}};
    check_all_splits(Filter(o), "a foo bar b foo c", "a [FILTERED] b <f> c");
}

TEST_CASE("regexes with a bounded match length, across pieces") {
    Options o;
    o.regexes = {"\\d{3}-\\d{4}", "sec\\s+ret"};
    o.max_match_length = 16;
    Filter f(o);
    CHECK(f.holdback() == 16);
    check_all_splits(f, "call 555-1234 for the sec  ret", "call [FILTERED] for the [FILTERED]");
}

TEST_CASE("regex word boundaries see the character before a held-back piece") {
    Options o;
    o.regexes = {"\\bcat\\b"};
    o.max_match_length = 8;
    check_all_splits(Filter(o), "concatenate cat scat cat.", "concatenate [FILTERED] scat [FILTERED].");
}

TEST_CASE("UTF-8 text is never cut inside a code point") {
    Options o;
    o.blocked_words = {"bäd wörd"};
    Filter f(o);
    const std::string text = "ein bäd wörd — ünd mehr ✓";
    Filter::Stream s(f);
    std::string out;
    for (char c : text) {
        std::string piece = s.push(std::string(1, c));
        if (!piece.empty()) CHECK(swh::content_filter::utf8_boundary(piece, 0));
        out += piece;
    }
    out += s.finish();
    CHECK(out == "ein [FILTERED] — ünd mehr ✓");
}

TEST_CASE("bad options are refused") {
    Options o;
    o.blocked_words = {""};
    CHECK_THROWS_AS(Filter(o), OptionError);
    Options r;
    r.regexes = {"(unclosed"};
    CHECK_THROWS_AS(Filter(r), OptionError);
    Options rep;
    rep.blocked_words = {"a"};
    rep.replacements = {{"b", "x"}};
    CHECK_THROWS_AS(Filter(rep), OptionError);
}
