// Tries one plugin instance in a throw-away child process before the daemon
// loads it: the plugin host (swarmhost-plugin-host) loads the library, checks
// its descriptor and sha256, runs create with the real config and, when the
// daemon closes the connection, destroy. A crash, a hang or a refusal there
// costs that child only. Used by hot reload (a reload must never take down a
// daemon that was serving) and by `swarmhost check --try-create`.
#pragma once

#include "model/model.hpp"

#include <chrono>
#include <string>

namespace swh::isolation {

// Long enough for a create that opens a remote database; a hang ends here.
constexpr std::chrono::milliseconds kTrialTimeout{30'000};

struct TrialSpec {
    std::string instance;                              // manifest instance name
    uint32_t kind = 0;                                 // SWH_KIND_*
    std::string file;                                  // the plugin's shared object
    std::string sha256;                                // as the daemon hashed it; the child checks it again
    Json config;                                       // validated, defaults applied: what create would get
    std::chrono::milliseconds timeout = kTrialTimeout; // for create and for destroy, each
};

// "" when create and destroy both went fine; otherwise what went wrong,
// e.g. "crashed in create: SIGSEGV", "failed in create: <last_error>",
// "did not finish create within 30000 ms (killed)".
std::string try_instance(const TrialSpec &spec);

} // namespace swh::isolation
