// The YAML manifest: which plugins to load and how to wire them.
// Shape: ../shared/design.md "The manifest". Every error carries the
// file:line:col of the offending node.
#pragma once

#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>
#include <yaml-cpp/yaml.h>

namespace swh::manifest {

// A place in a manifest file; line and column are 1-based.
struct SourceMark {
    std::string file;
    int line = 0;
    int column = 0;
    std::string str() const; // "file:line:col"
};

// One problem found in a manifest.
struct Diagnostic {
    SourceMark mark;
    std::string message; // e.g. "expected a string for key 'path', got a sequence"
    std::string str() const { return mark.str() + ": " + message; }
};

// Where `node` sits, in `fallback.file`; `fallback` itself when the node has no
// mark (undefined nodes, an empty document).
SourceMark mark_of(const YAML::Node &node, const SourceMark &fallback);

// What a node is, for "expected X, got Y" messages: "a map", "a list", "an
// empty list", "null", the scalar text ("'abc'") or "the quoted string '80'".
std::string describe(const YAML::Node &node);

// Thrown when a manifest cannot be used; what() lists every diagnostic, one per line.
class ManifestError : public std::runtime_error {
  public:
    explicit ManifestError(std::vector<Diagnostic> diagnostics);
    const std::vector<Diagnostic> &diagnostics() const { return diagnostics_; }

  private:
    std::vector<Diagnostic> diagnostics_;
};

// A request's deadline (server.deadlines, docs/reliability.md "Deadlines"),
// in milliseconds; 0 = no such limit.
struct DeadlineSettings {
    int request_ms = 300000;     // a whole answer that is not streamed, handler included
    int stream_ms = 0;           // a streamed answer, from the request's receipt to its end
    int stream_idle_ms = 300000; // a streamed answer while the upstream produces nothing
};
// One door's override of the global deadline (server.deadlines.doors.NAME);
// an unset limit is the global one.
struct DoorDeadline {
    std::optional<int> request_ms, stream_ms, stream_idle_ms;
    SourceMark mark;
};
// The doors server.deadlines.doors may name, and those of them that stream.
const std::vector<std::string> &deadline_doors();
bool door_streams(const std::string &door);

struct ServerSettings {
    std::string listen = "127.0.0.1:8080";
    int io_threads = 0;             // 0 = number of cores
    int worker_threads = 0;         // 0 = 2 x cores, requests that use storage run here
    int storage_threads = 0;        // 0 = worker_threads: storage calls inside the plugin at once
    int storage_timeout_ms = 10000; // a storage call's caller waits this long, then 503; 0 = no limit
    std::size_t max_body_bytes = 1024 * 1024; // larger bodies get 413
    int request_timeout_seconds = 300;
    int shutdown_grace_seconds = 10;         // in-flight requests get this long on SIGTERM
    std::size_t hook_queue_capacity = 10000; // events waiting per hook before new ones are dropped
    int sse_keepalive_seconds = 15;          // SSE comment while a stream waits for tokens; 0 = off
    int read_timeout_seconds = 30; // request headers + body must arrive within this; idle keep-alive too
    std::size_t max_header_bytes = 16 * 1024; // larger request headers get 431
    uint64_t max_messages_per_session = 0;    // 0 = unlimited; a send beyond it gets 409
    std::size_t max_connections = 4096;       // open at once; more get 503 + Retry-After; 0 = unlimited
    // A stream's events waiting for a client that reads slower than they
    // come; past it the stream gets a last `error` event and is closed.
    std::size_t max_stream_queue_bytes = 4 * 1024 * 1024;
    // How long a stored OpenAI response or conversation lives after its last
    // write (docs/conversation-state.md); 30 days as OpenAI; 0 = for ever.
    uint64_t responses_retention_seconds = 30 * 24 * 3600;
    // Memory for the newest messages of recently used sessions, so that a
    // send on a warm session reads no history from storage; 0 = off.
    std::size_t history_cache_mb = 64;
    // Load balancers whose X-Forwarded-For / Forwarded name the client
    // (addresses or CIDR blocks); empty = the headers are ignored.
    std::vector<std::string> trusted_proxies;
    DeadlineSettings deadlines;
    std::map<std::string, DoorDeadline> door_deadlines; // by door name
    SourceMark mark;
};

// One API key, stored as the SHA-256 of the key text (never the key).
struct ApiKey {
    std::string id;              // a label for logs and errors, never the key
    std::string user;            // the user its requests act as
    std::string role = "user";   // "user": own sessions only; "admin": everything
    std::string sha256;          // lowercase hex SHA-256 of the key
    double rate_per_second = -1; // -1 = auth.rate_per_second
    int burst = -1;              // -1 = auth.burst
    SourceMark mark;
};

struct AuthSettings {
    std::string mode = "none";   // "none" (loopback only) | "api_keys"
    std::vector<ApiKey> keys;    // from the manifest
    std::string keys_file;       // resolved path; read at start and on reload ("" = none)
    double rate_per_second = 0;  // per key; 0 = no rate limit
    int burst = 0;               // bucket size; 0 = max(1, rate_per_second)
    int max_streams_per_key = 0; // concurrent SSE streams per key; 0 = unlimited
    // Requests with a missing or unknown key per client address and minute;
    // beyond it the address gets 429 until its bucket refills. 0 = no limit.
    int max_failures_per_minute = 60;
    SourceMark mark;
};

// A plugin instance as the manifest asks for it. `config` keeps the YAML node
// (with its marks) so schema errors can point into the file.
struct PluginRef {
    std::string name;   // instance name; defaults to `plugin`
    std::string plugin; // descriptor name of the plugin to load
    YAML::Node config;  // may be null/undefined = no config given
    SourceMark mark;    // where the entry starts
    std::string sha256; // optional pin of the plugin file (lowercase hex)
    SourceMark sha256_mark;
    // "in_process" (default) or "process": the instance runs in a child
    // process that a crash or hang cannot take the daemon down with.
    std::string isolation = "in_process";
    SourceMark isolation_mark;
    int isolation_timeout_ms = 5000; // per call, with isolation: process
    // Hooks only: each event is handled by one daemon of the fleet (a claim
    // in the store; needs limits: { shared: storage }).
    bool once_per_fleet = false;
    SourceMark once_per_fleet_mark;
};

struct ProviderRef : PluginRef {
    std::vector<std::string> fallback; // names of other providers
    // Load-balanced group this instance belongs to ("" = none). Sessions may
    // name the group; each session sticks to one member (prompt caches stay
    // warm) unless it fails.
    std::string group;
    // `http: { version: ... }`: the HTTP version the host's client speaks to
    // this provider's upstream: "auto" (curl's choice: HTTP/2 over TLS when
    // the server agrees), "1.1", "2", or "2-prior-knowledge" (h2c, also on
    // plain http). HTTP/2 multiplexes every stream on a few connections.
    std::string http_version = "auto";
    SourceMark http_mark;
};

struct MiddlewareRef : PluginRef {
    int priority = 0;                               // higher runs first
    nlohmann::json when = nlohmann::json::object(); // user_type / provider / model
    std::vector<std::string> after;                 // instance names that must run first
    std::string fail = "open";                      // "open" | "closed"
};

// `events:` — how the live session events of GET /v1/sessions/{id}/events
// travel (docs/fleet-events.md): inside this daemon ("local", the default),
// through the storage plugin's event carrier ("storage"), or through a
// carrier instance of its own ("plugin": a storage plugin that carries
// events, with `plugin`, `name`, `config`, `sha256` as for `storage`).
struct EventsSettings {
    std::string carrier = "local";
    PluginRef plugin; // carrier: plugin
    SourceMark mark;  // the `events` block, or the top of the file when absent
};

// `limits:` — where the limits of a fleet of daemons on one store are
// counted (docs/fleet.md): rate limits, the key-guessing cut-off, streams per
// key, messages per session, Idempotency-Keys in flight and once-per-fleet
// hook claims. "local" (default): in each daemon. "storage": in the storage
// plugin (ABI 1.5), so they hold fleet-wide.
struct LimitsSettings {
    std::string shared = "local";
    int lease_seconds = 30; // a lease of a daemon that stopped renewing lapses after this
    SourceMark mark;        // the `limits` block, or the top of the file when absent
};

// `budgets:` — token and cost budgets per API key, per user and per session
// (docs/budgets.md). A limit of 0 is no limit; a map's `default` entry
// applies to every key (user, session) the map does not name.
struct BudgetLimit {
    int64_t tokens = 0;  // input + output tokens the provider reported
    double cost_usd = 0; // from `prices`
    bool none() const { return tokens == 0 && cost_usd == 0; }
};
struct ModelPrice {
    double input_per_mtok = 0, output_per_mtok = 0; // USD per million tokens
};
struct BudgetSettings {
    bool configured = false;                  // the manifest has a `budgets:` block
    std::string window = "total";             // total | day | month (UTC calendar)
    std::map<std::string, ModelPrice> prices; // by model name (or provider instance name)
    std::map<std::string, BudgetLimit> keys, users, sessions;
    SourceMark mark; // the `budgets` block, or the top of the file when absent
};

// `tracing:` — OpenTelemetry traces of every request, exported with
// OTLP/HTTP (docs/tracing.md). Off when the section is absent.
struct TracingSettings {
    bool enabled = false;
    std::string otlp_endpoint; // "http://127.0.0.1:4318"; spans go to {endpoint}/v1/traces
    std::string service_name = "swarmhost";
    double sample_ratio = 1.0; // share of new traces recorded; a client's trace follows its flag
    std::size_t batch = 512;   // spans per export request at most
    int flush_ms = 1000;       // a partial batch waits at most this long
    std::size_t queue = 4096;  // spans waiting at most; more are dropped (counted on /metrics)
    int timeout_ms = 10000;    // one export request
    std::vector<std::pair<std::string, std::string>> headers; // sent with every export request
    SourceMark mark; // the `tracing` block, or the top of the file when absent
};

struct Manifest {
    std::string path; // the file it came from
    ServerSettings server;
    AuthSettings auth;
    std::vector<std::string> plugin_dirs; // resolved against the manifest's folder
    PluginRef storage;
    std::vector<ProviderRef> providers;
    std::string default_provider; // first provider unless `default_provider:` says otherwise
    std::vector<MiddlewareRef> middleware;
    std::vector<PluginRef> hooks;
    std::vector<PluginRef> session_types;
    EventsSettings events;
    LimitsSettings limits;
    BudgetSettings budgets;
    TracingSettings tracing;
};

// Parse and structurally validate a manifest file (keys, types, references
// between entries). Plugin configs are validated later against each plugin's
// declared schema (config_schema.hpp). Throws ManifestError.
Manifest load_manifest(const std::string &path);
// A keys file (auth.keys_file): `keys: [ {id, user, role, sha256, ...} ]`,
// the same entries as auth.keys. Throws ManifestError.
std::vector<ApiKey> load_keys_file(const std::string &path);
// Same, from text (tests); `file_label` is used in marks.
Manifest parse_manifest(const std::string &yaml_text, const std::string &file_label,
                        const std::string &base_dir = ".");
std::vector<ApiKey> parse_keys_file(const std::string &yaml_text, const std::string &file_label,
                                    const std::string &base_dir = ".");

} // namespace swh::manifest
