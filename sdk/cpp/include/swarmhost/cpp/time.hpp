// Timestamps as the HTTP API writes them (header-only, optional C++ layer).
#pragma once

#include <cstdint>
#include <cstdio>
#include <ctime>
#include <string>

namespace swh::cpp {

// Microseconds since the epoch -> "2026-11-25T14:39:42.123456Z" (UTC), the
// form of every time in the HTTP API, so plugin output matches the host's.
inline std::string iso8601(int64_t us) {
    int64_t secs = us / 1000000, frac = us % 1000000;
    if (frac < 0) frac += 1000000, secs -= 1;
    const std::time_t t = static_cast<std::time_t>(secs);
    std::tm tm{};
    gmtime_r(&t, &tm);
    char buf[48];
    std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%06lldZ", tm.tm_year + 1900, tm.tm_mon + 1,
                  tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<long long>(frac));
    return buf;
}

} // namespace swh::cpp
