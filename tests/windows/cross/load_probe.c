/* load_probe.exe <plugin.dll>: loads a cross-built plugin DLL the way a
 * Windows host would (LoadLibrary + GetProcAddress("swh_plugin_entry")),
 * prints its descriptor and, for examples/middleware_word_guard, creates an
 * instance with a small host table and runs two messages through it. Run
 * under wine64 by tests/windows when wine is there (the daemon itself has no
 * Windows build). Exit 0 = every step worked. */
#include <swarmhost/swarmhost.h>

#include <stdio.h>
#include <string.h>
#include <windows.h>

/* word_guard's config: blocked_words ["forbidden"], mask_words ["darn"], mask "***". */
static int is_key(const char *key, const char *want) {
    return strcmp(key, want) == 0;
}

static swh_str text(const char *s) {
    swh_str out = {s, strlen(s)};
    return out;
}

static void host_log(void *ctx, int32_t level, swh_str message) {
    (void)ctx;
    printf("log %d: %.*s\n", (int)level, (int)message.len, message.ptr);
}

static swh_status config_string(void *ctx, const swh_config *cfg, const char *key, swh_str *out) {
    (void)ctx;
    (void)cfg;
    if (!is_key(key, "mask")) return SWH_E_NOT_FOUND;
    *out = text("***");
    return SWH_OK;
}

static swh_status config_list_size(void *ctx, const swh_config *cfg, const char *key, size_t *out) {
    (void)ctx;
    (void)cfg;
    if (!is_key(key, "blocked_words") && !is_key(key, "mask_words")) return SWH_E_NOT_FOUND;
    *out = 1;
    return SWH_OK;
}

static swh_status config_list_string(void *ctx, const swh_config *cfg, const char *key, size_t index,
                                     swh_str *out) {
    (void)ctx;
    (void)cfg;
    if (index != 0) return SWH_E_NOT_FOUND;
    if (is_key(key, "blocked_words"))
        *out = text("forbidden");
    else if (is_key(key, "mask_words"))
        *out = text("darn");
    else
        return SWH_E_NOT_FOUND;
    return SWH_OK;
}

/* The editor prints what the plugin asks for (the host would copy it). */
static void set_content(void *ctx, swh_str content) {
    (void)ctx;
    printf("set_content: %.*s\n", (int)content.len, content.ptr);
}

static void merge_metadata(void *ctx, swh_str json) {
    (void)ctx;
    printf("merge_metadata: %.*s\n", (int)json.len, json.ptr);
}

static void reject(void *ctx, swh_str reason) {
    (void)ctx;
    printf("reject: %.*s\n", (int)reason.len, reason.ptr);
}

static int run_word_guard(const swh_middleware_v1 *mw) {
    swh_host_api host;
    swh_message_editor editor;
    swh_message message;
    swh_middleware_input input;
    const char *samples[] = {"well darn it", "this is forbidden"};
    void *handle = NULL;
    size_t i;
    memset(&host, 0, sizeof host);
    host.struct_size = sizeof host;
    host.abi_major = SWH_ABI_VERSION_MAJOR;
    host.abi_minor = SWH_ABI_VERSION_MINOR;
    host.log = host_log;
    host.config_string = config_string;
    host.config_list_size = config_list_size;
    host.config_list_string = config_list_string;
    if (mw->create(&host, NULL, &handle) != SWH_OK) {
        printf("create failed: %s\n", mw->last_error(handle));
        mw->destroy(handle);
        return 1;
    }
    memset(&editor, 0, sizeof editor);
    editor.struct_size = sizeof editor;
    editor.set_content = set_content;
    editor.merge_metadata = merge_metadata;
    editor.reject = reject;
    for (i = 0; i < 2; ++i) {
        memset(&message, 0, sizeof message);
        message.struct_size = sizeof message;
        message.role = text("user");
        message.content = text(samples[i]);
        memset(&input, 0, sizeof input);
        input.struct_size = sizeof input;
        input.stage = SWH_STAGE_USER;
        input.message = &message;
        if (mw->process(handle, &input, &editor) != SWH_OK) {
            printf("process failed: %s\n", mw->last_error(handle));
            mw->destroy(handle);
            return 1;
        }
    }
    mw->destroy(handle);
    printf("destroyed\n");
    return 0;
}

int main(int argc, char **argv) {
    HMODULE lib;
    swh_plugin_entry_fn entry;
    const swh_plugin_descriptor *d;
    int rc = 0;
    if (argc != 2) {
        fprintf(stderr, "usage: load_probe <plugin.dll>\n");
        return 2;
    }
    lib = LoadLibraryA(argv[1]);
    if (lib == NULL) {
        printf("LoadLibrary failed: error %lu\n", (unsigned long)GetLastError());
        return 1;
    }
    /* The usual cast from FARPROC; ISO C has no function-pointer round trip. */
    entry = (swh_plugin_entry_fn)(void (*)(void))GetProcAddress(lib, SWH_PLUGIN_ENTRY_SYMBOL);
    if (entry == NULL || (d = entry()) == NULL) {
        printf("no %s\n", SWH_PLUGIN_ENTRY_SYMBOL);
        FreeLibrary(lib);
        return 1;
    }
    printf("descriptor: name=%s version=%s kind=%u abi=%u.%u fields=%lu\n", d->name, d->version,
           (unsigned)d->kind, (unsigned)d->abi_major, (unsigned)d->abi_minor,
           (unsigned long)d->config_field_count);
    if (d->kind == SWH_KIND_MIDDLEWARE && strcmp(d->name, "word_guard") == 0)
        rc = run_word_guard((const swh_middleware_v1 *)d->vtable);
    FreeLibrary(lib);
    return rc;
}
