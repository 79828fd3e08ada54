#include "model/model_json.hpp"

namespace swh {

const Json &default_session_context() {
    static const Json context = Json::parse(kDefaultSessionContextText);
    return context;
}

std::string member_text(const Json &value) {
    if (value.is_null()) return "null";
    if (value.is_object() && value.empty()) return "{}";
    if (value.is_object() && value.size() == 2 && value == default_session_context())
        return std::string(kDefaultSessionContextText);
    return value.dump();
}

Json full_json(const Session &s) {
    return Json{{"id", s.id},
                {"user_id", s.user_id},
                {"provider", s.provider},
                {"model", s.model},
                {"status", s.status},
                {"type", s.type},
                {"created_at", s.created_at},
                {"last_activity", s.last_activity},
                {"message_count", s.message_count},
                {"config", s.config},
                {"context", s.context},
                {"metadata", s.metadata}};
}

Json full_json(const Message &m) {
    return Json{{"id", m.id},
                {"session_id", m.session_id},
                {"role", m.role},
                {"content", m.content},
                {"timestamp", m.timestamp},
                {"metadata", m.metadata},
                {"provider_message_id", m.provider_message_id},
                {"provider_metadata", m.provider_metadata},
                {"structured", m.structured}};
}

} // namespace swh
