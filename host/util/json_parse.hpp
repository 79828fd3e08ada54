// JSON text to an nlohmann tree, read by simdjson first (issue 17: nlohmann's
// character-by-character lexer was most of what a proxied request spent
// parsing its body and a plugin's metadata). The result is the tree
// Json::parse gives: where the two parsers could disagree (a number out of
// 64-bit range, "-0", depth beyond simdjson's limit, a byte-order mark, any
// text simdjson refuses) nlohmann parses the text itself.
#pragma once

#include <nlohmann/json.hpp>

#include <string_view>

namespace swh {

// What Json::parse(text, nullptr, false) returns: the value, or a discarded
// value when the text is not JSON.
nlohmann::json parse_json(std::string_view text);

} // namespace swh
