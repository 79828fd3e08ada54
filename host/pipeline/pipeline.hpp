// The plugin instances one manifest asks for, created and wired: the storage,
// the providers by name. Built once at start (and, later, on reload).
#pragma once

#include "hooks/hook_bus.hpp"
#include "loader/instances.hpp"
#include "manifest/manifest.hpp"
#include "pipeline/middleware_chain.hpp"

#include <map>
#include <memory>
#include <string>

namespace swh {

// Members are destroyed in reverse order: hooks (which may still read the
// store) go before the storage.
struct Pipeline {
    // What the plugin folders held when this pipeline was built, for
    // GET /v1/plugins: {"plugins":[…],"load_failures":[…]}. Only the
    // libraries an instance below uses stay loaded.
    Json catalog = Json::object();
    std::unique_ptr<loader::StorageInstance> storage;
    // manifest events.carrier: "local", "storage" or "plugin"; with "plugin"
    // the carrier is an instance of its own.
    std::string events_carrier = "local";
    std::unique_ptr<loader::StorageInstance> event_store;
    std::map<std::string, std::unique_ptr<loader::ProviderInstance>> providers;
    std::string default_provider;
    std::map<std::string, std::vector<std::string>> fallbacks; // provider -> fallbacks in order
    std::map<std::string, std::vector<std::string>> groups;    // group -> member providers
    MiddlewareChain middleware;
    // Session types by the name sessions use in "type" (the manifest entry's name).
    std::map<std::string, std::unique_ptr<loader::SessionTypeInstance>> session_types;
    std::unique_ptr<HookBus> hooks;
    uint64_t max_messages_per_session = 0; // server.max_messages_per_session; 0 = unlimited
    manifest::BudgetSettings budgets;      // manifest `budgets:` (limits/budgets.hpp)
    // server.responses_retention_seconds: OpenAI responses and conversations
    // expire this long after their last write; 0 = never.
    uint64_t responses_retention_seconds = 30 * 24 * 3600;
    // A stateless completion may run from request to reply on the thread it
    // arrives on (no hop to a worker and back): true when nothing on its way
    // may block, i.e. no middleware (synchronous plugin calls) and no
    // provider in a child process (its calls wait on a pipe). Provider
    // `start` is non-blocking by contract (provider.h).
    bool stateless_inline = false;

    // A provider or a load-balanced group of them.
    bool routable(const std::string &name) const {
        return provider(name) != nullptr || groups.count(name) > 0;
    }
    loader::ProviderInstance *provider(const std::string &name) const {
        auto it = providers.find(name);
        return it == providers.end() ? nullptr : it->second.get();
    }
    // The instance that carries events between daemons; null = local events.
    loader::StorageInstance *event_carrier() const {
        if (events_carrier == "plugin") return event_store.get();
        return events_carrier == "storage" ? storage.get() : nullptr;
    }
    loader::SessionTypeInstance *session_type(const std::string &name) const {
        auto it = session_types.find(name);
        return it == session_types.end() ? nullptr : it->second.get();
    }
};

// Finds each plugin the manifest names, validates its config against the
// plugin's declared schema and creates the instance. Every problem is
// reported at once as a ManifestError with file:line:col (a missing plugin
// also says why, when a file by that name failed to load).
Pipeline build_pipeline(const manifest::Manifest &manifest, const loader::PluginRegistry &registry,
                        loader::HostEnvironment &environment);

// Only the manifest's storage instance, checked and created as
// build_pipeline does; nothing else of the manifest is created (the
// providers may need keys a store-to-store copy has no use for). What
// `swarmhost migrate`, `export` and `import` open. Throws ManifestError.
std::unique_ptr<loader::StorageInstance> build_storage(const manifest::Manifest &manifest,
                                                       const loader::PluginRegistry &registry,
                                                       loader::HostEnvironment &environment);

// The same checks without creating any instance (no side effects such as
// opening a database): what `swarmhost check` runs.
void check_pipeline(const manifest::Manifest &manifest, const loader::PluginRegistry &registry);

// One instance of the manifest tried in a child process (isolation/trial.hpp).
struct InstanceTrial {
    const manifest::PluginRef *ref = nullptr; // points into the manifest given
    uint32_t kind = 0;
    std::string file;
    std::string failure;          // "" = create and destroy went fine
    std::string describe() const; // "plugin 'x' (middleware, /p/libx.so)"
};

// Which instances try_pipeline() tries: those the daemon would create in its
// own process (what a reload must check before it creates them), or all.
enum class TrialScope { in_process, all };

// check_pipeline()'s checks (throws ManifestError on the same problems), then
// each instance in `scope`, in manifest order, in a child process of its own.
std::vector<InstanceTrial> try_pipeline(const manifest::Manifest &manifest,
                                        const loader::PluginRegistry &registry, TrialScope scope);

// Throws ManifestError naming, at its manifest entry, each trial that failed.
void require_trials_passed(const std::vector<InstanceTrial> &trials);

} // namespace swh
