#include "migrate/progress.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <sstream>
#include <unistd.h>

namespace swh::migrate {

namespace {

// A bar is redrawn often enough to look alive; a plain line is written
// rarely enough that a log of a long copy stays readable.
constexpr auto kBarEvery = std::chrono::milliseconds(100);
constexpr auto kLineEvery = std::chrono::seconds(2);
constexpr int kBarWidth = 24;

std::string count_of(uint64_t done, uint64_t total) {
    return total > 0 ? std::to_string(done) + "/" + std::to_string(total) : std::to_string(done);
}

} // namespace

std::string format_duration(double seconds) {
    const auto total = static_cast<long long>(std::llround(std::max(0.0, seconds)));
    char text[32];
    if (total >= 3600)
        std::snprintf(text, sizeof text, "%lld:%02lld:%02lld", total / 3600, total / 60 % 60, total % 60);
    else
        std::snprintf(text, sizeof text, "%lld:%02lld", total / 60, total % 60);
    return text;
}

Progress::Progress(std::ostream &out, bool terminal, std::string what, uint64_t total_sessions,
                   uint64_t total_messages)
    : out_(out), terminal_(terminal), what_(std::move(what)), total_sessions_(total_sessions),
      total_messages_(total_messages) {}

bool Progress::stderr_is_terminal() {
    return isatty(STDERR_FILENO) == 1;
}

void Progress::update(uint64_t sessions, uint64_t messages) {
    sessions_ = sessions;
    messages_ = messages;
    const auto now = Clock::now();
    if (drawn_ && now - last_draw_ < (terminal_ ? Clock::duration(kBarEvery) : Clock::duration(kLineEvery)))
        return;
    draw();
}

void Progress::finish() {
    draw();
    if (terminal_) out_ << "\n";
    out_.flush();
}

void Progress::draw() {
    last_draw_ = Clock::now();
    drawn_ = true;
    if (terminal_)
        out_ << "\r" << describe(true) << "\x1b[K"; // clear what a longer line left
    else
        out_ << describe(false) << "\n";
    out_.flush();
}

// Rate and ETA go by messages (what the time is spent on), by sessions when
// there are none.
std::string Progress::describe(bool bar) const {
    const double elapsed = std::chrono::duration<double>(Clock::now() - start_).count();
    const bool by_messages = total_messages_ > 0 || messages_ > 0;
    const uint64_t done = by_messages ? messages_ : sessions_;
    const uint64_t total = by_messages ? total_messages_ : total_sessions_;
    const double rate = elapsed > 0 ? static_cast<double>(done) / elapsed : 0.0;
    std::ostringstream text;
    text << what_ << ": ";
    if (bar && total > 0) {
        const auto filled = static_cast<int>(kBarWidth * std::min<uint64_t>(done, total) / total);
        text << "[" << std::string(filled, '#') << std::string(kBarWidth - filled, '.') << "] ";
    }
    text << "sessions " << count_of(sessions_, total_sessions_) << ", messages "
         << count_of(messages_, total_messages_) << ", " << static_cast<uint64_t>(rate)
         << (by_messages ? " messages/s" : " sessions/s");
    if (total > 0 && rate > 0 && done < total)
        text << ", ETA " << format_duration(static_cast<double>(total - done) / rate);
    text << ", " << format_duration(elapsed) << " elapsed";
    return text.str();
}

} // namespace swh::migrate
