// JSON written straight into a string, for text whose shape is fixed and
// whose cost matters: the host's answers and the provider plugins' request
// bodies and metadata (issue 17: building an nlohmann tree only to dump it
// was a tenth of a proxied request). Header-only, so plugins and the host
// share one writer.
#pragma once

#include <swarmhost/cpp/utf8.hpp>

#include <charconv>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

namespace swh::cpp::json_text {

namespace detail {

inline void append_escape(std::string &out, unsigned char c) {
    switch (c) {
    case '"':
        out += "\\\"";
        return;
    case '\\':
        out += "\\\\";
        return;
    case '\b':
        out += "\\b";
        return;
    case '\f':
        out += "\\f";
        return;
    case '\n':
        out += "\\n";
        return;
    case '\r':
        out += "\\r";
        return;
    case '\t':
        out += "\\t";
        return;
    default:
        break;
    }
    constexpr char hex[] = "0123456789abcdef";
    out += "\\u00";
    out += hex[c >> 4];
    out += hex[c & 0xF];
}

// True when none of the 8 bytes at `p` needs more than a copy: no control
// character, quote, backslash or non-ASCII byte (the word-at-a-time tests
// of "Bit Twiddling Hacks": exact for "is there any such byte").
inline bool plain_word(const char *p) {
    uint64_t w;
    std::memcpy(&w, p, sizeof w);
    constexpr uint64_t ones = 0x0101010101010101ull, highs = 0x8080808080808080ull;
    const auto has_zero = [](uint64_t v) { return (v - ones) & ~v & highs; };
    const uint64_t control = (w - ones * 0x20) & ~w & highs; // a byte < 0x20
    return ((w & highs) | control | has_zero(w ^ (ones * '"')) | has_zero(w ^ (ones * '\\'))) == 0;
}

// True when no byte of `text` needs more than a copy (as plain_word).
inline bool plain_text(std::string_view text) {
    std::size_t i = 0;
    for (; i + 8 <= text.size(); i += 8)
        if (!plain_word(text.data() + i)) return false;
    for (; i < text.size(); ++i) {
        const auto c = static_cast<unsigned char>(text[i]);
        if (c < 0x20 || c == '"' || c == '\\' || c >= 0x80) return false;
    }
    return true;
}

} // namespace detail

// `text` as a JSON string, quotes included, appended to `out`. Escapes what
// JSON requires (", \, control characters) and nothing else, as nlohmann's
// dump does; invalid UTF-8 becomes U+FFFD (dump with error_handler_t::replace
// does the same), so the text is always valid JSON.
inline void append_string(std::string &out, std::string_view text) {
    // The common case, a short text with nothing to escape (a key, an id, a
    // role), is one append: quotes, reserve and copy one at a time were most
    // of the cost of such a string (issue 17).
    constexpr std::size_t kShort = 62;
    if (text.size() <= kShort && detail::plain_text(text)) {
        char quoted[kShort + 2];
        quoted[0] = '"';
        if (!text.empty()) std::memcpy(quoted + 1, text.data(), text.size()); // data() may be null
        quoted[text.size() + 1] = '"';
        out.append(quoted, text.size() + 2);
        return;
    }
    out.reserve(out.size() + text.size() + 2);
    out += '"';
    std::size_t run = 0; // start of the bytes still to copy as they are
    std::size_t i = 0;
    while (i < text.size()) {
        while (i + 8 <= text.size() && detail::plain_word(text.data() + i))
            i += 8;
        if (i == text.size()) break;
        const auto c = static_cast<unsigned char>(text[i]);
        if (c >= 0x20 && c != '"' && c != '\\' && c < 0x80) {
            ++i;
            continue;
        }
        if (c >= 0x80) {
            if (const std::size_t n = utf8_sequence_length(text, i)) {
                i += n;
                continue;
            }
        }
        out.append(text.data() + run, i - run);
        if (c >= 0x80)
            out += "\xEF\xBF\xBD"; // U+FFFD
        else
            detail::append_escape(out, c);
        run = ++i;
    }
    out.append(text.data() + run, text.size() - run);
    out += '"';
}

// `text` as a JSON string, or null when it is empty.
inline void append_string_or_null(std::string &out, std::string_view text) {
    if (text.empty())
        out += "null";
    else
        append_string(out, text);
}

// `value` as a JSON number, appended to `out`.
inline void append_int(std::string &out, int64_t value) {
    char digits[24];
    out.append(digits, std::to_chars(digits, digits + sizeof digits, value).ptr);
}

// `"key":` appended to `out`; `key` is one of our own field names (plain
// ASCII, nothing to escape).
inline void append_key(std::string &out, std::string_view key) {
    out += '"';
    out += key;
    out += "\":";
}

// False only when the JSON text `json` cannot hold the member name `key`
// (plain ASCII): the name appears nowhere in it, and no escape could spell
// it. Lets a reader skip parsing a message's metadata or a session's config
// for a key that is nearly always absent.
inline bool may_hold_key(std::string_view json, std::string_view key) {
    return json.find(key) != std::string_view::npos || json.find('\\') != std::string_view::npos;
}

} // namespace swh::cpp::json_text
