// JSON text to an nlohmann tree, read by simdjson first (issue 17: nlohmann's
// character-by-character lexer was most of what a proxied request spent
// parsing its body and a plugin's metadata). The result is the tree
// Json::parse gives: where the two parsers could disagree (a number out of
// 64-bit range, "-0", depth beyond simdjson's limit, a byte-order mark, any
// text simdjson refuses) nlohmann parses the text itself.
#pragma once

#include <nlohmann/json.hpp>

#include <functional>
#include <string_view>

namespace simdjson::dom {
class element;
}

namespace swh {

// `text` parsed by simdjson's DOM parser, `use` called with its root (valid
// while `use` runs). A thread's texts up to 16 KB share that thread's parser
// and its buffers; a larger one gets a parser of its own, so `use` must not
// parse another text. False, and `use` not called, when simdjson refuses
// the text.
bool with_simdjson(std::string_view text, const std::function<void(const simdjson::dom::element &)> &use);

// What Json::parse(text, nullptr, false) returns: the value, or a discarded
// value when the text is not JSON.
nlohmann::json parse_json(std::string_view text);

} // namespace swh
