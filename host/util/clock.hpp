// Time in the host: microseconds since the epoch (as in the ABI) and its
// ISO 8601 text form used on the HTTP API.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace swh {

int64_t now_us();
// "2026-11-25T14:39:42.123456Z"
std::string format_iso8601(int64_t micros);
// Accepts "YYYY-MM-DDTHH:MM:SS[.ffffff](Z|+HH:MM|-HH:MM)"; nullopt if malformed.
std::optional<int64_t> parse_iso8601(std::string_view text);

} // namespace swh
