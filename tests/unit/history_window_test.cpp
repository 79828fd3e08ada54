// The provider's view of a session (host/session/history_window.hpp): the
// newest messages within the session's window, tool calls never separated
// from their results.
#include "session/history_window.hpp"

#include <catch2/catch.hpp>
#include <string>
#include <vector>

using swh::HistoryWindow;
using swh::Json;
using swh::Message;

namespace {

Message text(const std::string &role, const std::string &content) {
    Message m;
    m.id = role + ":" + content;
    m.role = role;
    m.content = content;
    return m;
}

Message call(const std::string &id) {
    Message m = text("assistant", "");
    m.id = "call:" + id;
    m.structured["tool_calls"] = Json::array({{{"id", id}, {"name", "f"}, {"arguments", "{}"}}});
    return m;
}

Message result(const std::string &id, const std::string &content) {
    Message m = text("tool", content);
    m.structured["tool_call_id"] = id;
    return m;
}

std::vector<std::string> ids(const std::vector<Message> &messages) {
    std::vector<std::string> out;
    for (const Message &m : messages)
        out.push_back(m.id);
    return out;
}

HistoryWindow messages_only(uint32_t n) {
    HistoryWindow w;
    w.max_messages = n;
    w.max_tokens = 1u << 30;
    return w;
}

} // namespace

TEST_CASE("the window keeps the newest messages, the new one always") {
    std::vector<Message> h{text("user", "a"), text("assistant", "b"), text("user", "c"),
                           text("assistant", "d"), text("user", "e")};
    CHECK(ids(swh::fit_window(h, messages_only(3))) ==
          std::vector<std::string>{"user:c", "assistant:d", "user:e"});
    CHECK(ids(swh::fit_window(h, messages_only(100))).size() == 5);
    CHECK(ids(swh::fit_window(h, messages_only(1))) == std::vector<std::string>{"user:e"});
    HistoryWindow none = messages_only(100);
    none.max_tokens = 1;
    CHECK(ids(swh::fit_window(h, none)) == std::vector<std::string>{"user:e"});
    CHECK(swh::fit_window(std::vector<Message>{}, messages_only(3)).empty());
}

TEST_CASE("the token estimate bounds the window") {
    const std::string hundred(396, 'x'); // 4 + 99 tokens
    std::vector<Message> h{text("user", hundred), text("assistant", hundred + "1"),
                           text("user", hundred + "2")};
    CHECK(swh::estimate_tokens(h[0]) == 103);
    HistoryWindow w = messages_only(100);
    w.max_tokens = 250;
    CHECK(swh::fit_window(h, w).size() == 2);
    w.max_tokens = 311;
    CHECK(swh::fit_window(h, w).size() == 3);
}

TEST_CASE("a tool call and its results go in or out together") {
    std::vector<Message> h{text("user", "q"), call("c1"), result("c1", "r1"), text("assistant", "answer"),
                           text("user", "next")};
    // Three would split the call from its result: both stay out.
    CHECK(ids(swh::fit_window(h, messages_only(3))) ==
          std::vector<std::string>{"assistant:answer", "user:next"});
    CHECK(ids(swh::fit_window(h, messages_only(4))) ==
          std::vector<std::string>{"call:c1", "tool:r1", "assistant:answer", "user:next"});

    // A new tool result brings its call even over the budget.
    std::vector<Message> t{text("user", "q"), call("c2"), result("c2", "r2")};
    CHECK(ids(swh::fit_window(t, messages_only(1))) == std::vector<std::string>{"call:c2", "tool:r2"});

    // Two results of one call, the call out of reach of the first: the
    // window ends before the orphan.
    std::vector<Message> o{result("gone", "r0"), text("assistant", "x"), text("user", "y")};
    CHECK(ids(swh::fit_window(o, messages_only(10))) == std::vector<std::string>{"assistant:x", "user:y"});
}

TEST_CASE("the session's config sets the window") {
    swh::Session s;
    CHECK(swh::history_window_of(s).max_messages == HistoryWindow::kDefaultMessages);
    CHECK(swh::history_window_of(s).max_tokens == HistoryWindow::kDefaultTokens);
    s.config = {{"max_history_messages", 7}, {"max_history_tokens", 900}};
    CHECK(swh::history_window_of(s).max_messages == 7);
    CHECK(swh::history_window_of(s).max_tokens == 900);
    s.config = {{"max_history_messages", 0}, {"max_history_tokens", "many"}};
    CHECK(swh::history_window_of(s).max_messages == HistoryWindow::kDefaultMessages);
    CHECK(swh::history_window_of(s).max_tokens == HistoryWindow::kDefaultTokens);
    s.config = {{"max_history_messages", 1u << 30}};
    CHECK(swh::history_window_of(s).max_messages == HistoryWindow::kMaxMessages);
}

TEST_CASE("the window over frozen messages is the same window, the same messages") {
    std::vector<Message> h{text("user", "a"), call("c1"), result("c1", "r"), text("assistant", "b"),
                           text("user", "e")};
    std::vector<swh::MessageRef> refs;
    for (const Message &m : h)
        refs.push_back(swh::freeze(m));
    for (uint32_t n : {1u, 2u, 3u, 4u, 10u}) {
        const std::vector<swh::MessageRef> fitted = swh::fit_window(refs, messages_only(n));
        std::vector<Message> as_messages;
        for (const swh::MessageRef &m : fitted)
            as_messages.push_back(m->message);
        CHECK(ids(as_messages) == ids(swh::fit_window(h, messages_only(n))));
        // Shared with the input, not copied.
        if (!fitted.empty()) CHECK(fitted.back().get() == refs.back().get());
    }
}
