#include "pipeline/pipeline.hpp"

#include "isolation/isolate.hpp"
#include "isolation/trial.hpp"
#include "manifest/config_schema.hpp"

#include <algorithm>
#include <spdlog/spdlog.h>

namespace swh {

namespace {

// Resolves one manifest entry to its plugin library and validated config;
// records a diagnostic and returns nullptr when it cannot.
std::shared_ptr<loader::PluginLibrary> resolve(const manifest::PluginRef &ref, uint32_t kind,
                                               const loader::PluginRegistry &registry, Json &config_out,
                                               std::vector<manifest::Diagnostic> &diagnostics) {
    auto library = registry.find(ref.plugin);
    if (!library) {
        std::string message = "no " + std::string(loader::kind_name(kind)) + " plugin named '" + ref.plugin +
                              "' in plugin_dirs";
        std::vector<std::string> names;
        for (const auto &lib : registry.plugins())
            names.push_back(lib->name());
        if (auto hint = registry.failure_hint(ref.plugin); !hint.empty())
            message += " (a file that may be it failed to load: " + hint + ")";
        else if (auto guess = manifest::did_you_mean(ref.plugin, names); !guess.empty())
            message += "; did you mean '" + guess + "'?";
        diagnostics.push_back({ref.mark, message});
        return nullptr;
    }
    if (library->kind() != kind) {
        diagnostics.push_back({ref.mark, "plugin '" + ref.plugin + "' is a " +
                                             loader::kind_name(library->kind()) + " plugin, expected a " +
                                             loader::kind_name(kind) + " plugin"});
        return nullptr;
    }
    if (!ref.sha256.empty() && ref.sha256 != library->sha256()) {
        diagnostics.push_back({ref.sha256_mark, library->file() + ": sha256 mismatch: manifest pins " +
                                                    ref.sha256 + ", file is " + library->sha256()});
        return nullptr;
    }
    const std::size_t before = diagnostics.size();
    config_out = manifest::validate_config(ref.config, library->schema(), ref.plugin, ref.mark, diagnostics);
    if (ref.isolation == "process") {
        if (!isolation::supports_isolation(kind))
            diagnostics.push_back({ref.isolation_mark, isolation::isolation_refusal(kind)});
        else
            try {
                // Same name/kind/schema; each instance runs in a child process.
                library = isolation::isolate(library, ref.isolation_timeout_ms);
            } catch (const loader::LoadError &e) {
                diagnostics.push_back({ref.isolation_mark, e.what()});
            }
    }
    return diagnostics.size() == before ? library : nullptr;
}

// Instance creation failures (e.g. the database cannot be opened) are
// reported at the manifest entry that asked for the instance.
template <class Instance, class... Extra>
std::unique_ptr<Instance> instantiate(const manifest::PluginRef &ref,
                                      std::shared_ptr<loader::PluginLibrary> library, Json config,
                                      loader::HostEnvironment &environment,
                                      std::vector<manifest::Diagnostic> &diagnostics, Extra &&...extra) {
    try {
        return std::make_unique<Instance>(std::move(library), ref.name, std::move(config), environment,
                                          std::forward<Extra>(extra)...);
    } catch (const loader::LoadError &e) {
        diagnostics.push_back({ref.mark, e.what()});
        return nullptr;
    }
}

} // namespace

namespace {

// manifest `events:`: the carrier instance (carrier: plugin) and the check
// that the chosen store has an event carrier at all (ABI 1.4).
void attach_event_carrier(const manifest::Manifest &manifest, const loader::PluginRegistry &registry,
                          loader::HostEnvironment &environment, Pipeline &pipeline,
                          std::vector<manifest::Diagnostic> &diagnostics) {
    const manifest::EventsSettings &events = manifest.events;
    pipeline.events_carrier = events.carrier;
    if (events.carrier == "plugin") {
        Json config;
        if (auto lib = resolve(events.plugin, SWH_KIND_STORAGE, registry, config, diagnostics))
            pipeline.event_store = instantiate<loader::StorageInstance>(events.plugin, lib, std::move(config),
                                                                        environment, diagnostics);
    }
    const loader::StorageInstance *carrier = pipeline.event_carrier();
    if (carrier == nullptr || carrier->carries_events()) return;
    diagnostics.push_back(
        {events.mark, "events.carrier: " + events.carrier +
                          " needs a store that carries events, "
                          "but plugin '" +
                          carrier->library().name() +
                          "' has no event carrier (ABI 1.4 events_publish; the postgres and redis "
                          "storage plugins have one)"});
}

} // namespace

void check_pipeline(const manifest::Manifest &manifest, const loader::PluginRegistry &registry) {
    std::vector<manifest::Diagnostic> diagnostics;
    Json ignored;
    resolve(manifest.storage, SWH_KIND_STORAGE, registry, ignored, diagnostics);
    if (manifest.events.carrier == "plugin")
        resolve(manifest.events.plugin, SWH_KIND_STORAGE, registry, ignored, diagnostics);
    for (const auto &ref : manifest.providers)
        resolve(ref, SWH_KIND_PROVIDER, registry, ignored, diagnostics);
    for (const auto &ref : manifest.middleware)
        resolve(ref, SWH_KIND_MIDDLEWARE, registry, ignored, diagnostics);
    for (const auto &ref : manifest.hooks)
        resolve(ref, SWH_KIND_HOOK, registry, ignored, diagnostics);
    for (const auto &ref : manifest.session_types)
        resolve(ref, SWH_KIND_SESSION_TYPE, registry, ignored, diagnostics);
    if (!diagnostics.empty()) throw manifest::ManifestError(std::move(diagnostics));
}

std::string InstanceTrial::describe() const {
    return loader::describe_instance(ref->name, kind, file);
}

std::vector<InstanceTrial> try_pipeline(const manifest::Manifest &manifest,
                                        const loader::PluginRegistry &registry, TrialScope scope) {
    std::vector<manifest::Diagnostic> diagnostics;
    std::vector<isolation::TrialSpec> specs;
    std::vector<InstanceTrial> trials;
    const auto plan = [&](const manifest::PluginRef &ref, uint32_t kind) {
        Json config;
        const auto library = resolve(ref, kind, registry, config, diagnostics);
        const bool isolated = ref.isolation == "process";
        if (!library || (isolated && scope == TrialScope::in_process)) return;
        // A stand-in of an isolated plugin keeps the real file and sha256.
        specs.push_back({ref.name, kind, library->file(), library->sha256(), std::move(config)});
        trials.push_back({&ref, kind, library->file(), ""});
    };
    plan(manifest.storage, SWH_KIND_STORAGE);
    if (manifest.events.carrier == "plugin") plan(manifest.events.plugin, SWH_KIND_STORAGE);
    for (const auto &ref : manifest.providers)
        plan(ref, SWH_KIND_PROVIDER);
    for (const auto &ref : manifest.middleware)
        plan(ref, SWH_KIND_MIDDLEWARE);
    for (const auto &ref : manifest.hooks)
        plan(ref, SWH_KIND_HOOK);
    for (const auto &ref : manifest.session_types)
        plan(ref, SWH_KIND_SESSION_TYPE);
    if (!diagnostics.empty()) throw manifest::ManifestError(std::move(diagnostics));
    for (std::size_t i = 0; i < trials.size(); ++i)
        trials[i].failure = isolation::try_instance(specs[i]);
    return trials;
}

void require_trials_passed(const std::vector<InstanceTrial> &trials) {
    std::vector<manifest::Diagnostic> diagnostics;
    for (const auto &trial : trials)
        if (!trial.failure.empty())
            diagnostics.push_back({trial.ref->mark, trial.describe() + " " + trial.failure +
                                                        " (tried in a child process before loading it)"});
    if (!diagnostics.empty()) throw manifest::ManifestError(std::move(diagnostics));
}

std::unique_ptr<loader::StorageInstance> build_storage(const manifest::Manifest &manifest,
                                                       const loader::PluginRegistry &registry,
                                                       loader::HostEnvironment &environment) {
    std::vector<manifest::Diagnostic> diagnostics;
    Json config;
    std::unique_ptr<loader::StorageInstance> storage;
    if (auto lib = resolve(manifest.storage, SWH_KIND_STORAGE, registry, config, diagnostics))
        storage = instantiate<loader::StorageInstance>(manifest.storage, lib, std::move(config), environment,
                                                       diagnostics);
    if (!diagnostics.empty()) throw manifest::ManifestError(std::move(diagnostics));
    return storage;
}

Pipeline build_pipeline(const manifest::Manifest &manifest, const loader::PluginRegistry &registry,
                        loader::HostEnvironment &environment) {
    std::vector<manifest::Diagnostic> diagnostics;
    Pipeline pipeline;
    pipeline.default_provider = manifest.default_provider;
    pipeline.max_messages_per_session = manifest.server.max_messages_per_session;
    pipeline.budgets = manifest.budgets; // a reload brings new budgets; what was spent stays
    pipeline.responses_retention_seconds = manifest.server.responses_retention_seconds;

    Json storage_config;
    if (auto lib = resolve(manifest.storage, SWH_KIND_STORAGE, registry, storage_config, diagnostics))
        pipeline.storage = instantiate<loader::StorageInstance>(
            manifest.storage, lib, std::move(storage_config), environment, diagnostics);
    attach_event_carrier(manifest, registry, environment, pipeline, diagnostics);
    for (const auto &ref : manifest.providers) {
        Json config;
        if (auto lib = resolve(ref, SWH_KIND_PROVIDER, registry, config, diagnostics))
            // The manifest checked the spelling, so parse_http_version answers.
            if (auto instance = instantiate<loader::ProviderInstance>(
                    ref, lib, std::move(config), environment, diagnostics,
                    parse_http_version(ref.http_version).value_or(HttpVersion::automatic))) {
                pipeline.providers.emplace(ref.name, std::move(instance));
                if (!ref.fallback.empty()) pipeline.fallbacks[ref.name] = ref.fallback;
                if (!ref.group.empty()) pipeline.groups[ref.group].push_back(ref.name);
            }
    }
    std::vector<MiddlewareSpec> middleware;
    for (const auto &ref : manifest.middleware) {
        Json config;
        if (auto lib = resolve(ref, SWH_KIND_MIDDLEWARE, registry, config, diagnostics))
            if (auto instance = instantiate<loader::MiddlewareInstance>(ref, lib, std::move(config),
                                                                        environment, diagnostics))
                middleware.push_back(
                    {std::move(instance), ref.priority, ref.when, ref.after, ref.fail == "closed"});
    }
    std::vector<std::unique_ptr<loader::HookInstance>> hooks;
    for (const auto &ref : manifest.hooks) {
        Json config;
        if (auto lib = resolve(ref, SWH_KIND_HOOK, registry, config, diagnostics))
            if (auto instance =
                    instantiate<loader::HookInstance>(ref, lib, std::move(config), environment, diagnostics))
                hooks.push_back(std::move(instance));
    }
    for (const auto &ref : manifest.session_types) {
        Json config;
        if (auto lib = resolve(ref, SWH_KIND_SESSION_TYPE, registry, config, diagnostics))
            if (auto instance = instantiate<loader::SessionTypeInstance>(ref, lib, std::move(config),
                                                                         environment, diagnostics))
                pipeline.session_types.emplace(ref.name, std::move(instance));
    }
    if (!diagnostics.empty()) throw manifest::ManifestError(std::move(diagnostics));
    // A provider in its own process answers over a pipe (blocking reads) and
    // middleware may block: either sends the exchange to a worker. So do
    // budgets counted in the store (a store call before and after).
    pipeline.stateless_inline =
        middleware.empty() && !(manifest.budgets.configured && manifest.limits.shared == "storage") &&
        std::none_of(manifest.providers.begin(), manifest.providers.end(),
                     [](const manifest::PluginRef &ref) { return ref.isolation == "process"; });
    pipeline.middleware = MiddlewareChain(std::move(middleware));
    std::set<std::string> once_per_fleet;
    for (const auto &ref : manifest.hooks)
        if (ref.once_per_fleet) once_per_fleet.insert(ref.name);
    pipeline.hooks = std::make_unique<HookBus>(std::move(hooks),
                                               std::max<std::size_t>(1, manifest.server.hook_queue_capacity),
                                               std::move(once_per_fleet));
    return pipeline;
}

} // namespace swh
