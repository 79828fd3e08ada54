/*
 * swarmhost plugin ABI — session type kind ("swh.session_type/1").
 * The guide's custom session behaviours (multimodal, collaborative,
 * templated): a session created with `type` = the instance's manifest name
 * gets the plugin's extra routes under /v1/sessions/{id}/... and its message
 * vetting. The host routes, the plugin handles: a third-party session type
 * needs no host change.
 *
 * State: a session type keeps its per-session state in the session's
 * metadata (under a key of its own, e.g. "collaborative"). The host hands
 * the current session to every call and applies the patches the plugin asks
 * for (swh_route_response.merge_session_metadata, on_session_created's sink)
 * atomically with the request, so state survives a daemon restart and two
 * daemons on one store see the same state. The host serialises route calls
 * of one session, so a read-modify-write of that state never races.
 *
 * Callers: `caller_user_id` is who makes the request: the user of the API
 * key when the daemon authenticates, else the X-Swarmhost-User header ("" if
 * absent). Permission failures are SWH_E_PERMISSION (the client gets 403).
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
    /* e.g. "participants"; no leading /. Since 1.2 a segment written
     * "{name}" matches any one segment ("participants/{user}"); its value
     * arrives in swh_route_request.path_params, in order. */
    const char *path;
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
    /* --- added in 1.2 --- */
    swh_str path;               /* the matched path, e.g. "participants/bob" */
    const swh_str *path_params; /* values of the route's {name} segments    */
    size_t path_param_count;
} swh_route_request;

/* Where the plugin writes its HTTP answer. OWNERSHIP: host-owned, valid for
 * the call; `respond` copies. Call it exactly once. */
typedef struct swh_route_response {
    uint32_t struct_size;
    void *ctx;
    void (*respond)(void *ctx, uint32_t http_status, swh_str content_type, swh_str body);
    /* --- added in 1.2 --- Call these before `respond`. */
    /* Merge a JSON object into the session's metadata (top-level keys win).
     * The host stores the merged metadata after the call returns and before
     * the answer is sent; if storing fails, the client gets that error
     * instead of the plugin's answer and no event is published. */
    void (*merge_session_metadata)(void *ctx, swh_str json_object);
    /* Publish an event to every listener of this session
     * (GET /v1/sessions/{id}/events), after the metadata patch is stored.
     * `type` e.g. "participant_joined"; payload a JSON object text. */
    void (*publish)(void *ctx, swh_str type, swh_str payload_json);
} swh_route_response;

/* A user message on its way into a session of this type (since 1.2).
 * OWNERSHIP: borrowed for the call. */
typedef struct swh_session_message_input {
    uint32_t struct_size;
    const swh_session *session;
    const swh_message *message; /* after the middleware chain's user stage */
    swh_str caller_user_id;
} swh_session_message_input;

/* Actions the host asks `authorize` about for its own routes. */
#define SWH_ACTION_READ "read"   /* GET session, messages, events      */
#define SWH_ACTION_WRITE "write" /* (plugins check writes in on_user_message) */
#define SWH_ACTION_ADMIN "admin" /* PATCH, DELETE, archive the session */

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

    /* --- added in 1.2 --- */
    /* [any-thread][may-block] Like on_message, with the caller; the host
     * calls this one instead of on_message when it is set. Return
     * SWH_E_PERMISSION (403) or SWH_E_INVALID (400) with last_error to refuse;
     * editor->reject refuses with 422. May be NULL. */
    swh_status (*on_user_message)(void *handle, const swh_session_message_input *input,
                                  const swh_message_editor *editor);
    /* [any-thread][may-block] May `caller_user_id` do `action`
     * (SWH_ACTION_*) on this session through the host's own routes?
     * SWH_OK, or SWH_E_PERMISSION with last_error saying why (403).
     * NULL = no type-level limit for the owner and for callers that are not
     * tenants (no API keys, admin keys).
     * Tenancy: a session belongs to its owner. Under user API keys another
     * user reaches it only when this function says SWH_OK for that user AND
     * refuses a principal nobody has named (the host asks both for "read"):
     * a type may widen access only to principals it knows itself
     * (collaborative participants), never to everyone. */
    swh_status (*authorize)(void *handle, const swh_session *session, swh_str caller_user_id, swh_str action);
} swh_session_type_v1;

#ifdef __cplusplus
}
#endif

#endif /* SWARMHOST_SESSION_TYPE_H */
