// The daemon's HostEnvironment: what plugins reach through swh_host_api
// beyond logging and config — counters for /metrics, event publishing, and a
// read accessor over the configured storage (hooks need whole sessions).
#pragma once

#include "events/event_bus.hpp"
#include "loader/host_services.hpp"
#include "loader/instances.hpp"
#include "metrics/registry.hpp"

#include <atomic>

namespace swh::daemon {

class DaemonEnvironment : public loader::HostEnvironment {
  public:
    explicit DaemonEnvironment(MetricsRegistry &metrics) : metrics_(metrics) {}
    // The store read_session uses; set once the storage instance exists.
    // (Held, so a reload cannot destroy it under a read_session in progress.)
    void attach_storage(std::shared_ptr<loader::StorageInstance> storage) {
        std::atomic_store(&storage_, std::move(storage));
    }
    // Where plugin events naming a "session_id" go; set once the bus exists.
    void attach_events(EventBus *events) { events_.store(events); }

    void metric_add(std::string_view instance, std::string_view name, std::string_view labels_json,
                    double value) override;
    void publish_event(std::string_view instance, std::string_view type,
                       std::string_view payload_json) override;
    swh_status read_session(std::string_view session_id, const swh_result_sink *sink) override;

  private:
    MetricsRegistry &metrics_;
    std::shared_ptr<loader::StorageInstance> storage_; // atomic_load / atomic_store only
    std::atomic<EventBus *> events_{nullptr};
};

} // namespace swh::daemon
