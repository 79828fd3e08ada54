// Rule-based message analysis of the "analytics" middleware: length, word
// count, complexity, intent and sentiment. No model, no network: simple,
// explainable rules (see README.md).
#pragma once

#include <cstddef>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace swh::analytics {

struct Lexicon {
    std::set<std::string> positive, negative; // lower-case words
    std::size_t complexity_words = 50;        // word count at which complexity reaches 1.0
};

struct Analysis {
    std::size_t content_length = 0; // bytes
    std::size_t characters = 0;     // UTF-8 code points
    std::size_t word_count = 0;
    double complexity = 0;   // min(word_count / complexity_words, 1.0)
    std::string intent;      // question | greeting | request | gratitude | statement
    std::string sentiment;   // positive | negative | neutral
    int sentiment_score = 0; // positive hits - negative hits (negation flips)
};

// Lower-case ASCII words (letters, digits, apostrophes) of `text`.
std::vector<std::string> words_of(std::string_view text);
Analysis analyse(std::string_view text, const Lexicon &lexicon);

} // namespace swh::analytics
