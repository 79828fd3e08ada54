// Tool-call arguments through the content filter: the JSON text a model
// wrote for a tool call, filtered inside its string values so that a
// redacted argument text is still the valid JSON it was.
#pragma once

#include "filter.hpp"

#include <cstddef>
#include <set>
#include <string>
#include <string_view>

namespace swh::content_filter {

struct ArgumentsResult {
    std::string text; // the arguments, filtered (== the input when nothing matched)
    std::size_t matches = 0;
    std::set<std::string> patterns; // which patterns matched (as written)
    bool json = false;              // the input was valid JSON (and so is `text`)
};

// Valid JSON: every string VALUE is decoded (escapes resolved, so "\u0062ad"
// is "bad"), filtered, and written back re-encoded; object keys (the tool's
// parameter names), numbers, literals and all whitespace stay byte for byte.
// Anything else (a model may write invalid JSON) is filtered as plain text.
ArgumentsResult filter_arguments(const Filter &filter, std::string_view arguments);

} // namespace swh::content_filter
