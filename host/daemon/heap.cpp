#include "daemon/heap.hpp"

#include <cstdlib>
#include <cstring>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

namespace swh::heap {

namespace {
// Buffers from here up are mapped on their own and returned when freed.
// Far above what a request's small objects need, below a long session's
// history or a snapshot.
constexpr int kMmapThreshold = 256 * 1024;

bool environment_tunes_malloc() {
    const char *tunables = std::getenv("GLIBC_TUNABLES");
    return (tunables != nullptr && std::strstr(tunables, "glibc.malloc.") != nullptr) ||
           std::getenv("MALLOC_MMAP_THRESHOLD_") != nullptr;
}
} // namespace

const char *configure() {
#if defined(__GLIBC__)
    if (environment_tunes_malloc()) return "malloc tuned by the environment";
    if (mallopt(M_MMAP_THRESHOLD, kMmapThreshold) == 1) return "malloc mmap threshold 256 KiB";
    return "malloc mmap threshold unchanged (mallopt refused)";
#else
    return "default allocator";
#endif
}

void give_back() {
#if defined(__GLIBC__)
    malloc_trim(0);
#endif
}

} // namespace swh::heap
