// `swarmhost migrate --from A.yaml --to B.yaml`: every session and message of
// one configured store copied into another through the storage plugins,
// resumable, verified (docs/migration.md).
#pragma once

#include <ostream>
#include <string>
#include <vector>

namespace swh::migrate {

struct MigrateOptions {
    std::string from, to; // manifest paths; only their storage sections are used
    std::vector<std::string> extra_plugin_dirs;
    bool quiet = false; // no progress on stderr
};

// Exit code: 0 copied and verified; 1 a store failed, a session conflicts
// with what the target holds, or the verification found a difference.
int migrate(const MigrateOptions &options, std::ostream &out, std::ostream &err);

// SWARMHOST_TEST_KILL_AFTER_MESSAGES=N: SIGKILL this process right after the
// N-th message written (0 or unset = never). How the tests interrupt a copy at
// a known point; shared by migrate and import.
class KillSwitch {
  public:
    KillSwitch();
    void message_written();

  private:
    unsigned long long after_ = 0, written_ = 0;
};

} // namespace swh::migrate
