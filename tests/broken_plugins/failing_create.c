/* Fixture: a well-formed storage plugin whose create always fails with
 * SWH_E_UNAVAILABLE and a last_error, still handing out a handle (as the
 * contract asks) so the host can read the reason and then call destroy.
 * Expected: a load/instance error quoting the reason below. */
#include "stub_storage.h"

static const char failing_reason[] = "cannot open database: permission denied (simulated)";

static swh_status fixture_create(const swh_host_api *host, const swh_config *cfg, void **out_handle) {
    (void)host;
    (void)cfg;
    *out_handle = (void *)&stub_instance;
    return SWH_E_UNAVAILABLE;
}

static const char *failing_last_error(void *handle) {
    (void)handle;
    return failing_reason;
}

STUB_STORAGE_TABLE(table, failing_last_error);

static const swh_plugin_descriptor descriptor =
    STUB_DESCRIPTOR("failing_create", SWH_ABI_VERSION_MAJOR, SWH_ABI_VERSION_MINOR, SWH_KIND_STORAGE,
                    SWH_IFACE_STORAGE_V1, &table);

SWH_EXPORT const swh_plugin_descriptor *swh_plugin_entry(void) {
    return &descriptor;
}
