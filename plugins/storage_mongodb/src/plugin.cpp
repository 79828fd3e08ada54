// The "mongodb" storage plugin: its config schema, bound to Options, and its
// descriptor. The work is in Store (mongo_store.hpp); the table comes from
// swarmhost/cpp/storage_plugin.hpp.
#include "mongo_store.hpp"

namespace {

using swh::mongodb::Options;
using swh::mongodb::Store;

constexpr auto kSchema = swh::cpp::schema(
    swh::cpp::setting<&Options::connection_string>("connection_string", "\"mongodb://127.0.0.1:27017\"",
                                                   "MongoDB URI (hosts, replicaSet, tls, credentials, ...); "
                                                   "the keys below win over the same URI options"),
    swh::cpp::setting<&Options::database_name>("database_name", "\"swarmhost\"",
                                               "Database of both collections (namespaces deployments)"),
    swh::cpp::setting<&Options::collection_name>("collection_name", "\"sessions\"",
                                                 "Collection of the sessions"),
    swh::cpp::setting<&Options::message_collection>("message_collection", "\"messages\"",
                                                    "Collection of the messages"),
    swh::cpp::setting<&Options::write_concern>(
        "write_concern", "\"majority\"",
        "Write concern w: \"majority\" or a number of members (\"1\" acknowledges on the primary alone)"),
    swh::cpp::setting<&Options::journal>("journal", "true",
                                         "Write concern j: acknowledged only once written to the journal"),
    swh::cpp::setting<&Options::write_timeout_ms>(
        "write_timeout_ms", "5000",
        "Write concern wtimeout in ms (0 = none); then the call fails with SWH_E_TIMEOUT"),
    swh::cpp::setting<&Options::read_preference>("read_preference", "\"primary\"",
                                                 "primary, primaryPreferred, secondary, secondaryPreferred "
                                                 "or nearest (not primary: reads may lag writes)"),
    swh::cpp::setting<&Options::pool_size>(
        "pool_size", "8", "Clients in the driver's pool (maxPoolSize), one per concurrent call (1-256)"),
    swh::cpp::setting<&Options::connect_timeout_ms>("connect_timeout_ms", "2000", "connectTimeoutMS"),
    swh::cpp::setting<&Options::server_selection_timeout_ms>(
        "server_selection_timeout_ms", "5000",
        "serverSelectionTimeoutMS: how long a call waits for a usable server before SWH_E_UNAVAILABLE"),
    swh::cpp::setting<&Options::socket_timeout_ms>(
        "socket_timeout_ms", "5000", "socketTimeoutMS: client-side deadline of one round trip (0 = none)"),
    swh::cpp::setting<&Options::operation_timeout_ms>(
        "operation_timeout_ms", "4000",
        "maxTimeMS of reads and findAndModify, server side (0 = none); then SWH_E_TIMEOUT"),
    swh::cpp::setting<&Options::ttl_hours>(
        "ttl_hours", "0",
        "If > 0: a session expires this long after its last write, a message after its own write "
        "(TTL indexes on expires_at)"),
    swh::cpp::setting<&Options::ttl_seconds>("ttl_seconds", "0",
                                             "If > 0, the TTL in seconds (overrides ttl_hours)"));

} // namespace

SWH_CPP_STORAGE(
    Store, "mongodb", "0.1.0",
    "Sessions and messages in MongoDB (libmongoc, durable write concern, atomic per-session counters)",
    kSchema)
