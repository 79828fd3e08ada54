// Decoding an upload request body: multipart/form-data (one file part) or
// JSON {"name","mime_type","data_base64"}. Pure functions, no ABI.
#pragma once

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <swarmhost/cpp/plugin.hpp>
#include <utility>

namespace swh::multimodal {

// An error answered to the client as {"error":{"code","message"}} with its
// HTTP status (the SDK helper answers it when a route throws it).
using HttpError = swh::cpp::HttpError;

// What the client sent: its label and name are claims, `bytes` the content.
struct Upload {
    std::string name;
    std::string declared_type;
    std::string bytes;
};

// Dispatches on the request's Content-Type; anything but multipart/form-data
// or application/json is 415. `max_bytes` bounds the decoded content (413).
Upload parse_upload(std::string_view content_type, std::string_view body, std::uint64_t max_bytes);

Upload parse_multipart(std::string_view content_type, std::string_view body);
Upload parse_json_upload(std::string_view body, std::uint64_t max_bytes);

// Strict standard base64: whitespace is skipped, padding is optional but
// must be at the end; any other character makes it nullopt.
std::optional<std::string> base64_decode(std::string_view text);

// A Content-Type/Content-Disposition parameter (`boundary`, `filename`, ...),
// unquoted; nullopt when absent.
std::optional<std::string> header_param(std::string_view header, std::string_view name);

} // namespace swh::multimodal
