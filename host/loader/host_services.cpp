#include "loader/host_services.hpp"

#include "tracing/span.hpp"
#include "util/clock.hpp"
#include "util/ids.hpp"

#include <boost/container/small_vector.hpp>
#include <cstring>
#include <optional>
#include <spdlog/spdlog.h>
#include <strings.h>

namespace swh::loader {

namespace {

HostServices &self(void *host_ctx) {
    return *static_cast<HostServices *>(host_ctx);
}

std::string_view view(swh_str s) {
    return s.ptr ? std::string_view(s.ptr, s.len) : std::string_view();
}

spdlog::level::level_enum to_spdlog(int32_t level) {
    switch (level) {
    case SWH_LOG_TRACE:
        return spdlog::level::trace;
    case SWH_LOG_DEBUG:
        return spdlog::level::debug;
    case SWH_LOG_INFO:
        return spdlog::level::info;
    case SWH_LOG_WARN:
        return spdlog::level::warn;
    default:
        return spdlog::level::err;
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

swh_time_us cb_now_us(void *) noexcept {
    return now_us();
}

void cb_new_id(void *, char out[37]) noexcept {
    const std::string id = new_uuid();
    std::memcpy(out, id.c_str(), 37);
}

// Config reads outside `create` are a plugin bug (the swh_config is gone):
// refuse them instead of reading freed memory.
bool config_refused(void *host_ctx, const swh_config *cfg) {
    if (self(host_ctx).config_readable(cfg)) return false;
    spdlog::error("[{}] plugin bug: config read outside create; refused", self(host_ctx).instance_name());
    return true;
}

const Json *lookup(const swh_config *cfg, const char *key) {
    if (!cfg || !cfg->json || !key) return nullptr;
    auto it = cfg->json->find(key);
    return it == cfg->json->end() ? nullptr : &*it;
}

swh_status cb_config_string(void *host_ctx, const swh_config *cfg, const char *key, swh_str *out) noexcept {
    if (config_refused(host_ctx, cfg)) return SWH_E_INVALID;
    const Json *value = lookup(cfg, key);
    if (!value) return SWH_E_NOT_FOUND;
    if (!value->is_string()) return SWH_E_INVALID;
    const auto &text = value->get_ref<const std::string &>();
    *out = swh_str{text.data(), text.size()};
    return SWH_OK;
}

swh_status cb_config_int(void *host_ctx, const swh_config *cfg, const char *key, int64_t *out) noexcept {
    if (config_refused(host_ctx, cfg)) return SWH_E_INVALID;
    const Json *value = lookup(cfg, key);
    if (!value) return SWH_E_NOT_FOUND;
    if (!value->is_number_integer()) return SWH_E_INVALID;
    *out = value->get<int64_t>();
    return SWH_OK;
}

swh_status cb_config_number(void *host_ctx, const swh_config *cfg, const char *key, double *out) noexcept {
    if (config_refused(host_ctx, cfg)) return SWH_E_INVALID;
    const Json *value = lookup(cfg, key);
    if (!value) return SWH_E_NOT_FOUND;
    if (!value->is_number()) return SWH_E_INVALID;
    *out = value->get<double>();
    return SWH_OK;
}

swh_status cb_config_bool(void *host_ctx, const swh_config *cfg, const char *key, int32_t *out) noexcept {
    if (config_refused(host_ctx, cfg)) return SWH_E_INVALID;
    const Json *value = lookup(cfg, key);
    if (!value) return SWH_E_NOT_FOUND;
    if (!value->is_boolean()) return SWH_E_INVALID;
    *out = value->get<bool>() ? 1 : 0;
    return SWH_OK;
}

swh_status cb_config_list_size(void *host_ctx, const swh_config *cfg, const char *key, size_t *out) noexcept {
    if (config_refused(host_ctx, cfg)) return SWH_E_INVALID;
    const Json *value = lookup(cfg, key);
    if (!value) return SWH_E_NOT_FOUND;
    if (!value->is_array()) return SWH_E_INVALID;
    *out = value->size();
    return SWH_OK;
}

swh_status cb_config_list_string(void *host_ctx, const swh_config *cfg, const char *key, size_t index,
                                 swh_str *out) noexcept {
    if (config_refused(host_ctx, cfg)) return SWH_E_INVALID;
    const Json *value = lookup(cfg, key);
    if (!value) return SWH_E_NOT_FOUND;
    if (!value->is_array() || index >= value->size() || !(*value)[index].is_string()) return SWH_E_INVALID;
    const auto &text = (*value)[index].get_ref<const std::string &>();
    *out = swh_str{text.data(), text.size()};
    return SWH_OK;
}

swh_status cb_config_json(void *host_ctx, const swh_config *cfg, swh_str *out) noexcept {
    if (config_refused(host_ctx, cfg)) return SWH_E_INVALID;
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

// Walks a plugin's header array with the plugin's element size.
std::vector<std::pair<std::string, std::string>> copy_headers(const swh_http_header *headers, size_t count) {
    std::vector<std::pair<std::string, std::string>> out;
    if (!headers || count == 0) return out;
    const uint32_t stride = headers[0].struct_size;
    if (stride < sizeof(swh_http_header))
        throw std::invalid_argument("swh_http_header.struct_size too small");
    const auto *base = reinterpret_cast<const unsigned char *>(headers);
    for (size_t i = 0; i < count; ++i) {
        const auto &h = *reinterpret_cast<const swh_http_header *>(base + i * stride);
        out.emplace_back(std::string(view(h.name)), std::string(view(h.value)));
    }
    return out;
}

// W3C Trace Context to the upstream: a request a provider starts while its
// call's span is current (inside its `start`) carries that span as the
// parent, unless the plugin set a traceparent itself.
void add_traceparent(std::vector<std::pair<std::string, std::string>> &headers) {
    std::string traceparent = tracing::current_traceparent();
    if (traceparent.empty()) return;
    for (const auto &[name, value] : headers)
        if (name.size() == 11 && strncasecmp(name.c_str(), "traceparent", 11) == 0) return;
    headers.emplace_back("traceparent", std::move(traceparent));
}

swh_status cb_http_start(void *host_ctx, const swh_http_request *request, const swh_http_sink *sink,
                         uint64_t *out_id) noexcept {
    if (!request || !sink || request->struct_size < sizeof(swh_http_request) ||
        sink->struct_size < sizeof(swh_http_sink) || !sink->on_done)
        return SWH_E_INVALID;
    try {
        HttpRequest req;
        req.method = std::string(view(request->method));
        req.url = std::string(view(request->url));
        req.headers = copy_headers(request->headers, request->header_count);
        add_traceparent(req.headers);
        req.body = std::string(view(request->body));
        req.timeout_ms = request->timeout_ms;
        req.connect_timeout_ms = request->connect_timeout_ms;
        req.idle_timeout_ms = request->idle_timeout_ms;
        req.delay_ms = request->delay_ms;
        req.version = self(host_ctx).http_version();
        if (req.url.empty()) return SWH_E_INVALID;
        const swh_http_sink plugin_sink = *sink; // the plugin keeps its struct alive; we keep a copy anyway
        HttpCallbacks callbacks;
        callbacks.on_response = [plugin_sink](int status, HeaderViews hs) {
            if (!plugin_sink.on_response) return;
            boost::container::small_vector<swh_http_header, 16> raw;
            for (const auto &[name, value] : hs)
                raw.push_back(
                    {sizeof(swh_http_header), {name.data(), name.size()}, {value.data(), value.size()}});
            plugin_sink.on_response(plugin_sink.ctx, status, raw.data(), raw.size());
        };
        callbacks.on_body = [plugin_sink](std::string_view chunk) {
            if (!plugin_sink.on_body) return true;
            return plugin_sink.on_body(plugin_sink.ctx, swh_str{chunk.data(), chunk.size()}) == SWH_OK;
        };
        // A retry the plugin starts from its done handler stays in the trace.
        callbacks.on_done = [plugin_sink, library = self(host_ctx).keep_loaded(),
                             context = tracing::current()](swh_status status, std::string error) {
            std::optional<tracing::ScopedContext> scope;
            if (context.active()) scope.emplace(context);
            plugin_sink.on_done(plugin_sink.ctx, status, swh_str{error.data(), error.size()});
        };
        const uint64_t id = self(host_ctx).environment().http().start(std::move(req), std::move(callbacks));
        if (out_id) *out_id = id;
        return SWH_OK;
    } catch (const std::invalid_argument &) {
        return SWH_E_INVALID;
    } catch (const std::exception &e) {
        spdlog::error("[{}] http_start failed: {}", self(host_ctx).instance_name(), e.what());
        return SWH_E_UNAVAILABLE;
    }
}

void cb_http_cancel(void *host_ctx, uint64_t request_id) noexcept {
    try {
        self(host_ctx).environment().http().cancel(request_id);
    } catch (...) {
    }
}

} // namespace

HttpClient &HostEnvironment::http() {
    std::call_once(http_once_, [this] { http_ = std::make_unique<HttpClient>(); });
    return *http_;
}

void HostEnvironment::metric_add(std::string_view instance, std::string_view name, std::string_view, double) {
    spdlog::debug("[{}] metric {} dropped: no metrics sink installed", instance, name);
}

void HostEnvironment::publish_event(std::string_view instance, std::string_view type, std::string_view) {
    spdlog::debug("[{}] event {} dropped: no event bus installed", instance, type);
}

swh_status HostEnvironment::read_session(std::string_view, const swh_result_sink *) {
    return SWH_E_UNSUPPORTED;
}

HostEnvironment &null_environment() {
    static HostEnvironment environment; // stateless, shared by tools
    return environment;
}

HostServices::HostServices(std::string instance_name, HostEnvironment &environment,
                           std::shared_ptr<const void> keep_loaded)
    : instance_name_(std::move(instance_name)), environment_(environment),
      keep_loaded_(std::move(keep_loaded)) {
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
    api_.http_start = cb_http_start;
    api_.http_cancel = cb_http_cancel;
}

} // namespace swh::loader
