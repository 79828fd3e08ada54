// Manifest parsing: YAML text -> Manifest, with every structural problem
// collected as a located diagnostic before anything is thrown, so one run of
// the daemon shows the user all of their mistakes at once.
#include "manifest/manifest.hpp"
#include "manifest/config_schema.hpp"
#include "util/ip_networks.hpp"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <map>
#include <optional>
#include <system_error>

namespace swh::manifest {

namespace {

namespace fs = std::filesystem;
using Keys = std::vector<std::string>;

const Keys kTopKeys{"server",    "auth",       "plugin_dirs", "storage",       "default_provider",
                    "providers", "middleware", "hooks",       "session_types", "events",
                    "limits",    "budgets",    "tracing"};
const Keys kEventsKeys{"carrier", "plugin", "name", "config", "sha256"};
const Keys kLimitsKeys{"shared", "lease_seconds"};
const Keys kBudgetsKeys{"window", "prices", "keys", "users", "sessions"};
const Keys kBudgetKeys{"tokens", "cost_usd"};
const Keys kPriceKeys{"input_per_mtok", "output_per_mtok"};
const Keys kTracingKeys{"otlp_endpoint", "service_name", "sample_ratio", "batch",
                        "flush_ms",      "queue",        "timeout_ms",   "headers"};
const Keys kAuthKeys{"mode",
                     "keys",
                     "keys_file",
                     "rate_per_second",
                     "burst",
                     "max_streams_per_key",
                     "max_failures_per_minute"};
const Keys kApiKeyKeys{"id", "user", "role", "sha256", "rate_per_second", "burst"};
const Keys kKeysFileKeys{"keys"};
const Keys kServerKeys{"listen",
                       "io_threads",
                       "worker_threads",
                       "storage_threads",
                       "storage_timeout_ms",
                       "max_body_bytes",
                       "request_timeout_seconds",
                       "shutdown_grace_seconds",
                       "hook_queue_capacity",
                       "sse_keepalive_seconds",
                       "read_timeout_seconds",
                       "max_header_bytes",
                       "max_messages_per_session",
                       "max_connections",
                       "max_stream_queue_bytes",
                       "responses_retention_seconds",
                       "history_cache_mb",
                       "trusted_proxies",
                       "deadlines"};
const Keys kDeadlineKeys{"request_ms", "stream_ms", "stream_idle_ms", "doors"};
const Keys kDoorDeadlineKeys{"request_ms", "stream_ms", "stream_idle_ms"};
// Which routes each door is: docs/reliability.md, "Deadlines".
const Keys kDeadlineDoors{"chat_completions",    "messages", "responses", "conversations", "sessions",
                          "session_type_routes", "other"};
const Keys kStreamingDoors{"chat_completions", "messages", "responses", "sessions"};
const Keys kPluginKeys{"name", "plugin", "config", "sha256", "isolation", "isolation_timeout_ms"};
const Keys kHookKeys{"name",          "plugin", "config", "sha256", "isolation", "isolation_timeout_ms",
                     "once_per_fleet"};
const Keys kProviderKeys{"name",     "plugin", "config", "sha256", "isolation", "isolation_timeout_ms",
                         "fallback", "group",  "http"};
const Keys kHttpKeys{"version"};
const Keys kMiddlewareKeys{"name",     "plugin", "config", "sha256", "isolation", "isolation_timeout_ms",
                           "priority", "when",   "after",  "fail"};
const Keys kWhenKeys{"user_type", "provider", "model"};

struct Located {
    std::string value;
    SourceMark mark;
};

// One YAML map whose keys have been checked once (unknown, duplicate,
// non-string); fields are then looked up by name. `context` names the map in
// messages ("providers[0]"); empty for the top level.
struct MapView {
    struct Entry {
        YAML::Node value;
        SourceMark key_mark;
        SourceMark value_mark; // the key's mark when the value is empty
    };
    std::string context;
    SourceMark mark;
    std::map<std::string, Entry> entries;

    const Entry *get(const std::string &key) const {
        const auto it = entries.find(key);
        return it == entries.end() ? nullptr : &it->second;
    }
};

// A parsed entry plus the marks the cross-entry checks point at.
template <class Ref> struct Parsed {
    Ref ref;
    SourceMark name_mark; // `name:` value, or `plugin:` when the name defaults to it
};
struct ParsedMiddleware : Parsed<MiddlewareRef> {
    std::vector<SourceMark> after_marks; // parallel to ref.after
};

// A use of an instance name that must resolve; checked once all entries are read.
struct Reference {
    std::string name;
    SourceMark mark;
    std::string message; // the error if `name` is undefined
};

template <class Entries> std::vector<std::string> names_of(const Entries &entries) {
    std::vector<std::string> names;
    for (const auto &entry : entries)
        names.push_back(entry.ref.name);
    return names;
}

// "; did you mean 'echo'?" for a near miss, else the names that do exist.
std::string defined_hint(const std::string &name, const std::vector<std::string> &names) {
    if (const std::string guess = did_you_mean(name, names); !guess.empty())
        return "; did you mean '" + guess + "'?";
    std::vector<std::string> unique; // duplicates are reported on their own
    for (const auto &defined : names)
        if (std::find(unique.begin(), unique.end(), defined) == unique.end()) unique.push_back(defined);
    std::string list;
    for (const auto &defined : unique)
        list += (list.empty() ? "" : ", ") + defined;
    return " (defined: " + list + ")";
}

// Why `listen` is unusable, or nullopt. Accepts HOST:PORT and [IPV6]:PORT.
std::optional<std::string> listen_problem(const std::string &listen) {
    std::string host, port;
    if (listen.starts_with('[')) {
        const std::size_t close = listen.find(']');
        if (close != std::string::npos && listen.compare(close + 1, 1, ":") == 0) {
            host = listen.substr(1, close - 1);
            port = listen.substr(close + 2);
        }
    } else if (const std::size_t colon = listen.rfind(':'); colon != std::string::npos) {
        host = listen.substr(0, colon);
        port = listen.substr(colon + 1);
    }
    unsigned value = 0;
    const auto [end, error] = std::from_chars(port.data(), port.data() + port.size(), value);
    const bool port_ok =
        !port.empty() && error == std::errc() && end == port.data() + port.size() && value <= 65535;
    const bool host_ok = !host.empty() && (listen.starts_with('[') || host.find(':') == std::string::npos);
    if (host_ok && port_ok) return std::nullopt;
    return "listen must be HOST:PORT (IPv6 as [::1]:8080) with port 0..65535, got '" + listen + "'";
}

// Finds cycles in middleware `after` edges by depth-first search; each back
// edge found is one cycle, reported at the `after` item that closes it.
class CycleFinder {
  public:
    CycleFinder(const std::vector<ParsedMiddleware> &middleware, std::vector<Diagnostic> &diagnostics)
        : middleware_(middleware), diagnostics_(diagnostics), state_(middleware.size(), State::New) {
        for (std::size_t i = 0; i < middleware.size(); ++i)
            index_.emplace(middleware[i].ref.name, i);
    }

    void run() {
        for (std::size_t i = 0; i < middleware_.size(); ++i)
            if (state_[i] == State::New) visit(i);
    }

  private:
    enum class State { New, OnStack, Done };
    const std::vector<ParsedMiddleware> &middleware_;
    std::vector<Diagnostic> &diagnostics_;
    std::vector<State> state_;
    std::vector<std::size_t> stack_;
    std::map<std::string, std::size_t> index_; // first definition wins, as for lookups

    void visit(std::size_t node) {
        state_[node] = State::OnStack;
        stack_.push_back(node);
        const auto &entry = middleware_[node];
        for (std::size_t k = 0; k < entry.ref.after.size(); ++k) {
            const auto target = index_.find(entry.ref.after[k]);
            if (target == index_.end()) continue; // reported as an unknown dependency
            if (state_[target->second] == State::OnStack)
                report(target->second, entry.after_marks[k]);
            else if (state_[target->second] == State::New)
                visit(target->second);
        }
        stack_.pop_back();
        state_[node] = State::Done;
    }

    void report(std::size_t first, const SourceMark &mark) {
        std::string path;
        for (auto it = std::find(stack_.begin(), stack_.end(), first); it != stack_.end(); ++it)
            path += middleware_[*it].ref.name + " -> ";
        diagnostics_.push_back({mark, "middleware dependency cycle: " + path + middleware_[first].ref.name});
    }
};

SourceMark mark_of_exception(const YAML::Exception &e, const std::string &file) {
    if (e.mark.is_null() || e.mark.line < 0) return {file, 1, 1};
    return {file, e.mark.line + 1, e.mark.column + 1};
}

// `what`: "manifest", "keys file".
[[noreturn]] void throw_open_error(const std::string &path, int error_number, const char *what) {
    // Line 0: the problem is the file itself, so the diagnostic reads "path: cannot open ...".
    throw ManifestError({{SourceMark{path, 0, 0}, std::string("cannot open ") + what + ": " +
                                                      std::generic_category().message(error_number)}});
}

std::string read_text(const std::string &path, const char *what = "manifest") {
    std::error_code ignored;
    if (fs::is_directory(path, ignored))
        throw_open_error(path, EISDIR, what); // ifstream "opens" folders on Linux
    errno = 0;
    std::ifstream in(path, std::ios::binary);
    if (!in) throw_open_error(path, errno != 0 ? errno : ENOENT, what);
    std::string text{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
    if (in.bad()) throw_open_error(path, errno != 0 ? errno : EIO, what);
    return text;
}

class Parser {
  public:
    Parser(std::string file, fs::path base_dir) : file_(std::move(file)), base_dir_(std::move(base_dir)) {}

    Manifest run(const YAML::Node &root) {
        const SourceMark start{file_, 1, 1};
        if (!root.IsDefined() || root.IsNull())
            fail(start,
                 "manifest is empty (expected a map with at least storage, providers and plugin_dirs)");
        if (!root.IsMap())
            fail(mark_of(root, start), "expected a map at the top level, got " + describe(root));
        read_sections(view(root, "", kTopKeys));
        check_names();
        check_references();
        CycleFinder(middleware_, diagnostics_).run();
        if (!diagnostics_.empty()) throw_all();
        return assemble();
    }

  private:
    std::string file_;
    fs::path base_dir_;
    std::vector<Diagnostic> diagnostics_;
    Manifest manifest_;
    std::vector<Parsed<ProviderRef>> providers_;
    std::vector<ParsedMiddleware> middleware_;
    std::vector<Parsed<PluginRef>> hooks_, session_types_;
    std::optional<Located> default_provider_;
    std::map<std::string, SourceMark> group_marks_; // load-balanced group name -> first mention
    std::vector<Reference> provider_refs_, middleware_refs_;

    // ---- diagnostics

    void error(const SourceMark &mark, std::string message) {
        diagnostics_.push_back({mark, std::move(message)});
    }

    [[noreturn]] void fail(const SourceMark &mark, std::string message) {
        error(mark, std::move(message));
        throw_all();
    }

    [[noreturn]] void throw_all() {
        // Cross-entry checks run last; sorting puts every message in file order.
        std::stable_sort(diagnostics_.begin(), diagnostics_.end(), [](const auto &a, const auto &b) {
            return std::pair(a.mark.line, a.mark.column) < std::pair(b.mark.line, b.mark.column);
        });
        throw ManifestError(std::move(diagnostics_));
    }

    // ---- maps and fields

    MapView view(const YAML::Node &map, const std::string &context, const Keys &allowed) {
        MapView view{context, mark_of(map, {file_, 1, 1}), {}};
        for (const auto &item : map)
            add_key(view, item.first, item.second, allowed);
        return view;
    }

    void add_key(MapView &view, const YAML::Node &key, const YAML::Node &value, const Keys &allowed) {
        const SourceMark key_mark = mark_of(key, view.mark);
        const bool top = view.context.empty();
        const std::string in = top ? "" : " in " + view.context;
        if (!key.IsScalar())
            return error(key_mark, "expected a string key" + (top ? " at the top level" : in) + ", got " +
                                       describe(key));
        const std::string &name = key.Scalar();
        const std::string what = (top ? "top-level key '" : "key '") + name + "'" + in;
        if (std::find(allowed.begin(), allowed.end(), name) == allowed.end())
            return error(key_mark, "unknown " + what + typo_hint(name, allowed));
        const SourceMark value_mark = value.IsNull() ? key_mark : mark_of(value, key_mark);
        const auto [it, fresh] = view.entries.emplace(name, MapView::Entry{value, key_mark, value_mark});
        if (!fresh)
            error(key_mark, "duplicate " + what + " (first given at " + it->second.key_mark.str() + ")");
    }

    // A map-valued entry ("providers[0]"), or nullopt after reporting what it is instead.
    std::optional<MapView> entry_view(const YAML::Node &node, const SourceMark &mark,
                                      const std::string &context, const Keys &allowed) {
        if (node.IsMap()) return view(node, context, allowed);
        error(mark, "expected a map like { plugin: NAME } for " + context + ", got " + describe(node));
        return std::nullopt;
    }

    std::optional<Located> string_at(const MapView &view, const std::string &key) {
        const auto *entry = view.get(key);
        if (entry == nullptr) return std::nullopt;
        if (!entry->value.IsScalar()) {
            error(entry->value_mark, "expected a string for '" + key + "', got " + describe(entry->value));
            return std::nullopt;
        }
        if (entry->value.Scalar().empty()) {
            error(entry->value_mark, "expected a non-empty string for '" + key + "', got ''");
            return std::nullopt;
        }
        return Located{entry->value.Scalar(), entry->value_mark};
    }

    // true / false, with where it was written.
    std::optional<std::pair<bool, SourceMark>> bool_at(const MapView &view, const std::string &key) {
        const auto *entry = view.get(key);
        if (entry == nullptr) return std::nullopt;
        if (entry->value.IsScalar() && (entry->value.Scalar() == "true" || entry->value.Scalar() == "false"))
            return std::make_pair(entry->value.Scalar() == "true", entry->value_mark);
        error(entry->value_mark, "expected true or false for '" + key + "', got " + describe(entry->value));
        return std::nullopt;
    }

    // Integers in [min, max]; `what` is "an integer" or "a non-negative integer".
    std::optional<std::int64_t> int_at(const MapView &view, const std::string &key, std::int64_t min,
                                       std::int64_t max, const std::string &what) {
        const auto *entry = view.get(key);
        if (entry == nullptr) return std::nullopt;
        const auto value = plain_int(entry->value);
        if (value && *value >= min && *value <= max) return value;
        const std::string limit = value && *value > max ? " of at most " + std::to_string(max) : "";
        error(entry->value_mark,
              "expected " + what + limit + " for '" + key + "', got " + describe(entry->value));
        return std::nullopt;
    }

    template <class T> void count_at(const MapView &view, const std::string &key, T &out) {
        const auto max = static_cast<std::int64_t>(
            std::min<std::uint64_t>(std::numeric_limits<T>::max(), std::numeric_limits<std::int64_t>::max()));
        if (const auto value = int_at(view, key, 0, max, "a non-negative integer"))
            out = static_cast<T>(*value);
    }

    std::vector<Located> strings_at(const MapView &view, const std::string &key) {
        const auto *entry = view.get(key);
        if (entry == nullptr || entry->value.IsNull()) return {};
        if (!entry->value.IsSequence()) {
            error(entry->value_mark,
                  "expected a list of strings for '" + key + "', got " + describe(entry->value));
            return {};
        }
        std::vector<Located> items;
        for (std::size_t i = 0; i < entry->value.size(); ++i) {
            const YAML::Node item = entry->value[i];
            const SourceMark mark = mark_of(item, entry->value_mark);
            const std::string label = key + "[" + std::to_string(i) + "]";
            if (!item.IsScalar() || item.Scalar().empty())
                error(mark, "expected a non-empty string for '" + label + "', got " + describe(item));
            else
                items.push_back({item.Scalar(), mark});
        }
        return items;
    }

    // `config:` stays YAML; its schema is only known once the plugin is loaded.
    YAML::Node config_at(const MapView &view) {
        const auto *entry = view.get("config");
        if (entry == nullptr) return {};
        if (entry->value.IsMap() || entry->value.IsNull()) return entry->value;
        error(entry->value_mark, "expected a map for 'config', got " + describe(entry->value));
        return {};
    }

    // Calls `read(item, mark, "key[i]")` for each item of the list under `key`.
    template <class Read> void each_item(const MapView &top, const std::string &key, Read read) {
        const auto *entry = top.get(key);
        if (entry == nullptr || entry->value.IsNull()) return;
        if (!entry->value.IsSequence())
            return error(entry->value_mark,
                         "expected a list for '" + key + "', got " + describe(entry->value));
        for (std::size_t i = 0; i < entry->value.size(); ++i) {
            const YAML::Node item = entry->value[i];
            read(item, mark_of(item, entry->value_mark), key + "[" + std::to_string(i) + "]");
        }
    }

    // ---- sections

    void read_sections(const MapView &top) {
        read_server(top);
        read_auth(top);
        read_plugin_dirs(top);
        read_storage(top);
        read_providers(top);
        read_default_provider(top);
        each_item(top, "middleware", [&](const auto &node, const auto &mark, const auto &context) {
            read_middleware(node, mark, context);
        });
        read_plugin_list(top, "hooks", hooks_, kHookKeys);
        read_plugin_list(top, "session_types", session_types_, kPluginKeys);
        read_events(top);
        read_limits(top);
        read_budgets(top);
        read_tracing(top);
    }

    void read_server(const MapView &top) {
        ServerSettings &server = manifest_.server;
        server.mark = top.mark;
        const auto *entry = top.get("server");
        if (entry == nullptr || entry->value.IsNull()) return;
        server.mark = entry->value_mark;
        if (!entry->value.IsMap())
            return error(entry->value_mark,
                         "expected a map like { listen: \"127.0.0.1:8080\" } for 'server', got " +
                             describe(entry->value));
        const MapView view = this->view(entry->value, "server", kServerKeys);
        if (const auto listen = string_at(view, "listen")) {
            if (const auto problem = listen_problem(listen->value))
                error(listen->mark, *problem);
            else
                server.listen = listen->value;
        }
        count_at(view, "io_threads", server.io_threads);
        count_at(view, "worker_threads", server.worker_threads);
        count_at(view, "storage_threads", server.storage_threads);
        count_at(view, "storage_timeout_ms", server.storage_timeout_ms);
        count_at(view, "max_body_bytes", server.max_body_bytes);
        count_at(view, "request_timeout_seconds", server.request_timeout_seconds);
        count_at(view, "shutdown_grace_seconds", server.shutdown_grace_seconds);
        count_at(view, "hook_queue_capacity", server.hook_queue_capacity);
        count_at(view, "sse_keepalive_seconds", server.sse_keepalive_seconds);
        count_at(view, "read_timeout_seconds", server.read_timeout_seconds);
        count_at(view, "max_header_bytes", server.max_header_bytes);
        count_at(view, "max_messages_per_session", server.max_messages_per_session);
        count_at(view, "max_connections", server.max_connections);
        count_at(view, "max_stream_queue_bytes", server.max_stream_queue_bytes);
        count_at(view, "responses_retention_seconds", server.responses_retention_seconds);
        count_at(view, "history_cache_mb", server.history_cache_mb);
        for (auto &proxy : strings_at(view, "trusted_proxies")) {
            if (const auto why = IpNetworks::problem(proxy.value))
                error(proxy.mark, "server.trusted_proxies: " + *why);
            else
                server.trusted_proxies.push_back(std::move(proxy.value));
        }
        read_deadlines(view, server);
    }

    // server.deadlines: { request_ms, stream_ms, stream_idle_ms, doors: { NAME: {...} } }
    void read_deadlines(const MapView &server_view, ServerSettings &server) {
        const auto *entry = server_view.get("deadlines");
        if (entry == nullptr || entry->value.IsNull()) return;
        if (!entry->value.IsMap())
            return error(entry->value_mark,
                         "expected a map like { request_ms: 300000, stream_idle_ms: 300000 } for "
                         "'server.deadlines', got " +
                             describe(entry->value));
        const MapView view = this->view(entry->value, "server.deadlines", kDeadlineKeys);
        count_at(view, "request_ms", server.deadlines.request_ms);
        count_at(view, "stream_ms", server.deadlines.stream_ms);
        count_at(view, "stream_idle_ms", server.deadlines.stream_idle_ms);
        const auto *doors = view.get("doors");
        if (doors == nullptr || doors->value.IsNull()) return;
        if (!doors->value.IsMap())
            return error(doors->value_mark,
                         "expected a map like { chat_completions: { request_ms: 60000 } } for "
                         "'server.deadlines.doors', got " +
                             describe(doors->value));
        // The door names are the map's keys: an unknown one is reported
        // (with a near miss) as an unknown key.
        const MapView by_door = this->view(doors->value, "server.deadlines.doors", kDeadlineDoors);
        for (const auto &[name, door] : by_door.entries) {
            const std::string context = "server.deadlines.doors." + name;
            const auto limits =
                map_view(door.value, door.value_mark, context, kDoorDeadlineKeys, "{ request_ms: 60000 }");
            if (!limits) continue;
            DoorDeadline &out = server.door_deadlines[name];
            out.mark = door.key_mark;
            const auto read = [&](const char *key, std::optional<int> &target) {
                int value = 0;
                if (limits->get(key) == nullptr) return;
                const std::size_t before = diagnostics_.size();
                count_at(*limits, key, value);
                if (diagnostics_.size() == before) target = value;
            };
            read("request_ms", out.request_ms);
            for (const char *key : {"stream_ms", "stream_idle_ms"}) {
                if (const auto *given = limits->get(key);
                    given && std::find(kStreamingDoors.begin(), kStreamingDoors.end(), name) ==
                                 kStreamingDoors.end()) {
                    error(given->key_mark, "'" + std::string(key) + "' in " + context + ": the door '" +
                                               name + "' never streams (only request_ms applies to it)");
                    continue;
                }
                read(key, std::string(key) == "stream_ms" ? out.stream_ms : out.stream_idle_ms);
            }
        }
    }

    void read_auth(const MapView &top) {
        AuthSettings &auth = manifest_.auth;
        auth.mark = top.mark;
        const auto *entry = top.get("auth");
        if (entry == nullptr || entry->value.IsNull()) return;
        auth.mark = entry->value_mark;
        if (entry->value.IsScalar() && entry->value.Scalar() == "none") return; // `auth: none`
        if (!entry->value.IsMap())
            return error(entry->value_mark, "expected 'none' or a map like { mode: api_keys, keys_file: "
                                            "./keys.yaml } for 'auth', got " +
                                                describe(entry->value));
        const MapView view = this->view(entry->value, "auth", kAuthKeys);
        if (const auto mode = string_at(view, "mode")) {
            if (mode->value == "none" || mode->value == "api_keys")
                auth.mode = mode->value;
            else
                error(mode->mark, "auth.mode must be 'none' or 'api_keys', got '" + mode->value + "'");
        } else {
            auth.mode = "api_keys"; // an auth section without a mode means keys
        }
        if (const auto file = string_at(view, "keys_file")) auth.keys_file = resolve(file->value);
        if (const auto rate = number_at(view, "rate_per_second")) auth.rate_per_second = *rate;
        count_at(view, "burst", auth.burst);
        count_at(view, "max_streams_per_key", auth.max_streams_per_key);
        count_at(view, "max_failures_per_minute", auth.max_failures_per_minute);
        auth.keys = read_api_keys(view);
        if (auth.mode == "none" && (view.get("keys") || view.get("keys_file")))
            error(auth.mark, "auth.mode is 'none' but keys are given; they would be ignored (use mode: "
                             "api_keys, or drop them)");
        if (auth.mode == "api_keys" && auth.keys.empty() && auth.keys_file.empty())
            error(auth.mark, "auth.mode api_keys needs 'keys' or 'keys_file' (expected at least one key)");
    }

  public:
    // The `keys:` list of an auth section or a keys file.
    std::vector<ApiKey> read_api_keys(const MapView &view) {
        std::vector<ApiKey> keys;
        each_item(view, "keys", [&](const auto &node, const auto &mark, const auto &context) {
            if (!node.IsMap())
                return error(mark, "expected a map like { id: laptop, user: alice, sha256: <64 hex> } for " +
                                       context + ", got " + describe(node));
            const MapView entry = this->view(node, context, kApiKeyKeys);
            ApiKey key;
            key.mark = mark;
            for (auto [field, target] :
                 {std::pair{"id", &key.id}, {"user", &key.user}, {"sha256", &key.sha256}}) {
                if (const auto value = string_at(entry, field))
                    *target = value->value;
                else if (entry.get(field) == nullptr)
                    error(mark, std::string("missing required key '") + field + "' in " + context);
            }
            std::transform(key.sha256.begin(), key.sha256.end(), key.sha256.begin(),
                           [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
            if (!key.sha256.empty() && !is_hex64(key.sha256))
                error(entry.get("sha256")->value_mark,
                      "expected 64 hex digits for 'sha256' (the SHA-256 of the key, e.g. printf %s KEY | "
                      "sha256sum), got '" +
                          key.sha256 + "'");
            if (const auto role = string_at(entry, "role")) {
                if (role->value == "user" || role->value == "admin")
                    key.role = role->value;
                else
                    error(role->mark, "role must be 'user' or 'admin', got '" + role->value + "'");
            }
            if (const auto rate = number_at(entry, "rate_per_second")) key.rate_per_second = *rate;
            if (const auto burst = int_at(entry, "burst", 0, 1'000'000, "a non-negative integer"))
                key.burst = static_cast<int>(*burst);
            for (const auto &other : keys) {
                if (!key.id.empty() && other.id == key.id)
                    error(mark, "duplicate key id '" + key.id + "' (first at " + other.mark.str() + ")");
                if (!key.sha256.empty() && other.sha256 == key.sha256)
                    error(mark, "the same key appears twice (first as '" + other.id + "' at " +
                                    other.mark.str() + ")");
            }
            keys.push_back(std::move(key));
        });
        return keys;
    }

    std::vector<ApiKey> run_keys_file(const YAML::Node &root) {
        const SourceMark start{file_, 1, 1};
        if (!root.IsMap())
            fail(mark_of(root, start), "expected a map with 'keys' at the top level, got " + describe(root));
        auto keys = read_api_keys(view(root, "", kKeysFileKeys));
        if (!diagnostics_.empty()) throw_all();
        return keys;
    }

  private:
    static bool is_hex64(const std::string &text) {
        return text.size() == 64 && std::all_of(text.begin(), text.end(), [](char c) {
                   return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
               });
    }

    // A non-negative number (integer or decimal).
    std::optional<double> number_at(const MapView &view, const std::string &key) {
        const auto *entry = view.get(key);
        if (entry == nullptr) return std::nullopt;
        if (entry->value.IsScalar()) {
            const std::string &text = entry->value.Scalar();
            double value = 0;
            const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
            if (ec == std::errc() && end == text.data() + text.size() && value >= 0 && std::isfinite(value))
                return value;
        }
        error(entry->value_mark,
              "expected a non-negative number for '" + key + "', got " + describe(entry->value));
        return std::nullopt;
    }

    void read_plugin_dirs(const MapView &top) {
        const auto *entry = top.get("plugin_dirs");
        if (entry == nullptr)
            return error(top.mark, "missing required key 'plugin_dirs' (expected a list of folders like "
                                   "[ ./build/plugins ])");
        if (!entry->value.IsSequence() || entry->value.size() == 0)
            return error(entry->value_mark, "expected a non-empty list of folders for 'plugin_dirs', got " +
                                                describe(entry->value));
        for (const auto &dir : strings_at(top, "plugin_dirs"))
            manifest_.plugin_dirs.push_back(resolve(dir.value));
    }

    // Relative to the manifest's folder, so a config works from any working directory.
    std::string resolve(const std::string &dir) const {
        fs::path path(dir);
        if (path.is_relative()) path = base_dir_ / path;
        return path.lexically_normal().string();
    }

    void read_storage(const MapView &top) {
        const auto *entry = top.get("storage");
        if (entry == nullptr)
            return error(top.mark, "missing required key 'storage' (expected a map like { plugin: sqlite })");
        if (const auto view = entry_view(entry->value, entry->value_mark, "storage", kPluginKeys)) {
            SourceMark name_mark;
            read_plugin_fields(*view, manifest_.storage, name_mark);
        }
    }

    void read_events(const MapView &top) {
        EventsSettings &events = manifest_.events;
        events.mark = top.mark;
        const auto *entry = top.get("events");
        if (entry == nullptr || entry->value.IsNull()) return;
        events.mark = entry->value_mark;
        if (!entry->value.IsMap())
            return error(entry->value_mark, "expected a map like { carrier: storage } for 'events', got " +
                                                describe(entry->value));
        const MapView view = this->view(entry->value, "events", kEventsKeys);
        if (const auto carrier = string_at(view, "carrier")) {
            events.mark = carrier->mark;
            if (carrier->value != "local" && carrier->value != "storage" && carrier->value != "plugin")
                return error(carrier->mark, "events.carrier must be 'local', 'storage' or 'plugin', got '" +
                                                carrier->value + "'");
            events.carrier = carrier->value;
        }
        if (events.carrier == "plugin") {
            SourceMark name_mark;
            read_plugin_fields(view, events.plugin, name_mark);
            return;
        }
        for (const char *key : {"plugin", "name", "config", "sha256"})
            if (const auto *given = view.get(key))
                error(given->key_mark, std::string("events.") + key +
                                           " goes with carrier: plugin (carrier is '" + events.carrier +
                                           "')");
        // The carrier's listener thread and callbacks live in the storage
        // instance; an isolated store runs in a child process without them.
        if (events.carrier == "storage" && manifest_.storage.isolation == "process")
            error(events.mark, "events.carrier: storage needs the storage plugin in process (storage has "
                               "isolation: process); use carrier: plugin for a carrier instance of its own");
    }

    // `limits:` — where the limits of several daemons on one store are
    // counted (docs/fleet.md): in each daemon ("local", the default) or in
    // the storage plugin ("storage", ABI 1.5 shared limits).
    void read_limits(const MapView &top) {
        LimitsSettings &limits = manifest_.limits;
        limits.mark = top.mark;
        const auto *entry = top.get("limits");
        if (entry != nullptr && !entry->value.IsNull()) {
            limits.mark = entry->value_mark;
            if (!entry->value.IsMap())
                return error(entry->value_mark, "expected a map like { shared: storage } for 'limits', got " +
                                                    describe(entry->value));
            const MapView view = this->view(entry->value, "limits", kLimitsKeys);
            if (const auto shared = string_at(view, "shared")) {
                limits.mark = shared->mark;
                if (shared->value != "local" && shared->value != "storage")
                    return error(shared->mark,
                                 "limits.shared must be 'local' or 'storage', got '" + shared->value + "'");
                limits.shared = shared->value;
            }
            if (const auto seconds = int_at(view, "lease_seconds", 3, 3600, "an integer of at least 3"))
                limits.lease_seconds = static_cast<int>(*seconds);
        }
        // The shared counters are calls into the storage instance, which an
        // isolated store runs in a child process without them.
        if (limits.shared == "storage" && manifest_.storage.isolation == "process")
            error(limits.mark, "limits.shared: storage needs the storage plugin in process (storage has "
                               "isolation: process)");
        for (const auto &hook : hooks_)
            if (hook.ref.once_per_fleet && limits.shared != "storage")
                error(hook.ref.once_per_fleet_mark,
                      "once_per_fleet of hook '" + hook.ref.name +
                          "' needs limits: { shared: storage } (the claim that one daemon handles each event "
                          "is kept in the store)");
    }

    // `budgets:` — token and cost budgets per key, user and session
    // (docs/budgets.md), with prices per model.
    void read_budgets(const MapView &top) {
        BudgetSettings &budgets = manifest_.budgets;
        budgets.mark = top.mark;
        const auto *entry = top.get("budgets");
        if (entry == nullptr || entry->value.IsNull()) return;
        budgets.mark = entry->value_mark;
        if (!entry->value.IsMap())
            return error(entry->value_mark,
                         "expected a map like { sessions: { default: { tokens: 100000 } } } "
                         "for 'budgets', got " +
                             describe(entry->value));
        budgets.configured = true;
        const MapView view = this->view(entry->value, "budgets", kBudgetsKeys);
        if (const auto window = string_at(view, "window")) {
            if (window->value != "total" && window->value != "day" && window->value != "month")
                error(window->mark,
                      "budgets.window must be 'total', 'day' or 'month', got '" + window->value + "'");
            else
                budgets.window = window->value;
        }
        each_entry(view, "prices",
                   [&](const YAML::Node &node, const SourceMark &mark, const std::string &name) {
                       const auto price = map_view(node, mark, "budgets.prices." + name, kPriceKeys,
                                                   "{ input_per_mtok: 2.5, output_per_mtok: 10 }");
                       if (!price) return;
                       ModelPrice &out = budgets.prices[name];
                       if (const auto v = number_at(*price, "input_per_mtok")) out.input_per_mtok = *v;
                       if (const auto v = number_at(*price, "output_per_mtok")) out.output_per_mtok = *v;
                   });
        read_budget_map(view, "keys", budgets.keys);
        read_budget_map(view, "users", budgets.users);
        read_budget_map(view, "sessions", budgets.sessions);
    }

    void read_budget_map(const MapView &view, const std::string &key,
                         std::map<std::string, BudgetLimit> &out) {
        each_entry(view, key, [&](const YAML::Node &node, const SourceMark &mark, const std::string &name) {
            const auto limit = map_view(node, mark, "budgets." + key + "." + name, kBudgetKeys,
                                        "{ tokens: 100000, cost_usd: 5 }");
            if (!limit) return;
            BudgetLimit &budget = out[name];
            count_at(*limit, "tokens", budget.tokens);
            if (const auto v = number_at(*limit, "cost_usd")) budget.cost_usd = *v;
        });
    }

    std::optional<MapView> map_view(const YAML::Node &node, const SourceMark &mark,
                                    const std::string &context, const Keys &allowed,
                                    const std::string &example) {
        if (node.IsMap()) return view(node, context, allowed);
        error(mark, "expected a map like " + example + " for '" + context + "', got " + describe(node));
        return std::nullopt;
    }

    // Calls `read(value, mark, name)` for each entry of the map under `key`.
    template <class Read> void each_entry(const MapView &view, const std::string &key, Read read) {
        const auto *entry = view.get(key);
        if (entry == nullptr || entry->value.IsNull()) return;
        if (!entry->value.IsMap())
            return error(entry->value_mark,
                         "expected a map for '" + key + "', got " + describe(entry->value));
        for (const auto &item : entry->value) {
            const SourceMark key_mark = mark_of(item.first, entry->value_mark);
            if (!item.first.IsScalar() || item.first.Scalar().empty()) {
                error(key_mark,
                      "expected a non-empty string key in '" + key + "', got " + describe(item.first));
                continue;
            }
            read(item.second, item.second.IsNull() ? key_mark : mark_of(item.second, key_mark),
                 item.first.Scalar());
        }
    }

    // `tracing:` — OTLP/HTTP export of request traces; otlp_endpoint is required.
    void read_tracing(const MapView &top) {
        TracingSettings &tracing = manifest_.tracing;
        tracing.mark = top.mark;
        const auto *entry = top.get("tracing");
        if (entry == nullptr || entry->value.IsNull()) return;
        tracing.mark = entry->value_mark;
        if (!entry->value.IsMap())
            return error(
                entry->value_mark,
                "expected a map like { otlp_endpoint: \"http://127.0.0.1:4318\" } for 'tracing', got " +
                    describe(entry->value));
        const MapView view = this->view(entry->value, "tracing", kTracingKeys);
        tracing.enabled = true;
        if (const auto endpoint = string_at(view, "otlp_endpoint")) {
            if (endpoint->value.rfind("http://", 0) != 0 && endpoint->value.rfind("https://", 0) != 0)
                error(endpoint->mark, "tracing.otlp_endpoint must start with http:// or https://, got '" +
                                          endpoint->value + "'");
            tracing.otlp_endpoint = endpoint->value;
        } else if (view.get("otlp_endpoint") == nullptr) {
            error(tracing.mark, "missing required key 'otlp_endpoint' in tracing (the collector's OTLP/HTTP "
                                "address, e.g. \"http://127.0.0.1:4318\")");
        }
        if (const auto name = string_at(view, "service_name")) tracing.service_name = name->value;
        if (const auto ratio = number_at(view, "sample_ratio")) {
            if (*ratio > 1.0)
                error(view.get("sample_ratio")->value_mark,
                      "expected a number from 0 to 1 for 'sample_ratio', got " +
                          describe(view.get("sample_ratio")->value));
            else
                tracing.sample_ratio = *ratio;
        }
        if (const auto batch = int_at(view, "batch", 1, 100000, "an integer of at least 1"))
            tracing.batch = static_cast<std::size_t>(*batch);
        if (const auto queue = int_at(view, "queue", 1, 10000000, "an integer of at least 1"))
            tracing.queue = static_cast<std::size_t>(*queue);
        if (const auto flush = int_at(view, "flush_ms", 10, 3600000, "an integer of at least 10"))
            tracing.flush_ms = static_cast<int>(*flush);
        if (const auto timeout = int_at(view, "timeout_ms", 100, 600000, "an integer of at least 100"))
            tracing.timeout_ms = static_cast<int>(*timeout);
        read_tracing_headers(view, tracing);
    }

    // tracing.headers: { Name: value } sent with every export request.
    void read_tracing_headers(const MapView &view, TracingSettings &tracing) {
        const auto *entry = view.get("headers");
        if (entry == nullptr || entry->value.IsNull()) return;
        if (!entry->value.IsMap())
            return error(entry->value_mark, "expected a map like { x-api-key: \"...\" } for 'headers', got " +
                                                describe(entry->value));
        const auto token = [](const std::string &name) {
            return !name.empty() && std::all_of(name.begin(), name.end(), [](unsigned char c) {
                return std::isalnum(c) || std::strchr("!#$%&'*+-.^_`|~", c) != nullptr;
            });
        };
        for (const auto &item : entry->value) {
            const SourceMark mark = mark_of(item.first, entry->value_mark);
            if (!item.first.IsScalar() || !token(item.first.Scalar())) {
                error(mark, "expected an HTTP header name in tracing.headers, got " + describe(item.first));
                continue;
            }
            const std::string &name = item.first.Scalar();
            if (!item.second.IsScalar() || item.second.Scalar().find_first_of("\r\n") != std::string::npos) {
                error(mark_of(item.second, mark), "expected a one-line string for tracing.headers." + name +
                                                      ", got " + describe(item.second));
                continue;
            }
            tracing.headers.emplace_back(name, item.second.Scalar());
        }
    }

    void read_providers(const MapView &top) {
        const auto *entry = top.get("providers");
        if (entry == nullptr)
            return error(top.mark, "missing required key 'providers' (expected a list like "
                                   "[ { name: echo, plugin: echo } ])");
        if (!entry->value.IsSequence() || entry->value.size() == 0)
            return error(entry->value_mark, "expected a non-empty list of providers for 'providers', got " +
                                                describe(entry->value));
        each_item(top, "providers", [&](const auto &node, const auto &mark, const auto &context) {
            read_provider(node, mark, context);
        });
    }

    void read_provider(const YAML::Node &node, const SourceMark &mark, const std::string &context) {
        const auto view = entry_view(node, mark, context, kProviderKeys);
        if (!view) return;
        Parsed<ProviderRef> provider;
        read_plugin_fields(*view, provider.ref, provider.name_mark);
        const std::string &name = provider.ref.name;
        for (auto &fallback : strings_at(*view, "fallback")) {
            if (fallback.value == name)
                error(fallback.mark, "provider '" + name + "' lists itself as a fallback");
            else
                provider_refs_.push_back({fallback.value, fallback.mark,
                                          "fallback '" + fallback.value + "' of provider '" + name +
                                              "' is not a defined provider"});
            provider.ref.fallback.push_back(std::move(fallback.value));
        }
        if (const auto group = string_at(*view, "group")) {
            provider.ref.group = group->value;
            group_marks_.emplace(group->value, group->mark);
        }
        read_http(*view, provider.ref);
        providers_.push_back(std::move(provider));
    }

    // `http: { version: ... }` on a provider: the host owns the HTTP client,
    // so it is the host's key, next to `isolation:`.
    void read_http(const MapView &entry, ProviderRef &ref) {
        const auto *http = entry.get("http");
        if (http == nullptr || http->value.IsNull()) return;
        ref.http_mark = http->value_mark;
        if (!http->value.IsMap())
            return error(http->value_mark,
                         "expected a map like { version: \"2-prior-knowledge\" } for 'http', got " +
                             describe(http->value));
        const MapView settings = view(http->value, entry.context + ".http", kHttpKeys);
        const auto version = string_at(settings, "version");
        if (!version) return;
        ref.http_mark = version->mark;
        static const std::vector<std::string> kVersions{"auto", "1.1", "2", "2-prior-knowledge"};
        if (std::find(kVersions.begin(), kVersions.end(), version->value) == kVersions.end())
            return error(version->mark,
                         "http.version must be 'auto', '1.1', '2' or '2-prior-knowledge', got '" +
                             version->value + "'");
        // An isolated provider's requests are made by its child process's own
        // client: the daemon passes this setting on to it (host/isolation/).
        ref.http_version = version->value;
    }

    void read_default_provider(const MapView &top) {
        default_provider_ = string_at(top, "default_provider");
        if (default_provider_)
            provider_refs_.push_back(
                {default_provider_->value, default_provider_->mark,
                 "default_provider '" + default_provider_->value + "' is not a defined provider"});
    }

    void read_middleware(const YAML::Node &node, const SourceMark &mark, const std::string &context) {
        const auto view = entry_view(node, mark, context, kMiddlewareKeys);
        if (!view) return;
        ParsedMiddleware middleware;
        MiddlewareRef &ref = middleware.ref;
        read_plugin_fields(*view, ref, middleware.name_mark);
        const auto limit = std::numeric_limits<int>::max();
        if (const auto priority = int_at(*view, "priority", -limit, limit, "an integer"))
            ref.priority = static_cast<int>(*priority);
        read_when(*view, ref);
        read_after(*view, middleware);
        if (const auto fail = string_at(*view, "fail")) {
            if (fail->value == "open" || fail->value == "closed")
                ref.fail = fail->value;
            else
                error(fail->mark, "fail must be 'open' or 'closed', got '" + fail->value + "'");
        }
        middleware_.push_back(std::move(middleware));
    }

    void read_after(const MapView &view, ParsedMiddleware &middleware) {
        for (auto &after : strings_at(view, "after")) {
            middleware_refs_.push_back({after.value, after.mark,
                                        "middleware '" + middleware.ref.name +
                                            "' lists unknown dependency '" + after.value + "' in after"});
            middleware.ref.after.push_back(std::move(after.value));
            middleware.after_marks.push_back(after.mark);
        }
    }

    void read_when(const MapView &entry_view, MiddlewareRef &ref) {
        const auto *entry = entry_view.get("when");
        if (entry == nullptr || entry->value.IsNull()) return;
        if (!entry->value.IsMap())
            return error(entry->value_mark,
                         "expected a map like { user_type: free } for 'when', got " + describe(entry->value));
        const MapView when = view(entry->value, entry_view.context + ".when", kWhenKeys);
        for (const auto &key : kWhenKeys) {
            const auto value = string_at(when, key);
            if (!value) continue;
            ref.when[key] = value->value;
            if (key == "provider")
                provider_refs_.push_back({value->value, value->mark,
                                          "when.provider '" + value->value + "' of middleware '" + ref.name +
                                              "' is not a defined provider"});
        }
    }

    void read_plugin_list(const MapView &top, const std::string &key, std::vector<Parsed<PluginRef>> &out,
                          const Keys &allowed) {
        each_item(top, key, [&](const auto &node, const auto &mark, const auto &context) {
            if (const auto view = entry_view(node, mark, context, allowed)) {
                Parsed<PluginRef> parsed;
                read_plugin_fields(*view, parsed.ref, parsed.name_mark);
                if (const auto once = bool_at(*view, "once_per_fleet")) {
                    parsed.ref.once_per_fleet = once->first;
                    parsed.ref.once_per_fleet_mark = once->second;
                }
                out.push_back(std::move(parsed));
            }
        });
    }

    void read_plugin_fields(const MapView &view, PluginRef &ref, SourceMark &name_mark) {
        ref.mark = view.mark;
        const auto plugin = string_at(view, "plugin");
        if (view.get("plugin") == nullptr)
            error(view.mark, "missing required key 'plugin' in " + view.context +
                                 " (expected the name of the plugin to load, e.g. plugin: echo)");
        const auto name = string_at(view, "name");
        ref.plugin = plugin ? plugin->value : "";
        ref.name = name ? name->value : ref.plugin;
        name_mark = name ? name->mark : plugin ? plugin->mark : view.mark;
        ref.config = config_at(view);
        if (const auto pin = string_at(view, "sha256")) {
            ref.sha256 = pin->value;
            ref.sha256_mark = pin->mark;
            std::transform(ref.sha256.begin(), ref.sha256.end(), ref.sha256.begin(),
                           [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
            const bool hex64 =
                ref.sha256.size() == 64 && std::all_of(ref.sha256.begin(), ref.sha256.end(), [](char c) {
                    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
                });
            if (!hex64)
                error(pin->mark, "expected 64 hex digits for 'sha256' (the plugin file's SHA-256, e.g. from "
                                 "sha256sum), got '" +
                                     pin->value + "'");
        }
        if (const auto isolation = string_at(view, "isolation")) {
            ref.isolation_mark = isolation->mark;
            if (isolation->value == "in_process" || isolation->value == "process")
                ref.isolation = isolation->value;
            else
                error(isolation->mark,
                      "isolation must be 'in_process' or 'process', got '" + isolation->value + "'");
        }
        if (const auto timeout =
                int_at(view, "isolation_timeout_ms", 1, 3'600'000, "an integer from 1 to 3600000"))
            ref.isolation_timeout_ms = static_cast<int>(*timeout);
    }

    // ---- cross-entry checks

    // Instance names are how entries refer to each other, so each kind needs unique ones.
    template <class Entries> void check_unique(const Entries &entries, const std::string &kind) {
        std::map<std::string, SourceMark> first;
        for (const auto &entry : entries) {
            if (entry.ref.name.empty()) continue; // already reported as missing `plugin`
            const auto [it, fresh] = first.emplace(entry.ref.name, entry.name_mark);
            if (!fresh)
                error(entry.name_mark, "duplicate " + kind + " name '" + entry.ref.name +
                                           "' (first defined at " + it->second.str() + ")");
        }
    }

    void check_names() {
        check_unique(providers_, "provider");
        check_unique(middleware_, "middleware");
        check_unique(hooks_, "hook");
        check_unique(session_types_, "session type");
    }

    void check_resolved(const std::vector<Reference> &references, const std::vector<std::string> &names) {
        for (const auto &reference : references)
            if (std::find(names.begin(), names.end(), reference.name) == names.end())
                error(reference.mark, reference.message + defined_hint(reference.name, names));
    }

    void check_references() {
        // A session (and default_provider) may name a provider or a group.
        auto provider_names = names_of(providers_);
        for (const auto &[group, mark] : group_marks_) {
            if (std::find(provider_names.begin(), provider_names.end(), group) != provider_names.end())
                error(mark, "group '" + group + "' has the name of a provider; give the group its own name");
        }
        for (const auto &[group, mark] : group_marks_)
            provider_names.push_back(group);
        check_resolved(provider_refs_, provider_names);
        check_resolved(middleware_refs_, names_of(middleware_));
    }

    // ---- result

    template <class Ref> static std::vector<Ref> refs_of(std::vector<Parsed<Ref>> &entries) {
        std::vector<Ref> refs;
        for (auto &entry : entries)
            refs.push_back(std::move(entry.ref));
        return refs;
    }

    Manifest assemble() {
        manifest_.path = file_;
        manifest_.providers = refs_of(providers_);
        for (auto &middleware : middleware_)
            manifest_.middleware.push_back(std::move(middleware.ref));
        manifest_.hooks = refs_of(hooks_);
        manifest_.session_types = refs_of(session_types_);
        if (default_provider_)
            manifest_.default_provider = default_provider_->value;
        else if (!manifest_.providers.empty())
            manifest_.default_provider = manifest_.providers.front().name;
        return std::move(manifest_);
    }
};

YAML::Node load_yaml(const std::string &text, const std::string &file) {
    try {
        return YAML::Load(text);
    } catch (const YAML::Exception &e) {
        throw ManifestError({{mark_of_exception(e, file), "invalid YAML: " + e.msg}});
    }
}

} // namespace

Manifest parse_manifest(const std::string &yaml_text, const std::string &file_label,
                        const std::string &base_dir) {
    const YAML::Node root = load_yaml(yaml_text, file_label);
    return Parser(file_label, base_dir).run(root);
}

std::vector<ApiKey> parse_keys_file(const std::string &yaml_text, const std::string &file_label,
                                    const std::string &base_dir) {
    const YAML::Node root = load_yaml(yaml_text, file_label);
    return Parser(file_label, base_dir).run_keys_file(root);
}

std::vector<ApiKey> load_keys_file(const std::string &path) {
    const std::string text = read_text(path, "keys file (auth.keys_file)");
    return parse_keys_file(text, path, fs::absolute(path).parent_path().string());
}

Manifest load_manifest(const std::string &path) {
    const std::string text = read_text(path);
    // Absolute, so resolved plugin_dirs survive a later change of working directory.
    const fs::path base_dir = fs::absolute(path).parent_path();
    return parse_manifest(text, path, base_dir.string());
}

const std::vector<std::string> &deadline_doors() {
    return kDeadlineDoors;
}

bool door_streams(const std::string &door) {
    return std::find(kStreamingDoors.begin(), kStreamingDoors.end(), door) != kStreamingDoors.end();
}

} // namespace swh::manifest
