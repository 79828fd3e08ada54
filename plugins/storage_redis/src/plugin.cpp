// The "redis" storage plugin: its config schema, bound to Options, and its
// descriptor. The work is in Store (redis_store.hpp); the table comes from
// swarmhost/cpp/storage_plugin.hpp.
#include "redis_store.hpp"

namespace {

using swh::redis::Options;
using swh::redis::Store;

constexpr auto kSchema = swh::cpp::schema(
    swh::cpp::setting<&Options::host>("host", "\"127.0.0.1\"", "Redis server host name or address"),
    swh::cpp::setting<&Options::port>("port", "6379", "Redis server TCP port"),
    swh::cpp::setting<&Options::password>("password", "\"\"", "AUTH password (\"\" = no AUTH)"),
    swh::cpp::setting<&Options::db>("db", "0", "Database number (SELECT; must be 0 on Redis Cluster)"),
    swh::cpp::setting<&Options::key_prefix>(
        "key_prefix", "\"swarmhost:\"",
        "Prefix of every key (no '{' or '}'); two instances with different prefixes share a server"),
    swh::cpp::setting<&Options::ttl_hours>("ttl_hours", "168",
                                           "A session expires this long after its last write (0 = never)"),
    swh::cpp::setting<&Options::ttl_seconds>("ttl_seconds", "0",
                                             "If > 0, the TTL in seconds (overrides ttl_hours)"),
    swh::cpp::setting<&Options::connect_timeout_ms>("connect_timeout_ms", "2000",
                                                    "How long connecting may take, in ms"),
    swh::cpp::setting<&Options::command_timeout_ms>(
        "command_timeout_ms", "5000",
        "How long one command may take, in ms (0 = no limit); then the call fails with SWH_E_TIMEOUT"),
    swh::cpp::setting<&Options::pool_size>(
        "pool_size", "8",
        "Connections kept open, one per concurrent storage call (1-256); size it to the daemon's worker "
        "threads. On a cluster: per master"),
    swh::cpp::setting<&Options::cluster>("cluster", "false",
                                         "The server is a Redis Cluster node: read the slot map and send "
                                         "each command to the master of its slot"),
    swh::cpp::setting<&Options::seeds>("seeds", "[]",
                                       "More cluster nodes (\"host:port\") to read the slot map from when "
                                       "host:port does not answer"),
    swh::cpp::setting<&Options::index_lag_ms>(
        "index_lag_ms", "60000",
        "How far a session's last_activity may run ahead of its score in the listing indexes, in ms; within "
        "it "
        "add_message is one script on the session's slot (0 = update the indexes with every message)"),
    swh::store::events_retention_setting<Options>(), swh::store::events_max_per_session_setting<Options>());

} // namespace

SWH_CPP_STORAGE(
    Store, "redis", "0.1.0",
    "Sessions and messages in Redis (hiredis, Lua scripts per session, TTL refreshed on activity)", kSchema)
