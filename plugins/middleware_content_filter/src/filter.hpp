// The content filter's matching engine, independent of the ABI: blocked words
// and regular expressions with replacement text, over a whole message or over
// a stream of pieces (holding back at most the longest pattern's length).
#pragma once

#include <cstddef>
#include <map>
#include <memory>
#include <regex>
#include <set>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace swh::content_filter {

struct Options {
    std::vector<std::string> blocked_words;
    std::vector<std::string> regexes; // ECMAScript syntax
    std::string replacement = "[FILTERED]";
    std::map<std::string, std::string> replacements; // pattern as written -> its own replacement
    bool case_insensitive = false;
    std::size_t max_match_length = 64; // upper bound of a regex match, in bytes
};

// Thrown by the constructor for a bad option (empty word, invalid regex).
class OptionError : public std::invalid_argument {
  public:
    using std::invalid_argument::invalid_argument;
};

class Filter {
  public:
    explicit Filter(const Options &options);

    struct Result {
        std::string text;
        std::size_t matches = 0;
        std::set<std::string> patterns; // which patterns matched (as written)
    };
    // Filters a whole text.
    Result apply(std::string_view text) const;

    // Bytes a stream may hold back: the longest word, or max_match_length
    // when there are regexes (whichever is larger).
    std::size_t holdback() const { return holdback_; }
    bool empty() const { return rules_.empty(); }

    // One streamed text. Not thread-safe; one per stream.
    class Stream {
      public:
        explicit Stream(const Filter &filter) : filter_(filter) {}
        // Returns the text that is safe to pass on now.
        std::string push(std::string_view piece);
        // Returns everything still held back, filtered.
        std::string finish();
        std::size_t matches() const { return matches_; }
        const std::set<std::string> &patterns() const { return patterns_; }
        std::size_t held() const { return buffer_.size() - context_; }

      private:
        std::string drain(bool final);
        const Filter &filter_;
        std::string buffer_;      // [context_ bytes already emitted][pending]
        std::size_t context_ = 0; // bytes of already emitted text kept for look-behind (\b)
        std::size_t matches_ = 0;
        std::set<std::string> patterns_;
    };

  private:
    struct Rule {
        bool is_regex = false;
        std::string source; // as written in the config
        std::string needle; // word (lower-cased when case_insensitive)
        std::shared_ptr<std::regex> regex;
        std::string replacement;
    };
    struct Match {
        std::size_t start = 0, length = 0;
        std::size_t rule = 0;
        bool found = false;
    };
    // Scans buffer[from..]; replaces every match that starts before `commit`
    // (all of them when `final`). Appends the output to `out` and returns the
    // offset up to which the buffer was consumed.
    std::size_t scan(const std::string &buffer, std::size_t from, bool final, std::string &out,
                     std::size_t &matches, std::set<std::string> &patterns) const;
    Match next_match(const std::string &buffer, const std::string &folded, std::size_t rule, std::size_t from,
                     bool final) const;

    std::vector<Rule> rules_;
    bool case_insensitive_ = false;
    std::size_t holdback_ = 0;
};

// Whether the byte at `i` starts a UTF-8 code point (not a continuation byte).
inline bool utf8_boundary(std::string_view text, std::size_t i) {
    return i >= text.size() || (static_cast<unsigned char>(text[i]) & 0xC0) != 0x80;
}

} // namespace swh::content_filter
