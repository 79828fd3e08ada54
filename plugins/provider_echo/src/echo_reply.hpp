// The echo provider's deterministic reply, as pure functions (no ABI here).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace swh::echo {

struct Settings {
    std::string prefix = "echo";
    int64_t chunk_words = 1;
    std::string model = "echo-1";
    std::string fail_on; // "" = off
};

// "<prefix>#<n>" followed by " <last user content>" when that is non-empty.
std::string build_reply(std::string_view prefix, size_t user_messages, std::string_view last_user_content);

// One file of the last user message's metadata.attachments.
struct AttachmentNote {
    std::string name, mime_type;
    uint64_t size = 0;
};

// " [attachments: <name> <mime> <size>B, ...]", or "" without attachments.
std::string attachments_note(const std::vector<AttachmentNote> &attachments);

// What to stream when the host asks to continue after `assistant_prefix`:
// the rest of `reply` when it starts with the prefix, else the whole reply.
std::string_view continuation(std::string_view reply, std::string_view assistant_prefix);

// Word-pieces: each word with the whitespace that follows it (leading
// whitespace stays with the first piece). Concatenated, they give `text`.
std::vector<std::string_view> word_pieces(std::string_view text);

// Groups word-pieces `words_per_chunk` at a time (>= 1).
std::vector<std::string> make_chunks(std::string_view text, int64_t words_per_chunk);

// Whitespace-separated words (the echo "token" count).
size_t count_words(std::string_view text);

} // namespace swh::echo
