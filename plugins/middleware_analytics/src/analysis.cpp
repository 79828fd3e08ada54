#include "analysis.hpp"

#include <algorithm>

namespace swh::analytics {

namespace {

bool word_char(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '\'' ||
           (static_cast<unsigned char>(c) & 0x80) != 0;
}

bool in(const std::string &word, std::initializer_list<const char *> list) {
    return std::any_of(list.begin(), list.end(), [&](const char *w) { return word == w; });
}

std::string intent_of(std::string_view text, const std::vector<std::string> &words) {
    std::string_view trimmed = text;
    while (!trimmed.empty() && (trimmed.back() == ' ' || trimmed.back() == '\n' || trimmed.back() == '\t'))
        trimmed.remove_suffix(1);
    const std::string first = words.empty() ? "" : words.front();
    if (!trimmed.empty() && trimmed.back() == '?') return "question";
    if (in(first, {"hi", "hello", "hey", "greetings", "howdy", "yo"})) return "greeting";
    if (in(first, {"what", "why", "how", "when", "where", "who", "which", "whose", "can", "could", "would",
                   "is", "are", "do", "does", "did", "should", "will", "may"}))
        return "question";
    if (in(first, {"please",    "show",    "tell",     "give",    "write",    "create",    "make",
                   "list",      "explain", "help",     "find",    "generate", "summarize", "summarise",
                   "translate", "fix",     "describe", "compare", "add",      "remove"}))
        return "request";
    if (std::any_of(words.begin(), words.end(),
                    [](const std::string &w) { return w == "thanks" || w == "thank"; }))
        return "gratitude";
    return "statement";
}

} // namespace

std::vector<std::string> words_of(std::string_view text) {
    std::vector<std::string> words;
    std::string current;
    for (char c : text) {
        if (word_char(c)) {
            current.push_back(c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c);
        } else if (!current.empty()) {
            words.push_back(std::move(current));
            current.clear();
        }
    }
    if (!current.empty()) words.push_back(std::move(current));
    return words;
}

Analysis analyse(std::string_view text, const Lexicon &lexicon) {
    Analysis a;
    a.content_length = text.size();
    a.characters = static_cast<std::size_t>(std::count_if(
        text.begin(), text.end(), [](char c) { return (static_cast<unsigned char>(c) & 0xC0) != 0x80; }));
    const auto words = words_of(text);
    a.word_count = words.size();
    const double scale = lexicon.complexity_words > 0 ? static_cast<double>(lexicon.complexity_words) : 1.0;
    a.complexity = std::min(static_cast<double>(a.word_count) / scale, 1.0);
    a.intent = intent_of(text, words);
    bool negated = false; // "not good" counts as negative
    for (const auto &word : words) {
        int value = lexicon.positive.count(word) ? 1 : lexicon.negative.count(word) ? -1 : 0;
        if (value != 0) {
            a.sentiment_score += negated ? -value : value;
            negated = false;
        } else {
            negated =
                in(word, {"not", "no", "never", "don't", "isn't", "wasn't", "aren't", "doesn't", "didn't"});
        }
    }
    a.sentiment = a.sentiment_score > 0 ? "positive" : a.sentiment_score < 0 ? "negative" : "neutral";
    return a;
}

} // namespace swh::analytics
