// Server-Sent Events parser (header-only, part of the optional C++ layer of
// the SDK). Pure: no I/O, no threads, no allocation beyond its own buffers.
// Feed it the bytes of a text/event-stream body in pieces of any size; it
// calls you back once per complete event, following the WHATWG "event stream
// interpretation" rules:
//   - lines end with CRLF, LF or CR (a CRLF split across two feeds counts once);
//   - a UTF-8 byte order mark at the very start is skipped;
//   - "field: value" (one space after the colon is dropped), "field" alone =
//     empty value, lines starting with ':' are comments;
//   - data lines are joined with '\n'; an empty line dispatches the event;
//     an event without any data line is not dispatched (the spec's rule), but
//     the `event`/`id` fields are reset; `id` persists as last_event_id;
//   - `retry` with only ASCII digits sets retry_ms; unknown fields are ignored;
//   - at end of input an unterminated event is dropped (finish() tells you).
// Limits: a line longer than max_line_bytes or an event whose data exceeds
// max_event_bytes puts the parser into the failed state (feed returns false
// and ignores further input) rather than growing without bound.
//
//     swh::cpp::sse::Parser parser;
//     bool ok = parser.feed(bytes, [&](const swh::cpp::sse::Event &e) {
//         if (e.data == "[DONE]") ...; return true; // false = stop parsing
//     });
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>

namespace swh::cpp::sse {

struct Event {
    std::string_view type; // "message" when the event had no `event:` field
    std::string_view data; // data lines joined with '\n'
    std::string_view id;   // the last event id seen so far (persists across events)
};

struct Limits {
    std::size_t max_line_bytes = 1u << 20;  // 1 MiB
    std::size_t max_event_bytes = 8u << 20; // 8 MiB of data per event
};

class Parser {
  public:
    Parser() = default;
    explicit Parser(Limits limits) : limits_(limits) {}

    // Consumes `bytes`. Calls on_event(const Event&) -> bool for every
    // complete event; returning false stops parsing (the rest of `bytes` is
    // dropped, later feeds are ignored, and feed returns false). Returns false
    // too when a limit was exceeded (failed() is then true).
    template <class OnEvent> bool feed(std::string_view bytes, OnEvent &&on_event) {
        if (stopped_ || failed_) return false;
        std::size_t i = 0;
        if (!bom_checked_) {
            // The BOM may arrive split across feeds: hold partial prefixes.
            static constexpr std::string_view kBom = "\xEF\xBB\xBF";
            while (i < bytes.size() && bom_seen_ < kBom.size() && !bom_checked_) {
                if (bytes[i] == kBom[bom_seen_]) {
                    ++bom_seen_;
                    ++i;
                } else {
                    bom_checked_ = true;
                    // Not a BOM after all: the held bytes are ordinary input.
                    if (bom_seen_ > 0) {
                        std::string held(kBom.substr(0, bom_seen_));
                        bom_seen_ = 0;
                        if (!consume(held, on_event)) return false;
                    }
                }
            }
            if (bom_seen_ == kBom.size()) {
                bom_checked_ = true;
                bom_seen_ = 0;
            }
            if (!bom_checked_) return true; // all of it was a BOM prefix so far
        }
        return consume(bytes.substr(i), on_event);
    }

    // End of input. Returns true when the stream ended cleanly, i.e. no
    // partial line or undispatched event was pending (a truncated stream
    // returns false). Resets nothing; call reset() to reuse the parser.
    bool finish() const noexcept {
        return !failed_ && line_.empty() && !have_data_ && type_.empty() && bom_seen_ == 0;
    }

    bool failed() const noexcept { return failed_; }
    bool stopped() const noexcept { return stopped_; }
    const std::string &last_event_id() const noexcept { return last_id_; }
    // The reconnection time from a `retry:` field; -1 when none was seen.
    int64_t retry_ms() const noexcept { return retry_ms_; }

    void reset() {
        Limits limits = limits_;
        *this = Parser(limits);
    }

  private:
    template <class OnEvent> bool consume(std::string_view bytes, OnEvent &on_event) {
        std::size_t i = 0;
        while (i < bytes.size()) {
            if (skip_lf_) {
                skip_lf_ = false;
                if (bytes[i] == '\n') {
                    ++i;
                    continue;
                }
            }
            // Find the next line terminator.
            std::size_t end = i;
            while (end < bytes.size() && bytes[end] != '\n' && bytes[end] != '\r')
                ++end;
            if (end == bytes.size()) {
                if (line_.size() + (end - i) > limits_.max_line_bytes) return fail();
                line_.append(bytes.substr(i, end - i));
                return true;
            }
            std::string_view line;
            if (line_.empty()) {
                line = bytes.substr(i, end - i);
            } else {
                if (line_.size() + (end - i) > limits_.max_line_bytes) return fail();
                line_.append(bytes.substr(i, end - i));
                line = line_;
            }
            if (line.size() > limits_.max_line_bytes) return fail();
            if (bytes[end] == '\r') skip_lf_ = true;
            i = end + 1;
            bool keep_going = process_line(line, on_event);
            line_.clear();
            if (failed_) return false;
            if (!keep_going) {
                stopped_ = true;
                return false;
            }
        }
        return true;
    }

    template <class OnEvent> bool process_line(std::string_view line, OnEvent &on_event) {
        if (line.empty()) return dispatch(on_event);
        if (line.front() == ':') return true; // comment
        std::string_view field = line, value;
        if (auto colon = line.find(':'); colon != std::string_view::npos) {
            field = line.substr(0, colon);
            value = line.substr(colon + 1);
            if (!value.empty() && value.front() == ' ') value.remove_prefix(1);
        }
        if (field == "event") {
            type_.assign(value);
        } else if (field == "data") {
            if (data_.size() + value.size() + 1 > limits_.max_event_bytes) {
                fail();
                return false;
            }
            if (have_data_) data_.push_back('\n');
            data_.append(value);
            have_data_ = true;
        } else if (field == "id") {
            if (value.find('\0') == std::string_view::npos) last_id_.assign(value);
        } else if (field == "retry") {
            if (!value.empty() && value.size() <= 18 &&
                value.find_first_not_of("0123456789") == std::string_view::npos) {
                int64_t ms = 0;
                for (char c : value)
                    ms = ms * 10 + (c - '0');
                retry_ms_ = ms;
            }
        }
        return true;
    }

    template <class OnEvent> bool dispatch(OnEvent &on_event) {
        if (!have_data_) {
            type_.clear();
            return true;
        }
        Event event{type_.empty() ? std::string_view("message") : std::string_view(type_), data_, last_id_};
        bool keep_going = static_cast<bool>(on_event(static_cast<const Event &>(event)));
        type_.clear();
        data_.clear();
        have_data_ = false;
        return keep_going;
    }

    bool fail() {
        failed_ = true;
        line_.clear();
        data_.clear();
        return false;
    }

    Limits limits_{};
    std::string line_; // a partial line carried over between feeds
    std::string type_; // `event:` of the event being built
    std::string data_; // `data:` lines of the event being built
    std::string last_id_;
    int64_t retry_ms_ = -1;
    bool have_data_ = false;
    bool skip_lf_ = false; // the previous piece ended with CR: a leading LF belongs to it
    bool bom_checked_ = false;
    std::size_t bom_seen_ = 0;
    bool stopped_ = false;
    bool failed_ = false;
};

} // namespace swh::cpp::sse
