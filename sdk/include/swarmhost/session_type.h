/*
 * swarmhost plugin ABI — session type kind ("swh.session_type/1").
 * The guide's custom session behaviours (multimodal, collaborative,
 * templated): a session created with `type` = the plugin's name gets the
 * plugin's extra routes under /v1/sessions/{id}/... and its message vetting.
 */
#ifndef SWARMHOST_SESSION_TYPE_H
#define SWARMHOST_SESSION_TYPE_H

#include "abi.h"
#include "middleware.h" /* swh_message_editor */

#ifdef __cplusplus
extern "C" {
#endif

/* A route the plugin serves: METHOD /v1/sessions/{id}/<path>.
 * OWNERSHIP: static, owned by the plugin library. */
typedef struct swh_route {
    uint32_t struct_size;
    const char *method; /* "GET", "POST", ...                 */
    const char *path;   /* e.g. "participants"; no leading / */
} swh_route;

/* One routed HTTP request. OWNERSHIP: borrowed for the call. */
typedef struct swh_route_request {
    uint32_t struct_size;
    uint32_t route_index; /* index into the plugin's route table */
    const swh_session *session;
    swh_str caller_user_id; /* authenticated caller, "" if none    */
    swh_str query;          /* raw query string without '?'        */
    swh_str content_type;
    swh_str body;
} swh_route_request;

/* Where the plugin writes its HTTP answer. OWNERSHIP: host-owned, valid for
 * the call; `respond` copies. Call it exactly once. */
typedef struct swh_route_response {
    uint32_t struct_size;
    void *ctx;
    void (*respond)(void *ctx, uint32_t http_status, swh_str content_type, swh_str body);
} swh_route_response;

typedef struct swh_session_type_v1 {
    uint32_t struct_size;

    swh_status (*create)(const swh_host_api *host, const swh_config *cfg, void **out_handle);
    void (*destroy)(void *handle);
    const char *(*last_error)(void *handle);

    /* The routes this type adds. [any-thread] `*out_routes` is static; stride
     * is routes[0].struct_size. */
    swh_status (*routes)(void *handle, const swh_route **out_routes, size_t *out_count);
    /* [any-thread][may-block] Serve one routed request. */
    swh_status (*handle_route)(void *handle, const swh_route_request *request,
                               const swh_route_response *response);
    /* [any-thread][may-block] A session of this type was created. The
     * plugin may emit one JSON object through sink->json that the host
     * merges into the session's metadata. May be NULL. */
    swh_status (*on_session_created)(void *handle, const swh_session *session, const swh_result_sink *sink);
    /* [any-thread][may-block] Vet or enrich a user message of a session of
     * this type (same editor as middleware). May be NULL. */
    swh_status (*on_message)(void *handle, const swh_session *session, const swh_message *message,
                             const swh_message_editor *editor);
} swh_session_type_v1;

#ifdef __cplusplus
}
#endif

#endif /* SWARMHOST_SESSION_TYPE_H */
