#include "daemon/environment.hpp"

#include "loader/abi_convert.hpp"

#include <spdlog/spdlog.h>

namespace swh::daemon {

void DaemonEnvironment::metric_add(std::string_view, std::string_view name, std::string_view labels_json,
                                   double value) {
    metrics_.add(name, labels_json, value);
}

void DaemonEnvironment::publish_event(std::string_view instance, std::string_view type,
                                      std::string_view payload) {
    spdlog::debug("[{}] event {} {}", instance, type, payload);
    // An event about one session reaches that session's live listeners.
    EventBus *events = events_.load();
    if (!events) return;
    Json data = Json::parse(payload, nullptr, false);
    if (!data.is_object()) return;
    auto id = data.find("session_id");
    if (id == data.end() || !id->is_string() || type.empty()) return;
    SessionEvent event;
    event.session_id = id->get<std::string>();
    event.type = std::string(type);
    event.data = std::move(data);
    events->publish(std::move(event));
}

swh_status DaemonEnvironment::read_session(std::string_view session_id, const swh_result_sink *sink) {
    const std::shared_ptr<loader::StorageInstance> storage = std::atomic_load(&storage_);
    if (!storage || !sink) return SWH_E_UNAVAILABLE;
    try {
        auto session = storage->get_session(std::string(session_id));
        if (!session) return SWH_E_NOT_FOUND;
        if (sink->session) {
            loader::SessionAbi abi(*session);
            if (swh_status s = sink->session(sink->ctx, abi.get()); s != SWH_OK) return s;
        }
        if (sink->message) {
            MessageQuery query;
            query.session_id = session->id;
            for (const auto &m : storage->get_messages(query)) {
                loader::MessageAbi abi(m);
                if (swh_status s = sink->message(sink->ctx, abi.get()); s != SWH_OK) return s;
            }
        }
        return SWH_OK;
    } catch (const loader::PluginError &e) {
        return e.status();
    } catch (const std::exception &e) {
        spdlog::error("read_session {}: {}", session_id, e.what());
        return SWH_E_INTERNAL;
    }
}

} // namespace swh::daemon
