// libFuzzer target: the multimodal session type's upload decoding
// (plugins/session_multimodal/src/upload.cpp, sniff.cpp): multipart/form-data
// and base64 JSON bodies from any client, then content-type sniffing.
//
// Input layout: byte 0 picks the Content-Type form (multipart with the
// boundary "b", multipart with a quoted boundary, JSON, or the header taken
// from the input up to the first newline); the rest is the body. A refusal
// is an HttpError (400/413/415): expected. Any other exception, a crash, a
// sanitizer report, or a decoded file larger than the limit is a finding.
#include "sniff.hpp"
#include "upload.hpp"

#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

namespace mm = swh::multimodal;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size == 0) return 0;
    constexpr std::uint64_t kMaxBytes = 4096;
    std::string_view rest(reinterpret_cast<const char *>(data) + 1, size - 1);
    std::string content_type;
    switch (data[0] % 4) {
    case 0:
        content_type = "multipart/form-data; boundary=b";
        break;
    case 1:
        content_type = "multipart/form-data; boundary=\"a b\"";
        break;
    case 2:
        content_type = "application/json";
        break;
    default: {
        const auto newline = rest.find('\n');
        content_type = std::string(rest.substr(0, newline));
        rest = newline == std::string_view::npos ? std::string_view{} : rest.substr(newline + 1);
    }
    }
    try {
        const mm::Upload upload = mm::parse_upload(content_type, rest, kMaxBytes);
        if (upload.bytes.size() > kMaxBytes) std::abort(); // the limit must hold
        (void)mm::sniff(upload.bytes);
        (void)mm::normalize_type(upload.declared_type);
    } catch (const mm::HttpError &) {
        // a refused upload: the expected answer to garbage
    }
    return 0;
}
