// Typo suggestions for unknown keys and names.
#include "manifest/config_schema.hpp"

#include <algorithm>

namespace swh::manifest {

namespace {

// Optimal-string-alignment distance: Levenshtein plus adjacent transpositions,
// because swapped letters ("pluign") are the most common typo in keys.
std::size_t edit_distance(const std::string &a, const std::string &b) {
    const std::size_t n = a.size(), m = b.size();
    std::vector<std::vector<std::size_t>> d(n + 1, std::vector<std::size_t>(m + 1));
    for (std::size_t i = 0; i <= n; ++i)
        d[i][0] = i;
    for (std::size_t j = 0; j <= m; ++j)
        d[0][j] = j;
    for (std::size_t i = 1; i <= n; ++i) {
        for (std::size_t j = 1; j <= m; ++j) {
            const std::size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
            d[i][j] = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost});
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1])
                d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
        }
    }
    return d[n][m];
}

std::string join_words(const std::vector<std::string> &words) {
    std::string text;
    for (const auto &word : words)
        text += (text.empty() ? "" : ", ") + word;
    return text;
}

} // namespace

std::string did_you_mean(const std::string &word, const std::vector<std::string> &candidates) {
    // Short words get one edit; longer ones a third of their length, so
    // "providres" finds "providers" but "x" does not find "name".
    const std::size_t limit = std::max<std::size_t>(1, word.size() / 3);
    std::string best;
    std::size_t best_distance = limit + 1;
    for (const auto &candidate : candidates) {
        const std::size_t distance = edit_distance(word, candidate);
        if (distance < best_distance) { // strict: ties keep the earlier candidate
            best = candidate;
            best_distance = distance;
        }
    }
    return best;
}

std::string typo_hint(const std::string &word, const std::vector<std::string> &candidates) {
    if (const std::string guess = did_you_mean(word, candidates); !guess.empty())
        return "; did you mean '" + guess + "'?";
    if (candidates.empty()) return " (none allowed)";
    return " (allowed: " + join_words(candidates) + ")";
}

} // namespace swh::manifest
