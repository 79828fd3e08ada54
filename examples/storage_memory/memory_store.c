/*
 * memory — a swarmhost storage plugin in plain C99 + POSIX threads (example).
 *
 * Sessions and messages live in this process's memory: nothing survives a
 * restart, so it is for development and tests, not for production (the
 * storage ABI says a message is durable once add_message returns SWH_OK; this
 * store is "durable" only for the life of the process). It passes the same
 * conformance suite as the shipped stores (tests/conformance, ctest
 * conformance.memory). The walk-through is docs/sdk.md, "A storage plugin".
 *
 * What it shows:
 *   - the storage table (swh_storage_v1), every call [any-thread][may-block]:
 *     one mutex per store serialises them;
 *   - a hot reload creates the new instance while the old one still serves,
 *     so the data does not belong to an instance: instances with the same
 *     config `name` share one store, counted by reference, kept in the one
 *     piece of process-wide state (a registry behind a static mutex);
 *   - last_error per thread in C99: a POSIX thread-specific slot per handle,
 *     every slot freed in destroy;
 *   - the ABI minor it needs (1.0, not the header's current one) and the
 *     struct_size test for a member a later minor added (SWH_C_HAS_MEMBER
 *     below: the host table's members, and the 1.3 swh_message.structured_json
 *     it keeps beside the text);
 *   - results through the host's sinks while the store's lock is held (the
 *     sink copies and never calls back into the plugin).
 */
#define _POSIX_C_SOURCE 200809L

#include <swarmhost/swarmhost.h>

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Is `member` inside the struct the other side filled in? The C99 twin of
 * SWH_HAS_MEMBER (swarmhost/cpp/edge.hpp). */
#define SWH_C_HAS_MEMBER(ptr, type, member)                                                                  \
    ((ptr) != NULL && (ptr)->struct_size >= offsetof(type, member) + sizeof(((type *)0)->member))

#define ALL_SESSION_FIELDS                                                                                   \
    (SWH_SESSION_FIELD_STATUS | SWH_SESSION_FIELD_MODEL | SWH_SESSION_FIELD_PROVIDER |                       \
     SWH_SESSION_FIELD_CONFIG | SWH_SESSION_FIELD_CONTEXT | SWH_SESSION_FIELD_METADATA |                     \
     SWH_SESSION_FIELD_LAST_ACTIVITY)

/* ------------------------------------------------------------ data */

typedef struct text { /* an owned, NUL-terminated copy of a swh_str */
    char *ptr;
    size_t len;
} text;

typedef struct msg_row {
    text id, role, content, metadata, provider_message_id, provider_metadata;
    text structured; /* 1.3 structured_json; empty from an older host */
    swh_time_us timestamp;
} msg_row;

typedef struct session_row {
    text id, user_id, provider, model, status, type, config, context, metadata;
    swh_time_us created_at, last_activity;
    msg_row *msgs; /* in (timestamp, insertion) order; message_count == count */
    size_t count, cap;
} session_row;

/* One store: shared by every instance configured with the same `name`. */
typedef struct store {
    char *name;
    unsigned refs;        /* guarded by registry_lock */
    pthread_mutex_t lock; /* guards everything below   */
    session_row **sessions;
    size_t count, cap;
    size_t messages;
    struct store *next;
} store;

/* The only process-wide state: which stores exist. A reload's new instance
 * finds the store of the old one here. */
static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
static store *registry = NULL;

/* Per (instance, thread) error text: valid until the next call on this
 * handle from the same thread, as the ABI asks. */
typedef struct error_slot {
    char text[512];
    struct error_slot *next;
} error_slot;

typedef struct instance {
    const swh_host_api *host;
    store *db;
    pthread_key_t error_key;
    pthread_mutex_t slots_lock;
    error_slot *slots; /* every slot handed out, freed in destroy */
} instance;

/* ------------------------------------------------------- helpers */

static swh_status fail(instance *h, swh_status status, const char *format, ...) {
    error_slot *slot = (error_slot *)pthread_getspecific(h->error_key);
    va_list args;
    if (slot == NULL) {
        slot = (error_slot *)calloc(1, sizeof *slot);
        if (slot == NULL) return status; /* last_error then reads "" */
        if (pthread_setspecific(h->error_key, slot) != 0) {
            free(slot);
            return status;
        }
        pthread_mutex_lock(&h->slots_lock);
        slot->next = h->slots;
        h->slots = slot;
        pthread_mutex_unlock(&h->slots_lock);
    }
    va_start(args, format);
    vsnprintf(slot->text, sizeof slot->text, format, args);
    va_end(args);
    return status;
}

/* For "%.*s": a swh_str's length as an int, capped for error texts. */
static int shown(swh_str s) {
    return s.len > 200 ? 200 : (int)s.len;
}

static int copy_text(text *out, swh_str s) {
    out->ptr = (char *)malloc(s.len + 1);
    if (out->ptr == NULL) return 0;
    if (s.len > 0) memcpy(out->ptr, s.ptr, s.len);
    out->ptr[s.len] = '\0';
    out->len = s.len;
    return 1;
}

static void free_text(text *t) {
    free(t->ptr);
    t->ptr = NULL;
    t->len = 0;
}

static swh_str view(const text *t) {
    swh_str s;
    s.ptr = t->ptr;
    s.len = t->len;
    return s;
}

static int same(const text *t, swh_str s) {
    return t->len == s.len && (s.len == 0 || memcmp(t->ptr, s.ptr, s.len) == 0);
}

static void free_message(msg_row *m) {
    free_text(&m->id);
    free_text(&m->role);
    free_text(&m->content);
    free_text(&m->metadata);
    free_text(&m->provider_message_id);
    free_text(&m->provider_metadata);
    free_text(&m->structured);
}

static void free_session(session_row *s) {
    size_t i;
    if (s == NULL) return;
    for (i = 0; i < s->count; ++i)
        free_message(&s->msgs[i]);
    free(s->msgs);
    free_text(&s->id);
    free_text(&s->user_id);
    free_text(&s->provider);
    free_text(&s->model);
    free_text(&s->status);
    free_text(&s->type);
    free_text(&s->config);
    free_text(&s->context);
    free_text(&s->metadata);
    free(s);
}

/* Index of the session with this id, or -1. Caller holds db->lock. A real
 * store would index; a linear scan keeps the example short. */
static long find_session(const store *db, swh_str id) {
    size_t i;
    for (i = 0; i < db->count; ++i)
        if (same(&db->sessions[i]->id, id)) return (long)i;
    return -1;
}

static swh_session session_view(const session_row *r) {
    swh_session s;
    memset(&s, 0, sizeof s);
    s.struct_size = sizeof s;
    s.id = view(&r->id);
    s.user_id = view(&r->user_id);
    s.provider = view(&r->provider);
    s.model = view(&r->model);
    s.status = view(&r->status);
    s.type = view(&r->type);
    s.created_at = r->created_at;
    s.last_activity = r->last_activity;
    s.message_count = r->count;
    s.config_json = view(&r->config);
    s.context_json = view(&r->context);
    s.metadata_json = view(&r->metadata);
    return s;
}

static swh_message message_view(const session_row *owner, const msg_row *r) {
    swh_message m;
    memset(&m, 0, sizeof m);
    m.struct_size = sizeof m;
    m.id = view(&r->id);
    m.session_id = view(&owner->id);
    m.role = view(&r->role);
    m.content = view(&r->content);
    m.timestamp = r->timestamp;
    m.metadata_json = view(&r->metadata);
    m.provider_message_id = view(&r->provider_message_id);
    m.provider_metadata_json = view(&r->provider_metadata);
    /* Our struct is the 1.3 one (struct_size says so): a 1.3 host reads this,
     * an older host only the members it knows. */
    m.structured_json = view(&r->structured);
    return m;
}

/* ------------------------------------------------------- registry */

static store *store_acquire(const char *name) {
    store *db;
    pthread_mutex_lock(&registry_lock);
    for (db = registry; db != NULL; db = db->next)
        if (strcmp(db->name, name) == 0) break;
    if (db == NULL) {
        db = (store *)calloc(1, sizeof *db);
        if (db != NULL && (db->name = strdup(name)) != NULL && pthread_mutex_init(&db->lock, NULL) == 0) {
            db->next = registry;
            registry = db;
        } else if (db != NULL) {
            free(db->name);
            free(db);
            db = NULL;
        }
    }
    if (db != NULL) ++db->refs;
    pthread_mutex_unlock(&registry_lock);
    return db;
}

static void store_release(store *db) {
    store **link;
    size_t i;
    pthread_mutex_lock(&registry_lock);
    if (--db->refs > 0) {
        pthread_mutex_unlock(&registry_lock);
        return;
    }
    for (link = &registry; *link != db; link = &(*link)->next) {
    }
    *link = db->next;
    pthread_mutex_unlock(&registry_lock);
    for (i = 0; i < db->count; ++i)
        free_session(db->sessions[i]);
    free(db->sessions);
    pthread_mutex_destroy(&db->lock);
    free(db->name);
    free(db);
}

/* ------------------------------------------------------- lifecycle */

static void mem_destroy(void *handle) {
    instance *h = (instance *)handle;
    error_slot *slot, *next;
    if (h == NULL) return;
    if (h->db != NULL) store_release(h->db);
    pthread_key_delete(h->error_key);
    for (slot = h->slots; slot != NULL; slot = next) {
        next = slot->next;
        free(slot);
    }
    pthread_mutex_destroy(&h->slots_lock);
    free(h);
}

static const char *mem_last_error(void *handle) {
    instance *h = (instance *)handle;
    error_slot *slot = h ? (error_slot *)pthread_getspecific(h->error_key) : NULL;
    return slot ? slot->text : "";
}

static swh_status mem_create(const swh_host_api *host, const swh_config *cfg, void **out_handle) {
    instance *h;
    swh_str name;
    char buf[65];
    size_t i;
    swh_status st;

    *out_handle = NULL;
    h = (instance *)calloc(1, sizeof *h);
    if (h == NULL) return SWH_E_INTERNAL;
    if (pthread_key_create(&h->error_key, NULL) != 0) {
        free(h);
        return SWH_E_INTERNAL; /* no handle: the host reports the bare status */
    }
    pthread_mutex_init(&h->slots_lock, NULL);
    *out_handle = h; /* from here on, also on failure: the host reads last_error, then destroys */
    h->host = host;

    /* The descriptor declares ABI 1.0, so every 1.0 member is there; a member
     * of a later minor (http_start: 1.1) would need this test first. */
    if (!SWH_C_HAS_MEMBER(host, swh_host_api, config_string))
        return fail(h, SWH_E_UNSUPPORTED, "host table too small (struct_size %u)",
                    (unsigned)host->struct_size);

    st = host->config_string(host->host_ctx, cfg, "name", &name); /* the host filled in the default */
    if (st != SWH_OK) return fail(h, st, "config key 'name' unreadable");
    if (name.len == 0 || name.len >= sizeof buf)
        return fail(h, SWH_E_INVALID, "config 'name' must be 1 to %u characters", (unsigned)(sizeof buf - 1));
    for (i = 0; i < name.len; ++i) {
        char c = name.ptr[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-'))
            return fail(h, SWH_E_INVALID, "config 'name' may hold only a-z, 0-9, '_' and '-' (got '%.*s')",
                        shown(name), name.ptr);
        buf[i] = c;
    }
    buf[name.len] = '\0'; /* copied: the config dies when create returns */

    h->db = store_acquire(buf);
    if (h->db == NULL) return fail(h, SWH_E_INTERNAL, "out of memory");
    if (SWH_C_HAS_MEMBER(host, swh_host_api, log) && host->log != NULL) {
        char line[160];
        snprintf(line, sizeof line, "in-memory store '%s' (not durable: lost when the daemon stops)", buf);
        host->log(host->host_ctx, SWH_LOG_INFO, (swh_str){line, strlen(line)});
    }
    return SWH_OK;
}

/* ------------------------------------------------------- sessions */

static swh_status mem_create_session(void *handle, const swh_session *s) {
    instance *h = (instance *)handle;
    store *db = h->db;
    session_row *r = (session_row *)calloc(1, sizeof *r);
    if (r == NULL || !copy_text(&r->id, s->id) || !copy_text(&r->user_id, s->user_id) ||
        !copy_text(&r->provider, s->provider) || !copy_text(&r->model, s->model) ||
        !copy_text(&r->status, s->status) || !copy_text(&r->type, s->type) ||
        !copy_text(&r->config, s->config_json) || !copy_text(&r->context, s->context_json) ||
        !copy_text(&r->metadata, s->metadata_json)) {
        free_session(r);
        return fail(h, SWH_E_INTERNAL, "out of memory");
    }
    r->created_at = s->created_at;
    r->last_activity = s->last_activity;

    pthread_mutex_lock(&db->lock);
    if (find_session(db, s->id) >= 0) {
        pthread_mutex_unlock(&db->lock);
        free_session(r);
        return fail(h, SWH_E_CONFLICT, "session '%.*s' exists", shown(s->id), s->id.ptr);
    }
    if (db->count == db->cap) {
        size_t cap = db->cap ? db->cap * 2 : 16;
        session_row **grown = (session_row **)realloc(db->sessions, cap * sizeof *grown);
        if (grown == NULL) {
            pthread_mutex_unlock(&db->lock);
            free_session(r);
            return fail(h, SWH_E_INTERNAL, "out of memory");
        }
        db->sessions = grown;
        db->cap = cap;
    }
    db->sessions[db->count++] = r;
    pthread_mutex_unlock(&db->lock);
    return SWH_OK;
}

static swh_status mem_get_session(void *handle, swh_str id, const swh_result_sink *sink) {
    instance *h = (instance *)handle;
    store *db = h->db;
    swh_status st;
    swh_session view_;
    long at;
    pthread_mutex_lock(&db->lock);
    at = find_session(db, id);
    if (at < 0) {
        pthread_mutex_unlock(&db->lock);
        return fail(h, SWH_E_NOT_FOUND, "no session '%.*s'", shown(id), id.ptr);
    }
    view_ = session_view(db->sessions[at]);
    st = sink->session(sink->ctx, &view_); /* copies; never re-enters the plugin */
    pthread_mutex_unlock(&db->lock);
    return st == SWH_OK ? SWH_OK : fail(h, st, "the host refused the session");
}

static swh_status mem_update_session(void *handle, const swh_session *s, uint32_t fields) {
    instance *h = (instance *)handle;
    store *db = h->db;
    /* Copies first, so a failed allocation changes nothing. */
    struct {
        uint32_t bit;
        swh_str from;
        size_t offset;
    } named[] = {
        {SWH_SESSION_FIELD_STATUS, s->status, offsetof(session_row, status)},
        {SWH_SESSION_FIELD_MODEL, s->model, offsetof(session_row, model)},
        {SWH_SESSION_FIELD_PROVIDER, s->provider, offsetof(session_row, provider)},
        {SWH_SESSION_FIELD_CONFIG, s->config_json, offsetof(session_row, config)},
        {SWH_SESSION_FIELD_CONTEXT, s->context_json, offsetof(session_row, context)},
        {SWH_SESSION_FIELD_METADATA, s->metadata_json, offsetof(session_row, metadata)},
    };
    text copies[sizeof named / sizeof named[0]];
    size_t i, n = sizeof named / sizeof named[0];
    long at;

    if (fields & ~(uint32_t)ALL_SESSION_FIELDS)
        return fail(h, SWH_E_INVALID, "unknown field bits 0x%x",
                    (unsigned)(fields & ~(uint32_t)ALL_SESSION_FIELDS));
    memset(copies, 0, sizeof copies);
    for (i = 0; i < n; ++i)
        if ((fields & named[i].bit) && !copy_text(&copies[i], named[i].from)) {
            while (i-- > 0)
                free_text(&copies[i]);
            return fail(h, SWH_E_INTERNAL, "out of memory");
        }

    pthread_mutex_lock(&db->lock);
    at = find_session(db, s->id);
    if (at >= 0) {
        session_row *r = db->sessions[at];
        for (i = 0; i < n; ++i)
            if (fields & named[i].bit) {
                text *field = (text *)((char *)r + named[i].offset);
                free_text(field);
                *field = copies[i];
                copies[i].ptr = NULL;
            }
        if (fields & SWH_SESSION_FIELD_LAST_ACTIVITY) r->last_activity = s->last_activity;
    }
    pthread_mutex_unlock(&db->lock);
    for (i = 0; i < n; ++i)
        free_text(&copies[i]); /* only those not moved in (all of them when absent) */
    return at >= 0 ? SWH_OK : fail(h, SWH_E_NOT_FOUND, "no session '%.*s'", shown(s->id), s->id.ptr);
}

static swh_status mem_delete_session(void *handle, swh_str id) {
    instance *h = (instance *)handle;
    store *db = h->db;
    session_row *gone = NULL;
    long at;
    pthread_mutex_lock(&db->lock);
    at = find_session(db, id);
    if (at >= 0) {
        gone = db->sessions[at];
        db->sessions[at] = db->sessions[--db->count]; /* order does not matter: list sorts */
        db->messages -= gone->count;
    }
    pthread_mutex_unlock(&db->lock);
    if (gone == NULL) return fail(h, SWH_E_NOT_FOUND, "no session '%.*s'", shown(id), id.ptr);
    free_session(gone);
    return SWH_OK;
}

/* Most recently active first; ties by newer creation, then id. */
static int by_activity(const void *a, const void *b) {
    const session_row *x = *(session_row *const *)a, *y = *(session_row *const *)b;
    if (x->last_activity != y->last_activity) return x->last_activity > y->last_activity ? -1 : 1;
    if (x->created_at != y->created_at) return x->created_at > y->created_at ? -1 : 1;
    return strcmp(x->id.ptr, y->id.ptr);
}

static swh_status mem_list_sessions(void *handle, const swh_session_filter *given,
                                    const swh_result_sink *sink) {
    instance *h = (instance *)handle;
    store *db = h->db;
    swh_session_filter none;
    const swh_session_filter *filter = given;
    session_row **hits;
    size_t i, n = 0, end;
    swh_status st = SWH_OK;
    if (filter == NULL) { /* the host always passes one; be lenient anyway */
        memset(&none, 0, sizeof none);
        filter = &none;
    }
    pthread_mutex_lock(&db->lock);
    hits = (session_row **)malloc((db->count ? db->count : 1) * sizeof *hits);
    if (hits == NULL) {
        pthread_mutex_unlock(&db->lock);
        return fail(h, SWH_E_INTERNAL, "out of memory");
    }
    for (i = 0; i < db->count; ++i) {
        session_row *r = db->sessions[i];
        if (filter->user_id.len > 0 && !same(&r->user_id, filter->user_id)) continue;
        if (filter->status.len > 0 && !same(&r->status, filter->status)) continue;
        hits[n++] = r;
    }
    qsort(hits, n, sizeof *hits, by_activity);
    end = filter->limit > 0 && filter->offset + (size_t)filter->limit < n
              ? filter->offset + (size_t)filter->limit
              : n;
    for (i = filter->offset; i < end && st == SWH_OK; ++i) {
        swh_session view_ = session_view(hits[i]);
        st = sink->session(sink->ctx, &view_);
    }
    pthread_mutex_unlock(&db->lock);
    free(hits);
    return st == SWH_OK ? SWH_OK : fail(h, st, "the host refused a session");
}

/* ------------------------------------------------------- messages */

static swh_status mem_add_message(void *handle, const swh_message *m) {
    instance *h = (instance *)handle;
    store *db = h->db;
    msg_row row;
    session_row *r;
    size_t i, at;
    long found;

    memset(&row, 0, sizeof row);
    if (!copy_text(&row.id, m->id) || !copy_text(&row.role, m->role) ||
        !copy_text(&row.content, m->content) || !copy_text(&row.metadata, m->metadata_json) ||
        !copy_text(&row.provider_message_id, m->provider_message_id) ||
        !copy_text(&row.provider_metadata, m->provider_metadata_json) ||
        /* a member added in 1.3: read it only when the host's struct has it,
         * so the plugin still declares 1.0 and any 1.x host loads it */
        (SWH_C_HAS_MEMBER(m, swh_message, structured_json) &&
         !copy_text(&row.structured, m->structured_json))) {
        free_message(&row);
        return fail(h, SWH_E_INTERNAL, "out of memory");
    }
    row.timestamp = m->timestamp;

    pthread_mutex_lock(&db->lock); /* one atomic step: the row, the count, last_activity */
    found = find_session(db, m->session_id);
    if (found < 0) {
        pthread_mutex_unlock(&db->lock);
        free_message(&row);
        return fail(h, SWH_E_NOT_FOUND, "no session '%.*s'", shown(m->session_id), m->session_id.ptr);
    }
    r = db->sessions[found];
    /* Message ids are unique per session here (the host's ids are UUIDv4 and
     * it never looks a message up by id alone). */
    for (i = 0; i < r->count; ++i)
        if (same(&r->msgs[i].id, m->id)) {
            pthread_mutex_unlock(&db->lock);
            free_message(&row);
            return fail(h, SWH_E_CONFLICT, "message '%.*s' exists", shown(m->id), m->id.ptr);
        }
    if (r->count == r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 8;
        msg_row *grown = (msg_row *)realloc(r->msgs, cap * sizeof *grown);
        if (grown == NULL) {
            pthread_mutex_unlock(&db->lock);
            free_message(&row);
            return fail(h, SWH_E_INTERNAL, "out of memory");
        }
        r->msgs = grown;
        r->cap = cap;
    }
    /* Chronological: after every message with timestamp <= this one. */
    for (at = r->count; at > 0 && r->msgs[at - 1].timestamp > row.timestamp; --at) {
    }
    memmove(&r->msgs[at + 1], &r->msgs[at], (r->count - at) * sizeof *r->msgs);
    r->msgs[at] = row;
    ++r->count;
    ++db->messages;
    r->last_activity = m->timestamp;
    pthread_mutex_unlock(&db->lock);
    return SWH_OK;
}

static int message_matches(const msg_row *r, const swh_message_query *q) {
    return (q->role.len == 0 || same(&r->role, q->role)) && r->timestamp >= q->since;
}

static swh_status mem_get_messages(void *handle, const swh_message_query *q, const swh_result_sink *sink) {
    instance *h = (instance *)handle;
    store *db = h->db;
    session_row *r;
    size_t i, matching = 0, skip;
    swh_status st = SWH_OK;
    long found;
    pthread_mutex_lock(&db->lock);
    found = find_session(db, q->session_id);
    if (found < 0) {
        pthread_mutex_unlock(&db->lock);
        return fail(h, SWH_E_NOT_FOUND, "no session '%.*s'", shown(q->session_id), q->session_id.ptr);
    }
    r = db->sessions[found];
    for (i = 0; i < r->count; ++i)
        matching += message_matches(&r->msgs[i], q);
    skip = q->limit > 0 && matching > q->limit ? matching - q->limit : 0; /* limit = the LAST n */
    for (i = 0; i < r->count && st == SWH_OK; ++i) {
        swh_message view_;
        if (!message_matches(&r->msgs[i], q)) continue;
        if (skip > 0) {
            --skip;
            continue;
        }
        view_ = message_view(r, &r->msgs[i]);
        st = sink->message(sink->ctx, &view_);
    }
    pthread_mutex_unlock(&db->lock);
    return st == SWH_OK ? SWH_OK : fail(h, st, "the host refused a message");
}

/* ------------------------------------------------------- health */

static swh_status mem_health_check(void *handle, const swh_result_sink *sink) {
    instance *h = (instance *)handle;
    store *db = h->db;
    char json[256];
    int n;
    pthread_mutex_lock(&db->lock);
    /* `name` is [a-z0-9_-] (checked in create): no JSON escaping needed. */
    n = snprintf(json, sizeof json,
                 "{\"status\":\"healthy\",\"backend\":\"memory\",\"store\":\"%s\",\"durable\":false,"
                 "\"sessions\":%lu,\"messages\":%lu}",
                 db->name, (unsigned long)db->count, (unsigned long)db->messages);
    pthread_mutex_unlock(&db->lock);
    if (n < 0 || (size_t)n >= sizeof json) return fail(h, SWH_E_INTERNAL, "health report too long");
    return sink->json(sink->ctx, (swh_str){json, (size_t)n});
}

/* ------------------------------------------------------- descriptor */

static const swh_config_field schema[] = {
    {sizeof(swh_config_field), "name", SWH_CFG_STRING, 0, "\"default\"",
     "Store name: instances with the same name share one store (a reload's new instance sees the old data)"},
};

/* clang-format off */
static const swh_storage_v1 table = {
    sizeof(swh_storage_v1), mem_create,      mem_destroy,        mem_last_error,
    mem_create_session,     mem_get_session, mem_update_session, mem_delete_session,
    mem_list_sessions,      mem_add_message, mem_get_messages,   mem_health_check,
    NULL, NULL, NULL, NULL, /* 1.4 event carrier: this store keeps nothing between daemons */
    NULL, NULL, NULL,       /* 1.5 shared limits: none either */
};
/* clang-format on */

static const swh_plugin_descriptor descriptor = {
    sizeof(swh_plugin_descriptor),
    SWH_ABI_VERSION_MAJOR,
    0, /* ABI minor: storage needs nothing newer than 1.0, so any 1.x host loads it */
    "memory",
    "0.1.0",
    "Sessions and messages in memory (example; not durable)",
    SWH_KIND_STORAGE,
    SWH_IFACE_STORAGE_V1,
    schema,
    sizeof schema / sizeof schema[0],
    &table,
};

SWH_EXPORT const swh_plugin_descriptor *swh_plugin_entry(void) {
    return &descriptor;
}
