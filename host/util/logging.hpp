#pragma once

#include <string>

namespace swh {

// Route spdlog's default logger to stderr, as text or as one JSON object
// per line (for log shippers). `level` is trace|debug|info|warn|error.
void setup_logging(bool json, const std::string &level);

} // namespace swh
