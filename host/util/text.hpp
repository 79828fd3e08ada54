// Small text helpers shared across rooms.
#pragma once

#include <string_view>
#include <vector>

namespace swh {

// `text` without the spaces and tabs (HTTP's optional whitespace) around it.
inline std::string_view trim_blanks(std::string_view text) {
    while (!text.empty() && (text.front() == ' ' || text.front() == '\t'))
        text.remove_prefix(1);
    while (!text.empty() && (text.back() == ' ' || text.back() == '\t'))
        text.remove_suffix(1);
    return text;
}

// `text` cut at every `separator`, empty pieces kept ("a//b" -> a, "", b;
// "" -> one empty piece). The pieces point into `text`.
inline std::vector<std::string_view> split_pieces(std::string_view text, char separator) {
    std::vector<std::string_view> pieces;
    std::size_t start = 0;
    while (start <= text.size()) {
        std::size_t end = text.find(separator, start);
        if (end == std::string_view::npos) end = text.size();
        pieces.push_back(text.substr(start, end - start));
        start = end + 1;
    }
    return pieces;
}

} // namespace swh
