#include "isolation/child_process.hpp"

#include <cerrno>
#include <csignal>
#include <cstring>
#include <fcntl.h>
#include <spawn.h>
#include <stdexcept>
#include <sys/socket.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>
#include <utility>

extern char **environ; // passed on unchanged to the plugin host

namespace swh::isolation {

namespace {

// Closes an fd when it goes out of scope (the error paths of start()).
class FdGuard {
  public:
    explicit FdGuard(int fd) : fd_(fd) {}
    FdGuard(const FdGuard &) = delete;
    FdGuard &operator=(const FdGuard &) = delete;
    ~FdGuard() {
        if (fd_ >= 0) ::close(fd_);
    }
    int get() const { return fd_; }
    int release() { return std::exchange(fd_, -1); }

  private:
    int fd_;
};

std::runtime_error spawn_error(const std::string &what, int error) {
    return std::runtime_error(what + ": " + std::strerror(error));
}

// RAII for the two posix_spawn attribute objects.
struct SpawnSetup {
    posix_spawn_file_actions_t actions{};
    posix_spawnattr_t attr{};
    SpawnSetup() {
        posix_spawn_file_actions_init(&actions);
        posix_spawnattr_init(&attr);
    }
    SpawnSetup(const SpawnSetup &) = delete;
    SpawnSetup &operator=(const SpawnSetup &) = delete;
    ~SpawnSetup() {
        posix_spawn_file_actions_destroy(&actions);
        posix_spawnattr_destroy(&attr);
    }
};

std::string describe(int status, bool we_killed) {
    if (WIFEXITED(status)) return "exited with status " + std::to_string(WEXITSTATUS(status));
    if (WIFSIGNALED(status)) {
        const int sig = WTERMSIG(status);
        if (sig == SIGKILL && we_killed) return "was killed";
        const char *abbrev = sigabbrev_np(sig);
        return std::string("crashed (") +
               (abbrev ? std::string("SIG") + abbrev : "signal " + std::to_string(sig)) + ")";
    }
    return "ended (wait status " + std::to_string(status) + ")";
}

} // namespace

ChildProcess::~ChildProcess() {
    finish(std::chrono::milliseconds(2000));
}

void ChildProcess::start(const std::vector<std::string> &argv) {
    if (running()) throw std::logic_error("child process already running");
    int pair[2];
    // CLOEXEC on both ends: no other child the daemon starts inherits them.
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) != 0)
        throw spawn_error("socketpair", errno);
    FdGuard ours(pair[0]);
    FdGuard theirs_low(pair[1]);
    // Move the child's end above fd 3, so dup2 onto 3 really duplicates it
    // (dup2 of an fd onto itself would keep its CLOEXEC flag).
    FdGuard theirs(::fcntl(theirs_low.get(), F_DUPFD_CLOEXEC, 10));
    if (theirs.get() < 0) throw spawn_error("fcntl(F_DUPFD_CLOEXEC)", errno);

    SpawnSetup setup;
    posix_spawn_file_actions_adddup2(&setup.actions, theirs.get(), kChildSocketFd);
    sigset_t none, defaults;
    sigemptyset(&none);
    sigemptyset(&defaults);
    for (int sig : {SIGPIPE, SIGINT, SIGTERM, SIGHUP, SIGCHLD, SIGUSR1, SIGUSR2})
        sigaddset(&defaults, sig);
    posix_spawnattr_setsigmask(&setup.attr, &none);
    posix_spawnattr_setsigdefault(&setup.attr, &defaults);
    posix_spawnattr_setpgroup(&setup.attr, 0);
    posix_spawnattr_setflags(&setup.attr,
                             POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETPGROUP);

    std::vector<char *> args;
    for (const auto &arg : argv)
        args.push_back(const_cast<char *>(arg.c_str())); // posix_spawn's signature, not a write
    args.push_back(nullptr);
    pid_t pid = -1;
    if (const int rc = ::posix_spawn(&pid, args[0], &setup.actions, &setup.attr, args.data(), environ);
        rc != 0)
        throw spawn_error("cannot start " + argv[0], rc);
    pid_ = pid;
    fd_ = ours.release();
}

std::string ChildProcess::finish(std::chrono::milliseconds grace) {
    if (!running()) return "";
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
    int status = 0;
    bool reaped = false;
    // Bounded polling: waitpid has no timeout, and a crashed child is
    // usually reaped within the first few steps.
    const auto deadline = std::chrono::steady_clock::now() + grace;
    auto step = std::chrono::microseconds(200);
    while (!reaped) {
        const pid_t r = ::waitpid(pid_, &status, WNOHANG);
        if (r == pid_ || (r < 0 && errno != EINTR)) {
            reaped = true;
            break;
        }
        if (std::chrono::steady_clock::now() >= deadline) break;
        std::this_thread::sleep_for(step);
        step = std::min(step * 2, std::chrono::microseconds(20'000));
    }
    bool we_killed = false;
    if (!reaped) {
        ::kill(pid_, SIGKILL);
        we_killed = true;
        while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
        }
    }
    pid_ = -1;
    return describe(status, we_killed);
}

} // namespace swh::isolation
