#include "model/field_checks.hpp"

#include <algorithm>
#include <vector>

namespace swh::fields {

namespace {
constexpr std::string_view kPrefix = "field '";
}

void invalid(const std::string &field, const std::string &what) {
    throw ApiError(ErrorKind::InvalidRequest, std::string(kPrefix) + field + "' " + what);
}

std::string at(const std::string &field, std::size_t index) {
    return field + "[" + std::to_string(index) + "]";
}

bool present(const Json &object, const char *key) {
    auto it = object.find(key);
    return it != object.end() && !it->is_null();
}

std::string type_of(const Json &object) {
    return object.is_object() && present(object, "type") && object["type"].is_string() ? object["type"] : "";
}

const std::string &string_at(const Json &object, const char *key, const std::string &field) {
    need(present(object, key) && object[key].is_string(), field + "." + key, "must be a string");
    return object[key].get_ref<const std::string &>();
}

void only_keys(const Json &object, const std::string &field, std::initializer_list<std::string_view> known,
               std::initializer_list<std::string_view> ignored) {
    const auto listed = [](std::initializer_list<std::string_view> names, std::string_view key) {
        return std::find(names.begin(), names.end(), key) != names.end();
    };
    for (const auto &[key, value] : object.items()) {
        if (listed(known, key) || listed(ignored, key) || value.is_null()) continue;
        std::vector<std::string_view> names(known); // named in order, as a set would list them
        std::sort(names.begin(), names.end());
        names.erase(std::unique(names.begin(), names.end()), names.end());
        std::string list;
        for (const auto name : names)
            list.append(list.empty() ? "" : ", ").append(name);
        invalid(field + "." + key, "is not supported here (expected one of: " + list + ")");
    }
}

std::string decode_content(const Json &content, const std::string &field, const PartDecoder &decode_part,
                           Json &structured) {
    if (content.is_string()) return content.get<std::string>();
    need(content.is_array(), field + ".content", "must be a string or a list of content parts");
    std::string text;
    Json parts = Json::array();
    bool only_text = true;
    for (std::size_t j = 0; j < content.size(); ++j) {
        parts.push_back(decode_part(content[j], at(field + ".content", j), text));
        // A text part with a cache mark keeps the parts, so the mark stays on it.
        only_text = only_text && parts.back()["type"] == "text" && !parts.back().contains("cache_control");
    }
    if (!only_text) structured["parts"] = std::move(parts);
    return text;
}

std::string field_of(const std::string &message) {
    if (message.compare(0, kPrefix.size(), kPrefix) != 0) return "";
    const auto end = message.find('\'', kPrefix.size());
    return end == std::string::npos ? "" : message.substr(kPrefix.size(), end - kPrefix.size());
}

} // namespace swh::fields
