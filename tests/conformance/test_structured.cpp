// Structured messages (ABI 1.3 swh_message.structured_json) in every store:
// an assistant turn with tool calls and reasoning, the tool results with
// their call ids and a user turn made of parts read back exactly, beside
// plain messages; and a host older than 1.3, whose smaller swh_message has
// no structured_json, is served as before.
#include "conformance.hpp"
#include "loader/abi_convert.hpp"

#include <cstddef>
#include <string>
#include <vector>

using namespace swh;
using namespace swh::conformance;

namespace {

Message structured(const Session &s, const std::string &role, const std::string &content, Json body,
                   int64_t ts) {
    Message m = make_message(s, role, content, ts);
    m.structured = std::move(body);
    return m;
}

// The conversation of one tool loop, in order, as the host stores it.
std::vector<Message> tool_loop(const Session &s, int64_t t0) {
    std::string image = "data:image/png;base64,";
    while (image.size() < 256 * 1024) // an inline image, as the OpenAI door receives it
        image +=
            "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg";
    const Json parts = {{"parts",
                         {{{"type", "text"}, {"text", "What is on this map, "}},
                          {{"type", "image"}, {"url", image}, {"detail", "auto"}},
                          {{"type", "text"}, {"text", "and the weather in Zürich?"}},
                          {{"type", "file"},
                           {"filename", "notes.pdf"},
                           {"media_type", "application/pdf"},
                           {"data", "JVBERi0xLjQK"}}}}};
    const Json calls = {
        {"tool_calls",
         {{{"id", "call_1"}, {"name", "get_weather"}, {"arguments", R"({"city":"Zürich","unit":"celsius"})"}},
          // as the vendor sent it: not valid JSON, kept byte for byte
          {{"id", "toolu_01A"}, {"name", "lookup"}, {"arguments", "{\"q\": \"Grüße 👋\\n\", "}}}},
        {"reasoning", "The user asks two things.\nFirst the map, then 天气 — call both tools."},
        {"reasoning_signature", "EqQBCkgIARABGAIiQL4x/+sig=="}};
    return {structured(s, "user", "What is on this map, and the weather in Zürich?", parts, t0),
            structured(s, "assistant", "", calls, t0 + 1),
            structured(s, "tool", "{\"temp\":18,\"sky\":\"sunny\"}", {{"tool_call_id", "call_1"}}, t0 + 2),
            structured(s, "tool", "no result", {{"tool_call_id", "toolu_01A"}}, t0 + 3),
            make_message(s, "assistant", "A map of Zürich; it is 18 °C and sunny there.", t0 + 4)};
}

void check_same(const std::vector<Message> &got, const std::vector<Message> &want) {
    REQUIRE(got.size() == want.size());
    for (size_t i = 0; i < want.size(); ++i) {
        INFO("message " << i << " (" << want[i].role << ")");
        CHECK(got[i].id == want[i].id);
        CHECK(got[i].role == want[i].role);
        CHECK(got[i].content == want[i].content);
        CHECK(got[i].timestamp == want[i].timestamp);
        CHECK(got[i].metadata == want[i].metadata);
        CHECK(got[i].structured == want[i].structured);
    }
}

// A storage instance whose add_message can be handed a raw swh_message, as
// a host built against an older minor passes it.
class RawStore : public StorageInstance {
  public:
    using StorageInstance::StorageInstance;
    swh_status add_message_raw(const swh_message &m) {
        return static_cast<const swh_storage_v1 *>(library().vtable())->add_message(handle_, &m);
    }
};

} // namespace

TEST_CASE("structured: tool calls, reasoning, tool results and parts read back exactly") {
    auto store = open_store();
    Session s = make_session("u-" + new_uuid());
    store->create_session(s);
    const std::vector<Message> loop = tool_loop(s, now_us());
    for (const Message &m : loop)
        store->add_message(m);

    MessageQuery q;
    q.session_id = s.id;
    check_same(store->get_messages(q), loop);
    CHECK(store->get_session(s.id)->message_count == loop.size());

    q.role = "tool"; // the filters see structured rows like any other
    check_same(store->get_messages(q), {loop[2], loop[3]});
    q.role = "";
    q.limit = 2;
    check_same(store->get_messages(q), {loop[3], loop[4]});
    CHECK(store->get_messages(q)[1].structured.empty()); // the plain answer stays plain
}

TEST_CASE("structured: the stores declare ABI 1.0 and ignore what a pre-1.3 host's message lacks") {
    const char *file = std::getenv("SWH_CONFORMANCE_PLUGIN");
    auto lib = loader::PluginLibrary::load(file && *file ? std::string(file)
                                                         : std::string(SWH_TEST_PLUGIN_DIR) +
                                                               "/swh_storage_" + backend().kind + ".so");
    CHECK(lib->abi_minor() == 0); // structured_json is read only when the host's struct has it
    RawStore store(lib, "conformance-raw", backend().config());
    Session s = make_session("u-" + new_uuid());
    store.create_session(s);

    // A 1.2 host's swh_message ends before structured_json: whatever lies
    // after it is not the plugin's to read (here a member that would show).
    const std::string id = new_uuid(), role = "user", content = "from a 1.2 host";
    const std::string beyond = R"({"tool_call_id":"read past a 1.2 struct"})";
    swh_message m{};
    m.struct_size = offsetof(swh_message, structured_json);
    m.id = loader::to_str(id);
    m.session_id = loader::to_str(s.id);
    m.role = loader::to_str(role);
    m.content = loader::to_str(content);
    m.timestamp = now_us();
    m.structured_json = loader::to_str(beyond);
    REQUIRE(store.add_message_raw(m) == SWH_OK);

    MessageQuery q;
    q.session_id = s.id;
    auto got = store.get_messages(q);
    REQUIRE(got.size() == 1);
    CHECK(got[0].id == id);
    CHECK(got[0].content == content);
    CHECK(got[0].structured.empty());
    CHECK(got[0].metadata == Json::object()); // "" = "{}", as before

    // The same bytes from a 1.3 host are kept.
    const std::string id13 = new_uuid();
    m.struct_size = sizeof(swh_message);
    m.id = loader::to_str(id13);
    m.timestamp += 1;
    REQUIRE(store.add_message_raw(m) == SWH_OK);
    got = store.get_messages(q);
    REQUIRE(got.size() == 2);
    CHECK(got[1].id == id13);
    CHECK(got[1].structured == Json::parse(beyond));
}
