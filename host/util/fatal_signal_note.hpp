// Names the plugin at fault when it crashes the process inside a call the
// host cannot contain (at start-up, an in-process `create`): while a
// FatalSignalNote lives, a fatal signal (SIGSEGV, SIGBUS, SIGILL, SIGFPE,
// SIGABRT) raised on the thread that made it first writes
//   <program>: <note>: <SIGNAME>\n          (program: swarmhost, swarmhost-plugin-host)
// to stderr, then the process dies of that signal as it would have (exit
// status, core dump and any handler installed before ours are unchanged).
// Without it a segfaulting plugin leaves only "exit 139" and no name.
#pragma once

#include <string>

namespace swh {

class FatalSignalNote {
  public:
    // `note` e.g. "plugin 'x' (middleware, /p/libx.so) crashed in create".
    explicit FatalSignalNote(std::string note);
    FatalSignalNote(const FatalSignalNote &) = delete;
    FatalSignalNote &operator=(const FatalSignalNote &) = delete;
    ~FatalSignalNote();

  private:
    std::string line_;         // pre-formatted: the handler may not allocate
    const std::string *outer_; // the note this one hides on this thread (nested creates)
};

} // namespace swh
