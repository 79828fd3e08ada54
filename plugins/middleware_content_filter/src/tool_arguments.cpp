#include "tool_arguments.hpp"

#include <nlohmann/json.hpp>

namespace swh::content_filter {

namespace {

using Json = nlohmann::json;

bool json_space(char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

// The end (one past the closing quote) of the string token that starts at
// `open` (a '"') of a text nlohmann accepted as JSON.
std::size_t string_end(std::string_view text, std::size_t open) {
    std::size_t i = open + 1;
    while (i < text.size() && text[i] != '"')
        i += text[i] == '\\' ? 2 : 1;
    return i + 1;
}

} // namespace

ArgumentsResult filter_arguments(const Filter &filter, std::string_view arguments) {
    ArgumentsResult out;
    if (!Json::accept(arguments)) {
        Filter::Result plain = filter.apply(arguments);
        out.text = std::move(plain.text);
        out.matches = plain.matches;
        out.patterns = std::move(plain.patterns);
        return out;
    }
    out.json = true;
    out.text.reserve(arguments.size());
    std::size_t i = 0;
    while (i < arguments.size()) {
        if (arguments[i] != '"') {
            out.text += arguments[i++];
            continue;
        }
        const std::size_t end = string_end(arguments, i);
        const std::string_view token = arguments.substr(i, end - i);
        std::size_t next = end;
        while (next < arguments.size() && json_space(arguments[next]))
            ++next;
        const bool key = next < arguments.size() && arguments[next] == ':';
        i = end;
        if (key) {
            out.text += token;
            continue;
        }
        Filter::Result value = filter.apply(Json::parse(token).get<std::string>());
        if (value.matches == 0) {
            out.text += token; // untouched: the model's own escapes stay
            continue;
        }
        out.text += Json(value.text).dump(-1, ' ', false, Json::error_handler_t::replace);
        out.matches += value.matches;
        out.patterns.insert(value.patterns.begin(), value.patterns.end());
    }
    return out;
}

} // namespace swh::content_filter
