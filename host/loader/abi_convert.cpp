#include "loader/abi_convert.hpp"

#include "util/json_parse.hpp"

#include <cstddef>
#include <stdexcept>

namespace swh::loader {

SessionAbi::SessionAbi(const Session &s)
    : config_(member_text(s.config)), context_(member_text(s.context)), metadata_(member_text(s.metadata)) {
    raw_.struct_size = sizeof(swh_session);
    raw_.id = to_str(s.id);
    raw_.user_id = to_str(s.user_id);
    raw_.provider = to_str(s.provider);
    raw_.model = to_str(s.model);
    raw_.status = to_str(s.status);
    raw_.type = to_str(s.type);
    raw_.created_at = s.created_at;
    raw_.last_activity = s.last_activity;
    raw_.message_count = s.message_count;
    raw_.config_json = to_str(config_);
    raw_.context_json = to_str(context_);
    raw_.metadata_json = to_str(metadata_);
}

EventAbi::EventAbi(uint32_t type, int64_t time, const Session &session, const Message *message,
                   const Json &details)
    : session_(session), details_(details.dump()) {
    if (message) message_.emplace(*message);
    raw_.struct_size = sizeof raw_;
    raw_.type = type;
    raw_.time = time;
    raw_.session = session_.get();
    raw_.message = message_ ? message_->get() : nullptr;
    raw_.details_json = to_str(details_);
}

namespace {

// One message's C view over JSON text the caller keeps alive.
swh_message message_view(const Message &m, const std::string &metadata, const std::string &provider_metadata,
                         const std::string &structured) {
    swh_message raw{};
    raw.struct_size = sizeof(swh_message);
    raw.id = to_str(m.id);
    raw.session_id = to_str(m.session_id);
    raw.role = to_str(m.role);
    raw.content = to_str(m.content);
    raw.timestamp = m.timestamp;
    raw.metadata_json = to_str(metadata);
    raw.provider_message_id = to_str(m.provider_message_id);
    raw.provider_metadata_json = to_str(provider_metadata);
    raw.structured_json = to_str(structured);
    return raw;
}

} // namespace

MessageAbi::MessageAbi(const Message &m)
    : metadata_(member_text(m.metadata)), provider_metadata_(member_text(m.provider_metadata)),
      structured_(m.structured.empty() ? std::string() : m.structured.dump()) {
    raw_ = message_view(m, metadata_, provider_metadata_, structured_);
}

swh_message abi_view(const FrozenMessage &f) {
    return message_view(f.message, f.metadata_json, f.provider_metadata_json, f.structured_json);
}

Json parse_object(std::string_view text, const char *what) {
    if (text.empty()) return Json::object();
    Json value = parse_json(text);
    if (!value.is_object())
        throw std::runtime_error(std::string("plugin returned a ") + what + " that is not a JSON object");
    return value;
}

Session from_abi(const swh_session &raw) {
    if (raw.struct_size < sizeof(swh_session))
        throw std::runtime_error("plugin returned a short swh_session");
    Session s;
    s.id = to_string(raw.id);
    s.user_id = to_string(raw.user_id);
    s.provider = to_string(raw.provider);
    s.model = to_string(raw.model);
    s.status = to_string(raw.status);
    s.type = to_string(raw.type);
    s.created_at = raw.created_at;
    s.last_activity = raw.last_activity;
    s.message_count = raw.message_count;
    s.config = parse_object(to_string(raw.config_json), "session config");
    s.context = parse_object(to_string(raw.context_json), "session context");
    s.metadata = parse_object(to_string(raw.metadata_json), "session metadata");
    return s;
}

Message from_abi(const swh_message &raw) {
    // A plugin built against 1.0-1.2 returns the smaller 1.0 struct; members
    // added later are then absent (the message is plain text).
    if (!SWH_HAS_MEMBER(&raw, swh_message, provider_metadata_json))
        throw std::runtime_error("plugin returned a short swh_message");
    Message m;
    m.id = to_string(raw.id);
    m.session_id = to_string(raw.session_id);
    m.role = to_string(raw.role);
    m.content = to_string(raw.content);
    m.timestamp = raw.timestamp;
    m.metadata = parse_object(to_string(raw.metadata_json), "message metadata");
    m.provider_message_id = to_string(raw.provider_message_id);
    m.provider_metadata = parse_object(to_string(raw.provider_metadata_json), "provider metadata");
    if (SWH_HAS_MEMBER(&raw, swh_message, structured_json))
        m.structured = parse_object(to_string(raw.structured_json), "structured content");
    return m;
}

} // namespace swh::loader
