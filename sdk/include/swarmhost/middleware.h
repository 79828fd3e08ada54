/*
 * swarmhost plugin ABI — middleware kind ("swh.middleware/1").
 * The guide's ISessionMiddleware: inspect, rewrite, enrich or reject a
 * message on its way to the provider (stage USER) or back (stage ASSISTANT).
 */
#ifndef SWARMHOST_MIDDLEWARE_H
#define SWARMHOST_MIDDLEWARE_H

#include "abi.h"

#ifdef __cplusplus
extern "C" {
#endif

#define SWH_STAGE_USER 0x1u      /* user message, before it is stored */
#define SWH_STAGE_ASSISTANT 0x2u /* reply, before it is stored        */

/* What a middleware sees. OWNERSHIP: borrowed for the call. */
typedef struct swh_middleware_input {
    uint32_t struct_size;
    uint32_t stage; /* one SWH_STAGE_* bit                    */
    const swh_session *session;
    const swh_message *message; /* the message as the chain has it so far */
    swh_str context_json;       /* {"user_context":..,"system_context":..} */
} swh_middleware_input;

/* How a middleware changes the message. OWNERSHIP: host-owned, valid for
 * the call; callbacks copy their inputs. Not calling any = pass unchanged.
 * Call them only on the thread running `process`, before it returns (the
 * host ignores, and fails the call for, a callback from another thread). */
typedef struct swh_message_editor {
    uint32_t struct_size;
    void *ctx;
    /* Replace the content. */
    void (*set_content)(void *ctx, swh_str content);
    /* Merge a JSON object into the message metadata (top-level keys win). */
    void (*merge_metadata)(void *ctx, swh_str json_object);
    /* Refuse the message: the client gets a 4xx with `reason`, nothing is
     * stored or sent upstream. */
    void (*reject)(void *ctx, swh_str reason);

    /* --- added in 1.3 --- */
    /* Replace the message's structured content (swh_message.structured_json,
     * a JSON object text) - e.g. to redact a tool call's arguments. A
     * malformed object fails the call. */
    void (*set_structured)(void *ctx, swh_str json_object);
} swh_message_editor;

/* Streamed replies: text arrives in pieces. A middleware that needs to see
 * across piece boundaries (a filter for a word split in two) holds back text
 * in its stream state and emits it later. OWNERSHIP: `emit` copies. */
typedef struct swh_chunk_emitter {
    uint32_t struct_size;
    void *ctx;
    /* Pass text on to the next middleware / the client. */
    void (*emit)(void *ctx, swh_str text);
    /* Merge a JSON object into the metadata of the reply being streamed
     * (e.g. {"content_filtered":true}); stored with the final message. */
    void (*merge_metadata)(void *ctx, swh_str json_object);
} swh_chunk_emitter;

typedef struct swh_middleware_v1 {
    uint32_t struct_size;

    swh_status (*create)(const swh_host_api *host, const swh_config *cfg, void **out_handle);
    void (*destroy)(void *handle);
    const char *(*last_error)(void *handle);

    /* SWH_STAGE_* bits this instance wants. [any-thread][non-blocking] */
    uint32_t (*stages)(void *handle);
    /* [any-thread] Process one whole message. A non-OK status is a failure
     * of the middleware (not a rejection): the host isolates it. */
    swh_status (*process)(void *handle, const swh_middleware_input *input, const swh_message_editor *editor);
    /* [any-thread] Called after `process` failed, with its status. May be
     * NULL. */
    void (*on_error)(void *handle, const swh_middleware_input *input, swh_status status, swh_str error);

    /* Streaming of assistant replies. All three NULL = this middleware does
     * not touch streams: the host then runs `process` on the completed reply
     * before storing it (the client has already seen the raw text, so a
     * guardrail that must cover streams implements these). When present, the
     * host calls them INSTEAD of `process` for streamed replies.
     * [serial per stream] One stream's calls never overlap. */
    swh_status (*stream_open)(void *handle, const swh_middleware_input *input, void **out_stream);
    swh_status (*stream_chunk)(void *handle, void *stream, swh_str text, const swh_chunk_emitter *out);
    /* Emit whatever is held back, then free the stream state. */
    swh_status (*stream_close)(void *handle, void *stream, const swh_chunk_emitter *out);
} swh_middleware_v1;

#ifdef __cplusplus
}
#endif

#endif /* SWARMHOST_MIDDLEWARE_H */
