/* A do-nothing storage plugin shared by the broken-plugin fixtures, so that
 * each fixture has exactly one defect. Every operation answers
 * SWH_E_UNSUPPORTED. The including file defines `fixture_create` (or uses
 * STUB_CREATE_OK) and builds its table with STUB_STORAGE_TABLE. */
#ifndef SWH_BROKEN_STUB_STORAGE_H
#define SWH_BROKEN_STUB_STORAGE_H

#include <swarmhost/swarmhost.h>

/* Not every fixture uses every stub. */
#if defined(__GNUC__)
#define STUB_UNUSED __attribute__((unused))
#else
#define STUB_UNUSED
#endif

static swh_status fixture_create(const swh_host_api *host, const swh_config *cfg, void **out_handle);

/* Any non-NULL address serves as the handle: the fixtures keep no state. */
STUB_UNUSED static const char stub_instance = 0;

STUB_UNUSED static void stub_destroy(void *handle) {
    (void)handle;
}

STUB_UNUSED static const char *stub_last_error(void *handle) {
    (void)handle;
    return "";
}

STUB_UNUSED static swh_status stub_create_session(void *handle, const swh_session *session) {
    (void)handle;
    (void)session;
    return SWH_E_UNSUPPORTED;
}

STUB_UNUSED static swh_status stub_get_session(void *handle, swh_str id, const swh_result_sink *sink) {
    (void)handle;
    (void)id;
    (void)sink;
    return SWH_E_UNSUPPORTED;
}

STUB_UNUSED static swh_status stub_update_session(void *handle, const swh_session *session, uint32_t fields) {
    (void)handle;
    (void)session;
    (void)fields;
    return SWH_E_UNSUPPORTED;
}

STUB_UNUSED static swh_status stub_delete_session(void *handle, swh_str id) {
    (void)handle;
    (void)id;
    return SWH_E_UNSUPPORTED;
}

STUB_UNUSED static swh_status stub_list_sessions(void *handle, const swh_session_filter *filter,
                                                 const swh_result_sink *sink) {
    (void)handle;
    (void)filter;
    (void)sink;
    return SWH_E_UNSUPPORTED;
}

STUB_UNUSED static swh_status stub_add_message(void *handle, const swh_message *message) {
    (void)handle;
    (void)message;
    return SWH_E_UNSUPPORTED;
}

STUB_UNUSED static swh_status stub_get_messages(void *handle, const swh_message_query *query,
                                                const swh_result_sink *sink) {
    (void)handle;
    (void)query;
    (void)sink;
    return SWH_E_UNSUPPORTED;
}

STUB_UNUSED static swh_status stub_health_check(void *handle, const swh_result_sink *sink) {
    (void)handle;
    (void)sink;
    return SWH_E_UNSUPPORTED;
}

/* A create that succeeds (for fixtures whose defect is elsewhere). */
#define STUB_CREATE_OK                                                                                       \
    static swh_status fixture_create(const swh_host_api *host, const swh_config *cfg, void **out_handle) {   \
        (void)host;                                                                                          \
        (void)cfg;                                                                                           \
        *out_handle = (void *)&stub_instance;                                                                \
        return SWH_OK;                                                                                       \
    }

/* A complete swh_storage_v1 named `var`, with `fixture_create` and the given
 * last_error function. */
#define STUB_STORAGE_TABLE(var, last_error_fn)                                                               \
    static const swh_storage_v1 var = {sizeof(swh_storage_v1),                                               \
                                       fixture_create,                                                       \
                                       stub_destroy,                                                         \
                                       (last_error_fn),                                                      \
                                       stub_create_session,                                                  \
                                       stub_get_session,                                                     \
                                       stub_update_session,                                                  \
                                       stub_delete_session,                                                  \
                                       stub_list_sessions,                                                   \
                                       stub_add_message,                                                     \
                                       stub_get_messages,                                                    \
                                       stub_health_check,                                                    \
                                       NULL,                                                                 \
                                       NULL,                                                                 \
                                       NULL,                                                                 \
                                       NULL,                                                                 \
                                       NULL,                                                                 \
                                       NULL,                                                                 \
                                       NULL}

/* A descriptor for `name` with the given ABI version, kind and interface. */
#define STUB_DESCRIPTOR(name, major, minor, kind, iface, table)                                              \
    {                                                                                                        \
        sizeof(swh_plugin_descriptor), (major), (minor), (name), "0.0.1", "broken-plugin fixture", (kind),   \
            (iface), NULL, 0, (table)                                                                        \
    }

#endif
