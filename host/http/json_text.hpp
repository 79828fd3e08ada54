// JSON text written straight into a string, for answers whose shape is fixed
// and whose cost matters (issue 17: a GET of 50 messages spent half its CPU
// building and destroying nlohmann trees only to dump them).
#pragma once

#include <charconv>
#include <cstdint>
#include <string>
#include <string_view>

namespace swh::http {

// `text` as a JSON string, quotes included, appended to `out`. Escapes what
// JSON requires (", \, control characters) and nothing else; invalid UTF-8
// (a tampered store) becomes U+FFFD, as nlohmann's dump with
// error_handler_t::replace does, so the answer is always valid JSON.
void append_json_string(std::string &out, std::string_view text);

// `value` as a JSON number, appended to `out`.
inline void append_json_int(std::string &out, int64_t value) {
    char digits[24];
    out.append(digits, std::to_chars(digits, digits + sizeof digits, value).ptr);
}

// `"key":` appended to `out`; `key` is one of our own field names (plain
// ASCII, nothing to escape).
inline void append_json_key(std::string &out, std::string_view key) {
    out += '"';
    out += key;
    out += "\":";
}

} // namespace swh::http
