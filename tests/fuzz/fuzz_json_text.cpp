// libFuzzer target: JSON written as text (host/http/json_text.hpp), which the
// read path uses instead of nlohmann trees. For any bytes (a tampered store
// hands back anything) the string written must be valid JSON; for valid
// UTF-8 it must be byte for byte what nlohmann's dump writes, and parse back
// to the input. The first byte picks whether the input is also written as a
// whole message (json_codec's append_json against dump_json(to_json)).
#include "http/json_codec.hpp"
#include "http/json_text.hpp"

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

using namespace swh;

namespace {

[[noreturn]] void finding(const char *what, const std::string &written) {
    std::fprintf(stderr, "fuzz_json_text: %s: %s\n", what, written.c_str());
    std::abort();
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size == 0) return 0;
    const bool as_message = data[0] & 1;
    const std::string text(reinterpret_cast<const char *>(data) + 1, size - 1);
    std::string written;
    http::append_json_string(written, text);
    if (!Json::accept(written)) finding("not valid JSON", written);
    std::string strict;
    try {
        strict = Json(text).dump(); // throws on invalid UTF-8
    } catch (const Json::exception &) {
        return 0; // replaced: checked valid above
    }
    if (written != strict) finding("differs from nlohmann's dump", written);
    if (Json::parse(written).get<std::string>() != text) finding("does not parse back", written);
    if (as_message) {
        Message m;
        m.id = text;
        m.content = text;
        m.metadata = Json{{"k", text}};
        m.structured = Json{{text, text}};
        const MessageRef frozen = freeze(m);
        std::string message;
        http::append_json(message, *frozen);
        if (message != http::dump_json(http::to_json(m))) finding("message differs from to_json", message);
    }
    return 0;
}
