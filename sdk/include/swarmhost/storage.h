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

/* ------------------------------------------------- event carrier (1.4) */
/* A store may carry the live session events of GET /v1/sessions/{id}/events
 * between the daemons that share it (docs/fleet-events.md). The host hands it
 * opaque payload bytes; the store gives each event of one session the next
 * number of that session's sequence (1, 2, 3, ... fleet-wide), keeps the
 * events for a retention window, and wakes every watching daemon. */

/* Which events of one session to read. OWNERSHIP: borrowed. */
typedef struct swh_event_query {
    uint32_t struct_size;
    swh_str session_id;
    uint64_t after_seq; /* events with seq > after_seq, ascending */
    uint32_t limit;     /* at most this many; 0 = none, only the range */
} swh_event_query;

/* Where events_read reports. OWNERSHIP: host-owned; callbacks copy. */
typedef struct swh_event_sink {
    uint32_t struct_size;
    void *ctx;
    /* Called once, before any event: the oldest seq still retained and the
     * newest seq assigned (0, 0 when the session has none). A reader whose
     * after_seq + 1 < first_seq missed trimmed events. */
    void (*range)(void *ctx, uint64_t first_seq, uint64_t last_seq);
    /* One event, in seq order. Non-SWH_OK stops the read. */
    swh_status (*event)(void *ctx, uint64_t seq, swh_str payload);
} swh_event_sink;

/* What a watching host is told, from the store's own listener thread.
 * OWNERSHIP: host-owned; valid from events_watch until events_unwatch (or
 * destroy) returns. The callbacks are [non-blocking]: they only queue. */
typedef struct swh_event_watcher {
    uint32_t struct_size;
    void *ctx;
    /* Session `session_id` has events up to `seq` (some daemon published). */
    void (*wake)(void *ctx, swh_str session_id, uint64_t seq);
    /* The listener lost its link (status != SWH_OK, reason says why), or got
     * it back (SWH_OK): wake-ups may have been missed in between, so the host
     * reads every session it follows again. */
    void (*link)(void *ctx, swh_status status, swh_str reason);
} swh_event_watcher;

/* ------------------------------------------------ shared limits (1.5) */
/* Daemons that share a store may also share their limits through it
 * (docs/fleet.md): counters in fixed windows (requests per key, failed
 * guesses per address) and leases (streams open per key, Idempotency-Keys
 * being answered, messages reserved under a session's cap, hook events being
 * handled). Time is the store's clock, never the daemons'. */

/* A lease on a shared limit: `owner` holds `weight` units of `key` until it
 * releases them or `ttl_ms` pass without a renewal (a daemon killed -9 stops
 * renewing, and its leases lapse). OWNERSHIP: borrowed. */
typedef struct swh_lease {
    uint32_t struct_size;
    swh_str key;     /* the limit's name (any bytes)                        */
    swh_str owner;   /* unique per holder, e.g. "<daemon id>:<n>"           */
    uint64_t weight; /* units this holder takes, >= 1                       */
    uint64_t limit;  /* live leases of `key` hold at most this many; 0 = no limit */
    uint32_t ttl_ms; /* the lease lapses this long after its last acquire, >= 1 */
} swh_lease;

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

    /* --- added in 1.4: the event carrier, optional (all NULL = this store
     * carries no events; the host then keeps them inside one daemon). --- */
    /* Store one event of the session and wake the watchers; *out_seq gets
     * its number, one more than the session's previous event, fleet-wide.
     * The payload is at most 1 MiB of opaque bytes. [any-thread][may-block] */
    swh_status (*events_publish)(void *handle, swh_str session_id, swh_str payload, uint64_t *out_seq);
    /* Report the retained range, then the events after query->after_seq in
     * order, at most query->limit. [any-thread][may-block] */
    swh_status (*events_read)(void *handle, const swh_event_query *query, const swh_event_sink *sink);
    /* Start the store's listener thread, which calls `watcher` until
     * events_unwatch returns; SWH_E_CONFLICT when already watching. The link
     * may still be down when it returns (watcher->link says when it is up).
     * [serial][may-block] */
    swh_status (*events_watch)(void *handle, const swh_event_watcher *watcher);
    /* Stop that thread; no watcher callback runs after it returns. Safe when
     * not watching. destroy stops it too. [serial][may-block] */
    void (*events_unwatch)(void *handle);

    /* --- added in 1.5: shared limits, optional (all NULL = this store
     * shares no limits; the host then keeps them inside one daemon). --- */
    /* Add `delta` (may be 0 or negative) to the counter `key` in its current
     * fixed window and put the sum in *out_value. A window starts with the
     * first add after the previous one ended and lasts `window_ms` (>= 1) by
     * the store's clock; then the counter starts again from 0.
     * [any-thread][may-block] */
    swh_status (*counter_add)(void *handle, swh_str key, int64_t delta, uint32_t window_ms,
                              int64_t *out_value);
    /* Take or renew `lease`, atomically with the check of its limit. An owner
     * that holds a live lease on the key renews it (its expiry moves to now +
     * ttl_ms; weight and limit are not checked again): SWH_OK. Otherwise,
     * when the live leases of the key plus lease->weight would pass
     * lease->limit: SWH_E_CONFLICT, nothing taken. Else it is taken: SWH_OK.
     * *out_held gets the units the key's live leases hold (this one
     * included when taken). Lapsed leases count for nothing.
     * [any-thread][may-block] */
    swh_status (*lease_acquire)(void *handle, const swh_lease *lease, uint64_t *out_held);
    /* Give the owner's lease on the key back; SWH_OK also when it held none
     * (it lapsed, or was never taken). [any-thread][may-block] */
    swh_status (*lease_release)(void *handle, swh_str key, swh_str owner);
} swh_storage_v1;

#ifdef __cplusplus
}
#endif

#endif /* SWARMHOST_STORAGE_H */
