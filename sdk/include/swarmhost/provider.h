/*
 * swarmhost plugin ABI — provider kind ("swh.provider/1").
 * The guide's IProviderSession: turn a conversation into a reply, streamed.
 *
 * A provider is a translator: it builds the vendor request, sends it with the
 * host's asynchronous HTTP client (or computes the reply itself, like echo),
 * and reports text deltas and metadata through a host-owned sink. A reply may
 * take minutes, so `start` must not block waiting for it.
 */
#ifndef SWARMHOST_PROVIDER_H
#define SWARMHOST_PROVIDER_H

#include "abi.h"

#ifdef __cplusplus
extern "C" {
#endif

/* One request to the model. OWNERSHIP: borrowed until `start` returns; a
 * plugin answering asynchronously copies what it needs. */
typedef struct swh_provider_request {
    uint32_t struct_size;
    uint64_t call_id;           /* host-chosen, unique per instance     */
    const swh_session *session; /* the session being continued         */
    /* The conversation, chronological, ending with the new user message.
     * Walk it with the stride messages[0].struct_size (a newer host's
     * swh_message may be larger than the one the plugin was built with). */
    const swh_message *messages;
    size_t message_count;
    swh_str model;            /* model to use ("" = plugin default)   */
    swh_str system_prompt;    /* "" = none                            */
    swh_str assistant_prefix; /* continue after this partial answer   */
    uint32_t stream;          /* 1 = client streams (hint only)       */

    /* --- added in 1.3 --- */
    /* Generation parameters in the host's neutral form, a JSON object text
     * ("{}" = the vendor's defaults). Every key is optional; a provider maps
     * what its vendor knows and reports the rest as SWH_E_INVALID naming the
     * key, or ignores it only where its README says so:
     *   "temperature", "top_p", "presence_penalty", "frequency_penalty": number
     *   "max_output_tokens": integer      "seed": integer
     *   "stop": [string, ...]             "user": string
     *   "tools": [{"type":"function","name":"..","description":"..",
     *              "parameters":{JSON schema object},"strict":bool}]
     *   "tool_choice": "auto" | "none" | "required"
     *                  | {"type":"function","name":".."}
     *   "parallel_tool_calls": bool
     *   "response_format": {"type":"text"} | {"type":"json_object"}
     *        | {"type":"json_schema","name":"..","schema":{..},"strict":bool}
     *   "reasoning_effort": "minimal" | "low" | "medium" | "high"
     *   "cache_control", "system_cache_control", tools[i].cache_control:
     *        prompt-cache marks {"type":"ephemeral","ttl":"5m"|"1h"} (ttl
     *        optional) of the request, the system prompt, a tool; structured
     *        content may carry one on a message, a part, a tool call. A
     *        cost hint: a provider without such marks drops them
     *   "extra": {vendor-specific keys, copied into the vendor's request body
     *             untouched (they win over the mapped ones)} */
    swh_str params_json;
} swh_provider_request;

/* What else a reply carries besides answer text (ABI 1.3). */
#define SWH_REPLY_TOOL_CALL 1           /* a piece of a tool call            */
#define SWH_REPLY_REASONING 2           /* a piece of thinking text          */
#define SWH_REPLY_REASONING_SIGNATURE 3 /* the thinking's opaque signature   */
#define SWH_REPLY_FINISH 4              /* why the reply ended               */
#define SWH_REPLY_USAGE 5               /* token counts                      */

/* One reply event (ABI 1.3). OWNERSHIP: borrowed for the callback. */
typedef struct swh_reply_event {
    uint32_t struct_size;
    uint32_t type; /* SWH_REPLY_*                                           */
    /* TOOL_CALL: which call of the reply (0, 1, ...); the first piece of a
     * call carries `id` and `name`, later pieces may leave them empty. */
    uint32_t index;
    swh_str id;
    swh_str name;
    /* TOOL_CALL: a fragment of the argument JSON text (fragments of one call
     * concatenate to its arguments); REASONING: a piece of thinking text;
     * REASONING_SIGNATURE: the signature; FINISH: "stop" | "length" |
     * "tool_calls" | "content_filter". */
    swh_str text;
    /* USAGE: token counts, -1 = unknown. cached_input_tokens and
     * reasoning_tokens are parts of input_tokens and output_tokens. */
    int64_t input_tokens;
    int64_t output_tokens;
    int64_t cached_input_tokens;
    int64_t reasoning_tokens;
} swh_reply_event;

/* Where a provider reports one call's results. OWNERSHIP: host-owned, valid
 * from `start` until `done` has been called. Callbacks copy their inputs.
 * They may be called from any thread, but never concurrently for one call,
 * and never after `done`. */
typedef struct swh_provider_sink {
    uint32_t struct_size;
    void *ctx;
    /* A piece of the reply text, in order. Returns SWH_E_CANCELLED when the
     * host no longer wants the reply (the plugin should stop and call done). */
    swh_status (*chunk)(void *ctx, swh_str text);
    /* Provider-side id of the reply and metadata (usage, finish_reason...)
     * as a JSON object text; may be called several times, later keys win. */
    void (*metadata)(void *ctx, swh_str provider_message_id, swh_str provider_metadata_json);
    /* Exactly once per successful `start`: SWH_OK, or the failure status and
     * a message (e.g. SWH_E_UPSTREAM, SWH_E_TIMEOUT, SWH_E_RATE_LIMITED). */
    void (*done)(void *ctx, swh_status status, swh_str error_message);

    /* --- added in 1.3 --- */
    /* Tool calls, thinking, the finish reason and usage, in reply order
     * relative to `chunk`. Same return and threading rules as `chunk`. A
     * provider that never calls it (every 1.0-1.2 provider) gives a text
     * reply whose finish reason and usage come from `metadata` keys
     * "finish_reason" and "usage", as before. */
    swh_status (*event)(void *ctx, const swh_reply_event *event);
} swh_provider_sink;

typedef struct swh_provider_v1 {
    uint32_t struct_size;

    /* Lifecycle as in swh_storage_v1. */
    swh_status (*create)(const swh_host_api *host, const swh_config *cfg, void **out_handle);
    void (*destroy)(void *handle); /* after every started call is done */
    const char *(*last_error)(void *handle);

    /* [any-thread][non-blocking] Begin a reply. On SWH_OK the plugin calls
     * sink->done exactly once later (possibly before `start` returns). On
     * any other status it never touches the sink. */
    swh_status (*start)(void *handle, const swh_provider_request *request, const swh_provider_sink *sink);
    /* [any-thread][non-blocking] Ask to stop call `call_id` early (client
     * went away). Unknown or finished ids are ignored. The plugin still
     * calls done (with SWH_E_CANCELLED). May be NULL. */
    void (*cancel)(void *handle, uint64_t call_id);

    /* [any-thread] The guide's get_provider_metadata: one JSON object via
     * sink->json (model, limits, config without secrets). May be NULL. */
    swh_status (*get_metadata)(void *handle, const swh_result_sink *sink);
    /* [serial] The guide's update_provider_config: apply a JSON object of
     * changed keys; calls already started finish on the old settings. May
     * be NULL (= SWH_E_UNSUPPORTED). */
    swh_status (*update_config)(void *handle, swh_str config_json);
    /* [any-thread][may-block] {"status":"healthy"|"unhealthy",...} via
     * sink->json. May be NULL. */
    swh_status (*health_check)(void *handle, const swh_result_sink *sink);
} swh_provider_v1;

#ifdef __cplusplus
}
#endif

#endif /* SWARMHOST_PROVIDER_H */
