/*
 * word_guard — a swarmhost middleware in plain C99 (example).
 *
 * On the user stage it
 *   - rejects a message that contains a word of `blocked_words` (the client
 *     gets HTTP 422 {"error":{"code":"rejected",...}}), and otherwise
 *   - replaces every occurrence of a word of `mask_words` with `mask` and
 *     records {"word_guard":{"masked":N}} in the message metadata.
 * Matching is ASCII case-insensitive, on substrings.
 *
 * What it shows: the one exported symbol, the descriptor with a config
 * schema, a handle that owns copies of its config (the config is only valid
 * during create), no allocation crossing the boundary (set_content copies),
 * and last_error without threads support in C99: every failure message is a
 * static string, so concurrent readers never see a torn value.
 */
#include <swarmhost/swarmhost.h>

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct word_list {
    size_t count;
    char **items; /* NUL-terminated copies */
} word_list;

typedef struct word_guard {
    const swh_host_api *host;
    word_list blocked;
    word_list masked;
    char *mask;
    const char *error; /* static text only (see above) */
} word_guard;

/* ------------------------------------------------------------- helpers */

static char lower(char c) {
    return (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
}

/* Position of `needle` in text[0..len) (case-insensitive), or -1. */
static long find_word(const char *text, size_t len, const char *needle) {
    size_t n = strlen(needle), i, j;
    if (n == 0 || n > len || text == NULL) return -1;
    for (i = 0; i + n <= len; ++i) {
        for (j = 0; j < n && lower(text[i + j]) == lower(needle[j]); ++j) {
        }
        if (j == n) return (long)i;
    }
    return -1;
}

/* Does text[0..len) start with `word` (case-insensitive, non-empty)? */
static int starts_with(const char *text, size_t len, const char *word) {
    size_t n = strlen(word);
    return n > 0 && find_word(text, n <= len ? n : 0, word) == 0;
}

static void free_list(word_list *list) {
    size_t i;
    for (i = 0; i < list->count; ++i)
        free(list->items[i]);
    free(list->items);
    list->items = NULL;
    list->count = 0;
}

static char *copy_str(swh_str s) {
    char *out = (char *)malloc(s.len + 1);
    if (out == NULL) return NULL;
    if (s.len > 0) memcpy(out, s.ptr, s.len);
    out[s.len] = '\0';
    return out;
}

/* Copies the string list `key` out of the (create-only) config. */
static swh_status read_list(word_guard *g, const swh_config *cfg, const char *key, word_list *out) {
    size_t i, count = 0;
    swh_status st = g->host->config_list_size(g->host->host_ctx, cfg, key, &count);
    if (st != SWH_OK) {
        g->error = "word_guard: cannot read a word list from the config";
        return SWH_E_INVALID;
    }
    out->items = count ? (char **)calloc(count, sizeof(char *)) : NULL;
    if (count && out->items == NULL) goto oom;
    for (i = 0; i < count; ++i) {
        swh_str item = {NULL, 0};
        if (g->host->config_list_string(g->host->host_ctx, cfg, key, i, &item) != SWH_OK) {
            g->error = "word_guard: cannot read a word list item from the config";
            return SWH_E_INVALID;
        }
        out->items[i] = copy_str(item);
        if (out->items[i] == NULL) goto oom;
        out->count = i + 1;
    }
    return SWH_OK;
oom:
    g->error = "word_guard: out of memory";
    return SWH_E_INTERNAL;
}

/* --------------------------------------------------------------- table */

static swh_status wg_create(const swh_host_api *host, const swh_config *cfg, void **out_handle) {
    word_guard *g;
    swh_str mask = {NULL, 0};
    swh_status st;
    if (out_handle == NULL) return SWH_E_INVALID;
    *out_handle = NULL;
    g = (word_guard *)calloc(1, sizeof *g);
    if (g == NULL) return SWH_E_INTERNAL;
    *out_handle = g; /* also on failure: the host reads last_error, then destroys */
    g->host = host;
    g->error = "";
    /* Check the host table covers the members we call, NOT that it is as
     * large as our header's struct: an older 1.x host has a smaller table,
     * a newer one a larger table, and both are fine. */
    if (host == NULL || host->struct_size < offsetof(swh_host_api, config_json) + sizeof host->config_json ||
        host->log == NULL) {
        g->error = "word_guard: the host's table lacks log/config accessors";
        return SWH_E_UNSUPPORTED;
    }
    if ((st = read_list(g, cfg, "blocked_words", &g->blocked)) != SWH_OK) return st;
    if ((st = read_list(g, cfg, "mask_words", &g->masked)) != SWH_OK) return st;
    if (host->config_string(host->host_ctx, cfg, "mask", &mask) != SWH_OK) {
        g->error = "word_guard: cannot read 'mask'";
        return SWH_E_INVALID;
    }
    if ((g->mask = copy_str(mask)) == NULL) {
        g->error = "word_guard: out of memory";
        return SWH_E_INTERNAL;
    }
    host->log(host->host_ctx, SWH_LOG_INFO, (swh_str){"word_guard ready", 16});
    return SWH_OK;
}

static void wg_destroy(void *handle) {
    word_guard *g = (word_guard *)handle;
    if (g == NULL) return;
    free_list(&g->blocked);
    free_list(&g->masked);
    free(g->mask);
    free(g);
}

static const char *wg_last_error(void *handle) {
    return handle ? ((word_guard *)handle)->error : "";
}

static uint32_t wg_stages(void *handle) {
    (void)handle;
    return SWH_STAGE_USER;
}

/* [any-thread] Reads only immutable state; allocates per call. */
static swh_status wg_process(void *handle, const swh_middleware_input *in, const swh_message_editor *editor) {
    word_guard *g = (word_guard *)handle;
    const char *text;
    size_t len, i, masked = 0;
    char *out = NULL, reason[160], meta[64];
    size_t out_len = 0;
    if (g == NULL || in == NULL || in->message == NULL || editor == NULL) return SWH_E_INVALID;
    text = in->message->content.ptr;
    len = in->message->content.len;

    for (i = 0; i < g->blocked.count; ++i) {
        if (find_word(text, len, g->blocked.items[i]) >= 0) {
            size_t n = strlen(g->blocked.items[i]);
            const char *prefix = "contains a blocked word: ";
            size_t p = strlen(prefix);
            if (n > sizeof reason - p - 1) n = sizeof reason - p - 1;
            memcpy(reason, prefix, p);
            memcpy(reason + p, g->blocked.items[i], n);
            editor->reject(editor->ctx, (swh_str){reason, p + n}); /* the host copies */
            return SWH_OK; /* a rejection is a result, not a failure */
        }
    }

    /* Rewrite: copy text to `out`, replacing masked words. Worst case size:
     * every byte starts a one-byte match replaced by the mask. */
    if (g->masked.count == 0 || len == 0) return SWH_OK;
    out = (char *)malloc(len * (strlen(g->mask) + 1) + 1);
    if (out == NULL) {
        g->error = "word_guard: out of memory";
        return SWH_E_INTERNAL;
    }
    for (i = 0; i < len;) {
        size_t w, hit = 0;
        for (w = 0; w < g->masked.count && !hit; ++w)
            if (starts_with(text + i, len - i, g->masked.items[w])) hit = strlen(g->masked.items[w]);
        if (hit) {
            memcpy(out + out_len, g->mask, strlen(g->mask));
            out_len += strlen(g->mask);
            i += hit;
            ++masked;
        } else {
            out[out_len++] = text[i++];
        }
    }
    if (masked > 0) {
        int n = snprintf(meta, sizeof meta, "{\"word_guard\":{\"masked\":%lu}}", (unsigned long)masked);
        editor->set_content(editor->ctx, (swh_str){out, out_len}); /* the host copies */
        editor->merge_metadata(editor->ctx, (swh_str){meta, (size_t)n});
    }
    free(out);
    return SWH_OK;
}

/* ---------------------------------------------------------- descriptor */

static const swh_config_field schema[] = {
    {sizeof(swh_config_field), "blocked_words", SWH_CFG_STRING_LIST, 0, "[]",
     "Reject a user message containing any of these (case-insensitive)"},
    {sizeof(swh_config_field), "mask_words", SWH_CFG_STRING_LIST, 0, "[]",
     "Replace these (case-insensitive) with `mask`"},
    {sizeof(swh_config_field), "mask", SWH_CFG_STRING, 0, "\"***\"", "Replacement text for mask_words"},
};

static const swh_middleware_v1 table = {
    sizeof(swh_middleware_v1),
    wg_create,
    wg_destroy,
    wg_last_error,
    wg_stages,
    wg_process,
    NULL, /* on_error */
    NULL, /* stream_open: not a stream filter; the host runs process on whole replies */
    NULL, /* stream_chunk */
    NULL, /* stream_close */
};

static const swh_plugin_descriptor descriptor = {
    sizeof(swh_plugin_descriptor),
    SWH_ABI_VERSION_MAJOR,
    0, /* the lowest minor whose members this plugin uses: only 1.0 ones */
    "word_guard",
    "0.1.0",
    "Rejects messages with blocked words and masks others (C99 example)",
    SWH_KIND_MIDDLEWARE,
    SWH_IFACE_MIDDLEWARE_V1,
    schema,
    sizeof schema / sizeof schema[0],
    &table,
};

SWH_EXPORT const swh_plugin_descriptor *swh_plugin_entry(void) {
    return &descriptor;
}
