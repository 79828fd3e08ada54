// Plugin instances driven through the typed wrappers, i.e. through the C
// ABI: the SQLite store and the echo provider as the daemon uses them.
#include "loader/instances.hpp"
#include "util/clock.hpp"
#include "util/ids.hpp"

#include <catch2/catch.hpp>
#include <filesystem>
#include <mutex>
#include <set>
#include <thread>

using namespace swh;

namespace {

std::shared_ptr<loader::PluginLibrary> load(const std::string &stem) {
    return loader::PluginLibrary::load(std::string(SWH_TEST_PLUGIN_DIR) + "/" + stem + ".so");
}

// A fresh database file per test, removed afterwards.
struct TempDb {
    std::filesystem::path dir = std::filesystem::temp_directory_path() / ("swh-loader-" + new_uuid());
    TempDb() { std::filesystem::create_directories(dir); }
    ~TempDb() { std::filesystem::remove_all(dir); }
    Json config() const {
        return {{"path", (dir / "t.db").string()},
                {"busy_timeout_ms", 5000},
                {"synchronous", "full"},
                {"pool_size", 4}};
    }
};

Session make_session(const std::string &user) {
    Session s;
    s.id = new_uuid();
    s.user_id = user;
    s.provider = "echo";
    s.model = "echo-1";
    s.created_at = s.last_activity = now_us();
    s.metadata = {{"k", "v"}};
    return s;
}

Message make_message(const Session &s, const std::string &role, const std::string &content, int64_t ts) {
    Message m;
    m.id = new_uuid();
    m.session_id = s.id;
    m.role = role;
    m.content = content;
    m.timestamp = ts;
    m.metadata = {{"n", content}};
    return m;
}

} // namespace

TEST_CASE("sqlite store: sessions and messages round-trip through the ABI") {
    TempDb db;
    loader::StorageInstance store(load("swh_storage_sqlite"), "store", db.config());
    Session s = make_session("alice");
    store.create_session(s);
    CHECK_THROWS_AS(store.create_session(s), loader::PluginError);

    auto got = store.get_session(s.id);
    REQUIRE(got);
    CHECK(got->user_id == "alice");
    CHECK(got->metadata == Json{{"k", "v"}});
    CHECK(got->message_count == 0);
    CHECK_FALSE(store.get_session("nope"));

    const int64_t t0 = now_us();
    for (int i = 0; i < 10; ++i)
        store.add_message(make_message(s, i % 2 ? "assistant" : "user", "m" + std::to_string(i), t0 + i));
    got = store.get_session(s.id);
    CHECK(got->message_count == 10);
    CHECK(got->last_activity == t0 + 9);

    MessageQuery q;
    q.session_id = s.id;
    auto all = store.get_messages(q);
    REQUIRE(all.size() == 10);
    CHECK(all.front().content == "m0");
    CHECK(all.back().content == "m9");
    CHECK(all[3].metadata == Json{{"n", "m3"}});

    q.limit = 3;
    auto last3 = store.get_messages(q);
    REQUIRE(last3.size() == 3);
    CHECK(last3[0].content == "m7");
    CHECK(last3[2].content == "m9");

    q.limit = 0;
    q.role = "assistant";
    CHECK(store.get_messages(q).size() == 5);
    q.role = "";
    q.since = t0 + 8;
    CHECK(store.get_messages(q).size() == 2);

    s.status = "archived";
    store.update_session(s, SWH_SESSION_FIELD_STATUS);
    CHECK(store.get_session(s.id)->status == "archived");

    SessionFilter f;
    f.user_id = "alice";
    CHECK(store.list_sessions(f).size() == 1);
    f.status = "active";
    CHECK(store.list_sessions(f).empty());

    CHECK(store.health_check()["status"] == "healthy");
    store.delete_session(s.id);
    CHECK_FALSE(store.get_session(s.id));
    try {
        store.delete_session(s.id);
        FAIL("deleting twice should fail");
    } catch (const loader::PluginError &e) {
        CHECK(e.status() == SWH_E_NOT_FOUND);
    }
}

TEST_CASE("sqlite store: concurrent writers to one session lose and duplicate nothing") {
    TempDb db;
    loader::StorageInstance store(load("swh_storage_sqlite"), "store", db.config());
    Session s = make_session("bob");
    store.create_session(s);
    constexpr int kThreads = 8, kEach = 50;
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t)
        threads.emplace_back([&, t] {
            for (int i = 0; i < kEach; ++i)
                store.add_message(
                    make_message(s, "user", std::to_string(t) + ":" + std::to_string(i), now_us()));
        });
    for (auto &th : threads)
        th.join();
    MessageQuery q;
    q.session_id = s.id;
    auto all = store.get_messages(q);
    std::set<std::string> contents;
    for (const auto &m : all)
        contents.insert(m.content);
    CHECK(all.size() == kThreads * kEach);
    CHECK(contents.size() == kThreads * kEach);
    CHECK(store.get_session(s.id)->message_count == kThreads * kEach);
}

TEST_CASE("sqlite store: a message for a missing session is NOT_FOUND") {
    TempDb db;
    loader::StorageInstance store(load("swh_storage_sqlite"), "store", db.config());
    Session ghost = make_session("x");
    try {
        store.add_message(make_message(ghost, "user", "hi", now_us()));
        FAIL("add_message should fail");
    } catch (const loader::PluginError &e) {
        CHECK(e.status() == SWH_E_NOT_FOUND);
    }
}

namespace {

struct Collected {
    std::mutex mutex;
    std::vector<std::string> chunks;
    std::string provider_message_id;
    Json metadata;
    std::optional<swh_status> status;
    std::string error;
    std::vector<ReplyEvent> events;
};

loader::ProviderCallbacks collect_into(Collected &c, std::size_t stop_after = SIZE_MAX) {
    loader::ProviderCallbacks cb;
    cb.on_chunk = [&c, stop_after](std::string_view text) {
        std::lock_guard lock(c.mutex);
        c.chunks.emplace_back(text);
        return c.chunks.size() < stop_after;
    };
    cb.on_metadata = [&c](std::string id, Json metadata) {
        std::lock_guard lock(c.mutex);
        c.provider_message_id = std::move(id);
        c.metadata = std::move(metadata);
    };
    cb.on_done = [&c](swh_status status, std::string error) {
        std::lock_guard lock(c.mutex);
        c.status = status;
        c.error = std::move(error);
    };
    cb.on_event = [&c](const ReplyEvent &event) {
        std::lock_guard lock(c.mutex);
        c.events.push_back(event);
        return true;
    };
    return cb;
}

std::string joined(const std::vector<std::string> &chunks) {
    std::string out;
    for (const auto &c : chunks)
        out += c;
    return out;
}

} // namespace

TEST_CASE("echo provider streams a deterministic reply chunk by chunk") {
    loader::ProviderInstance echo(
        load("swh_provider_echo"), "echo",
        {{"prefix", "echo"}, {"chunk_words", 1}, {"model", "echo-1"}, {"fail_on", ""}});
    Session s = make_session("u");
    std::vector<Message> history = {make_message(s, "user", "first", 1), make_message(s, "assistant", "x", 2),
                                    make_message(s, "user", "hello big world", 3)};
    loader::ProviderRequest request;
    request.session = &s;
    request.messages = &history;
    Collected c;
    echo.start(request, collect_into(c));
    REQUIRE(c.status == SWH_OK);
    CHECK(joined(c.chunks) == "echo#2 hello big world");
    CHECK(c.chunks.size() == 4);
    CHECK(c.provider_message_id == "echo-" + s.id + "-2");
    CHECK(c.metadata["finish_reason"] == "stop");
    CHECK(c.metadata["usage"]["completion_tokens"] == 4);
}

TEST_CASE("echo provider stops when the host cancels and fails on demand") {
    loader::ProviderInstance echo(
        load("swh_provider_echo"), "echo",
        {{"prefix", "echo"}, {"chunk_words", 1}, {"model", "echo-1"}, {"fail_on", "BOOM"}});
    Session s = make_session("u");
    std::vector<Message> history = {make_message(s, "user", "a b c d e f", 1)};
    loader::ProviderRequest request;
    request.session = &s;
    request.messages = &history;

    Collected cancelled;
    echo.start(request, collect_into(cancelled, 2));
    CHECK(cancelled.status == SWH_E_CANCELLED);
    CHECK(cancelled.chunks.size() == 2);

    history = {make_message(s, "user", "one two three four BOOM six seven eight", 1)};
    Collected failed;
    echo.start(request, collect_into(failed));
    CHECK(failed.status == SWH_E_UPSTREAM);
    CHECK_FALSE(failed.chunks.empty());
    CHECK(joined(failed.chunks).size() <
          std::string("echo#1 one two three four BOOM six seven eight").size());
}

namespace {

loader::ProviderInstance make_echo() {
    return loader::ProviderInstance(
        load("swh_provider_echo"), "echo",
        {{"prefix", "echo"}, {"chunk_words", 1}, {"model", "echo-1"}, {"fail_on", ""}});
}

const Json kWeatherTool = {
    {"type", "function"},
    {"name", "get_weather"},
    {"parameters",
     {{"type", "object"},
      {"properties", {{"city", {{"type", "string"}}}, {"days", {{"type", "integer"}}}}}}}};

} // namespace

TEST_CASE("echo provider calls the tool the user names, streamed as id+name then two argument fragments") {
    auto echo = make_echo();
    Session s = make_session("u");
    std::vector<Message> history = {make_message(s, "user", "get_weather for Oslo é", 1)};
    loader::ProviderRequest request;
    request.session = &s;
    request.messages = &history;
    request.params = {{"tools", {kWeatherTool}}, {"temperature", 0.5}};
    Collected c;
    echo.start(request, collect_into(c));
    REQUIRE(c.status == SWH_OK);
    CHECK(c.chunks.empty());
    REQUIRE(c.events.size() == 4);
    CHECK(c.events[0].type == ReplyEvent::Type::ToolCall);
    CHECK(c.events[0].id == "call_echo_1");
    CHECK(c.events[0].name == "get_weather");
    CHECK(c.events[0].text.empty());
    CHECK_FALSE(c.events[1].text.empty());
    CHECK_FALSE(c.events[2].text.empty());
    // Only string properties get the user's text.
    CHECK(Json::parse(c.events[1].text + c.events[2].text) == Json{{"city", "get_weather for Oslo é"}});
    CHECK(c.events[3].type == ReplyEvent::Type::Finish);
    CHECK(c.events[3].text == "tool_calls");
    CHECK(c.metadata["finish_reason"] == "tool_calls");
    CHECK(c.metadata["echo_params"] == request.params);
}

TEST_CASE("echo provider's tool_choice: none answers text, required and named force a call") {
    auto echo = make_echo();
    Session s = make_session("u");
    std::vector<Message> history = {make_message(s, "user", "get_weather please", 1)};
    const Json other = {{"type", "function"}, {"name", "lookup"}};
    loader::ProviderRequest request;
    request.session = &s;
    request.messages = &history;

    request.params = {{"tools", {kWeatherTool}}, {"tool_choice", "none"}};
    Collected none;
    echo.start(request, collect_into(none));
    CHECK(joined(none.chunks) == "echo#1 get_weather please");
    CHECK(none.events.empty());

    history = {make_message(s, "user", "no tool named here", 1)};
    request.params = {{"tools", {other, kWeatherTool}}};
    Collected plain;
    echo.start(request, collect_into(plain));
    CHECK(plain.events.empty());

    request.params = {{"tools", {other, kWeatherTool}}, {"tool_choice", "required"}};
    Collected required;
    echo.start(request, collect_into(required));
    REQUIRE_FALSE(required.events.empty());
    CHECK(required.events[0].name == "lookup");

    request.params = {{"tools", {other, kWeatherTool}},
                      {"tool_choice", {{"type", "function"}, {"name", "get_weather"}}}};
    Collected named;
    echo.start(request, collect_into(named));
    REQUIRE_FALSE(named.events.empty());
    CHECK(named.events[0].name == "get_weather");
}

TEST_CASE("echo provider answers tool results, and honours stop and max_output_tokens") {
    auto echo = make_echo();
    Session s = make_session("u");
    std::vector<Message> history = {make_message(s, "user", "weather?", 1),
                                    make_message(s, "assistant", "", 2),
                                    make_message(s, "tool", "sunny, 21C", 3)};
    history[1].structured = {{"tool_calls", {{{"id", "c7"}, {"name", "get_weather"}, {"arguments", "{}"}}}}};
    history[2].structured = {{"tool_call_id", "c7"}};
    loader::ProviderRequest request;
    request.session = &s;
    request.messages = &history;
    request.params = {{"tools", {kWeatherTool}}};
    Collected answered;
    echo.start(request, collect_into(answered));
    REQUIRE(answered.status == SWH_OK);
    CHECK(joined(answered.chunks) == "get_weather returned: sunny, 21C");
    CHECK(answered.events.empty());

    history = {make_message(s, "user", "one two three four five", 1)};
    request.params = {{"max_output_tokens", 3}};
    Collected cut;
    echo.start(request, collect_into(cut));
    CHECK(joined(cut.chunks) == "echo#1 one two");
    CHECK(cut.metadata["finish_reason"] == "length");

    request.params = {{"stop", {"three"}}};
    Collected stopped;
    echo.start(request, collect_into(stopped));
    CHECK(joined(stopped.chunks) == "echo#1 one two ");
    CHECK(stopped.metadata["finish_reason"] == "stop");
}
