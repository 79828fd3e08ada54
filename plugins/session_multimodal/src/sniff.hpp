// Content-type detection by magic bytes: the multimodal session type never
// trusts the label a client puts on an upload.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace swh::multimodal {

// The types sniff() can recognise; allowed_types must be a subset.
inline constexpr std::string_view kSniffableTypes[] = {"image/png",  "image/jpeg",      "image/gif",
                                                       "image/webp", "application/pdf", "text/plain"};

// PNG, JPEG, GIF, WEBP and PDF by their signatures; text/plain for valid
// UTF-8 without NUL bytes; nullopt for anything else (and for no bytes).
std::optional<std::string> sniff(std::string_view bytes);

// A client's label in canonical form: lower case, parameters dropped
// ("Text/Plain; charset=utf-8" -> "text/plain"), "image/jpg" -> "image/jpeg".
std::string normalize_type(std::string_view declared);

// True when `declared` (normalized) says nothing about the content:
// empty or application/octet-stream (what curl sends for unknown files).
bool is_unlabelled(std::string_view declared);

} // namespace swh::multimodal
