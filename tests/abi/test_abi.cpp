// ABI stability and loader hardening, through the real loader.
//
// README.md lists the loader guarantees these tests pin down.
#include "loader/abi_convert.hpp"
#include "loader/instances.hpp"
#include "pipeline/middleware_chain.hpp"

#include <catch2/catch.hpp>

#include <string>

using namespace swh;
using Catch::Matchers::Contains;

namespace {

std::string fixture(const std::string &stem) {
    return std::string(SWH_ABI_FIXTURE_DIR) + "/" + stem + ".so";
}

std::string load_error_of(const std::string &file) {
    try {
        loader::PluginLibrary::load(file);
    } catch (const loader::LoadError &e) {
        return e.what();
    }
    return "";
}

Session session() {
    Session s;
    s.id = "s-1";
    s.user_id = "u";
    s.provider = "echo";
    return s;
}

Message message(const std::string &content) {
    Message m;
    m.id = "m-1";
    m.session_id = "s-1";
    m.role = "user";
    m.content = content;
    return m;
}

loader::MiddlewareOutcome run_misbehave(const std::string &mode) {
    auto lib = loader::PluginLibrary::load(fixture("misbehave_mw"));
    loader::MiddlewareInstance mw(lib, "mb", Json{{"mode", mode}});
    return mw.process(SWH_STAGE_USER, session(), message("hello"), Json::object());
}

void hook_event(const std::string &mode) {
    auto lib = loader::PluginLibrary::load(fixture("misbehave_hook"));
    loader::HookInstance hook(lib, "mh", Json{{"mode", mode}});
    Message m = message("hi");
    hook.on_event(SWH_EVENT_MESSAGE_SENT, 1, session(), &m, Json::object());
}

} // namespace

// ------------------------------------------------------------- versions

TEST_CASE("a plugin built against the frozen 1.0 headers loads and works") {
    auto lib = loader::PluginLibrary::load(fixture("abi10_upper"));
    CHECK(lib->abi_major() == 1);
    CHECK(lib->abi_minor() == 0);
    CHECK(SWH_ABI_VERSION_MINOR >= lib->abi_minor());
    loader::MiddlewareInstance mw(lib, "upper", Json::object());
    CHECK(mw.stages() == SWH_STAGE_USER);
    auto out = mw.process(SWH_STAGE_USER, session(), message("hello abi"), Json::object());
    CHECK(out.status == SWH_OK);
    REQUIRE(out.content.has_value());
    CHECK(*out.content == "HELLO ABI");
    CHECK(out.metadata_patch == Json{{"abi", "1.0"}});
}

TEST_CASE("a provider built against the frozen 1.2 headers answers a 1.3 conversation with tools") {
    auto lib = loader::PluginLibrary::load(fixture("abi12_provider"));
    CHECK(lib->abi_minor() == 0);
    loader::ProviderInstance provider(lib, "old", Json::object());
    std::vector<Message> conversation{message("weather?"), message(""), message("sunny")};
    conversation[1].role = "assistant";
    conversation[1].structured = {
        {"tool_calls", {{{"id", "c1"}, {"name", "get_weather"}, {"arguments", "{}"}}}}};
    conversation[2].role = "tool";
    conversation[2].structured = {{"tool_call_id", "c1"}};
    Session s = session();
    loader::ProviderRequest request;
    request.session = &s;
    request.messages = &conversation;
    request.params = {{"temperature", 0.2}, {"tools", {{{"type", "function"}, {"name", "get_weather"}}}}};
    std::string reply, id;
    int events = 0;
    swh_status done = -1;
    loader::ProviderCallbacks callbacks;
    callbacks.on_chunk = [&](std::string_view text) { return reply.append(text), true; };
    callbacks.on_metadata = [&](std::string message_id, Json) { id = std::move(message_id); };
    callbacks.on_event = [&](const ReplyEvent &) { return ++events, true; };
    callbacks.on_done = [&](swh_status status, std::string) { done = status; };
    provider.start(request, callbacks);
    CHECK(done == SWH_OK);
    // The old plugin walked the larger 1.3 structs with the stride and saw
    // every message's text, the tool result as role "tool".
    CHECK(reply == "3 messages: user=weather? assistant= tool=sunny");
    CHECK(id == "abi12-1");
    CHECK(events == 0);
}

TEST_CASE("a middleware built against the frozen 1.2 headers works on text in a conversation with tools") {
    auto lib = loader::PluginLibrary::load(fixture("abi12_middleware"));
    CHECK(lib->abi_minor() == 2);
    const Json call = {{"id", "c1"}, {"name", "get_weather"}, {"arguments", R"({"city":"oslo"})"}};
    Message reply = message(""); // a reply that only calls a tool
    reply.role = "assistant";
    reply.structured = {{"tool_calls", Json::array({call})}};
    Message result = message("sunny, 21c"); // the tool's result, as a client sends it
    result.role = "tool";
    result.structured = {{"tool_call_id", "c1"}};

    SECTION("the instance sees the text of every message and never touches the structure") {
        loader::MiddlewareInstance mw(lib, "old", Json::object());
        CHECK(mw.stages() == (SWH_STAGE_USER | SWH_STAGE_ASSISTANT));
        auto out = mw.process(SWH_STAGE_USER, session(), result, Json::object());
        CHECK(out.status == SWH_OK);
        REQUIRE(out.content.has_value());
        CHECK(*out.content == "SUNNY, 21C");
        CHECK(out.metadata_patch == Json{{"abi12", "tool:10"}});
        CHECK_FALSE(out.structured.has_value());
        out = mw.process(SWH_STAGE_ASSISTANT, session(), reply, Json::object());
        CHECK(out.status == SWH_OK);
        CHECK_FALSE(out.content.has_value());
        CHECK(out.metadata_patch == Json{{"abi12", "assistant:0"}});
        CHECK_FALSE(out.structured.has_value());
        out = mw.process(SWH_STAGE_USER, session(), message("plain text"), Json::object());
        REQUIRE(out.content.has_value());
        CHECK(*out.content == "PLAIN TEXT");
    }

    SECTION("through the chain, the text is edited and the tool call and result ids are kept") {
        std::vector<MiddlewareSpec> specs;
        specs.push_back({std::make_unique<loader::MiddlewareInstance>(lib, "old", Json::object()),
                         0,
                         Json::object(),
                         {},
                         false});
        const MiddlewareChain chain(std::move(specs));
        ChainResult tool = chain.run(SWH_STAGE_USER, session(), result);
        REQUIRE_FALSE(tool.rejection.has_value());
        CHECK(tool.message.content == "SUNNY, 21C");
        CHECK(tool.message.role == "tool");
        CHECK(tool.message.structured == Json{{"tool_call_id", "c1"}});
        CHECK(tool.processed == std::vector<std::string>{"old"});
        ChainResult assistant = chain.run(SWH_STAGE_ASSISTANT, session(), reply);
        REQUIRE_FALSE(assistant.rejection.has_value());
        CHECK(assistant.message.content.empty());
        CHECK(assistant.message.structured == Json{{"tool_calls", Json::array({call})}});
        CHECK(assistant.message.metadata["abi12"] == "assistant:0");
    }
}

TEST_CASE("a message returned in the 1.0-1.2 layout converts, without structured content") {
    swh_message old{};
    old.struct_size = offsetof(swh_message, structured_json); // what a 1.2 storage plugin fills in
    old.id = {"m", 1};
    old.role = {"user", 4};
    old.content = {"hi", 2};
    const Message m = loader::from_abi(old);
    CHECK(m.content == "hi");
    CHECK(m.structured == Json::object());
    old.struct_size = offsetof(swh_message, provider_metadata_json); // shorter than 1.0: a bug
    CHECK_THROWS_WITH(loader::from_abi(old), Contains("short swh_message"));
}

TEST_CASE("a plugin claiming a newer minor with larger structs is refused by its version") {
    // Its functions abort(): reaching this CHECK proves the loader called none.
    CHECK_THAT(load_error_of(fixture("newer_minor_larger")),
               Contains("newer_minor_larger.so") &&
                   Contains("needs ABI 1." + std::to_string(SWH_ABI_VERSION_MINOR + 1)) &&
                   Contains("upgrade swarmhost"));
}

TEST_CASE("a plugin of another major is refused with a clear error") {
    CHECK_THAT(load_error_of(fixture("major2")),
               Contains("major2.so") && Contains("ABI 2.0") && Contains("major versions differ"));
}

TEST_CASE("another major is refused by version even when its descriptor is smaller") {
    // Pending loader change 1: read struct_size/abi_major/abi_minor (fixed
    // across majors) and refuse on the major before judging the size.
    CHECK_THAT(load_error_of(fixture("major2_small")),
               Contains("major2_small.so") && Contains("major versions differ"));
}

// ------------------------------------------------------ loader hardening

TEST_CASE("a status outside the enum is contained: middleware process") {
    auto out = run_misbehave("bad_status");
    CHECK(out.status != SWH_OK);
    CHECK_THAT(out.error, Contains("99") && Contains("outside"));
}

TEST_CASE("a status outside the enum is normalised to SWH_E_INTERNAL: middleware") {
    // Pending loader change 2: MiddlewareInstance::process keeps the raw 99.
    CHECK(run_misbehave("bad_status").status == SWH_E_INTERNAL);
}

TEST_CASE("a status outside the enum is contained: hook on_event") {
    try {
        hook_event("bad_status");
        FAIL("on_event should have failed");
    } catch (const loader::PluginError &e) {
        CHECK(e.status() == SWH_E_INTERNAL);
        CHECK_THAT(std::string(e.what()), Contains("4242"));
    }
}

TEST_CASE("the control case works") {
    auto out = run_misbehave("ok");
    CHECK(out.status == SWH_OK);
    CHECK_FALSE(out.content.has_value());
}

TEST_CASE("a std exception thrown across the boundary is contained: middleware") {
    auto out = run_misbehave("throw_std");
    CHECK(out.status == SWH_E_INTERNAL);
    CHECK_THAT(out.error, Contains("std exception escaping process"));
}

TEST_CASE("any exception thrown across the boundary is contained and named: middleware") {
    // Pending loader change 3: catch (...) around every plugin call, report
    // "threw an exception across the ABI boundary".
    loader::MiddlewareOutcome out;
    REQUIRE_NOTHROW(out = run_misbehave("throw_int"));
    CHECK(out.status == SWH_E_INTERNAL);
    CHECK_THAT(out.error, Contains("exception across the ABI boundary"));
}

TEST_CASE("an exception thrown across the boundary becomes a PluginError: hook") {
    for (const char *mode : {"throw_std", "throw_int"}) {
        INFO(mode);
        try {
            hook_event(mode);
            FAIL("on_event should have failed");
        } catch (const loader::PluginError &e) {
            CHECK(e.status() == SWH_E_INTERNAL);
            CHECK_THAT(std::string(e.what()), Contains("exception across the ABI boundary"));
        } catch (...) {
            FAIL("the plugin's exception escaped the loader as is");
        }
    }
}

TEST_CASE("an editor callback from another thread is refused and reported") {
    // Pending loader change 4: the editor remembers the calling thread; a
    // callback from another thread is ignored and fails the call.
    auto out = run_misbehave("other_thread");
    CHECK(out.status == SWH_E_INTERNAL);
    CHECK_FALSE(out.content.has_value());
    CHECK_THAT(out.error, Contains("thread"));
}

TEST_CASE("config access after create is refused, not a dangling read") {
    // Pending loader change 5. Hidden: today this reads freed memory.
    try {
        hook_event("late_config");
        FAIL("on_event should have failed");
    } catch (const loader::PluginError &e) {
        CHECK(e.status() == SWH_E_INVALID);
    }
}
