/* Test fixture session type "fixture_notes", in plain C99: a third-party
 * session type needs nothing but the C header. It exercises every part of
 * the host's session type support (tests/session_types/test_host_routing.py):
 *
 *   POST   notes            count a note: read the count from the session's
 *                           metadata, store count+1 (merge_session_metadata),
 *                           publish "note_added", answer 201 {"count":N}
 *   GET    echo/{a}/{b}     answer what the host passed: path, params, query,
 *                           caller, content type, body length
 *   POST   fail             return SWH_E_CONFLICT without answering
 *   POST   silent           return SWH_OK without answering (a plugin bug)
 *
 *   on_session_created      refuse when the metadata has "refuse"; else set
 *                           {"fixture_notes":{"count":0}} (the type's state
 *                           lives under its plugin's name, which the host
 *                           protects from PATCH)
 *   on_user_message         caller "mallory": SWH_E_PERMISSION; content with
 *                           "forbidden-word": editor reject; else merge
 *                           {"vetted_by":"fixture_notes","caller":...}
 *   authorize               "mallory": denied; "reader": denied "admin"
 *
 * Never built into build/plugins. */
#include <swarmhost/session_type.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct notes {
    char error[160];
} notes;

static const swh_route kRoutes[] = {
    {sizeof(swh_route), "POST", "notes"},
    {sizeof(swh_route), "GET", "echo/{a}/{b}"},
    {sizeof(swh_route), "POST", "fail"},
    {sizeof(swh_route), "POST", "silent"},
};

static swh_str cstr(const char *s) {
    swh_str out;
    out.ptr = s;
    out.len = strlen(s);
    return out;
}

/* Copies `s` into `out` keeping only characters that need no JSON escaping. */
static void safe_copy(char *out, size_t size, swh_str s) {
    size_t n = 0, i;
    for (i = 0; i < s.len && n + 1 < size; ++i) {
        char c = s.ptr[i];
        out[n++] = (c == '"' || c == '\\' || (unsigned char)c < 0x20) ? '?' : c;
    }
    out[n] = '\0';
}

static int contains(swh_str haystack, const char *needle) {
    size_t n = strlen(needle), i;
    if (n == 0 || haystack.len < n) return 0;
    for (i = 0; i + n <= haystack.len; ++i)
        if (memcmp(haystack.ptr + i, needle, n) == 0) return 1;
    return 0;
}

static int equals(swh_str s, const char *text) {
    return s.len == strlen(text) && (s.len == 0 || memcmp(s.ptr, text, s.len) == 0);
}

static swh_status fx_create(const swh_host_api *host, const swh_config *cfg, void **out) {
    (void)host;
    (void)cfg;
    *out = calloc(1, sizeof(notes));
    return *out ? SWH_OK : SWH_E_INTERNAL;
}

static void fx_destroy(void *handle) {
    free(handle);
}

static const char *fx_last_error(void *handle) {
    return handle ? ((notes *)handle)->error : "";
}

static swh_status fx_routes(void *handle, const swh_route **out, size_t *count) {
    (void)handle;
    *out = kRoutes;
    *count = sizeof kRoutes / sizeof kRoutes[0];
    return SWH_OK;
}

/* The count stored by earlier notes, from the session's metadata text. */
static long stored_count(swh_str metadata) {
    const char *key = "\"fixture_notes\":{\"count\":";
    char text[4096];
    const char *at;
    size_t n = metadata.len < sizeof text - 1 ? metadata.len : sizeof text - 1;
    memcpy(text, metadata.ptr, n);
    text[n] = '\0';
    at = strstr(text, key);
    return at ? strtol(at + strlen(key), NULL, 10) : 0;
}

static swh_status add_note(const swh_route_request *req, const swh_route_response *res) {
    char patch[96], answer[64], event[64];
    long count = stored_count(req->session->metadata_json) + 1;
    snprintf(patch, sizeof patch, "{\"fixture_notes\":{\"count\":%ld}}", count);
    snprintf(answer, sizeof answer, "{\"count\":%ld}", count);
    snprintf(event, sizeof event, "{\"count\":%ld,\"text_len\":%lu}", count, (unsigned long)req->body.len);
    res->merge_session_metadata(res->ctx, cstr(patch));
    res->publish(res->ctx, cstr("note_added"), cstr(event));
    res->respond(res->ctx, 201, cstr("application/json"), cstr(answer));
    return SWH_OK;
}

static swh_status echo(const swh_route_request *req, const swh_route_response *res) {
    char path[128], a[64] = "", b[64] = "", query[128], caller[64], ctype[64], body[1024];
    if (req->path_param_count == 2) {
        safe_copy(a, sizeof a, req->path_params[0]);
        safe_copy(b, sizeof b, req->path_params[1]);
    }
    safe_copy(path, sizeof path, req->path);
    safe_copy(query, sizeof query, req->query);
    safe_copy(caller, sizeof caller, req->caller_user_id);
    safe_copy(ctype, sizeof ctype, req->content_type);
    snprintf(body, sizeof body,
             "{\"route_index\":%u,\"path\":\"%s\",\"params\":[\"%s\",\"%s\"],\"query\":\"%s\","
             "\"caller\":\"%s\",\"content_type\":\"%s\",\"body_len\":%lu}",
             (unsigned)req->route_index, path, a, b, query, caller, ctype, (unsigned long)req->body.len);
    res->respond(res->ctx, 200, cstr("application/json"), cstr(body));
    return SWH_OK;
}

static swh_status fx_handle_route(void *handle, const swh_route_request *req, const swh_route_response *res) {
    notes *self = handle;
    if (req->struct_size < sizeof(swh_route_request) || res->struct_size < sizeof(swh_route_response)) {
        snprintf(self->error, sizeof self->error, "fixture_notes needs a host with ABI 1.2");
        return SWH_E_UNSUPPORTED;
    }
    switch (req->route_index) {
    case 0:
        return add_note(req, res);
    case 1:
        return echo(req, res);
    case 2:
        snprintf(self->error, sizeof self->error, "fixture conflict on purpose");
        return SWH_E_CONFLICT;
    default:
        return SWH_OK; /* "silent": no answer, a plugin bug the host must report */
    }
}

static swh_status fx_on_session_created(void *handle, const swh_session *session,
                                        const swh_result_sink *sink) {
    notes *self = handle;
    if (contains(session->metadata_json, "\"refuse\"")) {
        snprintf(self->error, sizeof self->error, "refused by fixture_notes");
        return SWH_E_INVALID;
    }
    return sink->json(sink->ctx, cstr("{\"fixture_notes\":{\"count\":0}}"));
}

static swh_status fx_on_user_message(void *handle, const swh_session_message_input *in,
                                     const swh_message_editor *editor) {
    notes *self = handle;
    char caller[64], patch[160];
    if (equals(in->caller_user_id, "mallory")) {
        snprintf(self->error, sizeof self->error, "mallory may not write here");
        return SWH_E_PERMISSION;
    }
    if (contains(in->message->content, "forbidden-word")) {
        editor->reject(editor->ctx, cstr("the fixture does not take forbidden-word"));
        return SWH_OK;
    }
    safe_copy(caller, sizeof caller, in->caller_user_id);
    snprintf(patch, sizeof patch, "{\"vetted_by\":\"fixture_notes\",\"caller\":\"%s\"}", caller);
    editor->merge_metadata(editor->ctx, cstr(patch));
    return SWH_OK;
}

static swh_status fx_authorize(void *handle, const swh_session *session, swh_str caller, swh_str action) {
    notes *self = handle;
    (void)session;
    if (equals(caller, "mallory") || (equals(caller, "reader") && equals(action, SWH_ACTION_ADMIN))) {
        snprintf(self->error, sizeof self->error, "fixture_notes denies this caller");
        return SWH_E_PERMISSION;
    }
    return SWH_OK;
}

static const swh_session_type_v1 kTable = {
    sizeof(swh_session_type_v1), fx_create,    fx_destroy, fx_last_error, fx_routes, fx_handle_route,
    fx_on_session_created,       NULL, /* on_message: the 1.2 on_user_message below replaces it */
    fx_on_user_message,          fx_authorize,
};

static const swh_plugin_descriptor kDescriptor = {
    sizeof(swh_plugin_descriptor),
    SWH_ABI_VERSION_MAJOR,
    SWH_ABI_VERSION_MINOR,
    "fixture_notes",
    "0.1.0",
    "Test fixture session type in plain C",
    SWH_KIND_SESSION_TYPE,
    SWH_IFACE_SESSION_TYPE_V1,
    NULL,
    0,
    &kTable,
};

SWH_EXPORT const swh_plugin_descriptor *swh_plugin_entry(void) {
    return &kDescriptor;
}
