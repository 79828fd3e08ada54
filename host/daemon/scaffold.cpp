#include "daemon/scaffold.hpp"

#include <swarmhost/abi.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <string_view>
#include <system_error>

namespace swh::daemon {

namespace fs = std::filesystem;

namespace {

// ------------------------------------------------------------ templates
// Placeholders: @NAME@ (descriptor name), @KIND@, @TARGET@ (swh_<kind>_<name>),
// @SOURCE@ (src/<name>.c|cpp), @LANG@ (C|CXX), @ABI@ (major.minor),
// @PLUGIN_DIRS@ (YAML list items), @ENTRY@ (the manifest section).

constexpr std::string_view kCMake =
    R"(# @NAME@ — a swarmhost @KIND@ plugin, built out of tree against the SDK:
#   cmake -S . -B build -DCMAKE_PREFIX_PATH=<swarmhost SDK prefix>
#   cmake --build build        # -> build/@TARGET@.so
cmake_minimum_required(VERSION 3.20)
project(@NAME@ VERSION 0.1.0 LANGUAGES @LANG@)

find_package(swarmhost-sdk @ABI@ REQUIRED)

swarmhost_add_plugin(@TARGET@ SOURCES @SOURCE@)
target_compile_options(@TARGET@ PRIVATE -Wall -Wextra -Werror)
)";

constexpr std::string_view kMiddlewareC =
    R"(/* @NAME@ — swarmhost middleware (C99). Rejects user messages that contain
 * one of `blocked_words` (the client gets HTTP 422 "rejected"). Edit
 * process() to rewrite (editor->set_content) or annotate
 * (editor->merge_metadata) instead. Contract: docs/sdk.md of swarmhost. */
#include <swarmhost/swarmhost.h>

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

typedef struct plugin {
    size_t count;
    char **words; /* copies: the config is only valid during create */
} plugin;

static swh_status p_create(const swh_host_api *host, const swh_config *cfg, void **out) {
    size_t i, n = 0;
    plugin *p = (plugin *)calloc(1, sizeof *p);
    if (p == NULL) return SWH_E_INTERNAL;
    *out = p; /* handed out even on failure: the host reads last_error, then destroys */
    /* The host table must cover the members called below (start and size of
     * the last one), not be as large as this header's struct. */
    if (host == NULL ||
        host->struct_size < offsetof(swh_host_api, config_list_string) + sizeof host->config_list_string)
        return SWH_E_UNSUPPORTED;
    if (host->config_list_size(host->host_ctx, cfg, "blocked_words", &n) != SWH_OK) return SWH_E_INVALID;
    p->words = (char **)calloc(n ? n : 1, sizeof(char *));
    if (p->words == NULL) return SWH_E_INTERNAL;
    for (i = 0; i < n; ++i) {
        swh_str w = {NULL, 0};
        if (host->config_list_string(host->host_ctx, cfg, "blocked_words", i, &w) != SWH_OK) return SWH_E_INVALID;
        p->words[i] = (char *)malloc(w.len + 1);
        if (p->words[i] == NULL) return SWH_E_INTERNAL;
        if (w.len) memcpy(p->words[i], w.ptr, w.len);
        p->words[i][w.len] = '\0';
        p->count = i + 1;
    }
    return SWH_OK;
}

static void p_destroy(void *h) {
    plugin *p = (plugin *)h;
    size_t i;
    if (p == NULL) return;
    for (i = 0; i < p->count; ++i) free(p->words[i]);
    free(p->words);
    free(p);
}

/* Every failure here is "out of memory" or a config problem; a static string
 * keeps last_error thread-safe without C11 threads. */
static const char *p_last_error(void *h) {
    (void)h;
    return "@NAME@: out of memory, unreadable config or a host table without the config accessors";
}

static uint32_t p_stages(void *h) {
    (void)h;
    return SWH_STAGE_USER;
}

/* [any-thread]: reads only state that create wrote. */
static swh_status p_process(void *h, const swh_middleware_input *in, const swh_message_editor *editor) {
    const plugin *p = (const plugin *)h;
    size_t i, j, len = in->message->content.len;
    const char *text = in->message->content.ptr;
    for (i = 0; i < p->count; ++i) {
        size_t n = strlen(p->words[i]);
        for (j = 0; n > 0 && j + n <= len; ++j) {
            if (memcmp(text + j, p->words[i], n) == 0) {
                swh_str reason = {"contains a blocked word", 23};
                editor->reject(editor->ctx, reason);
                return SWH_OK; /* a rejection is a result, not a failure */
            }
        }
    }
    return SWH_OK;
}

static const swh_config_field schema[] = {
    {sizeof(swh_config_field), "blocked_words", SWH_CFG_STRING_LIST, 0, "[]",
     "Reject user messages containing any of these words"},
};

static const swh_middleware_v1 table = {
    sizeof(swh_middleware_v1), p_create, p_destroy, p_last_error, p_stages, p_process,
    NULL /* on_error */, NULL, NULL, NULL /* no stream filter */
};

static const swh_plugin_descriptor descriptor = {
    sizeof(swh_plugin_descriptor), SWH_ABI_VERSION_MAJOR, 0 /* lowest minor used: 1.0 */, "@NAME@",
    "0.1.0",
    "Rejects user messages with blocked words", SWH_KIND_MIDDLEWARE, SWH_IFACE_MIDDLEWARE_V1,
    schema, sizeof schema / sizeof schema[0], &table,
};

SWH_EXPORT const swh_plugin_descriptor *swh_plugin_entry(void) {
    return &descriptor;
}
)";

constexpr std::string_view kMiddlewareCpp =
    R"(// @NAME@ — swarmhost middleware (C++20, SDK helper swarmhost/cpp/plugin.hpp).
// Rejects user messages that contain one of `blocked_words` (HTTP 422
// "rejected"). Throw swh::cpp::Failure(status, why) to fail a call; the
// helper turns every exception into a status + last_error at the edge.
#include <swarmhost/cpp/plugin.hpp>

namespace {

// Each config key is declared once: the row gives key, default and
// description and names the member it fills; the type follows the member.
struct Settings {
    std::vector<std::string> blocked_words;
};

constexpr auto kSchema = swh::cpp::schema(swh::cpp::setting<&Settings::blocked_words>(
    "blocked_words", "[]", "Reject user messages containing any of these words"));

class Plugin {
  public:
    Plugin(swh::cpp::Host host, const Settings &settings) : words_(settings.blocked_words) {
        host.info("@NAME@: " + std::to_string(words_.size()) + " blocked words");
    }
    uint32_t stages() const { return SWH_STAGE_USER; }
    void process(const swh::cpp::MiddlewareInput &in, swh::cpp::Editor &edit) { // [any-thread]
        for (const auto &word : words_)
            if (!word.empty() && in.message.content.find(word) != std::string_view::npos)
                return edit.reject("contains a blocked word");
    }

  private:
    std::vector<std::string> words_;
};

} // namespace

SWH_CPP_MIDDLEWARE(Plugin, "@NAME@", "0.1.0", "Rejects user messages with blocked words", kSchema)
)";

constexpr std::string_view kHookCpp =
    R"(// @NAME@ — swarmhost lifecycle hook (C++20, SDK helper swarmhost/cpp/plugin.hpp).
// Counts messages and adds "<metric>{role=...}" to the daemon's GET /metrics.
// Events arrive on the hook's own queue, off the request path.
#include <swarmhost/cpp/plugin.hpp>

#include <map>
#include <mutex>

namespace {

// Each config key is declared once: the row gives key, default and
// description and names the member it fills; the type follows the member.
struct Settings {
    std::string metric = "@NAME@_messages_total";
};

constexpr auto kSchema = swh::cpp::schema(
    swh::cpp::setting<&Settings::metric>("metric", "\"@NAME@_messages_total\"", "Metric name"));

class Plugin {
  public:
    Plugin(swh::cpp::Host, const Settings &settings) : metric_(settings.metric) {}
    uint32_t events() const { return SWH_EVENT_MESSAGE_SENT; }
    void on_event(const swh::cpp::Event &event) { // [serial]
        std::lock_guard lock(mutex_);
        if (event.message) ++counts_[std::string(event.message->role)];
    }
    std::string render_metrics() { // [any-thread]
        std::lock_guard lock(mutex_);
        std::string out = "# TYPE " + metric_ + " counter\n";
        for (const auto &[role, n] : counts_) out += metric_ + "{role=\"" + role + "\"} " + std::to_string(n) + "\n";
        return out;
    }

  private:
    std::string metric_;
    std::mutex mutex_;
    std::map<std::string, uint64_t> counts_;
};

} // namespace

SWH_CPP_HOOK(Plugin, "@NAME@", "0.1.0", "Counts messages per role", kSchema)
)";

constexpr std::string_view kHookC = R"(/* @NAME@ — swarmhost lifecycle hook (C99). Logs every session creation
 * through the host's log. Events arrive on the hook's own queue, off the
 * request path, one at a time ([serial]). */
#include <swarmhost/swarmhost.h>

#include <stddef.h>
#include <stdlib.h>

typedef struct plugin {
    const swh_host_api *host;
    const char *error; /* a static string; "" when nothing failed */
} plugin;

static swh_status p_create(const swh_host_api *host, const swh_config *cfg, void **out) {
    plugin *p = (plugin *)calloc(1, sizeof *p);
    (void)cfg;
    if (p == NULL) return SWH_E_INTERNAL;
    *out = p; /* handed out even on failure: the host reads last_error, then destroys */
    p->host = host;
    p->error = "";
    /* The host table must cover the member called later (start and size),
     * not be as large as this header's struct. */
    if (host == NULL || host->struct_size < offsetof(swh_host_api, log) + sizeof host->log || host->log == NULL) {
        p->error = "@NAME@: the host's table has no log";
        return SWH_E_UNSUPPORTED;
    }
    return SWH_OK;
}
static void p_destroy(void *h) {
    free(h);
}
static const char *p_last_error(void *h) {
    return h != NULL ? ((const plugin *)h)->error : "";
}
static uint32_t p_events(void *h) {
    (void)h;
    return SWH_EVENT_SESSION_CREATED;
}
static swh_status p_on_event(void *h, const swh_event *event) {
    const plugin *p = (const plugin *)h;
    swh_str line = {"@NAME@: session created", sizeof "@NAME@: session created" - 1};
    (void)event;
    p->host->log(p->host->host_ctx, SWH_LOG_INFO, line);
    return SWH_OK;
}

static const swh_hook_v1 table = {sizeof(swh_hook_v1), p_create, p_destroy, p_last_error,
                                  p_events, p_on_event, NULL /* render_metrics */};

static const swh_plugin_descriptor descriptor = {
    sizeof(swh_plugin_descriptor), SWH_ABI_VERSION_MAJOR, 0 /* lowest minor used: 1.0 */, "@NAME@",
    "0.1.0",
    "Logs session creation", SWH_KIND_HOOK, SWH_IFACE_HOOK_V1, NULL, 0, &table,
};

SWH_EXPORT const swh_plugin_descriptor *swh_plugin_entry(void) {
    return &descriptor;
}
)";

constexpr std::string_view kManifest =
    R"(# Test manifest: the daemon with SQLite storage, the echo provider and
# @NAME@. From this folder, after building into ./build:
#   swarmhost check test/manifest.yaml
#   swarmhost serve -c test/manifest.yaml
# plugin_dirs are relative to this file.
server:
  listen: "127.0.0.1:8080"
plugin_dirs:
@PLUGIN_DIRS@
storage:
  plugin: sqlite
  config:
    path: "./@NAME@-test.db"
providers:
  - name: echo
    plugin: echo
@ENTRY@
)";

constexpr std::string_view kReadme = R"(# @NAME@ — a swarmhost @KIND@ plugin

Scaffolded by `swarmhost new-plugin`. Plugin ABI @ABI@ (see the SDK's
`docs/sdk.md`: versions, ownership, threading, errors).

## Build (out of tree, against the installed SDK)

    cmake -S . -B build -DCMAKE_PREFIX_PATH=<prefix where the swarmhost SDK is installed>
    cmake --build build

The SDK is headers only; the result is `build/@TARGET@.so`, exporting only
`swh_plugin_entry`. Without CMake: `cc -shared -fPIC $(pkg-config --cflags swarmhost-sdk) ...`.

## Try it

    swarmhost check test/manifest.yaml
    swarmhost serve -c test/manifest.yaml
@TRY@
## Configuration schema

The host validates the manifest's `config:` against this table (declared in
`@SOURCE@`) before `create`; defaults are filled in by the host.

| key | type | required | default | description |
|---|---|---|---|---|
@SCHEMA@
)";

std::string replace_all(std::string text, const std::map<std::string, std::string> &vars) {
    for (const auto &[key, value] : vars) {
        const std::string placeholder = "@" + key + "@";
        for (std::size_t pos = text.find(placeholder); pos != std::string::npos;
             pos = text.find(placeholder, pos + value.size()))
            text.replace(pos, placeholder.size(), value);
    }
    return text;
}

bool valid_name(const std::string &name) {
    if (name.empty() || name.size() > 64 || !(name[0] >= 'a' && name[0] <= 'z')) return false;
    for (char c : name)
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_')) return false;
    return true;
}

std::string yaml_quote(const std::string &text) {
    std::string out = "\"";
    for (char c : text) {
        if (c == '"' || c == '\\') out += '\\';
        out += c;
    }
    return out + "\"";
}

// build/plugins next to build/host/swarmhost, when this binary runs from a build tree;
// /usr/lib/swarmhost/plugins beside the Debian package's /usr/lib/swarmhost/swarmhost.
std::string default_host_plugin_dir() {
    std::error_code ec;
    const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
    if (ec) return "";
    for (const fs::path &candidate :
         {exe.parent_path().parent_path() / "plugins", exe.parent_path() / "plugins",
          exe.parent_path().parent_path() / "lib" / "swarmhost" / "plugins"})
        if (fs::exists(candidate / "swh_storage_sqlite.so", ec)) return candidate.string();
    return "";
}

bool write_file(const fs::path &path, const std::string &text, std::ostream &err) {
    std::error_code ec;
    fs::create_directories(path.parent_path(), ec);
    std::ofstream file(path, std::ios::binary);
    file << text;
    if (!file) {
        err << "swarmhost new-plugin: cannot write " << path.string() << "\n";
        return false;
    }
    return true;
}

} // namespace

int new_plugin(const ScaffoldOptions &options, std::ostream &out, std::ostream &err) {
    if (options.kind != "middleware" && options.kind != "hook") {
        err << "swarmhost new-plugin: --kind must be middleware or hook (got '" << options.kind << "')\n";
        return 2;
    }
    if (!valid_name(options.name)) {
        err << "swarmhost new-plugin: --name '" << options.name
            << "' must match [a-z][a-z0-9_]{0,63} (it is the manifest name)\n";
        return 2;
    }
    if (options.lang != "c" && options.lang != "cpp") {
        err << "swarmhost new-plugin: --lang must be c or cpp (got '" << options.lang << "')\n";
        return 2;
    }
    const fs::path dir =
        options.dir.empty() ? fs::path(options.kind + "_" + options.name) : fs::path(options.dir);
    std::error_code ec;
    if (fs::exists(dir, ec) && !fs::is_empty(dir, ec)) {
        err << "swarmhost new-plugin: " << dir.string() << " exists and is not empty; choose another --dir\n";
        return 1;
    }

    const bool cpp = options.lang == "cpp";
    const bool middleware = options.kind == "middleware";
    const std::string source = "src/" + options.name + (cpp ? ".cpp" : ".c");
    std::string plugin_dirs = "  - \"../build\"";
    const std::string host_dir =
        options.host_plugin_dir.empty() ? default_host_plugin_dir() : options.host_plugin_dir;
    if (!host_dir.empty())
        plugin_dirs += "\n  - " + yaml_quote(fs::absolute(host_dir).lexically_normal().string());
    else
        plugin_dirs += "\n  # - \"<folder holding swh_storage_sqlite.so and swh_provider_echo.so>\"";

    std::string entry, schema, try_it;
    if (middleware) {
        entry = "middleware:\n  - plugin: " + options.name +
                "\n    config:\n      blocked_words: [\"forbidden\"]";
        schema = "| `blocked_words` | string list | no | `[]` | Reject user messages containing any of these "
                 "words |";
        try_it = "\n    curl -s -XPOST localhost:8080/v1/sessions -d '{\"user_id\":\"me\"}'   # -> "
                 "{\"id\":\"S\",...}\n"
                 "    curl -s -XPOST localhost:8080/v1/sessions/S/messages -d '{\"content\":\"forbidden\"}'\n"
                 "    # -> 422 {\"error\":{\"code\":\"rejected\",...}}\n";
    } else {
        entry = "hooks:\n  - plugin: " + options.name;
        schema = cpp ? "| `metric` | string | no | `\"" + options.name + "_messages_total\"` | Metric name |"
                     : "| (none) | | | | |";
        try_it = cpp ? "\n    curl -s localhost:8080/metrics | grep " + options.name + "\n"
                     : "\n    # create a session and watch the daemon's log\n";
    }
    const std::map<std::string, std::string> vars = {
        {"NAME", options.name},
        {"KIND", options.kind},
        {"TARGET", "swh_" + options.kind + "_" + options.name},
        {"SOURCE", source},
        {"LANG", cpp ? "CXX" : "C"},
        {"ABI", std::to_string(SWH_ABI_VERSION_MAJOR) + "." + std::to_string(SWH_ABI_VERSION_MINOR)},
        {"PLUGIN_DIRS", plugin_dirs},
        {"ENTRY", entry},
        {"SCHEMA", schema},
        {"TRY", try_it},
    };
    const std::string_view code =
        middleware ? (cpp ? kMiddlewareCpp : kMiddlewareC) : (cpp ? kHookCpp : kHookC);
    const std::pair<fs::path, std::string_view> files[] = {
        {dir / "CMakeLists.txt", kCMake},
        {dir / source, code},
        {dir / "README.md", kReadme},
        {dir / "test" / "manifest.yaml", kManifest},
    };
    for (const auto &[path, text] : files)
        if (!write_file(path, replace_all(std::string(text), vars), err)) return 1;
    out << "created " << dir.string() << "/ (" << options.kind << " '" << options.name << "', "
        << (cpp ? "C++20" : "C99") << ")\n"
        << "  build:  cmake -S " << dir.string() << " -B " << (dir / "build").string()
        << " -DCMAKE_PREFIX_PATH=<SDK prefix> && cmake --build " << (dir / "build").string() << "\n"
        << "  try:    swarmhost check " << (dir / "test" / "manifest.yaml").string() << "\n";
    return 0;
}

} // namespace swh::daemon
