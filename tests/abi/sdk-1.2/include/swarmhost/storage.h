/*
 * swarmhost plugin ABI — storage kind ("swh.storage/1").
 * The guide's ISessionStorage: sessions and their messages, durable.
 */
#ifndef SWARMHOST_STORAGE_H
#define SWARMHOST_STORAGE_H

#include "abi.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Which session fields `update_session` writes (bit mask). */
#define SWH_SESSION_FIELD_STATUS 0x01u
#define SWH_SESSION_FIELD_MODEL 0x02u
#define SWH_SESSION_FIELD_PROVIDER 0x04u
#define SWH_SESSION_FIELD_CONFIG 0x08u
#define SWH_SESSION_FIELD_CONTEXT 0x10u
#define SWH_SESSION_FIELD_METADATA 0x20u
#define SWH_SESSION_FIELD_LAST_ACTIVITY 0x40u

/* Filter for list_sessions. Empty strings mean "any". OWNERSHIP: borrowed. */
typedef struct swh_session_filter {
    uint32_t struct_size;
    swh_str user_id;
    swh_str status;
    uint32_t limit; /* 0 = no limit */
    uint32_t offset;
} swh_session_filter;

/* Query for get_messages. OWNERSHIP: borrowed. */
typedef struct swh_message_query {
    uint32_t struct_size;
    swh_str session_id;
    swh_str role;      /* "" = any role                                    */
    swh_time_us since; /* only messages with timestamp >= since; 0 = all   */
    uint32_t limit;    /* 0 = all; else the LAST `limit` matching messages  */
} swh_message_query;

/* The storage function table. All functions are [any-thread][may-block]:
 * the host calls them from a bounded worker pool, concurrently, on the same
 * handle; the plugin synchronises internally. */
typedef struct swh_storage_v1 {
    uint32_t struct_size;

    /* Make an instance. `host` and `cfg` are host-owned (see abi.h). On
     * failure the plugin still sets *out_handle when it can, so that the
     * host can read last_error, then the host calls destroy. */
    swh_status (*create)(const swh_host_api *host, const swh_config *cfg, void **out_handle);
    /* Release everything. Called once, after all other calls returned. */
    void (*destroy)(void *handle);
    /* Reason for the last failure on this handle by this thread; a
     * NUL-terminated string owned by the plugin, valid until the next call
     * on the handle from the same thread. Never NULL (may be ""). */
    const char *(*last_error)(void *handle);

    /* Insert a new session; SWH_E_CONFLICT if the id exists. The host fills
     * every member (message_count is 0). */
    swh_status (*create_session)(void *handle, const swh_session *session);
    /* Emit the session through sink->session once; SWH_E_NOT_FOUND if
     * absent. */
    swh_status (*get_session)(void *handle, swh_str session_id, const swh_result_sink *sink);
    /* Write the members of `session` named by `fields` (SWH_SESSION_FIELD_*)
     * to the row whose id is session->id; SWH_E_NOT_FOUND if absent. */
    swh_status (*update_session)(void *handle, const swh_session *session, uint32_t fields);
    /* Remove the session and all its messages; SWH_E_NOT_FOUND if absent. */
    swh_status (*delete_session)(void *handle, swh_str session_id);
    /* Emit matching sessions through sink->session, most recently active
     * first. */
    swh_status (*list_sessions)(void *handle, const swh_session_filter *filter, const swh_result_sink *sink);

    /* Append a message and, in the same atomic step, increment the
     * session's message_count and set last_activity to the message's
     * timestamp. Durable when it returns SWH_OK (the host acknowledges the
     * client only then). SWH_E_NOT_FOUND if the session is absent,
     * SWH_E_CONFLICT if the message id exists. */
    swh_status (*add_message)(void *handle, const swh_message *message);
    /* Emit matching messages through sink->message in chronological order
     * (timestamp, then insertion order). SWH_E_NOT_FOUND if the session is
     * absent. */
    swh_status (*get_messages)(void *handle, const swh_message_query *query, const swh_result_sink *sink);

    /* Emit one JSON object through sink->json: {"status":"healthy"|
     * "unhealthy", ...backend details}. Returns SWH_E_UNAVAILABLE when
     * unhealthy. */
    swh_status (*health_check)(void *handle, const swh_result_sink *sink);
} swh_storage_v1;

#ifdef __cplusplus
}
#endif

#endif /* SWARMHOST_STORAGE_H */
