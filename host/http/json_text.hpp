// JSON text written straight into a string, for answers whose shape is fixed
// and whose cost matters (issue 17: a GET of 50 messages spent half its CPU
// building and destroying nlohmann trees only to dump them). The writer is
// the SDK's (swarmhost/cpp/json_text.hpp), shared with the provider plugins.
#pragma once

#include <swarmhost/cpp/json_text.hpp>

namespace swh::http {

// `text` as a JSON string, quotes included; invalid UTF-8 becomes U+FFFD.
inline void append_json_string(std::string &out, std::string_view text) {
    cpp::json_text::append_string(out, text);
}
inline void append_json_int(std::string &out, int64_t value) {
    cpp::json_text::append_int(out, value);
}
inline void append_json_key(std::string &out, std::string_view key) {
    cpp::json_text::append_key(out, key);
}

} // namespace swh::http
