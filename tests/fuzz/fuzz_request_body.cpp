// libFuzzer target: the request-body JSON of every route that takes one, as
// the API handler (host/http/api.cpp) runs it on an I/O thread:
//   POST  /v1/sessions                 parse_body + decode_create_session
//   PATCH /v1/sessions/{id}            parse_body + decode_session_patch
//   POST  /v1/sessions/{id}/messages   parse_body + decode_send
//   POST  /v1/chat/completions         parse_body + decode_completion, and the
//                                      plain decoder against it (chat_request_diff.hpp)
//   POST  /v1/messages                 parse_body + decode_messages_request
//   POST  /v1/responses                parse_body + decode_responses_request
//   POST  /v1/conversations, …/items   parse_body + check_metadata + decode_items,
//                                      then the items the new turns show back
// The handler catches only ApiError around these calls, so any other
// exception would escape into the HTTP server: that, a crash or a sanitizer
// report is a finding. The error answer is serialised as the server would
// (error_body(...)), since messages echo request text.
#include "chat_request_diff.hpp"
#include "http/anthropic_messages_request.hpp"
#include "http/json_codec.hpp"
#include "http/openai_responses_request.hpp"

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>

using namespace swh;

namespace {

template <class F> void run(const char *route, F &&decode) {
    try {
        decode();
    } catch (const ApiError &e) {
        (void)http::error_body(e.kind(), e.what());
    } catch (const std::exception &e) {
        std::fprintf(stderr, "fuzz_request_body: %s: non-ApiError exception escaped: %s\n", route, e.what());
        std::abort();
    }
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const std::string body(reinterpret_cast<const char *>(data), size);
    run("POST /v1/sessions", [&] {
        auto p = http::decode_create_session(http::parse_body(body));
        (void)http::dump_json(p.config);
        (void)http::dump_json(p.context);
        (void)http::dump_json(p.metadata);
    });
    run("PATCH /v1/sessions/{id}", [&] {
        auto p = http::decode_session_patch(http::parse_body(body));
        if (p.context) (void)http::dump_json(*p.context);
    });
    run("POST /v1/sessions/{id}/messages", [&] {
        auto p = http::decode_send(http::parse_body(body), "0123456789abcdef");
        (void)http::dump_json(Json(p.content));
        (void)http::dump_json(p.metadata);
    });
    if (const std::string difference = testing::chat_request_difference(body); !difference.empty()) {
        std::fprintf(stderr, "fuzz_request_body: plain and full chat decoders differ: %s\n",
                     difference.c_str());
        std::abort();
    }
    run("POST /v1/chat/completions", [&] {
        auto p = http::decode_completion(http::parse_body(body), "");
        (void)http::dump_json(Json(p.system_prompt));
        for (const auto &m : p.messages)
            (void)http::dump_json(Json(m.content));
    });
    run("POST /v1/messages", [&] {
        auto p = http::anthropic::decode_messages_request(http::parse_body(body), "");
        (void)http::dump_json(p.params);
        for (const auto &m : p.messages)
            (void)http::dump_json(m.structured);
    });
    run("POST /v1/responses", [&] {
        auto p = http::decode_responses_request(http::parse_body(body));
        (void)http::dump_json(p.params);
        (void)http::dump_json(p.envelope);
        (void)p.system_prompt();
    });
    run("POST /v1/conversations", [&] {
        const Json parsed = http::parse_body(body);
        if (parsed.is_object() && parsed.contains("metadata"))
            (void)http::check_metadata(parsed["metadata"], "metadata");
        if (!parsed.is_object() || !parsed.contains("items")) return;
        auto decoded = conversation::decode_items(parsed["items"], "items");
        conversation::check_call_ids({}, decoded);
        for (const auto &m : decoded.messages)
            (void)http::dump_json(conversation::items_of(m));
    });
    return 0;
}
