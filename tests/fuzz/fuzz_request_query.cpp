// libFuzzer target: the query strings of the routes that take one, from the
// raw text after '?' (parse_query / percent_decode in host/http/server.cpp)
// to the decoders the API handler calls on an I/O thread:
//   GET /v1/sessions?user_id=&status=&type=&provider=&limit=&offset=   decode_session_list_query
//   GET /v1/sessions/{id}/messages?limit=&role=&since=  decode_message_query
// Also the request path, split at '/' and then percent-decoded segment by
// segment (path_segments). Only
// ApiError may come out of the decoders; anything else is a finding.
#include "http/json_codec.hpp"
#include "http/server.hpp"

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>
#include <string_view>

using namespace swh;

namespace {

template <class F> void run(const char *route, F &&decode) {
    try {
        decode();
    } catch (const ApiError &e) {
        (void)http::error_body(e.kind(), e.what());
    } catch (const std::exception &e) {
        std::fprintf(stderr, "fuzz_request_query: %s: non-ApiError exception escaped: %s\n", route, e.what());
        std::abort();
    }
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const std::string_view text(reinterpret_cast<const char *>(data), size);
    (void)http::percent_decode(text);
    (void)http::path_segments(text);
    std::map<std::string, std::string> query;
    try {
        query = http::parse_query(text);
    } catch (const std::exception &e) {
        std::fprintf(stderr, "fuzz_request_query: parse_query threw: %s\n", e.what());
        std::abort();
    }
    run("GET /v1/sessions", [&] {
        auto f = http::decode_session_list_query(query);
        (void)f;
    });
    run("GET /v1/sessions/{id}/messages", [&] {
        auto q = http::decode_message_query(query, "0123456789abcdef");
        (void)q;
    });
    return 0;
}
