#include "echo_reply.hpp"

namespace swh::echo {

namespace {
bool is_space(char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}
} // namespace

std::string build_reply(std::string_view prefix, size_t user_messages, std::string_view last_user_content) {
    std::string reply(prefix);
    reply += '#';
    reply += std::to_string(user_messages);
    if (!last_user_content.empty()) {
        reply += ' ';
        reply += last_user_content;
    }
    return reply;
}

std::string attachments_note(const std::vector<AttachmentNote> &attachments) {
    if (attachments.empty()) return {};
    std::string note = " [attachments: ";
    for (size_t i = 0; i < attachments.size(); ++i) {
        const auto &a = attachments[i];
        note += (i == 0 ? "" : ", ") + a.name + " " + a.mime_type + " " + std::to_string(a.size) + "B";
    }
    return note + "]";
}

std::string_view continuation(std::string_view reply, std::string_view assistant_prefix) {
    if (!assistant_prefix.empty() && reply.substr(0, assistant_prefix.size()) == assistant_prefix)
        return reply.substr(assistant_prefix.size());
    return reply;
}

std::vector<std::string_view> word_pieces(std::string_view text) {
    std::vector<std::string_view> pieces;
    size_t start = 0, i = 0;
    while (i < text.size() && is_space(text[i]))
        ++i; // leading whitespace joins the first piece
    while (i < text.size()) {
        while (i < text.size() && !is_space(text[i]))
            ++i;
        while (i < text.size() && is_space(text[i]))
            ++i;
        pieces.push_back(text.substr(start, i - start));
        start = i;
    }
    if (start < text.size()) pieces.push_back(text.substr(start)); // whitespace only
    return pieces;
}

std::vector<std::string> make_chunks(std::string_view text, int64_t words_per_chunk) {
    const size_t per = words_per_chunk < 1 ? 1 : static_cast<size_t>(words_per_chunk);
    std::vector<std::string> chunks;
    auto pieces = word_pieces(text);
    for (size_t i = 0; i < pieces.size(); i += per) {
        std::string chunk;
        for (size_t j = i; j < i + per && j < pieces.size(); ++j)
            chunk += pieces[j];
        chunks.push_back(std::move(chunk));
    }
    return chunks;
}

size_t count_words(std::string_view text) {
    size_t words = 0;
    bool in_word = false;
    for (char c : text) {
        if (is_space(c)) {
            in_word = false;
        } else if (!in_word) {
            in_word = true;
            ++words;
        }
    }
    return words;
}

} // namespace swh::echo
