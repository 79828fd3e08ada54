// How the daemon's heap gives memory back (glibc malloc). Under a long mixed
// load the daemon's live heap stays small, but glibc keeps what was freed:
// it raises its mmap threshold after each large free (up to 32 MiB), so
// large transient buffers (a long session read in full, a snapshot, an
// upload) come from the per-thread arenas afterwards, and an arena gives
// back only its top. docs/reliability.md "Soak" has the measurements.
#pragma once

namespace swh::heap {

// At start: a fixed mmap threshold (large buffers are mapped and unmapped
// again), unless the environment tunes malloc itself (GLIBC_TUNABLES with a
// malloc setting, MALLOC_MMAP_THRESHOLD_). Returns what it did, for the log.
const char *configure();

// Hands free pages of every arena back to the kernel (malloc_trim). Takes
// each arena's lock in turn: run it off the request threads, now and then.
void give_back();

} // namespace swh::heap
