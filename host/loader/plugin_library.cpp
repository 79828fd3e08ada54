#include "loader/plugin_library.hpp"

#include "loader/plugin_platform.hpp"
#include "util/sha256.hpp"

#include <filesystem>
#include <fstream>
#include <spdlog/spdlog.h>

namespace swh::loader {

namespace {

// Minimum table sizes: every member the host calls unconditionally must be
// present in the plugin's table.
uint32_t min_table_size(uint32_t kind) {
    switch (kind) {
    case SWH_KIND_STORAGE:
        return offsetof(swh_storage_v1, events_publish); // the 1.4 event carrier is optional
    case SWH_KIND_PROVIDER:
        return offsetof(swh_provider_v1, cancel);
    case SWH_KIND_MIDDLEWARE:
        return offsetof(swh_middleware_v1, on_error);
    case SWH_KIND_HOOK:
        return offsetof(swh_hook_v1, render_metrics);
    case SWH_KIND_SESSION_TYPE:
        return offsetof(swh_session_type_v1, on_session_created);
    default:
        return 0;
    }
}

const char *interface_id(uint32_t kind) {
    switch (kind) {
    case SWH_KIND_STORAGE:
        return SWH_IFACE_STORAGE_V1;
    case SWH_KIND_PROVIDER:
        return SWH_IFACE_PROVIDER_V1;
    case SWH_KIND_MIDDLEWARE:
        return SWH_IFACE_MIDDLEWARE_V1;
    case SWH_KIND_HOOK:
        return SWH_IFACE_HOOK_V1;
    case SWH_KIND_SESSION_TYPE:
        return SWH_IFACE_SESSION_TYPE_V1;
    default:
        return "";
    }
}

std::string text_or_empty(const char *text) {
    return text ? text : "";
}

bool valid_plugin_name(const std::string &name) {
    if (name.empty() || name.size() > 64) return false;
    for (char c : name)
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_')) return false;
    return true;
}

// Copies the plugin's schema table into host types, walking it with the
// plugin's own element size so a newer, larger swh_config_field still reads.
std::vector<manifest::ConfigField> copy_schema(const swh_plugin_descriptor &d, const std::string &file) {
    std::vector<manifest::ConfigField> fields;
    if (d.config_field_count == 0) return fields;
    if (!d.config_schema) throw LoadError(file + ": config_field_count > 0 but config_schema is NULL");
    const uint32_t stride = d.config_schema[0].struct_size;
    if (stride < sizeof(swh_config_field))
        throw LoadError(file + ": swh_config_field.struct_size " + std::to_string(stride) +
                        " is smaller than " + std::to_string(sizeof(swh_config_field)));
    const auto *base = reinterpret_cast<const unsigned char *>(d.config_schema);
    for (size_t i = 0; i < d.config_field_count; ++i) {
        const auto &raw = *reinterpret_cast<const swh_config_field *>(base + i * stride);
        if (!raw.key || !*raw.key)
            throw LoadError(file + ": config field " + std::to_string(i) + " has no key");
        if (raw.type < SWH_CFG_STRING || raw.type > SWH_CFG_OBJECT)
            throw LoadError(file + ": config field '" + raw.key + "' has unknown type " +
                            std::to_string(raw.type));
        manifest::ConfigField field;
        field.key = raw.key;
        field.type = static_cast<manifest::ConfigType>(raw.type);
        field.required = raw.required != 0;
        field.description = text_or_empty(raw.description);
        if (raw.default_json) {
            try {
                field.default_value = nlohmann::json::parse(raw.default_json);
            } catch (const std::exception &e) {
                throw LoadError(file + ": config field '" + field.key +
                                "' has a default that is not JSON: " + raw.default_json);
            }
        }
        fields.push_back(std::move(field));
    }
    return fields;
}

// All checks on the descriptor before any other plugin code runs.
void check_descriptor(const swh_plugin_descriptor *d, const std::string &file) {
    if (!d) throw LoadError(file + ": swh_plugin_entry returned NULL");
    // struct_size, abi_major and abi_minor sit at the same offsets in every
    // major, so the version is judged first: another major's descriptor may
    // legitimately have any size.
    if (d->abi_major != SWH_ABI_VERSION_MAJOR)
        throw LoadError(file + ": plugin ABI " + std::to_string(d->abi_major) + "." +
                        std::to_string(d->abi_minor) + " is incompatible with host ABI " +
                        std::to_string(SWH_ABI_VERSION_MAJOR) + "." + std::to_string(SWH_ABI_VERSION_MINOR) +
                        " (major versions differ)");
    if (d->abi_minor > SWH_ABI_VERSION_MINOR)
        throw LoadError(file + ": plugin needs ABI " + std::to_string(d->abi_major) + "." +
                        std::to_string(d->abi_minor) + " but this host offers " +
                        std::to_string(SWH_ABI_VERSION_MAJOR) + "." + std::to_string(SWH_ABI_VERSION_MINOR) +
                        " (upgrade swarmhost)");
    if (d->struct_size < sizeof(swh_plugin_descriptor))
        throw LoadError(file + ": descriptor struct_size " + std::to_string(d->struct_size) +
                        " is smaller than this host's " + std::to_string(sizeof(swh_plugin_descriptor)));
    const std::string name = text_or_empty(d->name);
    if (!valid_plugin_name(name))
        throw LoadError(file + ": plugin name '" + name + "' is not [a-z0-9_]{1,64}");
    const std::string want_iface = interface_id(d->kind);
    if (want_iface.empty()) throw LoadError(file + ": unknown plugin kind " + std::to_string(d->kind));
    if (text_or_empty(d->interface_id) != want_iface)
        throw LoadError(file + ": interface '" + text_or_empty(d->interface_id) + "' does not match kind " +
                        kind_name(d->kind) + " (expected '" + want_iface + "')");
    if (!d->vtable) throw LoadError(file + ": kind table is NULL");
    const uint32_t table_size = *static_cast<const uint32_t *>(d->vtable);
    if (table_size < min_table_size(d->kind))
        throw LoadError(file + ": " + kind_name(d->kind) + " table struct_size " +
                        std::to_string(table_size) + " is smaller than the " +
                        std::to_string(min_table_size(d->kind)) + " bytes of required members");
}

} // namespace

std::string file_sha256(const std::string &file) {
    std::ifstream in(file, std::ios::binary);
    if (!in) throw LoadError(file + ": cannot read file to hash it");
    Sha256 hash;
    std::vector<char> buffer(1 << 16);
    while (in) {
        in.read(buffer.data(), static_cast<std::streamsize>(buffer.size()));
        hash.update(buffer.data(), static_cast<std::size_t>(in.gcount()));
    }
    return hash.hex();
}

const char *kind_name(uint32_t kind) {
    switch (kind) {
    case SWH_KIND_STORAGE:
        return "storage";
    case SWH_KIND_PROVIDER:
        return "provider";
    case SWH_KIND_MIDDLEWARE:
        return "middleware";
    case SWH_KIND_HOOK:
        return "hook";
    case SWH_KIND_SESSION_TYPE:
        return "session_type";
    default:
        return "unknown";
    }
}

std::string describe_instance(const std::string &instance, uint32_t kind, const std::string &file) {
    return "plugin '" + instance + "' (" + kind_name(kind) + ", " + file + ")";
}

std::shared_ptr<PluginLibrary> PluginLibrary::load(const std::string &file) {
    std::shared_ptr<PluginLibrary> lib(new PluginLibrary());
    lib->file_ = file;
    if (std::filesystem::exists(file)) lib->sha256_ = file_sha256(file); // hashed before any of its code runs
    boost::system::error_code ec;
    // RTLD_LOCAL: two plugins may bundle different versions of a library.
    lib->library_.load(file, boost::dll::load_mode::rtld_lazy | boost::dll::load_mode::rtld_local, ec);
    if (ec)
        throw LoadError(file +
                        ": cannot load shared object: " + platform::native_load_error(file, ec.message()));
    if (!lib->library_.has(SWH_PLUGIN_ENTRY_SYMBOL))
        throw LoadError(file + ": not a swarmhost plugin (no exported symbol " SWH_PLUGIN_ENTRY_SYMBOL ")");
    auto entry = lib->library_.get<const swh_plugin_descriptor *()>(SWH_PLUGIN_ENTRY_SYMBOL);
    const swh_plugin_descriptor *descriptor = entry();
    check_descriptor(descriptor, file);
    lib->descriptor_ = descriptor;
    lib->name_ = descriptor->name;
    lib->version_ = text_or_empty(descriptor->version);
    lib->description_ = text_or_empty(descriptor->description);
    lib->schema_ = copy_schema(*descriptor, file);
    return lib;
}

std::shared_ptr<PluginLibrary> PluginLibrary::proxy(std::shared_ptr<const PluginLibrary> real,
                                                    const void *vtable, std::shared_ptr<const void> state) {
    std::shared_ptr<PluginLibrary> lib(new PluginLibrary());
    lib->proxy_descriptor_ = *real->descriptor_;
    lib->proxy_descriptor_.vtable = vtable;
    lib->descriptor_ = &lib->proxy_descriptor_;
    lib->file_ = real->file_;
    lib->name_ = real->name_;
    lib->version_ = real->version_;
    lib->description_ = real->description_;
    lib->sha256_ = real->sha256_;
    lib->schema_ = real->schema_;
    lib->real_ = std::move(real);
    lib->proxy_state_ = std::move(state);
    return lib;
}

void PluginRegistry::scan(const std::vector<std::string> &dirs) {
    namespace fs = std::filesystem;
    for (const auto &dir : dirs) {
        std::error_code ec;
        if (!fs::is_directory(dir, ec)) {
            spdlog::warn("plugin dir {} does not exist or is not a directory", dir);
            continue;
        }
        std::vector<fs::path> files;
        for (const auto &entry : fs::directory_iterator(dir, ec))
            if (entry.is_regular_file() && platform::is_plugin_library(entry.path()))
                files.push_back(entry.path());
        std::sort(files.begin(), files.end()); // deterministic order and logs
        for (const auto &path : files) {
            if (auto unsafe = platform::unsafe_file_reason(path.string()); !unsafe.empty()) {
                failures_.push_back({path.string(), unsafe});
                spdlog::error("plugin load refused: {}", unsafe);
                continue;
            }
            try {
                auto lib = PluginLibrary::load(path.string());
                if (auto existing = find(lib->name())) {
                    failures_.push_back({path.string(), "duplicate plugin name '" + lib->name() +
                                                            "' (already loaded from " + existing->file() +
                                                            ")"});
                    spdlog::error("plugin {}: duplicate plugin name '{}', keeping {}", path.string(),
                                  lib->name(), existing->file());
                    continue;
                }
                spdlog::debug("loaded plugin {} {} ({}) from {}", lib->name(), lib->version(),
                              kind_name(lib->kind()), lib->file());
                plugins_.push_back(std::move(lib));
            } catch (const LoadError &e) {
                failures_.push_back({path.string(), e.what()});
                spdlog::error("plugin load failed: {}", e.what());
            }
        }
    }
}

std::shared_ptr<PluginLibrary> PluginRegistry::find(const std::string &name) const {
    for (const auto &lib : plugins_)
        if (lib->name() == name) return lib;
    return nullptr;
}

std::string PluginRegistry::failure_hint(const std::string &name) const {
    for (const auto &failure : failures_) {
        const std::string stem = std::filesystem::path(failure.file).stem().string();
        if (stem == name || stem.ends_with("_" + name)) return failure.reason;
    }
    return "";
}

nlohmann::json describe_plugins(const PluginRegistry &registry) {
    using Json = nlohmann::json;
    Json plugins = Json::array();
    for (const auto &lib : registry.plugins()) {
        Json schema = Json::array();
        for (const auto &field : lib->schema()) {
            Json entry = {{"key", field.key},
                          {"type", manifest::to_string(field.type)},
                          {"required", field.required},
                          {"description", field.description}};
            if (field.default_value) entry["default"] = *field.default_value;
            schema.push_back(std::move(entry));
        }
        plugins.push_back({{"name", lib->name()},
                           {"version", lib->version()},
                           {"kind", kind_name(lib->kind())},
                           {"description", lib->description()},
                           {"file", lib->file()},
                           {"abi", std::to_string(lib->abi_major()) + "." + std::to_string(lib->abi_minor())},
                           {"config_schema", std::move(schema)}});
    }
    Json failures = Json::array();
    for (const auto &f : registry.failures())
        failures.push_back({{"file", f.file}, {"reason", f.reason}});
    return {{"plugins", std::move(plugins)}, {"load_failures", std::move(failures)}};
}

} // namespace swh::loader
