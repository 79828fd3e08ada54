// sdk/cpp/include/swarmhost/cpp/sse.hpp: the SSE line parser the provider
// plugins share (pure; the issue 9 fuzzer targets it too).
#include <swarmhost/cpp/sse.hpp>

#include <catch2/catch.hpp>

#include <string>
#include <vector>

using swh::cpp::sse::Event;
using swh::cpp::sse::Limits;
using swh::cpp::sse::Parser;

namespace {

struct Got {
    std::string type, data, id;
    bool operator==(const Got &o) const { return type == o.type && data == o.data && id == o.id; }
};

std::ostream &operator<<(std::ostream &os, const Got &g) {
    return os << "{" << g.type << "|" << g.data << "|" << g.id << "}";
}

// Feeds `input` in pieces of `piece` bytes (0 = all at once).
std::vector<Got> parse(const std::string &input, size_t piece = 0, Parser *out = nullptr) {
    Parser local;
    Parser &p = out ? *out : local;
    std::vector<Got> got;
    auto on = [&](const Event &e) {
        got.push_back({std::string(e.type), std::string(e.data), std::string(e.id)});
        return true;
    };
    if (piece == 0) {
        p.feed(input, on);
    } else {
        for (size_t i = 0; i < input.size(); i += piece)
            p.feed(std::string_view(input).substr(i, piece), on);
    }
    return got;
}

} // namespace

TEST_CASE("sse: OpenAI-style data events and [DONE]") {
    std::string in = "data: {\"a\":1}\n\ndata: [DONE]\n\n";
    auto got = parse(in);
    REQUIRE(got.size() == 2);
    CHECK(got[0] == Got{"message", "{\"a\":1}", ""});
    CHECK(got[1].data == "[DONE]");
}

TEST_CASE("sse: Anthropic-style event lines, comments, unknown fields") {
    std::string in = ": keep-alive\nevent: message_start\ndata: {}\nfoo: bar\n\nevent: ping\ndata: x\n\n";
    auto got = parse(in);
    REQUIRE(got.size() == 2);
    CHECK(got[0] == Got{"message_start", "{}", ""});
    CHECK(got[1] == Got{"ping", "x", ""});
}

TEST_CASE("sse: every split point and every line ending give the same events") {
    std::string base = "event: a\ndata: line one\ndata:line two\nid: 7\n\ndata: second\n\n";
    std::vector<Got> want = {{"a", "line one\nline two", "7"}, {"message", "second", "7"}};
    for (std::string eol : {"\n", "\r\n", "\r"}) {
        std::string in;
        for (char c : base)
            in += c == '\n' ? eol : std::string(1, c);
        for (size_t piece : {0, 1, 2, 3, 5, 7}) {
            CAPTURE(eol.size(), piece);
            CHECK(parse(in, piece) == want);
        }
    }
}

TEST_CASE("sse: BOM, empty data, field without colon, event without data") {
    CHECK(parse("\xEF\xBB\xBF"
                "data: x\n\n",
                1) == std::vector<Got>{{"message", "x", ""}});
    CHECK(parse("\xEF\xBB"
                "data: x\n\n")
              .size() == 0); // a broken BOM makes the first field name unknown
    CHECK(parse("data\n\n") == std::vector<Got>{{"message", "", ""}});
    CHECK(parse("data:\n\n") == std::vector<Got>{{"message", "", ""}});
    CHECK(parse("event: lonely\n\ndata: y\n\n") == std::vector<Got>{{"message", "y", ""}});
    CHECK(parse("data:  two spaces\n\n")[0].data == " two spaces");
}

TEST_CASE("sse: retry, finish() on truncated input, stop from the callback") {
    Parser p;
    parse("retry: 1500\ndata: a\n\ndata: partial", 0, &p);
    CHECK(p.retry_ms() == 1500);
    CHECK_FALSE(p.finish());
    Parser clean;
    parse("data: a\n\n", 0, &clean);
    CHECK(clean.finish());

    Parser s;
    int n = 0;
    CHECK_FALSE(s.feed("data: 1\n\ndata: 2\n\n", [&](const Event &) { return ++n < 1; }));
    CHECK(n == 1);
    CHECK(s.stopped());
    CHECK_FALSE(s.feed("data: 3\n\n", [&](const Event &) { return ++n > 0; }));
    CHECK(n == 1);
}

TEST_CASE("sse: limits turn runaway input into a failure, not unbounded memory") {
    Parser p(Limits{16, 32});
    CHECK_FALSE(p.feed(std::string(40, 'x'), [](const Event &) { return true; }));
    CHECK(p.failed());
    Parser q(Limits{64, 10});
    CHECK_FALSE(q.feed("data: 123456\ndata: 123456\n\n", [](const Event &) { return true; }));
    CHECK(q.failed());
}
