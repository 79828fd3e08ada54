/*
 * swarmhost plugin ABI — lifecycle hook kind ("swh.hook/1").
 * The guide's ISessionLifecycleHook. Hooks run off the request path: the
 * host queues events and delivers them from its own worker, so a slow hook
 * never delays a client.
 */
#ifndef SWARMHOST_HOOK_H
#define SWARMHOST_HOOK_H

#include "abi.h"

#ifdef __cplusplus
extern "C" {
#endif

#define SWH_EVENT_SESSION_CREATED 0x01u
#define SWH_EVENT_MESSAGE_SENT 0x02u /* user and assistant messages */
#define SWH_EVENT_SESSION_ARCHIVED 0x04u
#define SWH_EVENT_SESSION_DELETED 0x08u
#define SWH_EVENT_PROVIDER_ERROR 0x10u
/* The hook's queue has run empty after at least one other event: a hook
 * that put work off until events it knew were queued behind the one it was
 * handling (the backup hook's snapshots) does that work now. Not an event of
 * a session: `session` points to a session with an empty id (nothing else
 * in it means anything), `message` is NULL, `details_json` is "{}".
 * Delivered only to a hook whose events() asks for it, and only by hosts
 * built with this bit (an older host never sends it, so a hook must not
 * wait for it before it has received one). Not counted in the host's
 * delivered/failed counters. */
#define SWH_EVENT_QUEUE_IDLE 0x20u

/* One event. OWNERSHIP: borrowed for the call. */
typedef struct swh_event {
    uint32_t struct_size;
    uint32_t type; /* one SWH_EVENT_* bit                     */
    swh_time_us time;
    const swh_session *session; /* the session as of the event; never NULL */
    const swh_message *message; /* MESSAGE_SENT only, else NULL            */
    swh_str details_json;       /* event-specific extras, JSON object      */
} swh_event;

typedef struct swh_hook_v1 {
    uint32_t struct_size;

    swh_status (*create)(const swh_host_api *host, const swh_config *cfg, void **out_handle);
    void (*destroy)(void *handle);
    const char *(*last_error)(void *handle);

    /* SWH_EVENT_* bits this instance wants. [any-thread][non-blocking] */
    uint32_t (*events)(void *handle);
    /* [serial][may-block] Deliver one event. May read the whole session with
     * host->read_session. A failure is logged and counted, nothing else. */
    swh_status (*on_event)(void *handle, const swh_event *event);
    /* [any-thread] Write text to append to the daemon's GET /metrics
     * (Prometheus text format) through sink->json (the text is passed as
     * is). May be NULL. */
    swh_status (*render_metrics)(void *handle, const swh_result_sink *sink);
} swh_hook_v1;

#ifdef __cplusplus
}
#endif

#endif /* SWARMHOST_HOOK_H */
