/*
 * swarmhost plugin ABI — core types (plain C99).
 *
 * Conventions used in every swarmhost header
 * ------------------------------------------
 *  - Names: types are `swh_*`; functions a plugin implements live in its kind
 *    table (`swh_storage_v1`, ...); functions the host implements are members
 *    of `swh_host_api` and the sink structs, and are called "callbacks".
 *  - Versioning: every public struct and table starts with `uint32_t
 *    struct_size`. New members are only ever appended (with a comment naming
 *    the ABI minor that added them). A reader checks `struct_size` before
 *    touching a member that a smaller (older) struct may not have.
 *  - Strings crossing the boundary are `swh_str {ptr,len}`, UTF-8, not
 *    necessarily NUL-terminated. Static identifiers in the descriptor and the
 *    config schema are NUL-terminated `const char*` that live as long as the
 *    library is loaded.
 *  - OWNERSHIP: inputs are BORROWED for the duration of the call only; copy
 *    what you keep. Outputs travel back through host callbacks (sinks), which
 *    copy what they receive before returning. Nothing allocated on one side is
 *    ever freed on the other.
 *  - Errors: functions return `swh_status`. On failure, a human-readable
 *    reason is available from the kind's `last_error(handle)` until the next
 *    call on that handle from the same thread. No C++ exception may cross the
 *    boundary; a C++ plugin catches at its edge and returns SWH_E_INTERNAL.
 *  - Threading tags on every function:
 *      [any-thread]   may be called concurrently from several host threads;
 *      [serial]       never called concurrently with any other call on the
 *                     same handle;
 *      [may-block]    may block on I/O (the host calls it on a worker thread,
 *                     never on a network I/O thread);
 *      [non-blocking] must return quickly; slow work goes through host
 *                     services (e.g. the asynchronous HTTP client).
 */
#ifndef SWARMHOST_ABI_H
#define SWARMHOST_ABI_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------- version */

/* Semantic version of the ABI. The host loads a plugin when the majors are
 * equal and the plugin's minor is <= the host's minor. */
#define SWH_ABI_VERSION_MAJOR 1
#define SWH_ABI_VERSION_MINOR 5

/* True when the struct behind `ptr` (which may come from an older or newer
 * build) is large enough to hold `member`: check before reading a member
 * added in a later minor. Works in C99 and C++. */
#define SWH_HAS_MEMBER(ptr, type, member)                                                                    \
    (swh_not_null_(ptr) && (ptr)->struct_size >= offsetof(type, member) + sizeof(((type *)0)->member))
/* (A function, so that `SWH_HAS_MEMBER(&reference, ...)` in C++ does not
 * trip GCC's -Wnonnull-compare.) */
static inline int swh_not_null_(const void *ptr) {
    return ptr != 0;
}

/* The one symbol each plugin shared object exports. */
#define SWH_PLUGIN_ENTRY_SYMBOL "swh_plugin_entry"

#if defined(_WIN32)
#define SWH_EXPORT __declspec(dllexport)
#else
#define SWH_EXPORT __attribute__((visibility("default")))
#endif

/* ----------------------------------------------------------------- status */

/* Fixed-width so the ABI does not depend on the compiler's enum size. */
typedef int32_t swh_status;

#define SWH_OK 0
#define SWH_E_INVALID 1       /* bad argument or config; the caller's fault   */
#define SWH_E_NOT_FOUND 2     /* the named session/message/route is absent  */
#define SWH_E_CONFLICT 3      /* already exists / state does not allow it    */
#define SWH_E_UNAVAILABLE 4   /* backend down or unreachable; retry later    */
#define SWH_E_TIMEOUT 5       /* gave up waiting                              */
#define SWH_E_UNSUPPORTED 6   /* this plugin does not implement the call     */
#define SWH_E_REJECTED 7      /* a policy refused the input (middleware etc) */
#define SWH_E_INTERNAL 8      /* bug or unexpected failure inside the plugin */
#define SWH_E_CANCELLED 9     /* the host cancelled the operation            */
#define SWH_E_RATE_LIMITED 10 /* upstream or policy rate limit              */
#define SWH_E_UPSTREAM 11     /* upstream answered with garbage or an error  */
#define SWH_E_PERMISSION 12   /* caller lacks the permission                 */
/* Statuses above SWH_STATUS_LAST are reported by the host as a plugin bug. */
#define SWH_STATUS_LAST 12

/* ---------------------------------------------------------------- strings */

/* A borrowed UTF-8 byte range. `ptr` may be NULL only when `len` is 0. */
typedef struct swh_str {
    const char *ptr;
    size_t len;
} swh_str;

/* --------------------------------------------------------------- log level */

#define SWH_LOG_TRACE 0
#define SWH_LOG_DEBUG 1
#define SWH_LOG_INFO 2
#define SWH_LOG_WARN 3
#define SWH_LOG_ERROR 4

/* ------------------------------------------------------------------ kinds */

#define SWH_KIND_STORAGE 1
#define SWH_KIND_PROVIDER 2
#define SWH_KIND_MIDDLEWARE 3
#define SWH_KIND_HOOK 4
#define SWH_KIND_SESSION_TYPE 5

/* Interface ids, CLAP style: a breaking change of a kind gets a new id. */
#define SWH_IFACE_STORAGE_V1 "swh.storage/1"
#define SWH_IFACE_PROVIDER_V1 "swh.provider/1"
#define SWH_IFACE_MIDDLEWARE_V1 "swh.middleware/1"
#define SWH_IFACE_HOOK_V1 "swh.hook/1"
#define SWH_IFACE_SESSION_TYPE_V1 "swh.session_type/1"

/* ---------------------------------------------------------- config schema */

#define SWH_CFG_STRING 1      /* JSON string                          */
#define SWH_CFG_INT 2         /* JSON integer                          */
#define SWH_CFG_NUMBER 3      /* JSON number (integer or float)        */
#define SWH_CFG_BOOL 4        /* JSON true/false                       */
#define SWH_CFG_STRING_LIST 5 /* JSON array of strings                 */
#define SWH_CFG_OBJECT 6      /* any JSON object (plugin interprets)   */

/* One declared configuration key (Fluent Bit's config map, in C).
 * The host validates each instance's config against this table before
 * `create`: unknown keys, wrong types and missing required keys are manifest
 * errors. Defaults are filled in by the host, so `create` sees every key.
 * OWNERSHIP: static, owned by the plugin library. */
typedef struct swh_config_field {
    uint32_t struct_size;     /* sizeof(swh_config_field) of the plugin    */
    const char *key;          /* e.g. "path"                                */
    uint32_t type;            /* SWH_CFG_*                                  */
    uint32_t required;        /* 1 = must be given, 0 = optional            */
    const char *default_json; /* JSON literal ("\"x\"", "10", "[]") or NULL */
    const char *description;  /* one line, shown by `swarmhost plugins`     */
} swh_config_field;

/* ------------------------------------------------------------- data types */

/* Timestamps are microseconds since the Unix epoch, UTC. */
typedef int64_t swh_time_us;

/* A chat message, mirroring the guide's SessionMessage.
 * OWNERSHIP: every member is borrowed for the duration of the call that
 * passed the struct. JSON members hold a JSON object text ("{}" if empty). */
typedef struct swh_message {
    uint32_t struct_size;
    swh_str id; /* message id, unique                    */
    swh_str session_id;
    swh_str role; /* "user" | "assistant" | "system" | ... */
    swh_str content;
    swh_time_us timestamp;
    swh_str metadata_json;          /* JSON object                           */
    swh_str provider_message_id;    /* may be empty                          */
    swh_str provider_metadata_json; /* JSON object                           */

    /* --- added in 1.3 --- */
    /* Structured content, a JSON object text; "" or "{}" = none (the message
     * is the plain text in `content`). Every key is optional:
     *   "parts":        the content as parts, in order (user messages):
     *                   {"type":"text","text":"..."}
     *                   {"type":"image","url":"https://..|data:..","detail":"auto"}
     *                   {"type":"file","filename":"..","media_type":"..",
     *                    "data":"<base64>"} or {"type":"file","file_id":".."}
     *   "tool_calls":   (role "assistant") the tools the model asked for:
     *                   [{"id":"call_1","name":"get_weather",
     *                     "arguments":"<the argument JSON text, as the model
     *                     wrote it; may be invalid JSON>"}]
     *   "tool_call_id": (role "tool") the call this result answers; the
     *                   result text is `content`
     *   "reasoning":    (role "assistant") thinking text, kept apart from the
     *                   answer in `content`
     *   "reasoning_signature": the vendor's opaque proof of that thinking
     *                   (Anthropic), needed to send it back
     * `content` always holds the text (the text parts joined), so a plugin
     * that reads only `content` (every 1.0-1.2 plugin) sees the text it
     * always saw. Role "tool" is new in 1.3: a 1.0-1.2 provider receives tool
     * results as role "tool" with the result text in `content`. */
    swh_str structured_json;
} swh_message;

/* Session status values (the guide's SessionStatus). */
#define SWH_SESSION_ACTIVE "active"
#define SWH_SESSION_ARCHIVED "archived"

/* A session row. `context_json` is the guide's SessionContext:
 * {"user_context":{...}, "system_context":{...}}.
 * OWNERSHIP: borrowed for the duration of the call. */
typedef struct swh_session {
    uint32_t struct_size;
    swh_str id;
    swh_str user_id;
    swh_str provider; /* provider instance name from the manifest */
    swh_str model;
    swh_str status; /* SWH_SESSION_ACTIVE / SWH_SESSION_ARCHIVED */
    swh_str type;   /* session type name; "" = plain chat        */
    swh_time_us created_at;
    swh_time_us last_activity;
    uint64_t message_count;
    swh_str config_json;   /* SessionConfig, JSON object                */
    swh_str context_json;  /* SessionContext, JSON object               */
    swh_str metadata_json; /* free-form, JSON object                    */
} swh_session;

/* ----------------------------------------------------------- result sink */

/* How a plugin hands results back: the host passes a sink, the plugin calls
 * the callback once per result. The callback copies the data before it
 * returns, so the plugin may free or reuse its buffers right after. A
 * callback returning non-SWH_OK asks the plugin to stop emitting and to
 * return that status. Callbacks run on the thread that calls them. */
typedef struct swh_result_sink {
    uint32_t struct_size;
    void *ctx; /* host-owned, pass back unchanged */
    swh_status (*session)(void *ctx, const swh_session *s);
    swh_status (*message)(void *ctx, const swh_message *m);
    swh_status (*json)(void *ctx, swh_str json_text);
} swh_result_sink;

/* ----------------------------------------------------------- host config */

/* Opaque, host-owned view of one instance's validated config (defaults
 * already applied). Valid only during `create`; copy what you keep. */
typedef struct swh_config swh_config;

/* ------------------------------------------------------------ HTTP client */
/* Added in ABI 1.1. */

/* One HTTP header. OWNERSHIP: borrowed for the call that passed it. Arrays
 * of headers are walked with the stride headers[0].struct_size. */
typedef struct swh_http_header {
    uint32_t struct_size;
    swh_str name;
    swh_str value;
} swh_http_header;

/* An outgoing HTTP request made through the host's asynchronous client (so a
 * provider needs no HTTP library of its own and holds no thread while a reply
 * streams). OWNERSHIP: borrowed until http_start returns; the host copies. */
typedef struct swh_http_request {
    uint32_t struct_size;
    swh_str method; /* "POST", "GET", ...                    */
    swh_str url;    /* absolute http:// or https:// URL      */
    const swh_http_header *headers;
    size_t header_count;
    swh_str body;
    uint32_t timeout_ms;         /* whole exchange; 0 = no limit          */
    uint32_t connect_timeout_ms; /* 0 = host default (10 s)               */
    uint32_t idle_timeout_ms;    /* max silence between bytes; 0 = none   */
    uint32_t delay_ms;           /* start after this delay (retry backoff) */
} swh_http_request;

/* Where the host reports one HTTP exchange. OWNERSHIP: plugin-owned; must
 * stay valid until on_done has been called. Callbacks run on the host's HTTP
 * thread, never concurrently for one request, in this order: on_response
 * once (when the status line and headers are in), on_body zero or more
 * times, on_done exactly once (also after a failure before any response). */
typedef struct swh_http_sink {
    uint32_t struct_size;
    void *ctx;
    void (*on_response)(void *ctx, int32_t http_status, const swh_http_header *headers, size_t header_count);
    /* A piece of the body as it arrives. Return non-SWH_OK to abort the
     * exchange (on_done then reports SWH_E_CANCELLED). */
    swh_status (*on_body)(void *ctx, swh_str chunk);
    /* SWH_OK when the body is complete (whatever the HTTP status); else
     * SWH_E_TIMEOUT, SWH_E_UNAVAILABLE (connect/DNS/reset), SWH_E_CANCELLED. */
    void (*on_done)(void *ctx, swh_status status, swh_str error_message);
} swh_http_sink;

/* -------------------------------------------------------------- host API */

typedef struct swh_host_api swh_host_api;

/* Host services, one table handed to `create` (SQLite's sqlite3_api_routines
 * idea). OWNERSHIP: host-owned; valid from `create` until `destroy` returns.
 * Each instance gets its own table, so log lines are tagged with the
 * instance without the plugin passing a name. All callbacks: [any-thread].
 * A member that is NULL is not offered by this host. */
struct swh_host_api {
    uint32_t struct_size;
    uint16_t abi_major;
    uint16_t abi_minor;
    void *host_ctx; /* pass as first argument to every callback below */

    /* Log one line into the host's log sink. */
    void (*log)(void *host_ctx, int32_t level, swh_str message);
    /* Wall clock, microseconds since the epoch. */
    swh_time_us (*now_us)(void *host_ctx);
    /* Write a new unique id (36 ASCII chars, UUIDv4 text) into out[0..35];
     * out[36] is set to NUL. */
    void (*new_id)(void *host_ctx, char out[37]);

    /* Config access during `create` only. Return SWH_E_NOT_FOUND for an
     * absent key, SWH_E_INVALID for a type mismatch. Strings written to
     * `out` are borrowed until `create` returns. */
    swh_status (*config_string)(void *host_ctx, const swh_config *cfg, const char *key, swh_str *out);
    swh_status (*config_int)(void *host_ctx, const swh_config *cfg, const char *key, int64_t *out);
    swh_status (*config_number)(void *host_ctx, const swh_config *cfg, const char *key, double *out);
    swh_status (*config_bool)(void *host_ctx, const swh_config *cfg, const char *key, int32_t *out);
    /* Number of items of a SWH_CFG_STRING_LIST key, and item `index`. */
    swh_status (*config_list_size)(void *host_ctx, const swh_config *cfg, const char *key, size_t *out);
    swh_status (*config_list_string)(void *host_ctx, const swh_config *cfg, const char *key, size_t index,
                                     swh_str *out);
    /* The whole validated config as a JSON object text. */
    swh_status (*config_json)(void *host_ctx, const swh_config *cfg, swh_str *out);

    /* Add `value` to a counter named `name` (Prometheus-style name, labels
     * as a JSON object text, may be empty). */
    void (*metric_add)(void *host_ctx, swh_str name, swh_str labels_json, double value);
    /* Publish an event on the host event bus (type e.g. "myplugin.alert",
     * payload a JSON object text). */
    void (*publish_event)(void *host_ctx, swh_str type, swh_str payload_json);

    /* Read a session (sink->session) and its messages (sink->message; NULL: the row only) through
     * the host's configured storage (hooks and session types need it). [may-block] */
    swh_status (*read_session)(void *host_ctx, swh_str session_id, const swh_result_sink *sink);

    /* --- added in 1.1 --- */
    /* Start an HTTP exchange on the host's event loop; returns at once. On
     * SWH_OK the host calls sink->on_done exactly once later (never before
     * http_start returns) and *out_request_id identifies the exchange. On
     * another status the sink is never called. [non-blocking] */
    swh_status (*http_start)(void *host_ctx, const swh_http_request *request, const swh_http_sink *sink,
                             uint64_t *out_request_id);
    /* Abort an exchange; on_done follows with SWH_E_CANCELLED unless it has
     * already been called. Unknown or finished ids are ignored. */
    void (*http_cancel)(void *host_ctx, uint64_t request_id);
};

/* ------------------------------------------------------------- descriptor */

/* What `swh_plugin_entry` returns. OWNERSHIP: static, owned by the library;
 * the pointer stays valid while the library is loaded. */
typedef struct swh_plugin_descriptor {
    uint32_t struct_size;
    uint16_t abi_major;       /* SWH_ABI_VERSION_MAJOR built against */
    uint16_t abi_minor;       /* SWH_ABI_VERSION_MINOR built against */
    const char *name;         /* manifest name, [a-z0-9_]+, e.g. "sqlite" */
    const char *version;      /* the plugin's semver, e.g. "1.2.0"        */
    const char *description;  /* one line                                 */
    uint32_t kind;            /* SWH_KIND_*                                */
    const char *interface_id; /* SWH_IFACE_*_V1 matching `kind`           */
    /* Declared config schema; the array stride is config_schema[0].struct_size
     * (all entries share one size). May be NULL when count is 0. */
    const swh_config_field *config_schema;
    size_t config_field_count;
    /* The kind's function table (swh_storage_v1, ...). Its first member is
     * its own struct_size. */
    const void *vtable;
} swh_plugin_descriptor;

/* The entry point every plugin exports (C linkage, default visibility):
 *     SWH_EXPORT const swh_plugin_descriptor *swh_plugin_entry(void);
 * [main-thread] Called once after load; must not allocate anything that
 * needs freeing and must not call the host. */
typedef const swh_plugin_descriptor *(*swh_plugin_entry_fn)(void);

#ifdef __cplusplus
}
#endif

#endif /* SWARMHOST_ABI_H */
