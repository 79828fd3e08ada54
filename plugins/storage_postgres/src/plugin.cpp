// The "postgres" storage plugin: its config schema, bound to Options, and its
// descriptor. The work is in Store (pg_store.hpp); the table comes from
// swarmhost/cpp/storage_plugin.hpp.
#include "pg_store.hpp"

namespace {

using swh::postgres::Options;
using swh::postgres::Store;

constexpr auto kSchema = swh::cpp::schema(
    swh::cpp::setting<&Options::conninfo>(
        "conninfo", "\"host=127.0.0.1 port=5432 dbname=swarmhost\"",
        "libpq connection string or postgresql:// URI (password: prefer PGPASSWORD or ~/.pgpass)"),
    swh::cpp::setting<&Options::pool_size>("pool_size", "8",
                                           "Connections kept open, one per concurrent storage call (1-256)"),
    swh::cpp::setting<&Options::connect_timeout_ms>(
        "connect_timeout_ms", "5000",
        "How long connecting may take, in ms (libpq rounds up to whole seconds, at least 2 s)"),
    swh::cpp::setting<&Options::statement_timeout_ms>(
        "statement_timeout_ms", "4000",
        "Server-side limit of one statement, in ms (0 = none); a timed-out call fails with SWH_E_TIMEOUT "
        "and keeps its connection"),
    swh::cpp::setting<&Options::call_timeout_ms>(
        "call_timeout_ms", "5000",
        "Client-side deadline of one round trip, in ms (0 = none); held even when the server is silent "
        "(stopped, hung): the call fails with SWH_E_TIMEOUT and its connection is dropped"),
    swh::store::events_retention_setting<Options>(), swh::store::events_max_per_session_setting<Options>());

} // namespace

SWH_CPP_STORAGE(Store, "postgres", "0.1.0",
                "Sessions and messages in PostgreSQL (libpq, connection pool, one transaction per message)",
                kSchema)
