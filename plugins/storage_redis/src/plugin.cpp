// ABI glue of the "redis" storage plugin: descriptor and config schema.
// The swh_storage_v1 table is generated from Store (swarmhost/cpp/storage_plugin.hpp).
#include "redis_store.hpp"

namespace swh::redis {

std::unique_ptr<Store> Store::open(const swh_host_api *host, const swh_config *cfg) {
    edge::ConfigReader config(host, cfg);
    Options o;
    o.host = config.string("host");
    o.port = config.integer("port");
    o.password = config.string("password");
    o.db = config.integer("db");
    o.key_prefix = config.string("key_prefix");
    o.ttl_hours = config.integer("ttl_hours");
    o.ttl_seconds = config.integer("ttl_seconds");
    o.connect_timeout_ms = config.integer("connect_timeout_ms");
    o.command_timeout_ms = config.integer("command_timeout_ms");
    o.pool_size = config.integer("pool_size");
    return std::make_unique<Store>(std::move(o), edge::HostLog(host));
}

} // namespace swh::redis

namespace {

constexpr swh_config_field kConfigSchema[] = {
    {sizeof(swh_config_field), "host", SWH_CFG_STRING, 0, "\"127.0.0.1\"",
     "Redis server host name or address"},
    {sizeof(swh_config_field), "port", SWH_CFG_INT, 0, "6379", "Redis server TCP port"},
    {sizeof(swh_config_field), "password", SWH_CFG_STRING, 0, "\"\"", "AUTH password (\"\" = no AUTH)"},
    {sizeof(swh_config_field), "db", SWH_CFG_INT, 0, "0",
     "Database number (SELECT; must be 0 on Redis Cluster)"},
    {sizeof(swh_config_field), "key_prefix", SWH_CFG_STRING, 0, "\"swarmhost:\"",
     "Prefix of every key (no '{' or '}'); two instances with different prefixes share a server"},
    {sizeof(swh_config_field), "ttl_hours", SWH_CFG_INT, 0, "168",
     "A session expires this long after its last write (0 = never)"},
    {sizeof(swh_config_field), "ttl_seconds", SWH_CFG_INT, 0, "0",
     "If > 0, the TTL in seconds (overrides ttl_hours)"},
    {sizeof(swh_config_field), "connect_timeout_ms", SWH_CFG_INT, 0, "2000",
     "How long connecting may take, in ms"},
    {sizeof(swh_config_field), "command_timeout_ms", SWH_CFG_INT, 0, "5000",
     "How long one command may take, in ms (0 = no limit); then the call fails with SWH_E_TIMEOUT"},
    {sizeof(swh_config_field), "pool_size", SWH_CFG_INT, 0, "8",
     "Connections kept open, one per concurrent storage call (1-256); size it to the daemon's worker "
     "threads"},
};

constexpr swh_storage_v1 kTable = swh::store::Plugin<swh::redis::Store>::table();

constexpr swh_plugin_descriptor kDescriptor = swh::store::descriptor(
    "redis", "0.1.0",
    "Sessions and messages in Redis (hiredis, Lua scripts per session, TTL refreshed on activity)",
    kConfigSchema, &kTable);

} // namespace

extern "C" SWH_EXPORT const swh_plugin_descriptor *swh_plugin_entry(void) {
    return &kDescriptor;
}
