/* Test fixture provider "fixture_crash_provider": answers like the echo
 * provider ("echo#<N> <last user message>", word-pieces as chunks, the
 * assistant_prefix skipped), but from a thread of its own per call, as a
 * provider on an HTTP client does, and misbehaves on trigger words in the
 * last user message (tests/isolation/test_provider_isolation.py):
 *   - "__crash__": streams the pieces before it, then raise(SIGSEGV);
 *   - "__pause__": streams the pieces before it, then waits until the call
 *     is cancelled (done(SWH_E_CANCELLED));
 *   - "__gate__":  streams the pieces before it, then waits until a call
 *     holding "__open__" starts on the same instance, then streams the rest;
 *   - "__open__":  opens every waiting gate, then answers normally.
 * Since its text is echo's, an echo fallback continues a failed reply
 * exactly where it stopped. Plain C99 + POSIX threads. Never built into
 * build/plugins. */
#define _POSIX_C_SOURCE 200809L
#include <swarmhost/provider.h>

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct fcp_call {
    struct fcp_call *next;
    struct fcp *owner;
    pthread_t thread;
    uint64_t call_id;
    swh_provider_sink sink;
    char *reply;    /* the whole answer */
    size_t skip;    /* bytes of it the assistant_prefix already holds */
    size_t stop_at; /* where a trigger stops the stream (reply length if none) */
    int action;     /* 0 none, 1 crash, 2 pause, 3 gate */
    int cancelled;  /* under owner->mutex */
    char message_id[64];
} fcp_call;

typedef struct fcp {
    pthread_mutex_t mutex;
    pthread_cond_t cond;
    unsigned gate_generation; /* bumped by every "__open__" */
    fcp_call *calls;          /* every call started, joined by destroy */
    char error[128];
} fcp;

static swh_status fcp_create(const swh_host_api *host, const swh_config *cfg, void **out) {
    fcp *p = calloc(1, sizeof *p);
    (void)host;
    (void)cfg;
    *out = p;
    if (p == NULL) return SWH_E_INTERNAL;
    pthread_mutex_init(&p->mutex, NULL);
    pthread_cond_init(&p->cond, NULL);
    return SWH_OK;
}

static void fcp_destroy(void *handle) {
    fcp *p = handle;
    fcp_call *c;
    if (p == NULL) return;
    /* Every call has reported done (the ABI's promise): its thread ends. */
    while ((c = p->calls) != NULL) {
        p->calls = c->next;
        pthread_join(c->thread, NULL);
        free(c->reply);
        free(c);
    }
    pthread_cond_destroy(&p->cond);
    pthread_mutex_destroy(&p->mutex);
    free(p);
}

static const char *fcp_last_error(void *handle) {
    return handle ? ((fcp *)handle)->error : "";
}

static const char *find(const char *hay, size_t len, const char *needle) {
    size_t n = strlen(needle);
    for (size_t i = 0; n <= len && i + n <= len; ++i)
        if (memcmp(hay + i, needle, n) == 0) return hay + i;
    return NULL;
}

/* End of the word-piece starting at `at`: the word, then its whitespace. */
static size_t piece_end(const char *text, size_t len, size_t at) {
    while (at < len && text[at] != ' ' && text[at] != '\n')
        ++at;
    while (at < len && (text[at] == ' ' || text[at] == '\n'))
        ++at;
    return at;
}

static int is_cancelled(fcp_call *c) {
    int cancelled;
    pthread_mutex_lock(&c->owner->mutex);
    cancelled = c->cancelled;
    pthread_mutex_unlock(&c->owner->mutex);
    return cancelled;
}

/* Streams reply[from, to) piece by piece; 0 when the host stopped it. */
static int stream_range(fcp_call *c, size_t from, size_t to) {
    size_t at = from;
    while (at < to) {
        size_t end = piece_end(c->reply, to, at);
        swh_str piece = {c->reply + at, end - at};
        if (is_cancelled(c) || c->sink.chunk(c->sink.ctx, piece) != SWH_OK) return 0;
        at = end;
    }
    return 1;
}

static void *run_call(void *arg) {
    fcp_call *c = arg;
    fcp *p = c->owner;
    size_t len = strlen(c->reply);
    size_t first_stop = c->stop_at > c->skip ? c->stop_at : c->skip;
    swh_str none = {"", 0};
    if (!stream_range(c, c->skip, first_stop)) goto cancelled;
    if (c->action == 1) raise(SIGSEGV); /* what a wild pointer would do */
    if (c->action == 2 || c->action == 3) {
        pthread_mutex_lock(&p->mutex);
        {
            unsigned seen = p->gate_generation;
            while (!c->cancelled && (c->action == 2 || p->gate_generation == seen))
                pthread_cond_wait(&p->cond, &p->mutex);
        }
        pthread_mutex_unlock(&p->mutex);
    }
    if (!stream_range(c, first_stop, len)) goto cancelled;
    {
        static const char meta[] = "{\"model\":\"fixture-1\",\"finish_reason\":\"stop\"}";
        swh_str id = {c->message_id, strlen(c->message_id)};
        swh_str json = {meta, sizeof meta - 1};
        c->sink.metadata(c->sink.ctx, id, json);
    }
    c->sink.done(c->sink.ctx, SWH_OK, none);
    return NULL;
cancelled : {
    static const char text[] = "fixture_crash_provider: cancelled";
    swh_str error = {text, sizeof text - 1};
    c->sink.done(c->sink.ctx, SWH_E_CANCELLED, error);
}
    return NULL;
}

static swh_status fcp_start(void *handle, const swh_provider_request *request,
                            const swh_provider_sink *sink) {
    fcp *p = handle;
    const char *base = (const char *)request->messages;
    size_t stride = request->message_count ? request->messages[0].struct_size : 0;
    swh_str last = {"", 0};
    unsigned users = 0;
    fcp_call *c;
    for (size_t i = 0; i < request->message_count; ++i) {
        const swh_message *m = (const swh_message *)(base + i * stride);
        if (m->role.len == 4 && memcmp(m->role.ptr, "user", 4) == 0) {
            ++users;
            last = m->content;
        }
    }
    c = calloc(1, sizeof *c);
    if (c == NULL) return SWH_E_INTERNAL;
    c->reply = malloc(last.len + 32);
    if (c->reply == NULL) {
        free(c);
        return SWH_E_INTERNAL;
    }
    if (users == 0)
        snprintf(c->reply, last.len + 32, "echo#0");
    else
        snprintf(c->reply, last.len + 32, "echo#%u %.*s", users, (int)last.len, last.ptr ? last.ptr : "");
    snprintf(c->message_id, sizeof c->message_id, "fixture-%u", users);
    c->owner = p;
    c->call_id = request->call_id;
    memcpy(&c->sink, sink, sink->struct_size < sizeof c->sink ? sink->struct_size : sizeof c->sink);
    {
        size_t len = strlen(c->reply);
        const char *prefix = request->assistant_prefix.ptr;
        size_t plen = request->assistant_prefix.len;
        static const char *const triggers[] = {"__crash__", "__pause__", "__gate__"};
        if (plen > 0 && plen <= len && memcmp(c->reply, prefix, plen) == 0) c->skip = plen;
        c->stop_at = len;
        for (int t = 0; t < 3; ++t) {
            const char *at = find(c->reply, len, triggers[t]);
            if (at != NULL && (size_t)(at - c->reply) < c->stop_at) {
                c->stop_at = (size_t)(at - c->reply);
                c->action = t + 1;
            }
        }
        /* Already past the trigger (a continuation): nothing to do there. */
        if (c->skip > c->stop_at) c->action = 0;
        if (find(c->reply, len, "__open__") != NULL) {
            pthread_mutex_lock(&p->mutex);
            ++p->gate_generation;
            pthread_cond_broadcast(&p->cond);
            pthread_mutex_unlock(&p->mutex);
        }
    }
    pthread_mutex_lock(&p->mutex);
    c->next = p->calls;
    p->calls = c;
    if (pthread_create(&c->thread, NULL, run_call, c) != 0) {
        p->calls = c->next;
        pthread_mutex_unlock(&p->mutex);
        free(c->reply);
        free(c);
        snprintf(p->error, sizeof p->error, "fixture_crash_provider: no thread");
        return SWH_E_INTERNAL;
    }
    pthread_mutex_unlock(&p->mutex);
    return SWH_OK;
}

static void fcp_cancel(void *handle, uint64_t call_id) {
    fcp *p = handle;
    pthread_mutex_lock(&p->mutex);
    for (fcp_call *c = p->calls; c != NULL; c = c->next)
        if (c->call_id == call_id) c->cancelled = 1;
    pthread_cond_broadcast(&p->cond);
    pthread_mutex_unlock(&p->mutex);
}

static const swh_provider_v1 kTable = {
    sizeof(swh_provider_v1), fcp_create, fcp_destroy, fcp_last_error, fcp_start, fcp_cancel, NULL, NULL, NULL,
};

static const swh_plugin_descriptor kDescriptor = {
    sizeof(swh_plugin_descriptor),
    SWH_ABI_VERSION_MAJOR,
    SWH_ABI_VERSION_MINOR,
    "fixture_crash_provider",
    "0.1.0",
    "Test fixture: an echo-like provider that crashes, pauses or waits on trigger words",
    SWH_KIND_PROVIDER,
    SWH_IFACE_PROVIDER_V1,
    NULL,
    0,
    &kTable,
};

SWH_EXPORT const swh_plugin_descriptor *swh_plugin_entry(void) {
    return &kDescriptor;
}
