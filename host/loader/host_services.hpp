// The host side of swh_host_api: one table per plugin instance, so every
// callback knows which instance called (log lines carry its name).
#pragma once

#include "model/model.hpp"
#include "upstream/http_client.hpp"

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <swarmhost/swarmhost.h>

// The opaque config handle of the ABI, defined on the host side: a view of
// the validated JSON config, alive only during `create`.
struct swh_config {
    const swh::Json *json;
    std::string dumped; // storage for config_json's answer
};

namespace swh::loader {

// Host-wide services shared by every instance (event bus, metrics, storage
// accessor). The daemon installs a real one; the default does nothing but log.
class HostEnvironment {
  public:
    virtual ~HostEnvironment() = default;
    virtual void metric_add(std::string_view instance, std::string_view name, std::string_view labels_json,
                            double value);
    virtual void publish_event(std::string_view instance, std::string_view type,
                               std::string_view payload_json);
    virtual swh_status read_session(std::string_view session_id, const swh_result_sink *sink);
    // The asynchronous HTTP client, created on first use.
    HttpClient &http();

  private:
    std::once_flag http_once_;
    std::unique_ptr<HttpClient> http_;
};

// The default environment, for tools (`swarmhost plugins`) and tests that
// load a plugin outside the daemon.
HostEnvironment &null_environment();

class HostServices {
  public:
    // `keep_loaded` (the plugin's library) is held by every HTTP exchange the
    // plugin starts, so the code its callbacks return through stays mapped
    // even if the instance is destroyed meanwhile.
    HostServices(std::string instance_name, HostEnvironment &environment,
                 std::shared_ptr<const void> keep_loaded = {});
    const std::shared_ptr<const void> &keep_loaded() const { return keep_loaded_; }
    HostServices(const HostServices &) = delete;
    HostServices &operator=(const HostServices &) = delete;

    const swh_host_api *api() const { return &api_; }
    // Config is readable only while `create` runs: the swh_config lives on
    // the host's stack for that call, so a later read would dangle.
    void begin_create(const swh_config *cfg) { creating_ = cfg; }
    void end_create() { creating_ = nullptr; }
    bool config_readable(const swh_config *cfg) const { return cfg != nullptr && cfg == creating_; }
    const std::string &instance_name() const { return instance_name_; }
    // The HTTP version of every request this instance starts (manifest `http:`).
    void set_http_version(HttpVersion version) { http_version_ = version; }
    HttpVersion http_version() const { return http_version_; }
    HostEnvironment &environment() const { return environment_; }

  private:
    std::string instance_name_;
    HostEnvironment &environment_;
    std::shared_ptr<const void> keep_loaded_;
    std::atomic<const swh_config *> creating_{nullptr};
    HttpVersion http_version_ = HttpVersion::automatic;
    swh_host_api api_{};
};

} // namespace swh::loader
