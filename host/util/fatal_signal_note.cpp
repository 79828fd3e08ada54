#include "util/fatal_signal_note.hpp"

#include <array>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <mutex>
#include <unistd.h>

namespace swh {

namespace {

constexpr std::array kFatalSignals{SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT};

// The dispositions we replaced, restored before the signal is re-raised.
// Written once (under std::call_once) before any handler can run.
std::array<struct sigaction, kFatalSignals.size()> previous{};

// This thread's note, or nullptr. A plain pointer in static TLS (the core is
// linked into the executable): reading it in a handler neither allocates nor locks.
thread_local const std::string *current = nullptr;

const char *signal_name(int sig) {
    switch (sig) {
    case SIGSEGV:
        return "SIGSEGV";
    case SIGBUS:
        return "SIGBUS";
    case SIGILL:
        return "SIGILL";
    case SIGFPE:
        return "SIGFPE";
    case SIGABRT:
        return "SIGABRT";
    default:
        return "fatal signal";
    }
}

void write_all(const char *text, std::size_t size) {
    while (size > 0) {
        const ssize_t n = ::write(STDERR_FILENO, text, size);
        if (n <= 0) return; // nothing more a dying process can do
        text += n;
        size -= static_cast<std::size_t>(n);
    }
}

// Only async-signal-safe calls: write, sigaction, raise.
void on_fatal_signal(int sig) {
    if (const std::string *note = current) {
        write_all(note->data(), note->size());
        const char *name = signal_name(sig);
        write_all(name, std::strlen(name));
        write_all("\n", 1);
    }
    for (std::size_t i = 0; i < kFatalSignals.size(); ++i)
        if (kFatalSignals[i] == sig) ::sigaction(sig, &previous[i], nullptr);
    // Blocked until we return; a fault then re-executes and meets the old
    // disposition too, so the process ends exactly as without us.
    ::raise(sig);
}

void install_once() {
    static std::once_flag once;
    std::call_once(once, [] {
        struct sigaction action {};
        action.sa_handler = on_fatal_signal;
        sigemptyset(&action.sa_mask);
        for (std::size_t i = 0; i < kFatalSignals.size(); ++i)
            ::sigaction(kFatalSignals[i], &action, &previous[i]);
    });
}

} // namespace

// The program's name starts the line: a plugin host child (isolation, a
// reload's trial) shares the daemon's stderr and must not read as the daemon.
FatalSignalNote::FatalSignalNote(std::string note)
    : line_(std::string(program_invocation_short_name) + ": " + std::move(note) + ": "), outer_(current) {
    install_once();
    current = &line_;
}

FatalSignalNote::~FatalSignalNote() {
    current = outer_;
}

} // namespace swh
