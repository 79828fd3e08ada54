#include "daemon/daemon.hpp"

#include "auth/authenticator.hpp"
#include "conversation/state.hpp"
#include "daemon/environment.hpp"
#include "daemon/heap.hpp"
#include "daemon/service_notify.hpp"
#include "events/fleet_events.hpp"
#include "http/api.hpp"
#include "http/json_codec.hpp"
#include "http/server.hpp"
#include "http/tracing_door.hpp"
#include "limits/shared_limits.hpp"
#include "pipeline/pipeline.hpp"
#include "session/session_manager.hpp"

#include <algorithm>
#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/thread_pool.hpp>
#include <iostream>
#include <iterator>
#include <mutex>
#include <optional>
#include <spdlog/spdlog.h>
#include <sys/resource.h>
#include <thread>

namespace swh::daemon {

namespace net = boost::asio;

namespace {

// "127.0.0.1:8080", "[::1]:8080", "0.0.0.0:80"
net::ip::tcp::endpoint parse_listen(const std::string &listen) {
    const auto colon = listen.rfind(':');
    if (colon == std::string::npos)
        throw std::invalid_argument("listen address '" + listen + "' is not HOST:PORT");
    std::string host = listen.substr(0, colon);
    if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
    int port = -1;
    try {
        std::size_t used = 0;
        port = std::stoi(listen.substr(colon + 1), &used);
        if (used != listen.size() - colon - 1) port = -1;
    } catch (const std::exception &) {
    }
    if (port < 0 || port > 65535)
        throw std::invalid_argument("listen address '" + listen + "' has a bad port");
    boost::system::error_code ec;
    auto address = net::ip::make_address(host, ec);
    if (ec)
        throw std::invalid_argument("listen address '" + listen + "': '" + host + "' is not an IP address");
    return {address, static_cast<unsigned short>(port)};
}

// systemd (Type=notify) learns of readiness, reloads and stopping; a failed
// send is worth a warning only: the daemon serves either way.
void tell_service_manager(const std::string &state) {
    if (!notify_service_manager(state))
        spdlog::warn("could not notify the service manager (NOTIFY_SOCKET) of {}",
                     state.substr(0, state.find('\n')));
}

int cores() {
    return std::max(1u, std::thread::hardware_concurrency());
}

manifest::Manifest load_with_extra_dirs(const std::string &path, const std::vector<std::string> &extra_dirs) {
    auto manifest = manifest::load_manifest(path);
    manifest.plugin_dirs.insert(manifest.plugin_dirs.end(), extra_dirs.begin(), extra_dirs.end());
    return manifest;
}

// Stops accepting, lets in-flight requests finish (bounded by the grace
// period), then stops the I/O loop.
void drain_then_stop(net::io_context &io, http::Server &server, int grace_seconds) {
    server.stop_accepting();
    auto timer = std::make_shared<net::steady_timer>(io);
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(grace_seconds);
    auto poll = std::make_shared<std::function<void()>>();
    *poll = [&io, &server, timer, deadline, poll] {
        if (server.in_flight() == 0 || std::chrono::steady_clock::now() >= deadline) {
            if (server.in_flight() > 0)
                spdlog::warn("shutdown grace period over with {} requests still open", server.in_flight());
            server.stop_serving();
            io.stop();
            *poll = nullptr; // break the self-reference
            return;
        }
        timer->expires_after(std::chrono::milliseconds(20));
        timer->async_wait([poll](const boost::system::error_code &) {
            if (*poll) (*poll)();
        });
    };
    (*poll)();
}

// Why this daemon must not listen where it would ("" = fine): without API
// keys every caller is trusted, so only a loopback address will do.
std::string exposure_problem(const manifest::AuthSettings &auth, const net::ip::tcp::endpoint &endpoint,
                             const std::string &listen) {
    if (auth.mode == "api_keys" || endpoint.address().is_loopback()) return "";
    return auth.mark.str() + ": auth is 'none' but the daemon would listen on " + listen +
           ", which is not a loopback address; add an auth section with API keys (docs/security.md)";
}

// server.deadlines as each request gets it: every door's limits whole, its
// overrides over the global ones.
std::shared_ptr<const http::DeadlinePolicy> deadline_policy_of(const manifest::ServerSettings &server) {
    using ms = std::chrono::milliseconds;
    auto policy = std::make_shared<http::DeadlinePolicy>();
    policy->global = {ms(server.deadlines.request_ms), ms(server.deadlines.stream_ms),
                      ms(server.deadlines.stream_idle_ms)};
    for (const auto &[door, own] : server.door_deadlines) {
        http::DeadlineLimits limits = policy->global;
        if (own.request_ms) limits.request = ms(*own.request_ms);
        if (own.stream_ms) limits.stream = ms(*own.stream_ms);
        if (own.stream_idle_ms) limits.stream_idle = ms(*own.stream_idle_ms);
        policy->doors[door] = limits;
    }
    return policy;
}

// The HTTP server's limits as the manifest's server section sets them
// (io_lanes: the lanes the server is started with; a reload keeps them).
http::ServerLimits server_limits_of(const manifest::ServerSettings &server, int io_threads) {
    http::ServerLimits limits;
    limits.max_body_bytes = server.max_body_bytes;
    limits.write_timeout_seconds = server.request_timeout_seconds;
    limits.read_timeout_seconds = std::max(1, server.read_timeout_seconds);
    limits.max_header_bytes = server.max_header_bytes;
    limits.max_connections = server.max_connections;
    limits.max_stream_queue_bytes = server.max_stream_queue_bytes;
    limits.io_lanes = static_cast<std::size_t>(io_threads);
    limits.trusted_proxies = std::make_shared<const IpNetworks>(server.trusted_proxies);
    limits.deadlines = deadline_policy_of(server);
    return limits;
}

// Pipelines a reload replaced, kept here until nothing else holds them and
// then released by sweep(), on a worker. Never by whoever dropped the last
// other reference: that may be a thread the pipeline owns itself (a hook's
// lane, whose plugin called read_session while the reload swapped), and a
// pipeline released there would join that very thread (std::system_error,
// "Resource deadlock avoided": the daemon aborted, found by bench/soak).
class RetiredPipelines {
  public:
    void add(std::shared_ptr<Pipeline> pipeline) {
        std::lock_guard lock(mutex_);
        retired_.push_back(std::move(pipeline));
    }
    bool empty() const {
        std::lock_guard lock(mutex_);
        return retired_.empty();
    }
    // Releases the pipelines only this list still holds (nobody can take a
    // new reference to a retired one, so a count of one stays one).
    void sweep() {
        std::vector<std::shared_ptr<Pipeline>> unused;
        {
            std::lock_guard lock(mutex_);
            const auto keep =
                std::partition(retired_.begin(), retired_.end(),
                               [](const std::shared_ptr<Pipeline> &p) { return p.use_count() > 1; });
            std::move(keep, retired_.end(), std::back_inserter(unused));
            retired_.erase(keep, retired_.end());
        }
        if (unused.empty()) return;
        spdlog::info("reload: {} replaced pipeline(s) released, their unused plugins unloaded",
                     unused.size());
        unused.clear(); // outside the lock
    }

  private:
    mutable std::mutex mutex_;
    std::vector<std::shared_ptr<Pipeline>> retired_;
};

// Builds the manifest's pipeline from the plugins `registry` found. Throws ManifestError.
std::shared_ptr<Pipeline> load_pipeline(const manifest::Manifest &manifest, loader::PluginRegistry registry,
                                        DaemonEnvironment &environment) {
    auto pipeline = std::make_shared<Pipeline>(build_pipeline(manifest, registry, environment));
    pipeline->catalog = loader::describe_plugins(registry);
    return pipeline; // libraries no instance uses are unloaded with `registry`
}

loader::PluginRegistry scan(const manifest::Manifest &manifest) {
    loader::PluginRegistry registry;
    registry.scan(manifest.plugin_dirs);
    return registry;
}

// What a reload creates in this process is tried in a child process first:
// a plugin whose create crashes, hangs or fails refuses the reload instead of
// ending a daemon that was serving. Every in-process instance is tried, not
// only new or changed ones: a create may crash on what it reads (a file, a
// server, the environment) with the same library and config as before.
// Throws ManifestError naming each instance that failed.
void try_before_loading(const manifest::Manifest &manifest, const loader::PluginRegistry &registry) {
    const auto trials = try_pipeline(manifest, registry, TrialScope::in_process);
    require_trials_passed(trials);
    spdlog::debug("reload: {} plugin instances tried in child processes", trials.size());
}

// The pipeline's storage, keeping the whole pipeline alive while held.
std::shared_ptr<loader::StorageInstance> storage_of(const std::shared_ptr<Pipeline> &pipeline) {
    return std::shared_ptr<loader::StorageInstance>(pipeline, pipeline->storage.get());
}

// manifest `events: { carrier: storage | plugin }`: events travel through the
// carrier of the pipeline the daemon starts with (a reload keeps it; changing
// the carrier needs a restart). Null for carrier: local.
std::unique_ptr<FleetEvents> start_fleet_events(SessionManager &sessions, MetricsRegistry &metrics) {
    const std::shared_ptr<Pipeline> pipeline = sessions.pipeline();
    loader::StorageInstance *carrier = pipeline->event_carrier();
    if (carrier == nullptr) return nullptr;
    // The SSE data of an event, rendered as the other routes render it.
    auto render = [](const SessionEvent &event) {
        return event.message   ? http::to_json(*event.message)
               : event.session ? http::to_json(*event.session)
                               : event.data;
    };
    auto metric = [&metrics](std::string_view name, std::string_view labels, double value) {
        metrics.add(name, labels, value);
    };
    auto fleet = std::make_unique<FleetEvents>(
        sessions.events(), std::shared_ptr<loader::StorageInstance>(pipeline, carrier), render, metric);
    spdlog::info("events: carried between daemons by '{}' (events.carrier: {})", carrier->name(),
                 pipeline->events_carrier);
    return fleet;
}

// manifest `limits: { shared: storage }`: the limits of the fleet in the
// store the daemon starts with (a reload keeps it). Null for shared: local,
// and for a store without the ABI 1.5 members (said once: limits then hold
// per daemon).
std::unique_ptr<SharedLimits> start_shared_limits(const manifest::Manifest &manifest,
                                                  const std::shared_ptr<Pipeline> &pipeline,
                                                  MetricsRegistry &metrics, const StorageLimits &gate) {
    if (manifest.limits.shared != "storage") return nullptr;
    if (!pipeline->storage->shares_limits()) {
        spdlog::warn(
            "limits: shared: storage, but storage plugin '{}' shares no limits (ABI 1.5 counter_add, "
            "lease_acquire; the sqlite, postgres and redis plugins have them): limits hold per daemon",
            pipeline->storage->library().name());
        return nullptr;
    }
    auto metric = [&metrics](std::string_view name, std::string_view labels, double value) {
        metrics.add(name, labels, value);
    };
    // The data calls' deadline: a store that hangs fails the limit's call
    // (the daemon's own rule applies) instead of hanging the request.
    auto shared = std::make_unique<SharedLimits>(storage_of(pipeline),
                                                 std::chrono::seconds(manifest.limits.lease_seconds), metric,
                                                 gate.threads, gate.timeout);
    spdlog::info("limits: shared across daemons through '{}' (limits.shared: storage, leases of {} s; this "
                 "daemon is {})",
                 pipeline->storage->name(), manifest.limits.lease_seconds, shared->daemon_id());
    return shared;
}

// Every open connection is a file descriptor: lift the soft RLIMIT_NOFILE
// (often 1024) towards the hard limit so server.max_connections can be
// reached, and say so when it cannot (accept would fail with EMFILE first).
void ensure_descriptors_for(std::size_t max_connections) {
    if (max_connections == 0) return;
    constexpr rlim_t kSpare = 256; // storage, plugins, upstream connections, logs
    rlimit limit{};
    if (getrlimit(RLIMIT_NOFILE, &limit) != 0) return;
    const rlim_t wanted = static_cast<rlim_t>(max_connections) + kSpare;
    if (limit.rlim_cur != RLIM_INFINITY && limit.rlim_cur < wanted) {
        rlimit raised = limit;
        raised.rlim_cur = limit.rlim_max == RLIM_INFINITY ? wanted : std::min(wanted, limit.rlim_max);
        if (setrlimit(RLIMIT_NOFILE, &raised) == 0) limit = raised;
    }
    if (limit.rlim_cur != RLIM_INFINITY && limit.rlim_cur < wanted)
        spdlog::warn("server.max_connections is {} but only {} file descriptors are allowed (ulimit -n); "
                     "connections beyond about {} fail to be accepted",
                     max_connections, static_cast<unsigned long long>(limit.rlim_cur),
                     static_cast<unsigned long long>(limit.rlim_cur > kSpare ? limit.rlim_cur - kSpare : 0));
}

// A manifest that `swarmhost check` and POST /v1/admin/manifest/check find
// sound: parsed, its keys file read, its plugins found and their config
// checked against their schemas. Nothing is created.
struct CheckedManifest {
    manifest::Manifest manifest;
    loader::PluginRegistry registry;
};

// A sound manifest that still may not serve (an exposed listener without keys).
struct ManifestRefused : std::runtime_error {
    using std::runtime_error::runtime_error;
};

// Throws ManifestError (file:line:col), ManifestRefused or
// std::invalid_argument naming what is wrong.
CheckedManifest check_manifest(const std::string &manifest_path,
                               const std::vector<std::string> &extra_plugin_dirs) {
    CheckedManifest checked{load_with_extra_dirs(manifest_path, extra_plugin_dirs), {}};
    const manifest::Manifest &manifest = checked.manifest;
    if (const std::string exposed =
            exposure_problem(manifest.auth, parse_listen(manifest.server.listen), manifest.server.listen);
        !exposed.empty())
        throw ManifestRefused(exposed);
    auth::Authenticator keys(manifest.auth); // reads the keys file: its errors too
    checked.registry.scan(manifest.plugin_dirs);
    check_pipeline(manifest, checked.registry);
    return checked;
}

// manifest `tracing:`; null when the section is absent (tracing off).
std::unique_ptr<tracing::Tracer> make_tracer(const manifest::TracingSettings &settings, HttpClient &http) {
    if (!settings.enabled) return nullptr;
    tracing::ExporterSettings exporter;
    exporter.endpoint = settings.otlp_endpoint;
    exporter.resource.service_name = settings.service_name;
    exporter.resource.service_version = SWH_VERSION;
    exporter.batch = settings.batch;
    exporter.queue = settings.queue;
    exporter.flush = std::chrono::milliseconds(settings.flush_ms);
    exporter.timeout = std::chrono::milliseconds(settings.timeout_ms);
    exporter.headers = settings.headers;
    spdlog::info("tracing: OTLP/HTTP to {}/v1/traces (service {}, sample ratio {}, batch {}, queue {})",
                 settings.otlp_endpoint, settings.service_name, settings.sample_ratio, settings.batch,
                 settings.queue);
    return std::make_unique<tracing::Tracer>(std::make_shared<tracing::BatchExporter>(exporter, http),
                                             settings.sample_ratio);
}

bool same_tracing(const manifest::TracingSettings &a, const manifest::TracingSettings &b) {
    return a.enabled == b.enabled && a.otlp_endpoint == b.otlp_endpoint && a.service_name == b.service_name &&
           a.sample_ratio == b.sample_ratio && a.batch == b.batch && a.flush_ms == b.flush_ms &&
           a.queue == b.queue && a.timeout_ms == b.timeout_ms && a.headers == b.headers;
}

Json summary_of(const manifest::Manifest &manifest) {
    return Json{{"storage", manifest.storage.plugin},
                {"providers", manifest.providers.size()},
                {"middleware", manifest.middleware.size()},
                {"hooks", manifest.hooks.size()},
                {"session_types", manifest.session_types.size()}};
}

} // namespace

int serve(const ServeOptions &options) {
    const char *heap_setup = heap::configure(); // before any thread allocates
    // Declared first so it outlives every plugin instance that points at it.
    MetricsRegistry metrics;
    DaemonEnvironment environment(metrics);
    manifest::Manifest manifest;
    std::shared_ptr<Pipeline> pipeline;
    try {
        manifest = load_with_extra_dirs(options.manifest_path, options.extra_plugin_dirs);
        pipeline = load_pipeline(manifest, scan(manifest), environment);
        environment.attach_storage(storage_of(pipeline));
    } catch (const manifest::ManifestError &e) {
        spdlog::error("cannot start: {}", e.what());
        return 1;
    }
    const std::string listen =
        options.listen_override.empty() ? manifest.server.listen : options.listen_override;
    net::ip::tcp::endpoint endpoint;
    try {
        endpoint = parse_listen(listen);
    } catch (const std::exception &e) {
        spdlog::error("cannot start: {}", e.what());
        return 1;
    }

    std::unique_ptr<auth::Authenticator> authenticator;
    try {
        authenticator = std::make_unique<auth::Authenticator>(manifest.auth);
    } catch (const manifest::ManifestError &e) {
        spdlog::error("cannot start: {}", e.what());
        return 1;
    }
    if (const std::string exposed = exposure_problem(manifest.auth, endpoint, listen); !exposed.empty()) {
        spdlog::error("cannot start: {}", exposed);
        return 1;
    }
    if (!authenticator->enabled()) {
        spdlog::warn("auth: none — every caller on this machine is trusted (listening on loopback only); "
                     "see docs/security.md for API keys");
    } else {
        spdlog::info("auth: {} API keys", authenticator->key_count());
    }

    const int io_threads = manifest.server.io_threads > 0 ? manifest.server.io_threads : cores();
    const int worker_threads =
        manifest.server.worker_threads > 0 ? manifest.server.worker_threads : 2 * cores();
    // Before anything that may record a span; spans end into its queue.
    std::unique_ptr<tracing::Tracer> tracer = make_tracer(manifest.tracing, environment.http());
    // Every hand-over to a worker keeps the request's trace (tracing::bind:
    // a thread-local read and a branch when tracing is off).
    net::thread_pool workers(worker_threads);
    PostBlocking post_blocking = [&workers](std::function<void()> job) {
        net::post(workers, tracing::bind(std::move(job)));
    };
    // Jobs that need no storage (stateless completions, /healthz, provider
    // routes) run on threads of their own: requests waiting on a slow or
    // frozen store cannot starve them (docs/reliability.md).
    net::thread_pool free_workers(worker_threads);
    PostBlocking post_free = [&free_workers](std::function<void()> job) {
        net::post(free_workers, tracing::bind(std::move(job)));
    };
    StorageLimits storage_limits;
    storage_limits.threads =
        manifest.server.storage_threads > 0 ? manifest.server.storage_threads : worker_threads;
    storage_limits.timeout = std::chrono::milliseconds(manifest.server.storage_timeout_ms);
    storage_limits.history_cache_bytes = manifest.server.history_cache_mb << 20;
    const size_t provider_count = pipeline->providers.size();
    // Before the manager: it, the authenticator and the hooks point at it.
    const std::unique_ptr<SharedLimits> shared_limits =
        start_shared_limits(manifest, pipeline, metrics, storage_limits);
    if (shared_limits) {
        authenticator->share(shared_limits.get());
        if (pipeline->hooks) pipeline->hooks->share(shared_limits.get());
    }
    // The manager holds the only reference: a reload releases generation 1 too.
    SessionManager sessions(std::move(pipeline), post_blocking, storage_limits, post_free);
    sessions.share_limits(shared_limits.get());
    environment.attach_events(&sessions.events());
    std::unique_ptr<FleetEvents> fleet;
    try {
        fleet = start_fleet_events(sessions, metrics);
    } catch (const std::exception &e) {
        spdlog::error("cannot start: {}", e.what());
        return 1;
    }
    http::ApiHandler api(sessions, metrics, *authenticator, post_blocking,
                         std::chrono::seconds(manifest.server.sse_keepalive_seconds), post_free);

    // Hot reload (SIGHUP, POST /v1/admin/reload): build the new pipeline
    // beside the running one; only a complete one replaces it. Requests and
    // streams already running finish on the old pipeline, which is destroyed
    // (its unused plugins unloaded) when the last of them ends.
    std::mutex reload_mutex;
    uint64_t generation = 1;
    http::Server *serving = nullptr; // set once the server listens; a reload hands it new limits
    RetiredPipelines retired;
    auto reload = [&]() -> Json {
        std::lock_guard lock(reload_mutex);
        const auto refuse = [](const std::string &why) {
            spdlog::error("reload refused, the running pipeline keeps serving: {}", why);
            return ApiError(ErrorKind::InvalidRequest,
                            "reload refused, the running pipeline keeps serving: " + why);
        };
        manifest::Manifest next;
        std::shared_ptr<Pipeline> fresh;
        try {
            next = load_with_extra_dirs(options.manifest_path, options.extra_plugin_dirs);
            if (const std::string exposed = exposure_problem(next.auth, endpoint, listen); !exposed.empty())
                throw refuse(exposed);
            auto registry = scan(next);
            try_before_loading(next, registry);
            fresh = load_pipeline(next, std::move(registry), environment);
            const bool keys_were_on = authenticator->enabled();
            authenticator->reload(next.auth);
            if (authenticator->enabled() != keys_were_on)
                spdlog::warn("reload: API keys turned {} ({} keys)", keys_were_on ? "off (auth: none)" : "on",
                             authenticator->key_count());
        } catch (const manifest::ManifestError &e) {
            throw refuse(e.what());
        }
        // The listener, thread pools and HTTP limits were built at start; name each changed one.
        std::string restart_only;
        const auto note = [&restart_only](const char *name, bool changed) {
            if (changed) restart_only += std::string(restart_only.empty() ? "" : ", ") + "server." + name;
        };
        const auto &was = manifest.server, &now = next.server;
        note("listen", now.listen != was.listen);
        note("io_threads", now.io_threads != was.io_threads);
        note("worker_threads", now.worker_threads != was.worker_threads);
        note("storage_threads", now.storage_threads != was.storage_threads);
        note("storage_timeout_ms", now.storage_timeout_ms != was.storage_timeout_ms);
        note("sse_keepalive_seconds", now.sse_keepalive_seconds != was.sse_keepalive_seconds);
        note("shutdown_grace_seconds", now.shutdown_grace_seconds != was.shutdown_grace_seconds);
        note("history_cache_mb", now.history_cache_mb != was.history_cache_mb);
        // The request limits (body, headers, timeouts, connections, stream
        // queues, trusted proxies) apply from each connection's next request.
        if (serving != nullptr) {
            ensure_descriptors_for(now.max_connections);
            serving->set_limits(server_limits_of(now, io_threads));
        }
        // The carrier thread keeps the carrier of the pipeline it started with.
        if (next.events.carrier != manifest.events.carrier ||
            next.events.plugin.plugin != manifest.events.plugin.plugin)
            restart_only += std::string(restart_only.empty() ? "" : ", ") + "events";
        if (next.limits.shared != manifest.limits.shared ||
            next.limits.lease_seconds != manifest.limits.lease_seconds)
            restart_only += std::string(restart_only.empty() ? "" : ", ") + "limits";
        if (!same_tracing(next.tracing, manifest.tracing))
            restart_only += std::string(restart_only.empty() ? "" : ", ") + "tracing";
        if (!restart_only.empty())
            spdlog::warn("reload: {} apply only after a restart; the running values stay", restart_only);
        if (shared_limits && fresh->hooks) fresh->hooks->share(shared_limits.get());
        environment.attach_storage(storage_of(fresh));
        // The old one lives on in the requests that still use it; `retired`
        // releases it once they are done.
        retired.add(sessions.swap_pipeline(fresh));
        retired.sweep(); // (this thread is the reload's: no pipeline owns it)
        ++generation;
        spdlog::info(
            "reloaded {} (generation {}): storage {}, {} providers, {} middleware, {} hooks, {} session "
            "types, {} API keys",
            options.manifest_path, generation, next.storage.plugin, fresh->providers.size(),
            next.middleware.size(), next.hooks.size(), fresh->session_types.size(),
            authenticator->key_count());
        return Json{{"status", "reloaded"},
                    {"generation", generation},
                    {"storage", next.storage.plugin},
                    {"providers", fresh->providers.size()},
                    {"middleware", next.middleware.size()},
                    {"hooks", next.hooks.size()},
                    {"session_types", fresh->session_types.size()}};
    };
    api.set_reloader(reload);
    // POST /v1/admin/manifest/check: what a reload would refuse, without
    // reloading (nothing is created, nothing replaced).
    api.set_checker([&]() -> Json {
        const auto refuse = [](const std::string &why) {
            return ApiError(ErrorKind::InvalidRequest, "manifest check failed: " + why);
        };
        try {
            const CheckedManifest checked = check_manifest(options.manifest_path, options.extra_plugin_dirs);
            if (const std::string exposed = exposure_problem(checked.manifest.auth, endpoint, listen);
                !exposed.empty())
                throw refuse(exposed);
            Json answer = summary_of(checked.manifest);
            answer["status"] = "ok";
            answer["manifest"] = options.manifest_path;
            return answer;
        } catch (const manifest::ManifestError &e) {
            throw refuse(e.what());
        } catch (const ManifestRefused &e) {
            throw refuse(e.what());
        } catch (const std::invalid_argument &e) {
            throw refuse(options.manifest_path + ": " + e.what());
        }
    });

    // The main loop accepts connections and runs signals and timers; the
    // connections themselves are served on io_threads lanes (Server).
    net::io_context io(1);
    const http::ServerLimits limits = server_limits_of(manifest.server, io_threads);
    ensure_descriptors_for(limits.max_connections);
    // With tracing on, every request passes its door first (a server span).
    std::optional<http::TracingHandler> traced_door;
    if (tracer) traced_door.emplace(api, *tracer);
    http::RequestHandler &door = traced_door ? static_cast<http::RequestHandler &>(*traced_door) : api;
    std::unique_ptr<http::Server> server;
    try {
        server = std::make_unique<http::Server>(io, endpoint, door, limits);
        serving = server.get();
        // A stateless completion started on a lane talks to its upstream
        // from that lane too (HttpClient::attach_loop).
        server->set_lane_hook(
            [&environment](net::io_context &lane) { return environment.http().attach_loop(lane); });
    } catch (const boost::system::system_error &e) {
        spdlog::error("cannot listen on {}: {}", listen, e.code().message());
        return 1;
    }
    api.set_server_metrics([&server = *server, &tracer] {
        return prometheus_series("swarmhost_http_connections_open", "gauge",
                                 {{"", server.open_connections()}}) +
               prometheus_series("swarmhost_http_connections_refused_total", "counter",
                                 {{"", server.refused_connections()}}) +
               (tracer ? tracer->exporter().metrics() : std::string());
    });
    server->start();
    const auto bound = server->local_endpoint();
    spdlog::info(
        "swarmhost {} listening on http://{}:{} (storage {}, providers {}, {} io threads, {} workers, "
        "{} storage threads, storage timeout {} ms, {})",
        SWH_VERSION, bound.address().to_string(), bound.port(), manifest.storage.plugin, provider_count,
        io_threads, worker_threads, storage_limits.threads, storage_limits.timeout.count(), heap_setup);

    net::signal_set hangup(io, SIGHUP);
    std::function<void()> on_hangup = [&] {
        hangup.async_wait([&](const boost::system::error_code &ec, int) {
            if (ec) return;
            spdlog::info("SIGHUP received: reloading {}", options.manifest_path);
            // RELOADING=1 ... READY=1 brackets the reload, so `systemctl
            // reload` returns when it is done (refused or not: a refused
            // reload leaves the old pipeline serving, still ready).
            tell_service_manager(reloading_state());
            post_blocking([&reload] {
                try {
                    reload();
                } catch (const std::exception &) {
                    // already logged with its reason by reload()
                }
                tell_service_manager("READY=1");
            });
            on_hangup();
        });
    };
    on_hangup();

    // Expired OpenAI responses and conversations leave the store
    // (docs/conversation-state.md): reads treat them as gone at once; this
    // bounded sweep deletes them, one at a time, on a storage worker.
    net::steady_timer sweep_timer(io);
    std::atomic<bool> sweeping{false};
    uint32_t sweep_cursor = 0; // used by one sweep at a time (`sweeping`)
    std::function<void()> arm_sweep = [&] {
        const uint64_t retention = sessions.pipeline()->responses_retention_seconds;
        sweep_timer.expires_after(conversation::sweep_interval(retention));
        sweep_timer.async_wait([&, retention](const boost::system::error_code &ec) {
            if (ec) return;
            if (retention > 0 && !sweeping.exchange(true))
                post_blocking([&sessions, &sweeping, &sweep_cursor] {
                    try {
                        if (const auto swept = conversation::StateStore(sessions).sweep(
                                conversation::kSweepRows, sweep_cursor))
                            spdlog::info("responses retention: {} expired responses/conversations deleted",
                                         swept);
                    } catch (const std::exception &e) {
                        spdlog::warn("responses retention sweep failed (tried again later): {}", e.what());
                    }
                    sweeping = false;
                });
            arm_sweep();
        });
    };
    arm_sweep();

    net::steady_timer retired_timer(io);
    uint32_t ticks = 0;
    std::function<void()> arm_retired_sweep = [&] {
        retired_timer.expires_after(std::chrono::seconds(1));
        retired_timer.async_wait([&](const boost::system::error_code &ec) {
            if (ec) return;
            if (!retired.empty()) post_blocking([&retired] { retired.sweep(); });
            // Every 10 s the free heap goes back to the kernel (heap.hpp):
            // without it a day of mixed load keeps the high water mark of
            // every arena.
            if (++ticks % 10 == 0) post_blocking([] { heap::give_back(); });
            arm_retired_sweep();
        });
    };
    arm_retired_sweep();

    net::signal_set signals(io, SIGINT, SIGTERM);
    signals.async_wait([&](const boost::system::error_code &ec, int signal) {
        if (ec) return;
        spdlog::info("signal {} received: finishing {} in-flight requests, then stopping", signal,
                     server->in_flight());
        tell_service_manager("STOPPING=1");
        sessions.events().close_all(); // live event streams end now rather than at the grace period
        hangup.cancel();
        sweep_timer.cancel();
        drain_then_stop(io, *server, manifest.server.shutdown_grace_seconds);
    });

    // Ready only now: listening, and SIGTERM/SIGHUP have their handlers (a
    // stop sent right after READY=1 must drain, not kill).
    tell_service_manager("READY=1\nSTATUS=listening on " + bound.address().to_string() + ":" +
                         std::to_string(bound.port()));
    io.run();
    workers.join(); // storage writes in progress complete before plugins unload
    free_workers.join();
    server.reset();
    environment.attach_storage(nullptr);
    environment.attach_events(nullptr);
    fleet.reset();                   // holds the pipeline it started with (its carrier)
    sessions.swap_pipeline(nullptr); // hooks drain their queues, then every plugin unloads
    tracer.reset();                  // the spans still queued go out (bounded by tracing.timeout_ms)
    spdlog::info("stopped");
    return 0;
}

namespace {

// `check --try-create`: one line per instance, its manifest position first
// when it failed. Returns how many failed.
std::size_t report_trials(const std::vector<InstanceTrial> &trials) {
    std::size_t failed = 0;
    for (const auto &trial : trials) {
        if (trial.failure.empty()) {
            std::cout << "ok: " << trial.describe() << " created and destroyed\n";
        } else {
            ++failed;
            std::cerr << trial.ref->mark.str() << ": " << trial.describe() << " " << trial.failure << "\n";
        }
    }
    return failed;
}

} // namespace

int check(const std::string &manifest_path, const std::vector<std::string> &extra_plugin_dirs,
          bool try_create) {
    try {
        const CheckedManifest checked = check_manifest(manifest_path, extra_plugin_dirs);
        const manifest::Manifest &manifest = checked.manifest;
        if (try_create) {
            const auto trials = try_pipeline(manifest, checked.registry, TrialScope::all);
            if (const std::size_t failed = report_trials(trials); failed > 0) {
                std::cerr << manifest_path << ": " << failed << " of " << trials.size()
                          << " plugin instances failed to start (each was tried in a child process)\n";
                return 1;
            }
        }
        std::cout << manifest_path << ": OK (storage " << manifest.storage.plugin << ", "
                  << manifest.providers.size() << " providers, " << manifest.middleware.size()
                  << " middleware, " << manifest.hooks.size() << " hooks, " << manifest.session_types.size()
                  << " session types)\n";
        return 0;
    } catch (const manifest::ManifestError &e) {
        std::cerr << e.what() << "\n";
    } catch (const ManifestRefused &e) {
        std::cerr << e.what() << "\n";
    } catch (const std::invalid_argument &e) {
        std::cerr << manifest_path << ": " << e.what() << "\n";
    }
    return 1;
}

int list_plugins(const std::string &manifest_path, const std::vector<std::string> &plugin_dirs) {
    std::vector<std::string> dirs = plugin_dirs;
    if (!manifest_path.empty()) {
        try {
            auto manifest = manifest::load_manifest(manifest_path);
            dirs.insert(dirs.begin(), manifest.plugin_dirs.begin(), manifest.plugin_dirs.end());
        } catch (const manifest::ManifestError &e) {
            std::cerr << e.what() << "\n";
            return 1;
        }
    }
    loader::PluginRegistry registry;
    registry.scan(dirs);
    for (const auto &lib : registry.plugins()) {
        std::cout << lib->name() << "  " << loader::kind_name(lib->kind()) << "  v" << lib->version()
                  << "  (ABI " << lib->abi_major() << "." << lib->abi_minor() << ")  " << lib->file() << "\n";
        if (!lib->description().empty()) std::cout << "    " << lib->description() << "\n";
        for (const auto &field : lib->schema()) {
            std::cout << "    " << field.key << " (" << manifest::to_string(field.type)
                      << (field.required ? ", required" : "") << ")";
            if (field.default_value) std::cout << " default " << field.default_value->dump();
            if (!field.description.empty()) std::cout << " — " << field.description;
            std::cout << "\n";
        }
    }
    for (const auto &failure : registry.failures())
        std::cout << "NOT LOADED  " << failure.reason << "\n";
    return registry.plugins().empty() ? 1 : 0;
}

} // namespace swh::daemon
