#include "conversation/items.hpp"

#include "conversation/openai_ids.hpp"
#include "model/field_checks.hpp"
#include "model/generation_params.hpp"

namespace swh::conversation {

namespace {

using namespace fields; // the shared checks: invalid, need, at, present, only_keys…

// Keys the official client sends back with items it got from us (an output
// item replayed as input): derived from what the door returned.
const std::initializer_list<std::string_view> kEchoedKeys = {"id", "status"};

Json image_part(const Json &part, const std::string &field) {
    only_keys(part, field, {"type", "image_url", "detail"});
    if (present(part, "file_id"))
        invalid(field + ".file_id", "is not supported: send the image as image_url (a URL or data URL)");
    Json neutral = {{"type", "image"}, {"url", string_at(part, "image_url", field)}};
    if (present(part, "detail")) neutral["detail"] = string_at(part, "detail", field);
    return neutral;
}

// One content part of a message item -> its neutral part; text joins `text`.
Json decode_part(const Json &part, const std::string &field, const std::string &role, std::string &text) {
    const std::string type = type_of(part);
    need(!type.empty(), field, "must be an object with a string \"type\"");
    const bool assistant = role == "assistant";
    if ((!assistant && type == "input_text") || (assistant && type == "output_text")) {
        // annotations/logprobs: what the door itself returned on an output part.
        only_keys(part, field, {"type", "text"}, {"annotations", "logprobs"});
        text += string_at(part, "text", field);
        return {{"type", "text"}, {"text", part["text"]}};
    }
    if (assistant && type == "refusal") {
        only_keys(part, field, {"type", "refusal"});
        text += string_at(part, "refusal", field);
        return {{"type", "text"}, {"text", part["refusal"]}};
    }
    if (role == "user" && type == "input_image") return image_part(part, field);
    if (type == "input_file" || type == "input_audio")
        invalid(field + ".type", "'" + type + "' is not supported by this door yet (text and images are)");
    invalid(field + ".type", "'" + type + "' is not a content part a " + role + " message may carry");
}

std::string decode_content(const Json &item, const std::string &field, const std::string &role,
                           Json &structured) {
    need(present(item, "content"), field + ".content", "is required");
    return fields::decode_content(
        item["content"], field,
        [&role](const Json &part, const std::string &where, std::string &text) {
            return decode_part(part, where, role, text);
        },
        structured);
}

void decode_message_item(const Json &item, const std::string &field, DecodedItems &out) {
    only_keys(item, field, {"type", "role", "content"}, kEchoedKeys);
    need(present(item, "role") && item["role"].is_string(), field + ".role", "must be a string");
    const std::string role = item["role"];
    if (role == "system" || role == "developer") {
        Json unused = Json::object();
        const std::string text = decode_content(item, field, "system", unused);
        out.system_prompt += (out.system_prompt.empty() ? "" : "\n") + text;
        return;
    }
    need(role == "user" || role == "assistant", field + ".role",
         "must be \"user\", \"assistant\", \"system\" or \"developer\"");
    Message message;
    message.role = role;
    message.content = decode_content(item, field, role, message.structured);
    check_structured(message.structured, field);
    out.messages.push_back(std::move(message));
    out.fields.push_back(field);
}

// A function_call joins the assistant message just before it (a message
// item or other calls), as one assistant turn of the neutral history.
void decode_function_call(const Json &item, const std::string &field, DecodedItems &out, bool joins) {
    only_keys(item, field, {"type", "call_id", "name", "arguments"}, kEchoedKeys);
    const std::string &call_id = string_at(item, "call_id", field);
    need(!call_id.empty(), field + ".call_id", "must not be empty");
    Json call = {{"id", call_id},
                 {"name", string_at(item, "name", field)},
                 {"arguments", string_at(item, "arguments", field)}};
    if (!joins) {
        Message message;
        message.role = "assistant";
        out.messages.push_back(std::move(message));
        out.fields.push_back(field);
    }
    Json &calls = out.messages.back().structured["tool_calls"];
    if (!calls.is_array()) calls = Json::array();
    calls.push_back(std::move(call));
}

void decode_call_output(const Json &item, const std::string &field, DecodedItems &out) {
    only_keys(item, field, {"type", "call_id", "output"}, kEchoedKeys);
    Message message;
    message.role = "tool";
    const std::string &call_id = string_at(item, "call_id", field);
    need(!call_id.empty(), field + ".call_id", "must not be empty");
    message.structured["tool_call_id"] = call_id;
    need(present(item, "output"), field + ".output", "is required");
    const Json &output = item["output"];
    if (output.is_string()) {
        message.content = output.get<std::string>();
    } else {
        need(output.is_array(), field + ".output", "must be a string or a list of input_text parts");
        for (std::size_t j = 0; j < output.size(); ++j) {
            const std::string where = at(field + ".output", j);
            need(type_of(output[j]) == "input_text", where + ".type",
                 "must be \"input_text\" (other output parts are not supported yet)");
            only_keys(output[j], where, {"type", "text"});
            message.content += string_at(output[j], "text", where);
        }
    }
    out.messages.push_back(std::move(message));
    out.fields.push_back(field);
}

Json input_parts_of(const Message &message) {
    const char *text_type = message.role == "assistant" ? "output_text" : "input_text";
    const auto parts = message.structured.find("parts");
    if (parts == message.structured.end() || !parts->is_array())
        return Json::array({{{"type", text_type}, {"text", message.content}}});
    Json content = Json::array();
    for (const Json &part : *parts) {
        const std::string type = part.value("type", "");
        if (type == "image")
            content.push_back({{"type", "input_image"},
                               {"image_url", part.value("url", "")},
                               {"detail", part.value("detail", "auto")}});
        else if (type == "file")
            content.push_back({{"type", "input_file"},
                               {"file_id", part.value("file_id", "")},
                               {"filename", part.value("filename", "")}});
        else
            content.push_back({{"type", text_type}, {"text", part.value("text", "")}});
    }
    return content;
}

} // namespace

DecodedItems decode_items(const Json &items, const std::string &field) {
    DecodedItems out;
    if (items.is_string()) {
        Message message;
        message.role = "user";
        message.content = items.get<std::string>();
        out.messages.push_back(std::move(message));
        out.fields.push_back(field);
        return out;
    }
    need(items.is_array(), field, "must be a string or a list of items");
    bool after_assistant = false; // the last item made or joined an assistant message
    for (std::size_t i = 0; i < items.size(); ++i) {
        const Json &item = items[i];
        const std::string where = at(field, i);
        need(item.is_object(), where, "must be an object");
        const std::string type = present(item, "type") ? type_of(item) : "message";
        need(!type.empty(), where + ".type", "must be a string");
        if (type == "message") {
            decode_message_item(item, where, out);
            after_assistant = !out.messages.empty() && out.messages.back().role == "assistant" &&
                              out.fields.back() == where;
        } else if (type == "function_call") {
            decode_function_call(item, where, out, after_assistant);
            after_assistant = true;
        } else if (type == "function_call_output") {
            decode_call_output(item, where, out);
            after_assistant = false;
        } else {
            invalid(where + ".type", "'" + type +
                                         "' is not supported by this door (message, function_call and "
                                         "function_call_output items are)");
        }
    }
    return out;
}

void check_call_ids(const std::vector<Message> &history, const DecodedItems &decoded) {
    for (std::size_t i = 0; i < decoded.messages.size(); ++i) {
        const Message &result = decoded.messages[i];
        if (result.role != "tool") continue;
        const Json &id = result.structured["tool_call_id"];
        bool found = false;
        for (std::size_t k = 0; k < i && !found; ++k)
            found = made_tool_call(decoded.messages[k], id);
        for (auto m = history.rbegin(); m != history.rend() && !found; ++m)
            found = made_tool_call(*m, id);
        if (!found)
            invalid(decoded.fields[i] + ".call_id",
                    "'" + id.get<std::string>() +
                        "' matches no function call of an earlier item or of the previous response");
    }
}

Json items_of(const Message &message, const std::set<std::string> &deleted) {
    Json items = Json::array();
    const auto keep = [&](Json item) {
        if (!deleted.count(item["id"].get<std::string>())) items.push_back(std::move(item));
    };
    if (message.role == "tool") {
        keep({{"id", tool_result_item_id(message.id)},
              {"type", "function_call_output"},
              {"call_id", message.structured.value("tool_call_id", "")},
              {"output", message.content},
              {"status", "completed"}});
        return items;
    }
    const bool calls = has_tool_calls(message);
    if (message.role != "assistant" || !message.content.empty() || !calls)
        keep({{"id", message_item_id(message.id)},
              {"type", "message"},
              {"role", message.role},
              {"status", "completed"},
              {"content", message.role == "assistant" ? Json::array({{{"type", "output_text"},
                                                                      {"text", message.content},
                                                                      {"annotations", Json::array()},
                                                                      {"logprobs", Json::array()}}})
                                                      : input_parts_of(message)}});
    if (!calls) return items;
    const Json &tool_calls = message.structured["tool_calls"];
    for (std::size_t i = 0; i < tool_calls.size(); ++i)
        keep({{"id", call_item_id(message.id, i)},
              {"type", "function_call"},
              {"status", "completed"},
              {"call_id", tool_calls[i].value("id", "")},
              {"name", tool_calls[i].value("name", "")},
              {"arguments", tool_calls[i].value("arguments", "")}});
    return items;
}

Json output_of(const Message &assistant) {
    return items_of(assistant);
}

std::string output_text_of(const Json &output) {
    std::string text;
    for (const Json &item : output)
        if (item.value("type", "") == "message")
            for (const Json &part : item.value("content", Json::array()))
                if (part.value("type", "") == "output_text") text += part.value("text", "");
    return text;
}

std::vector<Message> without_items(std::vector<Message> messages, const std::set<std::string> &deleted) {
    if (deleted.empty()) return messages;
    std::vector<Message> kept;
    for (Message &m : messages) {
        if (m.role == "tool") {
            if (!deleted.count(tool_result_item_id(m.id))) kept.push_back(std::move(m));
            continue;
        }
        if (m.role != "assistant") {
            if (!deleted.count(message_item_id(m.id))) kept.push_back(std::move(m));
            continue;
        }
        if (deleted.count(message_item_id(m.id))) m.content.clear();
        if (has_tool_calls(m)) {
            Json calls = Json::array();
            for (std::size_t i = 0; i < m.structured["tool_calls"].size(); ++i)
                if (!deleted.count(call_item_id(m.id, i))) calls.push_back(m.structured["tool_calls"][i]);
            if (calls.empty())
                m.structured.erase("tool_calls");
            else
                m.structured["tool_calls"] = std::move(calls);
        }
        if (!m.content.empty() || has_tool_calls(m)) kept.push_back(std::move(m));
    }
    return kept;
}

} // namespace swh::conversation
