// The openai and anthropic provider plugins driven through the real loader
// (swh::loader::ProviderInstance, i.e. through the C ABI and the host's
// asynchronous HTTP client) against tools/fake_upstream.
#include "provider_fixture.hpp"

#include <catch2/catch.hpp>
#include <openssl/evp.h>

#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <optional>

using namespace swh;
using namespace swh::test;

TEST_CASE("openai: non-stream and stream replies, metadata, what was sent") {
    Fixture f;
    loader::ProviderInstance p(load("swh_provider_openai"), "openai",
                               f.openai_config({{"custom_params", {{"top_p", 0.25}}}, {"max_tokens", 50}}));
    f.history = {msg(f.session, "user", "first"), msg(f.session, "assistant", "You said: first")};
    f.say("hello big world");
    f.request.system_prompt = "be brief";
    for (bool stream : {false, true}) {
        DYNAMIC_SECTION("stream=" << stream) {
            f.request.stream = stream;
            Collected c;
            run(p, f.request, c);
            CHECK(c.status == SWH_OK);
            CHECK(c.error.empty());
            CHECK(c.text() == "You said: hello big world");
            CHECK(c.chunks.size() == (stream ? 5u : 1u));
            CHECK(c.provider_message_id.rfind("chatcmpl-", 0) == 0);
            CHECK(c.metadata["finish_reason"] == "stop");
            CHECK(c.metadata["usage"]["completion_tokens"] == 5);
            CHECK(c.metadata["model"] == "gpt-4o-mini");
            Json reqs = f.fake.requests();
            REQUIRE(reqs.size() == 1);
            const Json &body = reqs[0]["body"];
            CHECK(reqs[0]["path"] == "/v1/chat/completions");
            CHECK(reqs[0]["headers"]["authorization"] == std::string("Bearer ") + kOpenAIKey);
            CHECK(body["messages"][0] == Json{{"role", "system"}, {"content", "be brief"}});
            CHECK(body["messages"].size() == 4);
            CHECK(body["top_p"] == 0.25);
            CHECK(body["max_tokens"] == 50);
            CHECK_FALSE(body.contains("temperature")); // negative default: not sent
            CHECK(body["stream"] == stream);
            CHECK(body.contains("stream_options") == stream);
        }
    }
}

// The openai plugin's parser keeps stacks for 64 levels of nesting
// (openai_wire.cpp, kMaxDepth): an answer nested deeper is refused by name,
// and a large answer after a small one (the parser's buffers grow) and a
// small one after it come back whole.
TEST_CASE(
    "openai: an answer nested past 64 levels is refused by name, large and small ones come back whole") {
    Fixture f;
    loader::ProviderInstance p(load("swh_provider_openai"), "openai", f.openai_config(Json::object()));
    for (bool stream : {false, true}) {
        DYNAMIC_SECTION("stream=" << stream) {
            f.request.stream = stream;
            f.say("[fake:deep] nested");
            Collected deep;
            run(p, f.request, deep);
            CHECK(deep.status == SWH_E_UPSTREAM);
            CHECK_THAT(deep.error, Catch::Contains("JSON nested deeper than 64 levels"));
            for (const std::string &said :
                 {std::string("small"), std::string(20 * 1024, 'x'), std::string("small")}) {
                f.say(said);
                Collected c;
                run(p, f.request, c);
                CHECK(c.status == SWH_OK);
                CHECK(c.text() == "You said: " + said);
                CHECK(c.metadata["finish_reason"] == "stop");
            }
        }
    }
}

TEST_CASE("anthropic: non-stream and stream replies, system field, headers") {
    Fixture f;
    loader::ProviderInstance p(load("swh_provider_anthropic"), "anthropic",
                               f.anthropic_config({{"custom_params", {{"top_k", 3}}}, {"temperature", 0.5}}));
    f.history = {msg(f.session, "system", "house rules"), msg(f.session, "user", "hello big world")};
    f.request.system_prompt = "be brief";
    for (bool stream : {false, true}) {
        DYNAMIC_SECTION("stream=" << stream) {
            f.request.stream = stream;
            Collected c;
            run(p, f.request, c);
            CHECK(c.status == SWH_OK);
            CHECK(c.text() == "You said: hello big world");
            CHECK(c.chunks.size() == (stream ? 5u : 1u));
            CHECK(c.provider_message_id.rfind("msg_", 0) == 0);
            CHECK(c.metadata["finish_reason"] == "stop");
            CHECK(c.metadata["stop_reason"] == "end_turn");
            CHECK(c.metadata["usage"]["output_tokens"] == 5);
            CHECK(c.metadata["usage"]["completion_tokens"] == 5);
            Json reqs = f.fake.requests();
            REQUIRE(reqs.size() == 1);
            const Json &body = reqs[0]["body"];
            CHECK(reqs[0]["path"] == "/v1/messages");
            CHECK(reqs[0]["headers"]["x-api-key"] == kAnthropicKey);
            CHECK(reqs[0]["headers"]["anthropic-version"] == "2023-06-01");
            CHECK(body["system"] == "be brief\n\nhouse rules");
            CHECK(body["messages"] == Json::array({{{"role", "user"}, {"content", "hello big world"}}}));
            CHECK(body["max_tokens"] == 1024);
            CHECK(body["top_k"] == 3);
            CHECK(body["temperature"] == 0.5);
        }
    }
}

TEST_CASE("assistant_prefix: the reply continues after the partial answer") {
    Fixture f;
    f.say("go on then");
    f.request.assistant_prefix = "You said: go "; // ends in whitespace: Anthropic refuses such a prefill
    f.request.stream = true;
    SECTION("openai: a trailing assistant message") {
        loader::ProviderInstance p(load("swh_provider_openai"), "openai", f.openai_config());
        Collected c;
        run(p, f.request, c);
        CHECK(c.status == SWH_OK);
        Json body = f.fake.requests()[0]["body"];
        CHECK(body["messages"].back() == Json{{"role", "assistant"}, {"content", "You said: go "}});
    }
    SECTION("anthropic: last-turn prefill, trailing whitespace moved out and dropped from the reply") {
        loader::ProviderInstance p(load("swh_provider_anthropic"), "anthropic", f.anthropic_config());
        Collected c;
        run(p, f.request, c);
        CHECK(c.status == SWH_OK);
        CHECK(c.text() == "on then");
        Json body = f.fake.requests()[0]["body"];
        CHECK(body["messages"].back() == Json{{"role", "assistant"}, {"content", "You said: go"}});
    }
}

TEST_CASE("retries: 429 with Retry-After is waited for, and exhausted retries report retry_after") {
    Fixture f;
    loader::ProviderInstance p(load("swh_provider_openai"), "openai", f.openai_config({{"retries", 2}}));
    f.say("[fake:429x1:1] again");
    Collected ok;
    auto t0 = std::chrono::steady_clock::now();
    run(p, f.request, ok);
    CHECK(ok.status == SWH_OK);
    CHECK(std::chrono::steady_clock::now() - t0 >= std::chrono::milliseconds(950));
    CHECK(f.fake.requests().size() == 2);

    f.fake.reset();
    f.history = {msg(f.session, "user", "[fake:429:0] never")};
    Collected limited;
    run(p, f.request, limited);
    CHECK(limited.status == SWH_E_RATE_LIMITED);
    CHECK(limited.error.find("retry_after=0") != std::string::npos);
    CHECK(f.fake.requests().size() == 3);

    f.fake.reset();
    f.history = {msg(f.session, "user", "[fake:429:120] much later")};
    Collected impatient; // Retry-After beyond retry_max_ms: no waiting, at once
    run(p, f.request, impatient);
    CHECK(impatient.status == SWH_E_RATE_LIMITED);
    CHECK(impatient.error.find("retry_after=120") != std::string::npos);
    CHECK(f.fake.requests().size() == 1);
}

TEST_CASE("failures map to statuses: garbage, 5xx, timeout, cut stream, refused connection, 400") {
    Fixture f;
    const bool anthropic = GENERATE(false, true);
    CAPTURE(anthropic);
    Json cfg = anthropic ? f.anthropic_config({{"timeout_ms", 800}, {"retries", 1}})
                         : f.openai_config({{"timeout_ms", 800}, {"retries", 1}});
    loader::ProviderInstance p(load(anthropic ? "swh_provider_anthropic" : "swh_provider_openai"), "p", cfg);
    struct Case {
        const char *scenario;
        bool stream;
        swh_status status;
        size_t attempts;
    };
    const Case cases[] = {
        {"garbage", false, SWH_E_UPSTREAM, 1},   {"garbage", true, SWH_E_UPSTREAM, 1},
        {"500", false, SWH_E_UPSTREAM, 2},       {"timeout:3000", true, SWH_E_TIMEOUT, 1},
        {"disconnect", true, SWH_E_UPSTREAM, 1}, {"streamerror", true, SWH_E_UPSTREAM, 1},
        {"400", false, SWH_E_INVALID, 1},
    };
    for (const auto &k : cases) {
        CAPTURE(k.scenario, k.stream);
        f.fake.reset();
        f.history = {
            msg(f.session, "user", std::string("[fake:") + k.scenario + "] one two three four five six")};
        f.request.stream = k.stream;
        Collected c;
        run(p, f.request, c);
        CHECK(c.status == k.status);
        CHECK_FALSE(c.error.empty());
        CHECK(f.fake.requests().size() == k.attempts);
        if (std::string(k.scenario) == "disconnect") {
            CHECK_FALSE(c.chunks.empty()); // some text got through before the cut
        }
    }
}

TEST_CASE("a refused connection is retried, then UNAVAILABLE") {
    Fixture f;
    int closed_port = 0;
    {
        test::FakeUpstream gone; // start and stop one: its port is (very likely) closed now
        closed_port = std::stoi(gone.base().substr(gone.base().rfind(':') + 1));
    }
    loader::ProviderInstance p(
        load("swh_provider_openai"), "openai",
        f.openai_config(
            {{"base_url", "http://127.0.0.1:" + std::to_string(closed_port) + "/v1"}, {"retries", 2}}));
    f.say("anyone?");
    Collected c;
    run(p, f.request, c);
    CHECK(c.status == SWH_E_UNAVAILABLE);
    CHECK(c.error.find("openai: ") == 0);
}

// How the fake upstream's answer to the only request it recorded ended:
// "answered" (all of it was written), "client_closed" (a write failed: the
// caller hung up first), "cut". Waits for it: the fake records the outcome
// once its handler is done; `bound` only keeps a broken run from hanging.
std::string outcome_of_only_request(test::FakeUpstream &fake,
                                    std::chrono::seconds bound = std::chrono::seconds(60)) {
    const auto deadline = std::chrono::steady_clock::now() + bound;
    Json reqs;
    do {
        reqs = fake.requests();
        if (reqs.size() == 1 && reqs[0]["outcome"].is_string()) return reqs[0]["outcome"];
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    } while (std::chrono::steady_clock::now() < deadline);
    return "(none after " + std::to_string(bound.count()) + " s: " + reqs.dump() + ")";
}

TEST_CASE("cancel stops a streaming call, and a client that stops reading cancels too") {
    Fixture f;
    loader::ProviderInstance p(load("swh_provider_anthropic"), "anthropic", f.anthropic_config());
    // "You said: " and 23 words, 300 ms apart: about 7 s for the whole answer.
    f.say("[fake:slowchunks:300] one two three four five six seven eight nine ten eleven twelve thirteen "
          "fourteen fifteen sixteen seventeen eighteen nineteen twenty twenty-one twenty-two twenty-three");
    f.request.stream = true;
    Collected c;
    uint64_t id = p.start(f.request, c.callbacks());
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(15);
    while (c.text().empty() && std::chrono::steady_clock::now() < deadline) // the stream is under way
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    REQUIRE_FALSE(c.text().empty());
    p.cancel(id);
    REQUIRE(c.wait());
    CHECK(c.status == SWH_E_CANCELLED);
    // The proof is at the upstream: the connection was closed while the fake
    // still had text to send. Had the call read on, the fake would finish
    // its answer ("answered").
    CHECK(outcome_of_only_request(f.fake) == "client_closed");
    CHECK(c.chunks.size() < 25);

    f.fake.reset();
    Collected reader;
    reader.stop_after = 2; // on_chunk returns false on the second piece
    run(p, f.request, reader);
    CHECK(reader.status == SWH_E_CANCELLED);
    CHECK(reader.chunks.size() == 2);
    CHECK(outcome_of_only_request(f.fake) == "client_closed");
}

TEST_CASE("max_concurrent queues calls beyond the limit") {
    Fixture f;
    loader::ProviderInstance p(load("swh_provider_openai"), "openai",
                               f.openai_config({{"max_concurrent", 1}}));
    f.say("[fake:slow:300] queued");
    Collected a, b, c;
    auto t0 = std::chrono::steady_clock::now();
    p.start(f.request, a.callbacks());
    p.start(f.request, b.callbacks());
    p.start(f.request, c.callbacks());
    REQUIRE(a.wait());
    REQUIRE(b.wait());
    REQUIRE(c.wait());
    CHECK(std::chrono::steady_clock::now() - t0 >= std::chrono::milliseconds(850)); // one at a time
    CHECK(a.status == SWH_OK);
    CHECK(b.status == SWH_OK);
    CHECK(c.status == SWH_OK);
    Json reqs = f.fake.requests();
    REQUIRE(reqs.size() == 3);
}

TEST_CASE("the API key: read from the environment, never in metadata or errors") {
    Fixture f;
    SECTION("get_metadata names the variable, not the key") {
        loader::ProviderInstance p(load("swh_provider_openai"), "openai", f.openai_config());
        Json meta = p.metadata();
        CHECK(meta["model"] == "gpt-4o-mini");
        CHECK(meta["base_url"] == f.fake.base() + "/v1");
        CHECK(meta["config"]["api_key_env"] == "SWH_LOADER_TEST_OPENAI_KEY");
        CHECK(meta["api_key_present"] == true);
        CHECK(meta.dump().find(kOpenAIKey) == std::string::npos);
    }
    SECTION("an upstream error quoting the key is scrubbed") {
        for (const char *plugin : {"swh_provider_openai", "swh_provider_anthropic"}) {
            const bool openai = std::string(plugin) == "swh_provider_openai";
            loader::ProviderInstance p(load(plugin), "p", openai ? f.openai_config() : f.anthropic_config());
            f.history = {msg(f.session, "user", "[fake:401] me")};
            Collected c;
            run(p, f.request, c);
            CHECK(c.status == SWH_E_UPSTREAM);
            CHECK(c.error.find(openai ? kOpenAIKey : kAnthropicKey) == std::string::npos);
            CHECK(c.error.find("***") != std::string::npos);
        }
    }
    SECTION("a missing variable fails create with its name") {
        ::unsetenv("SWH_LOADER_TEST_MISSING_KEY");
        try {
            loader::ProviderInstance p(load("swh_provider_anthropic"), "anthropic",
                                       f.anthropic_config({{"api_key_env", "SWH_LOADER_TEST_MISSING_KEY"}}));
            FAIL("create should fail");
        } catch (const std::exception &e) {
            CHECK(std::string(e.what()).find("SWH_LOADER_TEST_MISSING_KEY") != std::string::npos);
        }
    }
    SECTION("api_key_env \"\" sends no key (local servers)") {
        loader::ProviderInstance p(load("swh_provider_openai"), "openai",
                                   f.openai_config({{"api_key_env", ""}}));
        f.say("no key");
        Collected c;
        run(p, f.request, c);
        CHECK(c.status == SWH_OK);
        CHECK_FALSE(f.fake.requests()[0]["headers"].contains("authorization"));
    }
    SECTION("Azure style: api-version query and api-key header") {
        loader::ProviderInstance p(load("swh_provider_openai"), "openai",
                                   f.openai_config({{"base_url", f.fake.base() + "/openai/deployments/dep1"},
                                                    {"api_version", "2024-10-21"}}));
        f.say("azure");
        Collected c;
        run(p, f.request, c);
        CHECK(c.status == SWH_OK);
        Json req = f.fake.requests()[0];
        CHECK(req["path"] == "/openai/deployments/dep1/chat/completions");
        CHECK(req["query"]["api-version"] == "2024-10-21");
        CHECK(req["headers"]["api-key"] == kOpenAIKey);
    }
}

// ---------------------------------------------------------------- attachments
// metadata.attachments (plugins/session_multimodal) sent in each vendor's
// format; the fake decodes every image/file part and reports its type, size
// and sha256 prefix in the reply, so the reply proves which bytes arrived.
namespace {

const std::string kPng(
    "\x89\x50\x4e\x47\x0d\x0a\x1a\x0a\x00\x00\x00\x0d\x49\x48\x44\x52\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06"
    "\x00\x00\x00\x1f\x15\xc4\x89\x00\x00\x00\x0d\x49\x44\x41\x54\x78\xda\x63\x64\x60\xf8\x5f\x0f\x00\x02\x87"
    "\x01\x80\xeb\x47\xba\x92\x00\x00\x00\x00\x49\x45\x4e\x44\xae\x42\x60\x82",
    70);
const std::string kPdf = "%PDF-1.4\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n";
const std::string kNotes = "remember the milk";

std::string sha12(const std::string &bytes) {
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    REQUIRE(EVP_Digest(bytes.data(), bytes.size(), digest, &n, EVP_sha256(), nullptr) == 1);
    std::string hex;
    for (unsigned int i = 0; i < 6; ++i) {
        char buf[3];
        std::snprintf(buf, sizeof buf, "%02x", digest[i]);
        hex += buf;
    }
    return hex;
}

std::string saw(const std::string &mime, const std::string &bytes) {
    return mime + " " + std::to_string(bytes.size()) + " bytes sha256=" + sha12(bytes);
}

// Files in a fresh folder, removed with the fixture.
struct Files {
    std::filesystem::path dir = std::filesystem::temp_directory_path() / ("swh-att-" + new_uuid());
    Files() { std::filesystem::create_directories(dir); }
    ~Files() { std::filesystem::remove_all(dir); }
    Json entry(const std::string &name, const std::string &mime, const std::string &bytes) const {
        const auto path = dir / name;
        std::ofstream(path, std::ios::binary) << bytes;
        return {{"id", name},
                {"name", name},
                {"mime_type", mime},
                {"size", bytes.size()},
                {"path", path.string()}};
    }
};

Message with_files(const Session &s, const std::string &content, Json attachments) {
    Message m = msg(s, "user", content);
    m.metadata["attachments"] = std::move(attachments);
    return m;
}

} // namespace

TEST_CASE("openai: attachments become image_url, file and text parts in every message of the history") {
    Fixture f;
    Files files;
    loader::ProviderInstance p(load("swh_provider_openai"), "openai", f.openai_config());
    f.history = {with_files(f.session, "first look", Json::array({files.entry("a.png", "image/png", kPng)})),
                 msg(f.session, "assistant", "a pixel"),
                 with_files(f.session, "and these",
                            Json::array({files.entry("d.pdf", "application/pdf", kPdf),
                                         files.entry("n.txt", "text/plain", kNotes)}))};
    for (bool stream : {false, true}) {
        DYNAMIC_SECTION("stream=" << stream) {
            f.request.stream = stream;
            Collected c;
            run(p, f.request, c);
            REQUIRE(c.status == SWH_OK);
            // the fake decoded the image of the first turn and the PDF of the last one
            CHECK(c.text() == "You said: and theseAttachment n.txt:\n" + kNotes + " [saw " +
                                  saw("image/png", kPng) + "; " + saw("application/pdf", kPdf) + "]");
            const Json body = f.fake.requests()[0]["body"];
            REQUIRE(body["messages"].size() == 3);
            const Json &first = body["messages"][0]["content"];
            REQUIRE(first.is_array());
            CHECK(first[0] == Json{{"type", "text"}, {"text", "first look"}});
            CHECK(first[1]["type"] == "image_url");
            CHECK(first[1]["image_url"]["url"].get<std::string>().rfind("data:image/png;base64,iVBORw0KGgo",
                                                                        0) == 0);
            CHECK(body["messages"][1]["content"] == "a pixel"); // assistant turns stay strings
            const Json &last = body["messages"][2]["content"];
            REQUIRE(last.size() == 3);
            CHECK(last[1]["type"] == "file");
            CHECK(last[1]["file"]["filename"] == "d.pdf");
            CHECK(last[1]["file"]["file_data"] ==
                  "data:application/"
                  "pdf;base64,JVBERi0xLjQKMSAwIG9iaiA8PD4+IGVuZG9iagp0cmFpbGVyIDw8Pj4KJSVFT0YK");
            CHECK(last[2] == Json{{"type", "text"}, {"text", "Attachment n.txt:\n" + kNotes}});
        }
    }
}

TEST_CASE("anthropic: attachments become image, document and text blocks before the text") {
    Fixture f;
    Files files;
    loader::ProviderInstance p(load("swh_provider_anthropic"), "anthropic", f.anthropic_config());
    f.history = {
        with_files(f.session, "",
                   Json::array({files.entry("a.png", "image/png", kPng),
                                files.entry("d.pdf", "application/pdf", kPdf)})),
        msg(f.session, "assistant", "a pixel and a document"),
        with_files(f.session, "and the notes?", Json::array({files.entry("n.txt", "text/plain", kNotes)}))};
    for (bool stream : {false, true}) {
        DYNAMIC_SECTION("stream=" << stream) {
            f.request.stream = stream;
            Collected c;
            run(p, f.request, c);
            REQUIRE(c.status == SWH_OK);
            CHECK(c.text() == "You said: Attachment n.txt:\n" + kNotes + "and the notes? [saw " +
                                  saw("image/png", kPng) + "; " + saw("application/pdf", kPdf) + "]");
            const Json body = f.fake.requests()[0]["body"];
            REQUIRE(body["messages"].size() == 3); // a turn with files only is kept (no empty text block)
            const Json &first = body["messages"][0]["content"];
            REQUIRE(first.size() == 2);
            CHECK(first[0]["type"] == "image");
            CHECK(first[0]["source"]["type"] == "base64");
            CHECK(first[0]["source"]["media_type"] == "image/png");
            CHECK(first[1]["type"] == "document");
            CHECK(first[1]["source"] ==
                  Json{{"type", "base64"},
                       {"media_type", "application/pdf"},
                       {"data", "JVBERi0xLjQKMSAwIG9iaiA8PD4+IGVuZG9iagp0cmFpbGVyIDw8Pj4KJSVFT0YK"}});
            CHECK(body["messages"][2]["content"] ==
                  Json::array({{{"type", "text"}, {"text", "Attachment n.txt:\n" + kNotes}},
                               {{"type", "text"}, {"text", "and the notes?"}}}));
        }
    }
}

TEST_CASE("attachments: a missing file fails the call naming it, entries without a path are ignored") {
    Fixture f;
    Files files;
    const bool anthropic = GENERATE(false, true);
    CAPTURE(anthropic);
    loader::ProviderInstance p(load(anthropic ? "swh_provider_anthropic" : "swh_provider_openai"), "p",
                               anthropic ? f.anthropic_config() : f.openai_config());
    SECTION("missing file") {
        Json gone = files.entry("gone.png", "image/png", kPng);
        std::filesystem::remove(gone["path"].get<std::string>());
        f.history = {with_files(f.session, "look", Json::array({gone}))};
        Collected c; // start itself fails (status invalid), before anything goes upstream
        CHECK_THROWS_WITH(p.start(f.request, c.callbacks()),
                          Catch::Contains("(invalid)") && Catch::Contains("'gone.png'") &&
                              Catch::Contains(gone["path"].get<std::string>()));
        CHECK(f.fake.requests().empty()); // nothing went upstream without the file
    }
    SECTION("no path: plain text message") {
        f.history = {
            with_files(f.session, "plain", Json::array({{{"name", "x.png"}, {"mime_type", "image/png"}}}))};
        Collected c;
        run(p, f.request, c);
        CHECK(c.status == SWH_OK);
        CHECK(c.text() == "You said: plain");
        CHECK(f.fake.requests()[0]["body"]["messages"].back()["content"] == "plain");
    }
}
