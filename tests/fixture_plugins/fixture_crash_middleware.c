/* Test fixture middleware "fixture_crash": a plugin that brings down the
 * process it runs in, on purpose (tests/isolation, bench/isolation).
 *   - content containing `crash_on` (default "__crash__"): raise(SIGSEGV);
 *   - content containing `hang_on` (default "__hang__"): sleeps forever;
 *   - anything else: appends " [crash-ok]" to the content and counts the
 *     call in swarmhost_fixture_crash_calls_total (so a test sees it ran).
 * Its create does what config `on_create` says: "ok" (default), "crash"
 * (raise(SIGSEGV), as a bad pointer in create would) or "fail" (returns
 * SWH_E_INVALID with a last_error) — the start-up, reload and
 * `check --try-create` tests (tests/reload/test_create_crash.py).
 * User stage only, no streams. Plain C99 + POSIX. Never built into
 * build/plugins. */
#define _POSIX_C_SOURCE 200809L
#include <swarmhost/middleware.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct crash_mw {
    const swh_host_api *host;
    char crash_on[128];
    char hang_on[128];
    char error[128];
} crash_mw;

static int copy_key(const swh_host_api *host, const swh_config *cfg, const char *key, char *out,
                    size_t size) {
    swh_str value = {0, 0};
    if (host->config_string(host->host_ctx, cfg, key, &value) != SWH_OK || value.len == 0 ||
        value.len >= size)
        return 0;
    memcpy(out, value.ptr, value.len);
    out[value.len] = '\0';
    return 1;
}

static swh_status cm_create(const swh_host_api *host, const swh_config *cfg, void **out) {
    crash_mw *m = calloc(1, sizeof *m);
    *out = m;
    if (m == NULL) return SWH_E_INTERNAL;
    m->host = host;
    {
        char on_create[16] = "ok";
        copy_key(host, cfg, "on_create", on_create, sizeof on_create);
        if (strcmp(on_create, "crash") == 0) raise(SIGSEGV);
        if (strcmp(on_create, "fail") == 0) {
            snprintf(m->error, sizeof m->error, "fixture_crash: asked to fail in create (on_create: fail)");
            return SWH_E_INVALID;
        }
    }
    if (!copy_key(host, cfg, "crash_on", m->crash_on, sizeof m->crash_on) ||
        !copy_key(host, cfg, "hang_on", m->hang_on, sizeof m->hang_on)) {
        snprintf(m->error, sizeof m->error, "fixture_crash: crash_on / hang_on must be 1..127 bytes");
        return SWH_E_INVALID;
    }
    return SWH_OK;
}

static void cm_destroy(void *handle) {
    free(handle);
}

static const char *cm_last_error(void *handle) {
    return handle ? ((crash_mw *)handle)->error : "";
}

static uint32_t cm_stages(void *handle) {
    (void)handle;
    return SWH_STAGE_USER;
}

/* Whether `needle` (NUL-terminated) occurs in the borrowed `hay`. */
static int contains(swh_str hay, const char *needle) {
    size_t n = strlen(needle);
    if (n == 0 || hay.len < n) return 0;
    for (size_t i = 0; i + n <= hay.len; ++i)
        if (memcmp(hay.ptr + i, needle, n) == 0) return 1;
    return 0;
}

static swh_status cm_process(void *handle, const swh_middleware_input *input,
                             const swh_message_editor *editor) {
    crash_mw *m = handle;
    swh_str content = input->message->content;
    if (contains(content, m->crash_on)) raise(SIGSEGV); /* what a wild pointer would do */
    if (contains(content, m->hang_on))
        for (;;)
            pause();
    {
        static const char suffix[] = " [crash-ok]";
        size_t len = content.len + sizeof suffix - 1;
        char *text = malloc(len);
        static const char name[] = "swarmhost_fixture_crash_calls_total";
        swh_str metric = {name, sizeof name - 1};
        swh_str labels = {"", 0};
        swh_str out;
        if (text == NULL) return SWH_E_INTERNAL;
        if (content.len) memcpy(text, content.ptr, content.len);
        memcpy(text + content.len, suffix, sizeof suffix - 1);
        out.ptr = text;
        out.len = len;
        editor->set_content(editor->ctx, out);
        free(text);
        m->host->metric_add(m->host->host_ctx, metric, labels, 1);
    }
    return SWH_OK;
}

static const swh_config_field kSchema[] = {
    {sizeof(swh_config_field), "crash_on", SWH_CFG_STRING, 0, "\"__crash__\"",
     "raise(SIGSEGV) on content holding this"},
    {sizeof(swh_config_field), "hang_on", SWH_CFG_STRING, 0, "\"__hang__\"",
     "Sleep forever on content holding this"},
    {sizeof(swh_config_field), "on_create", SWH_CFG_STRING, 0, "\"ok\"",
     "ok | crash (raise(SIGSEGV) in create) | fail (create returns SWH_E_INVALID)"},
};

static const swh_middleware_v1 kTable = {
    sizeof(swh_middleware_v1),
    cm_create,
    cm_destroy,
    cm_last_error,
    cm_stages,
    cm_process,
    NULL,
    NULL,
    NULL,
    NULL,
};

static const swh_plugin_descriptor kDescriptor = {
    sizeof(swh_plugin_descriptor),
    SWH_ABI_VERSION_MAJOR,
    SWH_ABI_VERSION_MINOR,
    "fixture_crash",
    "0.1.0",
    "Test fixture: segfaults or hangs on trigger words",
    SWH_KIND_MIDDLEWARE,
    SWH_IFACE_MIDDLEWARE_V1,
    kSchema,
    sizeof kSchema / sizeof kSchema[0],
    &kTable,
};

SWH_EXPORT const swh_plugin_descriptor *swh_plugin_entry(void) {
    return &kDescriptor;
}
