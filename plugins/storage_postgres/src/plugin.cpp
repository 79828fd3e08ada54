// ABI glue of the "postgres" storage plugin: descriptor and config schema.
// The swh_storage_v1 table is generated from Store (swarmhost/cpp/storage_plugin.hpp).
#include "pg_store.hpp"

namespace swh::postgres {

std::unique_ptr<Store> Store::open(const swh_host_api *host, const swh_config *cfg) {
    edge::ConfigReader config(host, cfg);
    Options options;
    options.conninfo = config.string("conninfo");
    options.pool_size = config.integer("pool_size");
    options.connect_timeout_ms = config.integer("connect_timeout_ms");
    options.statement_timeout_ms = config.integer("statement_timeout_ms");
    options.call_timeout_ms = config.integer("call_timeout_ms");
    return std::make_unique<Store>(std::move(options), edge::HostLog(host));
}

} // namespace swh::postgres

namespace {

constexpr swh_config_field kConfigSchema[] = {
    {sizeof(swh_config_field), "conninfo", SWH_CFG_STRING, 0, "\"host=127.0.0.1 port=5432 dbname=swarmhost\"",
     "libpq connection string or postgresql:// URI (password: prefer PGPASSWORD or ~/.pgpass)"},
    {sizeof(swh_config_field), "pool_size", SWH_CFG_INT, 0, "8",
     "Connections kept open, one per concurrent storage call (1-256)"},
    {sizeof(swh_config_field), "connect_timeout_ms", SWH_CFG_INT, 0, "5000",
     "How long connecting may take, in ms (libpq rounds up to whole seconds, at least 2 s)"},
    {sizeof(swh_config_field), "statement_timeout_ms", SWH_CFG_INT, 0, "4000",
     "Server-side limit of one statement, in ms (0 = none); a timed-out call fails with SWH_E_TIMEOUT "
     "and keeps its connection"},
    {sizeof(swh_config_field), "call_timeout_ms", SWH_CFG_INT, 0, "5000",
     "Client-side deadline of one round trip, in ms (0 = none); held even when the server is silent "
     "(stopped, hung): the call fails with SWH_E_TIMEOUT and its connection is dropped"},
};

constexpr swh_storage_v1 kTable = swh::store::Plugin<swh::postgres::Store>::table();

constexpr swh_plugin_descriptor kDescriptor = swh::store::descriptor(
    "postgres", "0.1.0",
    "Sessions and messages in PostgreSQL (libpq, connection pool, one transaction per message)",
    kConfigSchema, &kTable);

} // namespace

extern "C" SWH_EXPORT const swh_plugin_descriptor *swh_plugin_entry(void) {
    return &kDescriptor;
}
