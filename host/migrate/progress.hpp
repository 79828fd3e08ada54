// How far a long copy is: a live bar redrawn in place on a terminal
// (sessions and messages done, rate, ETA), plain lines now and then
// otherwise (a log, a pipe, CI).
#pragma once

#include <chrono>
#include <cstdint>
#include <ostream>
#include <string>

namespace swh::migrate {

class Progress {
  public:
    // `what`: "migrate", "export", "import"; totals of 0 = not known.
    Progress(std::ostream &out, bool terminal, std::string what, uint64_t total_sessions,
             uint64_t total_messages);
    // Counts so far; draws when it is time to.
    void update(uint64_t sessions, uint64_t messages);
    // The last state, always drawn; ends the bar's line.
    void finish();

    // Whether the stream is a terminal (stderr's descriptor).
    static bool stderr_is_terminal();

  private:
    std::string describe(bool bar) const;
    void draw();

    using Clock = std::chrono::steady_clock;
    std::ostream &out_;
    bool terminal_;
    std::string what_;
    uint64_t total_sessions_, total_messages_;
    uint64_t sessions_ = 0, messages_ = 0;
    Clock::time_point start_ = Clock::now(), last_draw_{};
    bool drawn_ = false;
};

// "1:02:03", "4:05" for an amount of seconds.
std::string format_duration(double seconds);

} // namespace swh::migrate
