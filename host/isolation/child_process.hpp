// One child process started with fork+exec semantics (posix_spawn) and
// connected to the daemon by a socketpair (the child's end is its fd 3).
// Always reaped: no zombie outlives a ChildProcess.
#pragma once

#include <chrono>
#include <string>
#include <sys/types.h>
#include <vector>

namespace swh::isolation {

// The fd number the child finds its end of the socketpair on.
constexpr int kChildSocketFd = 3;

class ChildProcess {
  public:
    ChildProcess() = default;
    ChildProcess(const ChildProcess &) = delete;
    ChildProcess &operator=(const ChildProcess &) = delete;
    ~ChildProcess();

    // Starts argv[0] with `argv`. Throws std::runtime_error when it cannot.
    // The child gets default signal dispositions, an empty signal mask and
    // its own process group (a Ctrl-C meant for the daemon is not its).
    void start(const std::vector<std::string> &argv);
    bool running() const { return pid_ > 0; }
    int fd() const { return fd_; }
    pid_t pid() const { return pid_; }

    // Ends the child: closes our end of the socket (a healthy child exits on
    // that EOF), waits up to `grace` for it to exit by itself, then SIGKILLs
    // it, and reaps it. Returns how it ended, e.g. "crashed (SIGSEGV)",
    // "exited with status 3", "was killed". "" if it was not running.
    std::string finish(std::chrono::milliseconds grace);

  private:
    pid_t pid_ = -1;
    int fd_ = -1;
};

} // namespace swh::isolation
