/* swh_bench_noop: a hook plugin whose functions do nothing, so that timing a
 * call into it measures the ABI call itself (indirect call through the kind
 * table into another shared object). Output goes to build/bench/plugins, NOT
 * build/plugins, so the default manifest never loads it. */
#include <swarmhost/swarmhost.h>

static int noop_instance; /* the handle: any non-NULL pointer */

static swh_status noop_create(const swh_host_api *host, const swh_config *cfg, void **out_handle) {
    (void)host;
    (void)cfg;
    *out_handle = &noop_instance;
    return SWH_OK;
}

static void noop_destroy(void *handle) {
    (void)handle;
}

static const char *noop_last_error(void *handle) {
    (void)handle;
    return "";
}

static uint32_t noop_events(void *handle) {
    (void)handle;
    return 0;
}

static swh_status noop_on_event(void *handle, const swh_event *event) {
    (void)handle;
    (void)event;
    return SWH_OK;
}

static const swh_hook_v1 kTable = {
    sizeof(swh_hook_v1), noop_create, noop_destroy, noop_last_error, noop_events, noop_on_event, NULL,
};

static const swh_plugin_descriptor kDescriptor = {
    sizeof(swh_plugin_descriptor),
    SWH_ABI_VERSION_MAJOR,
    SWH_ABI_VERSION_MINOR,
    "bench_noop",
    "0.0.1",
    "Benchmark only: a hook whose calls do nothing",
    SWH_KIND_HOOK,
    SWH_IFACE_HOOK_V1,
    NULL,
    0,
    &kTable,
};

SWH_EXPORT const swh_plugin_descriptor *swh_plugin_entry(void) {
    return &kDescriptor;
}
