// One loaded plugin shared object: the library handle plus its checked
// descriptor. Loading checks, in order: the file loads, it exports
// swh_plugin_entry, the descriptor's struct sizes, ABI version (same major,
// minor <= ours), kind/interface id and the kind table's size.
#pragma once

#include "manifest/config_schema.hpp"

#include <boost/dll/shared_library.hpp>
#include <memory>
#include <stdexcept>
#include <string>
#include <swarmhost/swarmhost.h>
#include <vector>

namespace swh::loader {

// A plugin could not be loaded or used; what() names the file and the reason.
class LoadError : public std::runtime_error {
  public:
    using std::runtime_error::runtime_error;
};

const char *kind_name(uint32_t kind); // "storage", "provider", ... or "unknown"
// How messages about one instance name it: "plugin 'x' (middleware, /p/libx.so)".
std::string describe_instance(const std::string &instance, uint32_t kind, const std::string &file);

// Lowercase hex SHA-256 of a file's bytes; throws LoadError if unreadable.
std::string file_sha256(const std::string &file);

class PluginLibrary {
  public:
    // Throws LoadError("<file>: <reason>").
    static std::shared_ptr<PluginLibrary> load(const std::string &file);
    // A stand-in for `real` with the same name, kind, schema, file and
    // sha256 but another kind table, `vtable` (process isolation forwards
    // each call to a child process: host/isolation/). `state` owns the table
    // and lives as long as the stand-in; `real` is kept loaded too.
    static std::shared_ptr<PluginLibrary> proxy(std::shared_ptr<const PluginLibrary> real, const void *vtable,
                                                std::shared_ptr<const void> state);
    // The `state` given to proxy(); nullptr for a library loaded from a file.
    const std::shared_ptr<const void> &proxy_state() const { return proxy_state_; }

    const std::string &file() const { return file_; }
    const std::string &name() const { return name_; }
    const std::string &version() const { return version_; }
    const std::string &description() const { return description_; }
    uint32_t kind() const { return descriptor_->kind; }
    uint16_t abi_major() const { return descriptor_->abi_major; }
    uint16_t abi_minor() const { return descriptor_->abi_minor; }
    const std::vector<manifest::ConfigField> &schema() const { return schema_; }
    // SHA-256 of the file as it was read just before loading (lowercase hex).
    const std::string &sha256() const { return sha256_; }
    // The kind table; valid while this object lives. Callers check kind() first.
    const void *vtable() const { return descriptor_->vtable; }
    // Size of the kind table as the plugin built it (for members added later).
    uint32_t vtable_size() const { return *static_cast<const uint32_t *>(descriptor_->vtable); }

  private:
    PluginLibrary() = default;
    boost::dll::shared_library library_;
    const swh_plugin_descriptor *descriptor_ = nullptr;
    std::string file_, name_, version_, description_, sha256_;
    std::vector<manifest::ConfigField> schema_;
    // Only for a proxy(): its own descriptor (the real one with another
    // vtable), the real library (its strings live there) and the state.
    swh_plugin_descriptor proxy_descriptor_{};
    std::shared_ptr<const PluginLibrary> real_;
    std::shared_ptr<const void> proxy_state_;
};

// A failure met while scanning plugin_dirs: logged once, kept for /v1/plugins.
struct LoadFailure {
    std::string file;
    std::string reason;
};

// Every plugin found in the plugin directories, by descriptor name.
class PluginRegistry {
  public:
    // Loads every shared object (*.so, *.dylib, *.dll) in `dirs`. A file that
    // fails is logged (one line naming file and reason) and remembered; it
    // only matters if the manifest asks for it. Before loading, a file (or
    // its folder) that others may write is refused: anyone could swap its
    // code (platform::unsafe_file_reason says who counts as "others").
    void scan(const std::vector<std::string> &dirs);
    // nullptr if no plugin of that name was loaded.
    std::shared_ptr<PluginLibrary> find(const std::string &name) const;
    const std::vector<std::shared_ptr<PluginLibrary>> &plugins() const { return plugins_; }
    const std::vector<LoadFailure> &failures() const { return failures_; }
    // Why `name` is unavailable: the failure whose file stem matches, else "".
    std::string failure_hint(const std::string &name) const;

  private:
    std::vector<std::shared_ptr<PluginLibrary>> plugins_;
    std::vector<LoadFailure> failures_;
};

// {"plugins":[{name, version, kind, description, file, abi, config_schema}],
//  "load_failures":[{file, reason}]}: the registry as GET /v1/plugins shows it.
nlohmann::json describe_plugins(const PluginRegistry &registry);

} // namespace swh::loader
