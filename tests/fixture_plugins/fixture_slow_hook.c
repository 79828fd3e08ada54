/* Test fixture hook "fixture_slow_hook": on_event blocks until a gate file
 * exists (or max_wait_ms passes), so tests can hold its queue full without
 * timing anything. Renders swarmhost_fixture_slow_hook_events_total on
 * GET /metrics. Plain C99 + POSIX. Never built into build/plugins. */
#define _POSIX_C_SOURCE 200809L
#include <swarmhost/hook.h>

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

typedef struct slow_hook {
    char gate[1024];
    int64_t max_wait_ms;
    atomic_ullong seen;
    char error[128];
} slow_hook;

static swh_status sh_create(const swh_host_api *host, const swh_config *cfg, void **out) {
    slow_hook *h = calloc(1, sizeof *h);
    swh_str gate = {0, 0};
    *out = h;
    if (h == NULL) return SWH_E_INTERNAL;
    if (host->config_string(host->host_ctx, cfg, "gate_file", &gate) != SWH_OK || gate.len == 0 ||
        gate.len >= sizeof h->gate) {
        snprintf(h->error, sizeof h->error, "fixture_slow_hook: gate_file missing or too long");
        return SWH_E_INVALID;
    }
    memcpy(h->gate, gate.ptr, gate.len);
    h->gate[gate.len] = '\0';
    if (host->config_int(host->host_ctx, cfg, "max_wait_ms", &h->max_wait_ms) != SWH_OK)
        h->max_wait_ms = 60000;
    return SWH_OK;
}

static void sh_destroy(void *handle) {
    free(handle);
}

static const char *sh_last_error(void *handle) {
    return handle ? ((slow_hook *)handle)->error : "";
}

static uint32_t sh_events(void *handle) {
    (void)handle;
    return SWH_EVENT_SESSION_CREATED | SWH_EVENT_MESSAGE_SENT | SWH_EVENT_SESSION_ARCHIVED |
           SWH_EVENT_SESSION_DELETED | SWH_EVENT_PROVIDER_ERROR;
}

static swh_status sh_on_event(void *handle, const swh_event *event) {
    slow_hook *h = handle;
    int64_t waited = 0;
    struct timespec pause = {0, 5 * 1000 * 1000};
    (void)event;
    while (access(h->gate, F_OK) != 0 && waited < h->max_wait_ms) {
        nanosleep(&pause, NULL);
        waited += 5;
    }
    atomic_fetch_add(&h->seen, 1);
    return SWH_OK;
}

static swh_status sh_render_metrics(void *handle, const swh_result_sink *sink) {
    slow_hook *h = handle;
    char text[256];
    int n = snprintf(text, sizeof text,
                     "# TYPE swarmhost_fixture_slow_hook_events_total counter\n"
                     "swarmhost_fixture_slow_hook_events_total %llu\n",
                     (unsigned long long)atomic_load(&h->seen));
    swh_str s = {text, (size_t)n};
    return sink->json(sink->ctx, s);
}

static const swh_config_field kSchema[] = {
    {sizeof(swh_config_field), "gate_file", SWH_CFG_STRING, 1, NULL, "on_event waits until this file exists"},
    {sizeof(swh_config_field), "max_wait_ms", SWH_CFG_INT, 0, "60000", "Give up waiting after this long"},
};

static const swh_hook_v1 kTable = {
    sizeof(swh_hook_v1), sh_create, sh_destroy, sh_last_error, sh_events, sh_on_event, sh_render_metrics,
};

static const swh_plugin_descriptor kDescriptor = {
    sizeof(swh_plugin_descriptor),
    SWH_ABI_VERSION_MAJOR,
    SWH_ABI_VERSION_MINOR,
    "fixture_slow_hook",
    "0.0.1",
    "Test fixture: a hook that blocks until a gate file exists",
    SWH_KIND_HOOK,
    SWH_IFACE_HOOK_V1,
    kSchema,
    sizeof kSchema / sizeof kSchema[0],
    &kTable,
};

SWH_EXPORT const swh_plugin_descriptor *swh_plugin_entry(void) {
    return &kDescriptor;
}
