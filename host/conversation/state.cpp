#include "conversation/state.hpp"

#include "conversation/items.hpp"
#include "session/storage_gate.hpp"
#include "util/clock.hpp"
#include "util/ids.hpp"

#include <algorithm>
#include <mutex>
#include <spdlog/spdlog.h>

namespace swh::conversation {

namespace {

constexpr const char *kMarks = "openai";

const Json &marks_of(const Json &metadata) {
    static const Json none = Json::object();
    const auto it = metadata.find(kMarks);
    return it != metadata.end() && it->is_object() ? *it : none;
}

std::optional<Kind> kind_of(const Session &session) {
    const Json &marks = marks_of(session.metadata);
    const std::string kind = marks.value("kind", "");
    if (kind == "responses") return Kind::Responses;
    if (kind == "conversation") return Kind::Conversation;
    return std::nullopt;
}

std::set<std::string> string_set(const Json &marks, const char *key) {
    std::set<std::string> out;
    if (const auto it = marks.find(key); it != marks.end() && it->is_array())
        for (const Json &value : *it)
            if (value.is_string()) out.insert(value.get<std::string>());
    return out;
}

// The uuid of the reply an input turn belongs to ("" = none).
std::string input_of(const Message &message) {
    const Json &marks = marks_of(message.metadata);
    const auto it = marks.find("response");
    return it != marks.end() && it->is_string() ? it->get<std::string>() : std::string();
}

std::string parent_of(const Message &reply) {
    return marks_of(reply.metadata).value("parent", "");
}

} // namespace

std::chrono::seconds sweep_interval(uint64_t retention_seconds) {
    constexpr uint64_t kHour = 3600;
    return std::chrono::seconds(std::clamp<uint64_t>(retention_seconds / 4, 1, kHour));
}

const char *kind_name(Kind kind) {
    return kind == Kind::Conversation ? "conversation" : "responses";
}

bool is_response(const Message &message) {
    return message.role == "assistant" && marks_of(message.metadata).value("response", Json()).is_object();
}

const Json &envelope_of(const Message &reply) {
    static const Json none = Json::object();
    const Json &marks = marks_of(reply.metadata);
    const auto it = marks.find("response");
    return it != marks.end() && it->is_object() ? *it : none;
}

std::set<std::string> deleted_items(const Session &session) {
    return string_set(marks_of(session.metadata), "deleted_items");
}

std::set<std::string> deleted_responses(const Session &session) {
    return string_set(marks_of(session.metadata), "deleted_responses");
}

const Message *find_message(const std::vector<Message> &messages, const std::string &id) {
    for (const Message &m : messages)
        if (m.id == id) return &m;
    return nullptr;
}

std::vector<Message> history_through(const StoredObject &object, const std::string &reply_id) {
    const std::vector<Message> &messages = object.messages;
    std::size_t end = 0;
    while (end < messages.size() && messages[end].id != reply_id)
        ++end;
    if (end < messages.size()) ++end; // the reply itself
    std::vector<Message> history;
    if (object.kind == Kind::Conversation) {
        history.assign(messages.begin(), messages.begin() + static_cast<long>(end));
    } else {
        // The reply and its ancestors in this session, by their parent marks.
        std::set<std::string> line;
        for (std::string at = reply_id; !at.empty() && line.insert(at).second;) {
            const Message *reply = find_message(messages, at);
            at = reply ? parent_of(*reply) : std::string();
        }
        for (std::size_t i = 0; i < end; ++i) {
            const Message &m = messages[i];
            const std::string owner = is_response(m) ? m.id : input_of(m);
            if (owner.empty() || line.count(owner)) history.push_back(m);
        }
    }
    return without_items(std::move(history), deleted_items(object.session));
}

std::vector<Message> inputs_of(const std::vector<Message> &messages, const std::string &reply_id) {
    std::vector<Message> inputs;
    for (const Message &m : messages)
        if (!is_response(m) && input_of(m) == reply_id) inputs.push_back(m);
    return inputs;
}

Message branch_copy(const Message &message, const std::string &session_id) {
    Message copy = message;
    copy.id = new_uuid();
    copy.session_id = session_id;
    copy.metadata.erase(kMarks);
    copy.metadata["copied_from"] = message.id;
    return copy;
}

StoredObject StateStore::load(const std::string &session_id, const Access &access, std::optional<Kind> kind,
                              const std::string &not_found) {
    StoredObject object;
    try {
        object.session = sessions_.get_session(session_id);
        sessions_.authorize(object.session, tenancy_only(access), SWH_ACTION_READ);
    } catch (const ApiError &e) {
        if (e.kind() != ErrorKind::NotFound) throw;
        throw ApiError(ErrorKind::NotFound, not_found);
    }
    const std::optional<Kind> found = kind_of(object.session);
    if (!found || (kind && *kind != *found) || expired(object.session))
        throw ApiError(ErrorKind::NotFound, not_found);
    object.kind = *found;
    MessageQuery query;
    query.session_id = session_id;
    const std::shared_ptr<Pipeline> pin = sessions_.pipeline();
    object.messages = session_call(sessions_.gate(), "get_messages", session_id,
                                   [pin, query] { return pin->storage->get_messages(query); });
    return object;
}

Session StateStore::create(Kind kind, const Access &access, const std::string &provider,
                           const std::string &model, Json openai_marks) {
    CreateSessionParams params;
    // Without API keys the caller may name no user: the objects are then
    // everyone's, as every session is without keys.
    params.user_id = access.user.empty() ? "anonymous" : access.user;
    params.provider = provider;
    params.model = model;
    openai_marks["kind"] = kind_name(kind);
    params.metadata = {{kMarks, std::move(openai_marks)}};
    return sessions_.create_session(std::move(params));
}

Session StateStore::branch(const StoredObject &from, const std::vector<Message> &prefix, const Access &access,
                           const std::string &branched_from) {
    Session session = create(Kind::Responses, access, from.session.provider, from.session.model,
                             Json{{"branched_from", branched_from}});
    std::vector<Message> copies;
    for (const Message &m : prefix)
        copies.push_back(branch_copy(m, session.id));
    store_all(session.id, copies);
    return session;
}

std::vector<Message> StateStore::append(const Session &session, std::vector<Message> items) {
    const int64_t now = now_us();
    for (std::size_t i = 0; i < items.size(); ++i) {
        Message &m = items[i];
        m.id = new_uuid();
        m.session_id = session.id;
        m.timestamp = now + static_cast<int64_t>(i); // keeps their order in every store
    }
    store_all(session.id, items);
    return items;
}

// Under server.max_messages_per_session as a send is (SendPath::store_message):
// room for all of them first (409 when there is none), then each write uses
// its share under the session's lock, so the cap check never miscounts.
void StateStore::store_all(const std::string &session_id, const std::vector<Message> &messages) {
    const std::shared_ptr<Pipeline> pin = sessions_.pipeline();
    const auto reservation = sessions_.reserve_messages(pin, session_id, messages.size());
    for (const Message &message : messages) {
        const auto add = [pin, message] { pin->storage->add_message(message); };
        if (!reservation) {
            storage_call(sessions_.gate(), "add_message", add);
            continue;
        }
        std::lock_guard lock(sessions_.locks().of(session_id));
        storage_call(sessions_.gate(), "add_message", add);
        reservation->give_back(1);
    }
}

Session StateStore::update_marks(const std::string &session_id, const std::function<void(Json &)> &change) {
    const std::shared_ptr<Pipeline> pin = sessions_.pipeline();
    std::lock_guard lock(sessions_.locks().of(session_id));
    Session session = sessions_.get_session(session_id);
    Json &marks = session.metadata[kMarks];
    if (!marks.is_object()) marks = Json::object();
    change(marks);
    session_call(sessions_.gate(), "update_session", session_id,
                 [pin, session] { pin->storage->update_session(session, SWH_SESSION_FIELD_METADATA); });
    return session;
}

void StateStore::remove(const std::string &session_id) {
    sessions_.delete_session(session_id);
}

bool StateStore::expired(const Session &session) const {
    const uint64_t retention = sessions_.pipeline()->responses_retention_seconds;
    if (retention == 0) return false;
    return now_us() - session.last_activity > static_cast<int64_t>(retention) * 1'000'000;
}

std::size_t StateStore::sweep(std::size_t max_sessions, uint32_t &cursor) {
    constexpr uint32_t kPage = 100;
    std::vector<std::string> doomed;
    SessionFilter filter;
    filter.limit = kPage;
    for (std::size_t read = 0; read < max_sessions;) {
        filter.offset = cursor;
        const std::vector<Session> page = sessions_.list_sessions(filter);
        for (const Session &s : page)
            if (kind_of(s) && expired(s)) doomed.push_back(s.id);
        read += page.size();
        cursor += static_cast<uint32_t>(page.size());
        if (page.size() < kPage) {
            cursor = 0; // the end of the list: the next sweep starts over
            break;
        }
    }
    std::size_t deleted = 0;
    for (const std::string &id : doomed) {
        try {
            remove(id);
            ++deleted;
        } catch (const ApiError &e) {
            if (e.kind() != ErrorKind::NotFound) throw; // another daemon swept it first
        }
    }
    return deleted;
}

} // namespace swh::conversation
