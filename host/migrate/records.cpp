#include "migrate/records.hpp"

#include "loader/plugin_library.hpp"
#include "manifest/manifest.hpp"
#include "model/errors.hpp"
#include "model/field_checks.hpp"
#include "model/model_json.hpp"
#include "pipeline/pipeline.hpp"

#include <algorithm>
#include <map>
#include <set>

namespace swh::migrate {

namespace {

constexpr int kFormatVersion = 1;
// Listing page size: big enough to be quick, small enough for any store.
constexpr uint32_t kListPage = 500;

// The session id is the line's, so a message does not repeat it.
Json message_json(const Message &m) {
    Json json = full_json(m);
    json.erase("session_id");
    return json;
}

const Json &object_at(const Json &object, const char *key, const std::string &field) {
    const auto it = object.find(key);
    fields::need(it != object.end() && it->is_object(), field + "." + key, "must be an object");
    return *it;
}

int64_t integer_at(const Json &object, const char *key, const std::string &field) {
    const auto it = object.find(key);
    fields::need(it != object.end() && (it->is_number_integer()), field + "." + key, "must be an integer");
    return it->get<int64_t>();
}

Session decode_session(const Json &json) {
    const std::string field = "session";
    fields::need(json.is_object(), field, "must be an object");
    fields::only_keys(json, field,
                      {"id", "user_id", "provider", "model", "status", "type", "created_at", "last_activity",
                       "message_count", "config", "context", "metadata"});
    Session s;
    s.id = fields::string_at(json, "id", field);
    fields::need(!s.id.empty(), field + ".id", "must not be empty");
    s.user_id = fields::string_at(json, "user_id", field);
    s.provider = fields::string_at(json, "provider", field);
    s.model = fields::string_at(json, "model", field);
    s.status = fields::string_at(json, "status", field);
    s.type = fields::string_at(json, "type", field);
    s.created_at = integer_at(json, "created_at", field);
    s.last_activity = integer_at(json, "last_activity", field);
    const int64_t count = integer_at(json, "message_count", field);
    fields::need(count >= 0, field + ".message_count", "must not be negative");
    s.message_count = static_cast<uint64_t>(count);
    s.config = object_at(json, "config", field);
    s.context = object_at(json, "context", field);
    s.metadata = object_at(json, "metadata", field);
    return s;
}

Message decode_message(const Json &json, const std::string &field, const std::string &session_id) {
    fields::need(json.is_object(), field, "must be an object");
    fields::only_keys(json, field,
                      {"id", "role", "content", "timestamp", "metadata", "provider_message_id",
                       "provider_metadata", "structured"});
    Message m;
    m.id = fields::string_at(json, "id", field);
    fields::need(!m.id.empty(), field + ".id", "must not be empty");
    m.session_id = session_id;
    m.role = fields::string_at(json, "role", field);
    m.content = fields::string_at(json, "content", field);
    m.timestamp = integer_at(json, "timestamp", field);
    m.metadata = object_at(json, "metadata", field);
    m.provider_message_id = fields::string_at(json, "provider_message_id", field);
    m.provider_metadata = object_at(json, "provider_metadata", field);
    m.structured = object_at(json, "structured", field);
    return m;
}

// The session as it is before any message: what create_session takes.
Session empty_copy(const Session &session) {
    Session s = session;
    s.message_count = 0;
    s.last_activity = session.created_at;
    return s;
}

// The same session, as far as a resumed copy can tell: the members
// update_session cannot change, which no two different sessions share.
void require_same_session(const Session &held, const Session &record) {
    if (held.user_id == record.user_id && held.created_at == record.created_at && held.type == record.type)
        return;
    throw RecordConflict("the target already holds a different session " + record.id + " (user '" +
                         held.user_id + "', created_at " + std::to_string(held.created_at) +
                         "; the source's: user '" + record.user_id + "', created_at " +
                         std::to_string(record.created_at) + ")");
}

// Messages an earlier run wrote, by id; any message the record lacks, or
// one that differs, is someone else's data.
std::map<std::string, Message> held_messages(loader::StorageInstance &target, const SessionRecord &record) {
    MessageQuery query;
    query.session_id = record.session.id;
    std::map<std::string, Message> held;
    for (auto &m : target.get_messages(query))
        held.emplace(m.id, std::move(m));
    std::set<std::string> wanted;
    for (const auto &m : record.messages)
        wanted.insert(m.id);
    for (const auto &[id, m] : held)
        if (!wanted.count(id))
            throw RecordConflict("the target's session " + record.session.id + " holds message " + id +
                                 ", which the source's does not");
    return held;
}

// A message id the target has under another session (ids are unique per
// store) is a conflict of this session, not a store failure to retry.
void add_new_message(loader::StorageInstance &target, const Message &message) {
    try {
        target.add_message(message);
    } catch (const loader::PluginError &e) {
        if (e.status() != SWH_E_CONFLICT) throw;
        throw RecordConflict("message " + message.id + " of session " + message.session_id +
                             " already exists in the target under another session (" + e.what() + ")");
    }
}

} // namespace

std::string encode_record(const SessionRecord &record) {
    Json messages = Json::array();
    for (const auto &m : record.messages)
        messages.push_back(message_json(m));
    const Json line{{"v", kFormatVersion}, {"session", full_json(record.session)}, {"messages", messages}};
    // Invalid UTF-8 from a store is written as U+FFFD rather than failing the whole export.
    return line.dump(-1, ' ', false, Json::error_handler_t::replace);
}

SessionRecord decode_record(std::string_view line) {
    const Json json = Json::parse(line, nullptr, false);
    if (json.is_discarded()) throw RecordError("not valid JSON");
    try {
        fields::need(json.is_object(), "line", "must be a JSON object");
        fields::only_keys(json, "line", {"v", "session", "messages"});
        const auto version = json.find("v");
        fields::need(version != json.end() && *version == kFormatVersion, "v",
                     "must be 1 (the only export format version)");
        SessionRecord record;
        const auto session = json.find("session");
        fields::need(session != json.end(), "session", "is missing");
        record.session = decode_session(*session);
        const auto messages = json.find("messages");
        fields::need(messages != json.end() && messages->is_array(), "messages", "must be an array");
        std::set<std::string> ids;
        for (std::size_t i = 0; i < messages->size(); ++i) {
            const std::string field = fields::at("messages", i);
            record.messages.push_back(decode_message((*messages)[i], field, record.session.id));
            fields::need(ids.insert(record.messages.back().id).second, field + ".id",
                         "repeats an earlier id");
        }
        fields::need(record.session.message_count == record.messages.size(), "session.message_count",
                     "must equal the number of messages on the line");
        return record;
    } catch (const ApiError &e) {
        throw RecordError(e.what());
    }
}

std::unique_ptr<loader::StorageInstance> open_storage(const std::string &manifest_path,
                                                      const std::vector<std::string> &extra_plugin_dirs) {
    auto manifest = manifest::load_manifest(manifest_path);
    manifest.plugin_dirs.insert(manifest.plugin_dirs.end(), extra_plugin_dirs.begin(),
                                extra_plugin_dirs.end());
    loader::PluginRegistry registry;
    registry.scan(manifest.plugin_dirs);
    return build_storage(manifest, registry, loader::null_environment());
}

std::vector<SessionEntry> list_all(loader::StorageInstance &store) {
    std::vector<SessionEntry> entries;
    std::set<std::string> seen;
    SessionFilter filter;
    filter.limit = kListPage;
    for (;;) {
        const auto page = store.list_sessions(filter);
        for (const auto &s : page)
            if (seen.insert(s.id).second) entries.push_back({s.id, s.created_at, s.message_count});
        // Until an empty page: a store may cap `limit` below what was asked,
        // so a short page does not mean the end.
        if (page.empty()) break;
        filter.offset += static_cast<uint32_t>(page.size());
    }
    std::sort(entries.begin(), entries.end(), [](const SessionEntry &a, const SessionEntry &b) {
        return a.created_at != b.created_at ? a.created_at < b.created_at : a.id < b.id;
    });
    return entries;
}

std::optional<SessionRecord> read_record(loader::StorageInstance &store, const std::string &session_id) {
    auto session = store.get_session(session_id);
    if (!session) return std::nullopt;
    SessionRecord record{std::move(*session), {}};
    MessageQuery query;
    query.session_id = session_id;
    record.messages = store.get_messages(query);
    return record;
}

WriteOutcome write_record(loader::StorageInstance &target, const SessionRecord &record,
                          const std::function<void()> &after_message) {
    WriteOutcome outcome;
    if (auto held = target.get_session(record.session.id)) {
        require_same_session(*held, record.session);
    } else {
        target.create_session(empty_copy(record.session));
        outcome.created = true;
    }
    const auto held = outcome.created ? std::map<std::string, Message>{} : held_messages(target, record);
    for (const auto &m : record.messages) {
        if (const auto it = held.find(m.id); it != held.end()) {
            if (message_json(it->second) != message_json(m))
                throw RecordConflict("the target's message " + m.id + " of session " + record.session.id +
                                     " differs from the source's");
            ++outcome.already;
            continue;
        }
        add_new_message(target, m);
        ++outcome.added;
        if (after_message) after_message();
    }
    // add_message moved last_activity to each message's time; the record's
    // own value (and its status, metadata, …) go back last.
    target.update_session(record.session, SWH_SESSION_FIELD_STATUS | SWH_SESSION_FIELD_MODEL |
                                              SWH_SESSION_FIELD_PROVIDER | SWH_SESSION_FIELD_CONFIG |
                                              SWH_SESSION_FIELD_CONTEXT | SWH_SESSION_FIELD_METADATA |
                                              SWH_SESSION_FIELD_LAST_ACTIVITY);
    const auto written = read_record(target, record.session.id);
    outcome.target_line = written ? encode_record(*written) : "";
    return outcome;
}

} // namespace swh::migrate
