#include "loader/host_services.hpp"

#include "util/clock.hpp"
#include "util/ids.hpp"

#include <cstring>
#include <spdlog/spdlog.h>

namespace swh::loader {

namespace {

HostServices &self(void *host_ctx) { return *static_cast<HostServices *>(host_ctx); }

std::string_view view(swh_str s) { return s.ptr ? std::string_view(s.ptr, s.len) : std::string_view(); }

spdlog::level::level_enum to_spdlog(int32_t level) {
    switch (level) {
    case SWH_LOG_TRACE: return spdlog::level::trace;
    case SWH_LOG_DEBUG: return spdlog::level::debug;
    case SWH_LOG_INFO: return spdlog::level::info;
    case SWH_LOG_WARN: return spdlog::level::warn;
    default: return spdlog::level::err;
    }
}

// Every callback below is called by plugin code through a C function
// pointer, so none may let an exception escape.
void cb_log(void *host_ctx, int32_t level, swh_str message) noexcept {
    try {
        spdlog::log(to_spdlog(level), "[{}] {}", self(host_ctx).instance_name(), view(message));
    } catch (...) {
    }
}

swh_time_us cb_now_us(void *) noexcept { return now_us(); }

void cb_new_id(void *, char out[37]) noexcept {
    const std::string id = new_uuid();
    std::memcpy(out, id.c_str(), 37);
}

const Json *lookup(const swh_config *cfg, const char *key) {
    if (!cfg || !cfg->json || !key) return nullptr;
    auto it = cfg->json->find(key);
    return it == cfg->json->end() ? nullptr : &*it;
}

swh_status cb_config_string(void *, const swh_config *cfg, const char *key, swh_str *out) noexcept {
    const Json *value = lookup(cfg, key);
    if (!value) return SWH_E_NOT_FOUND;
    if (!value->is_string()) return SWH_E_INVALID;
    const auto &text = value->get_ref<const std::string &>();
    *out = swh_str{text.data(), text.size()};
    return SWH_OK;
}

swh_status cb_config_int(void *, const swh_config *cfg, const char *key, int64_t *out) noexcept {
    const Json *value = lookup(cfg, key);
    if (!value) return SWH_E_NOT_FOUND;
    if (!value->is_number_integer()) return SWH_E_INVALID;
    *out = value->get<int64_t>();
    return SWH_OK;
}

swh_status cb_config_number(void *, const swh_config *cfg, const char *key, double *out) noexcept {
    const Json *value = lookup(cfg, key);
    if (!value) return SWH_E_NOT_FOUND;
    if (!value->is_number()) return SWH_E_INVALID;
    *out = value->get<double>();
    return SWH_OK;
}

swh_status cb_config_bool(void *, const swh_config *cfg, const char *key, int32_t *out) noexcept {
    const Json *value = lookup(cfg, key);
    if (!value) return SWH_E_NOT_FOUND;
    if (!value->is_boolean()) return SWH_E_INVALID;
    *out = value->get<bool>() ? 1 : 0;
    return SWH_OK;
}

swh_status cb_config_list_size(void *, const swh_config *cfg, const char *key, size_t *out) noexcept {
    const Json *value = lookup(cfg, key);
    if (!value) return SWH_E_NOT_FOUND;
    if (!value->is_array()) return SWH_E_INVALID;
    *out = value->size();
    return SWH_OK;
}

swh_status cb_config_list_string(void *, const swh_config *cfg, const char *key, size_t index,
                                 swh_str *out) noexcept {
    const Json *value = lookup(cfg, key);
    if (!value) return SWH_E_NOT_FOUND;
    if (!value->is_array() || index >= value->size() || !(*value)[index].is_string()) return SWH_E_INVALID;
    const auto &text = (*value)[index].get_ref<const std::string &>();
    *out = swh_str{text.data(), text.size()};
    return SWH_OK;
}

swh_status cb_config_json(void *, const swh_config *cfg, swh_str *out) noexcept {
    if (!cfg) return SWH_E_INVALID;
    *out = swh_str{cfg->dumped.data(), cfg->dumped.size()};
    return SWH_OK;
}

void cb_metric_add(void *host_ctx, swh_str name, swh_str labels, double value) noexcept {
    try {
        auto &host = self(host_ctx);
        host.environment().metric_add(host.instance_name(), view(name), view(labels), value);
    } catch (...) {
    }
}

void cb_publish_event(void *host_ctx, swh_str type, swh_str payload) noexcept {
    try {
        auto &host = self(host_ctx);
        host.environment().publish_event(host.instance_name(), view(type), view(payload));
    } catch (...) {
    }
}

swh_status cb_read_session(void *host_ctx, swh_str session_id, const swh_result_sink *sink) noexcept {
    try {
        return self(host_ctx).environment().read_session(view(session_id), sink);
    } catch (...) {
        return SWH_E_INTERNAL;
    }
}

} // namespace

void HostEnvironment::metric_add(std::string_view instance, std::string_view name, std::string_view, double) {
    spdlog::debug("[{}] metric {} dropped: no metrics sink installed", instance, name);
}

void HostEnvironment::publish_event(std::string_view instance, std::string_view type, std::string_view) {
    spdlog::debug("[{}] event {} dropped: no event bus installed", instance, type);
}

swh_status HostEnvironment::read_session(std::string_view, const swh_result_sink *) { return SWH_E_UNSUPPORTED; }

HostEnvironment &null_environment() {
    static HostEnvironment environment; // stateless, shared by tools
    return environment;
}

HostServices::HostServices(std::string instance_name, HostEnvironment &environment)
    : instance_name_(std::move(instance_name)), environment_(environment) {
    api_.struct_size = sizeof(swh_host_api);
    api_.abi_major = SWH_ABI_VERSION_MAJOR;
    api_.abi_minor = SWH_ABI_VERSION_MINOR;
    api_.host_ctx = this;
    api_.log = cb_log;
    api_.now_us = cb_now_us;
    api_.new_id = cb_new_id;
    api_.config_string = cb_config_string;
    api_.config_int = cb_config_int;
    api_.config_number = cb_config_number;
    api_.config_bool = cb_config_bool;
    api_.config_list_size = cb_config_list_size;
    api_.config_list_string = cb_config_list_string;
    api_.config_json = cb_config_json;
    api_.metric_add = cb_metric_add;
    api_.publish_event = cb_publish_event;
    api_.read_session = cb_read_session;
}

} // namespace swh::loader
