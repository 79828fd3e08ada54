#include "http/openai_conversations.hpp"

#include "conversation/items.hpp"
#include "conversation/openai_ids.hpp"
#include "conversation/state.hpp"
#include "http/json_codec.hpp"
#include "http/openai_responses_request.hpp"
#include "model/field_checks.hpp"

namespace swh::http::openai {

namespace cv = conversation;

namespace {

std::string not_found_conversation(const std::string &id) {
    return "Conversation with id '" + id + "' not found.";
}

cv::StoredObject load_conversation(cv::StateStore &store, const std::string &id, const Access &access) {
    const auto session_id = cv::parse_conversation_id(id);
    if (!session_id) throw ApiError(ErrorKind::NotFound, not_found_conversation(id));
    return store.load(*session_id, access, cv::Kind::Conversation, not_found_conversation(id));
}

Json conversation_object(const Session &session) {
    const Json &marks = session.metadata.value("openai", Json::object());
    return {{"id", cv::conversation_id(session.id)},
            {"object", "conversation"},
            {"created_at", session.created_at / 1'000'000},
            {"metadata", marks.value("metadata", Json::object())}};
}

// Every item of a conversation, oldest first, without the removed ones.
Json all_items(const cv::StoredObject &object) {
    const std::set<std::string> deleted = cv::deleted_items(object.session);
    Json items = Json::array();
    for (const Message &m : object.messages)
        for (Json &item : cv::items_of(m, deleted))
            items.push_back(std::move(item));
    return items;
}

// Items a client adds to a conversation; system and developer items are
// this door's request-only system prompt and have no stored form yet.
std::vector<Message> decode_new_items(const Json &items, const std::vector<Message> &history) {
    if (items.is_array())
        for (std::size_t i = 0; i < items.size(); ++i)
            if (items[i].is_object() &&
                (items[i].value("role", "") == "system" || items[i].value("role", "") == "developer"))
                fields::invalid(fields::at("items", i) + ".role",
                                "system and developer items are not stored in conversations: send them as "
                                "the response's instructions");
    fields::need(items.is_array(), "items", "must be a list of items");
    cv::DecodedItems decoded = cv::decode_items(items, "items");
    cv::check_call_ids(history, decoded);
    return std::move(decoded.messages);
}

Json find_item(const cv::StoredObject &object, const std::string &item_id, const std::string &conversation) {
    const std::string not_found =
        "Item with id '" + item_id + "' not found in conversation '" + conversation + "'.";
    for (const Json &item : all_items(object))
        if (item["id"] == item_id) return item;
    throw ApiError(ErrorKind::NotFound, not_found);
}

} // namespace

void conversations_create(const Request &request, std::shared_ptr<Exchange> exchange,
                          const DoorContext &door) {
    Json body;
    std::vector<Message> items;
    Json metadata = Json::object();
    try {
        body = parse_body(request.body);
        fields::only_keys(body, "body", {"items", "metadata"});
        if (fields::present(body, "metadata")) metadata = check_metadata(body["metadata"], "metadata");
        if (fields::present(body, "items")) items = decode_new_items(body["items"], {});
    } catch (const ApiError &e) {
        return respond_openai_error(*exchange, e);
    }
    openai_json(exchange, door.post, 200, [items = std::move(items), metadata, door]() mutable {
        cv::StateStore store(door.sessions);
        const std::shared_ptr<Pipeline> pin = door.sessions.pipeline();
        Session session = store.create(cv::Kind::Conversation, door.caller.access, pin->default_provider, "",
                                       Json{{"metadata", metadata}});
        store.append(session, std::move(items));
        return conversation_object(session);
    });
}

void conversation_retrieve(const std::string &id, std::shared_ptr<Exchange> exchange,
                           const DoorContext &door) {
    openai_json(exchange, door.post, 200, [id, door] {
        cv::StateStore store(door.sessions);
        return conversation_object(load_conversation(store, id, door.caller.access).session);
    });
}

void conversation_update(const std::string &id, const Request &request, std::shared_ptr<Exchange> exchange,
                         const DoorContext &door) {
    Json metadata;
    try {
        const Json body = parse_body(request.body);
        fields::only_keys(body, "body", {"metadata"});
        fields::need(fields::present(body, "metadata"), "metadata", "is required");
        metadata = check_metadata(body["metadata"], "metadata");
    } catch (const ApiError &e) {
        return respond_openai_error(*exchange, e);
    }
    openai_json(exchange, door.post, 200, [id, metadata, door] {
        cv::StateStore store(door.sessions);
        const cv::StoredObject object = load_conversation(store, id, door.caller.access);
        return conversation_object(
            store.update_marks(object.session.id, [&](Json &marks) { marks["metadata"] = metadata; }));
    });
}

void conversation_delete(const std::string &id, std::shared_ptr<Exchange> exchange, const DoorContext &door) {
    openai_json(exchange, door.post, 200, [id, door] {
        cv::StateStore store(door.sessions);
        store.remove(load_conversation(store, id, door.caller.access).session.id);
        return Json{{"id", id}, {"object", "conversation.deleted"}, {"deleted", true}};
    });
}

void conversation_items_list(const std::string &id, const std::map<std::string, std::string> &query,
                             std::shared_ptr<Exchange> exchange, const DoorContext &door) {
    openai_json(exchange, door.post, 200, [id, query, door] {
        cv::StateStore store(door.sessions);
        return list_page(all_items(load_conversation(store, id, door.caller.access)), query);
    });
}

void conversation_items_create(const std::string &id, const Request &request,
                               std::shared_ptr<Exchange> exchange, const DoorContext &door) {
    Json items;
    try {
        const Json body = parse_body(request.body);
        fields::only_keys(body, "body", {"items"});
        fields::need(fields::present(body, "items"), "items", "is required");
        items = body["items"];
    } catch (const ApiError &e) {
        return respond_openai_error(*exchange, e);
    }
    openai_json(exchange, door.post, 200, [id, items, door] {
        cv::StateStore store(door.sessions);
        const cv::StoredObject object = load_conversation(store, id, door.caller.access);
        std::vector<Message> added = store.append(
            object.session,
            decode_new_items(items, cv::without_items(object.messages, cv::deleted_items(object.session))));
        Json data = Json::array();
        for (const Message &m : added)
            for (Json &item : cv::items_of(m))
                data.push_back(std::move(item));
        return Json{{"object", "list"},
                    {"data", data},
                    {"first_id", data.empty() ? Json() : data.front()["id"]},
                    {"last_id", data.empty() ? Json() : data.back()["id"]},
                    {"has_more", false}};
    });
}

void conversation_item_retrieve(const std::string &id, const std::string &item_id,
                                std::shared_ptr<Exchange> exchange, const DoorContext &door) {
    openai_json(exchange, door.post, 200, [id, item_id, door] {
        cv::StateStore store(door.sessions);
        return find_item(load_conversation(store, id, door.caller.access), item_id, id);
    });
}

// The storage ABI cannot delete one message: the item's id is added to the
// conversation's removed items, which every reader (items, history) skips.
void conversation_item_delete(const std::string &id, const std::string &item_id,
                              std::shared_ptr<Exchange> exchange, const DoorContext &door) {
    openai_json(exchange, door.post, 200, [id, item_id, door] {
        cv::StateStore store(door.sessions);
        const cv::StoredObject object = load_conversation(store, id, door.caller.access);
        find_item(object, item_id, id);
        return conversation_object(store.update_marks(object.session.id, [&](Json &marks) {
            Json &list = marks["deleted_items"];
            if (!list.is_array()) list = Json::array();
            list.push_back(item_id);
        }));
    });
}

} // namespace swh::http::openai
