#include "sniff.hpp"

#include <cstdint>

namespace swh::multimodal {

namespace {

bool starts_with(std::string_view bytes, std::string_view magic) {
    return bytes.substr(0, magic.size()) == magic;
}

// Length of the UTF-8 sequence starting at `i`, 0 when it is malformed
// (overlong forms, surrogates and code points above U+10FFFF included).
std::size_t utf8_sequence(std::string_view s, std::size_t i) {
    const auto byte = [&](std::size_t k) { return static_cast<std::uint8_t>(s[k]); };
    const std::uint8_t lead = byte(i);
    if (lead < 0x80) return 1;
    std::size_t n = 0;
    std::uint8_t lo = 0x80, hi = 0xBF; // allowed range of the second byte
    if (lead >= 0xC2 && lead <= 0xDF) {
        n = 2;
    } else if (lead >= 0xE0 && lead <= 0xEF) {
        n = 3;
        if (lead == 0xE0) lo = 0xA0; // no overlong 3-byte forms
        if (lead == 0xED) hi = 0x9F; // no UTF-16 surrogates
    } else if (lead >= 0xF0 && lead <= 0xF4) {
        n = 4;
        if (lead == 0xF0) lo = 0x90; // no overlong 4-byte forms
        if (lead == 0xF4) hi = 0x8F; // nothing above U+10FFFF
    } else {
        return 0;
    }
    if (i + n > s.size()) return 0;
    if (byte(i + 1) < lo || byte(i + 1) > hi) return 0;
    for (std::size_t k = 2; k < n; ++k)
        if (byte(i + k) < 0x80 || byte(i + k) > 0xBF) return 0;
    return n;
}

bool is_plain_text(std::string_view bytes) {
    for (std::size_t i = 0; i < bytes.size();) {
        if (bytes[i] == '\0') return false;
        const std::size_t n = utf8_sequence(bytes, i);
        if (n == 0) return false;
        i += n;
    }
    return true;
}

} // namespace

std::optional<std::string> sniff(std::string_view bytes) {
    using namespace std::string_view_literals;
    if (bytes.empty()) return std::nullopt;
    if (starts_with(bytes, "\x89PNG\r\n\x1a\n"sv)) return "image/png";
    if (starts_with(bytes, "\xff\xd8\xff"sv)) return "image/jpeg";
    if (starts_with(bytes, "GIF87a"sv) || starts_with(bytes, "GIF89a"sv)) return "image/gif";
    if (bytes.size() >= 12 && starts_with(bytes, "RIFF"sv) && bytes.substr(8, 4) == "WEBP"sv)
        return "image/webp";
    if (starts_with(bytes, "%PDF-"sv)) return "application/pdf";
    if (is_plain_text(bytes)) return "text/plain";
    return std::nullopt;
}

std::string normalize_type(std::string_view declared) {
    const std::size_t semicolon = declared.find(';');
    std::string_view base = declared.substr(0, semicolon);
    while (!base.empty() && (base.front() == ' ' || base.front() == '\t'))
        base.remove_prefix(1);
    while (!base.empty() && (base.back() == ' ' || base.back() == '\t'))
        base.remove_suffix(1);
    std::string out;
    for (char c : base)
        out.push_back(c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c);
    if (out == "image/jpg" || out == "image/pjpeg") out = "image/jpeg";
    return out;
}

bool is_unlabelled(std::string_view declared) {
    return declared.empty() || declared == "application/octet-stream";
}

} // namespace swh::multimodal
