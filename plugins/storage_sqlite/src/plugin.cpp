// The "sqlite" storage plugin: its config schema, bound to StoreOptions, and
// its descriptor. The work is in Store (sqlite_store.hpp); the table comes
// from swarmhost/cpp/storage_plugin.hpp.
#include "sqlite_store.hpp"

namespace {

using swh::sqlite::Store;
using swh::sqlite::StoreOptions;

constexpr auto kSchema = swh::cpp::schema(
    swh::cpp::setting<&StoreOptions::path>(
        "path", "\"./data/swarmhost.db\"",
        "Database file; parent directories are created (\":memory:\" = in-memory, for tests)"),
    swh::cpp::setting<&StoreOptions::busy_timeout_ms>(
        "busy_timeout_ms", "5000",
        "How long a statement waits for a lock held by another connection or process, in ms"),
    swh::cpp::setting<&StoreOptions::synchronous>("synchronous", "\"full\"",
                                                  "\"full\": an acknowledged write survives power loss; "
                                                  "\"normal\": faster, the last commits may be lost "
                                                  "on power loss"),
    swh::cpp::setting<&StoreOptions::pool_size>(
        "pool_size", "4", "Reader connections for concurrent reads (0 = reads share the writer connection)"),
    swh::cpp::setting<&StoreOptions::group_commit>(
        "group_commit", "true",
        "Concurrent writes share one transaction and one fsync; each caller still returns only once "
        "its write is durable (false: one commit and one fsync per write)"),
    swh::cpp::setting<&StoreOptions::group_commit_max_batch>(
        "group_commit_max_batch", "256", "Most writes one group commit carries (1-4096)"));

} // namespace

SWH_CPP_STORAGE(Store, "sqlite", "0.1.0", "Sessions and messages in one SQLite file (WAL, group commit)",
                kSchema)
