#include "filter.hpp"

#include <algorithm>

namespace swh::content_filter {

namespace {

// ASCII-only case folding keeps byte offsets identical to the original text.
std::string ascii_lower(std::string_view text) {
    std::string out(text);
    for (char &c : out)
        if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    return out;
}

} // namespace

Filter::Filter(const Options &options) : case_insensitive_(options.case_insensitive) {
    std::set<std::string> known;
    for (const auto &word : options.blocked_words) {
        if (word.empty()) throw OptionError("blocked_words: an entry is empty");
        Rule rule;
        rule.source = word;
        rule.needle = case_insensitive_ ? ascii_lower(word) : word;
        holdback_ = std::max(holdback_, word.size());
        rules_.push_back(std::move(rule));
        known.insert(word);
    }
    if (!options.regexes.empty() && options.max_match_length < 1)
        throw OptionError("max_match_length must be >= 1 when regexes are given");
    for (const auto &pattern : options.regexes) {
        if (pattern.empty()) throw OptionError("regexes: an entry is empty");
        Rule rule;
        rule.is_regex = true;
        rule.source = pattern;
        auto flags = std::regex::ECMAScript | std::regex::optimize;
        if (case_insensitive_) flags |= std::regex::icase;
        try {
            rule.regex = std::make_shared<std::regex>(pattern, flags);
        } catch (const std::regex_error &e) {
            throw OptionError("regexes: '" + pattern + "' is not a valid ECMAScript regex: " + e.what());
        }
        holdback_ = std::max(holdback_, options.max_match_length);
        rules_.push_back(std::move(rule));
        known.insert(pattern);
    }
    for (const auto &[pattern, text] : options.replacements)
        if (!known.count(pattern))
            throw OptionError("replacements: '" + pattern +
                              "' is neither a blocked word nor a regex of this filter");
    for (auto &rule : rules_) {
        auto it = options.replacements.find(rule.source);
        rule.replacement = it != options.replacements.end() ? it->second : options.replacement;
    }
}

Filter::Match Filter::next_match(const std::string &buffer, const std::string &folded, std::size_t index,
                                 std::size_t from, bool final) const {
    const Rule &rule = rules_[index];
    if (!rule.is_regex) {
        const std::size_t pos = folded.find(rule.needle, from);
        if (pos == std::string::npos) return {};
        return {pos, rule.needle.size(), index, true};
    }
    std::size_t start = from;
    while (start <= buffer.size()) {
        auto flags = std::regex_constants::match_default;
        if (start > 0) flags |= std::regex_constants::match_prev_avail;
        if (!final) flags |= std::regex_constants::match_not_eol | std::regex_constants::match_not_eow;
        std::smatch m;
        if (!std::regex_search(buffer.cbegin() + static_cast<std::ptrdiff_t>(start), buffer.cend(), m,
                               *rule.regex, flags))
            return {};
        const std::size_t at = start + static_cast<std::size_t>(m.position(0));
        const std::size_t length = static_cast<std::size_t>(m.length(0));
        if (length > 0) return {at, length, index, true};
        start = at + 1; // an empty match replaces nothing; look further
    }
    return {};
}

std::size_t Filter::scan(const std::string &buffer, std::size_t from, bool final, std::string &out,
                         std::size_t &matches, std::set<std::string> &patterns) const {
    const std::size_t size = buffer.size();
    // Text before `commit` is final: any pattern starting there lies wholly
    // inside the buffer (it is at most `holdback_` bytes long).
    std::size_t commit = final ? size : (size - from > holdback_ ? size - holdback_ : from);
    while (commit > from && !utf8_boundary(buffer, commit))
        --commit; // never split a code point
    std::string lowered;
    if (case_insensitive_) lowered = ascii_lower(buffer);
    const std::string &folded = case_insensitive_ ? lowered : buffer;

    std::vector<Match> next(rules_.size());
    std::vector<bool> searched(rules_.size(), false);
    std::size_t cursor = from;
    while (true) {
        Match best;
        for (std::size_t r = 0; r < rules_.size(); ++r) {
            if (!searched[r] || (next[r].found && next[r].start < cursor)) {
                next[r] = next_match(buffer, folded, r, cursor, final);
                searched[r] = true;
            }
            const Match &m = next[r];
            if (m.found &&
                (!best.found || m.start < best.start || (m.start == best.start && m.length > best.length)))
                best = m;
        }
        if (!best.found || best.start >= commit) break;
        out.append(buffer, cursor, best.start - cursor);
        out += rules_[best.rule].replacement;
        cursor = best.start + best.length;
        ++matches;
        patterns.insert(rules_[best.rule].source);
    }
    if (cursor < commit) {
        out.append(buffer, cursor, commit - cursor);
        cursor = commit;
    }
    return cursor;
}

Filter::Result Filter::apply(std::string_view text) const {
    Result result;
    if (rules_.empty()) {
        result.text.assign(text);
        return result;
    }
    const std::string buffer(text);
    scan(buffer, 0, true, result.text, result.matches, result.patterns);
    return result;
}

std::string Filter::Stream::drain(bool final) {
    std::string out;
    const std::size_t consumed = filter_.scan(buffer_, context_, final, out, matches_, patterns_);
    if (final) {
        buffer_.clear();
        context_ = 0;
    } else if (consumed > context_) {
        // Keep one byte of what was emitted, so \b and lookbehind-like
        // anchors see the character before the pending text.
        buffer_.erase(0, consumed - 1);
        context_ = 1;
    }
    return out;
}

std::string Filter::Stream::push(std::string_view piece) {
    buffer_.append(piece);
    return drain(false);
}

std::string Filter::Stream::finish() {
    return drain(true);
}

} // namespace swh::content_filter
