#include "conversation/openai_ids.hpp"

#include <charconv>

namespace swh::conversation {

namespace {

constexpr std::size_t kHex = 32;

bool is_lower_hex(char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}

std::optional<std::string_view> after_prefix(std::string_view id, std::string_view prefix) {
    if (id.substr(0, prefix.size()) != prefix) return std::nullopt;
    return id.substr(prefix.size());
}

} // namespace

std::string hex_of_uuid(std::string_view uuid) {
    std::string hex;
    hex.reserve(kHex);
    for (char c : uuid)
        if (c != '-') hex += c;
    return hex;
}

std::optional<std::string> uuid_of_hex(std::string_view hex) {
    if (hex.size() != kHex) return std::nullopt;
    std::string uuid;
    uuid.reserve(36);
    for (std::size_t i = 0; i < kHex; ++i) {
        if (!is_lower_hex(hex[i])) return std::nullopt;
        if (i == 8 || i == 12 || i == 16 || i == 20) uuid += '-';
        uuid += hex[i];
    }
    return uuid;
}

std::string response_id(const std::string &session_id, const std::string &message_id) {
    return "resp_" + hex_of_uuid(session_id) + hex_of_uuid(message_id);
}

std::string conversation_id(const std::string &session_id) {
    return "conv_" + hex_of_uuid(session_id);
}

std::string message_item_id(const std::string &message_id) {
    return "msg_" + hex_of_uuid(message_id);
}

std::string tool_result_item_id(const std::string &message_id) {
    return "fco_" + hex_of_uuid(message_id);
}

std::string call_item_id(const std::string &message_id, std::size_t index) {
    return "fc_" + hex_of_uuid(message_id) + "_" + std::to_string(index);
}

std::optional<ResponseRef> parse_response_id(std::string_view id) {
    const auto rest = after_prefix(id, "resp_");
    if (!rest || rest->size() != 2 * kHex) return std::nullopt;
    auto session = uuid_of_hex(rest->substr(0, kHex));
    auto message = uuid_of_hex(rest->substr(kHex));
    if (!session || !message) return std::nullopt;
    return ResponseRef{std::move(*session), std::move(*message)};
}

std::optional<std::string> parse_conversation_id(std::string_view id) {
    const auto rest = after_prefix(id, "conv_");
    return rest ? uuid_of_hex(*rest) : std::nullopt;
}

std::optional<ItemRef> parse_item_id(std::string_view id) {
    if (const auto rest = after_prefix(id, "msg_")) {
        auto message = uuid_of_hex(*rest);
        if (message) return ItemRef{std::move(*message), std::nullopt, false};
    } else if (const auto rest = after_prefix(id, "fco_")) {
        auto message = uuid_of_hex(*rest);
        if (message) return ItemRef{std::move(*message), std::nullopt, true};
    } else if (const auto rest = after_prefix(id, "fc_"); rest && rest->size() > kHex + 1) {
        auto message = uuid_of_hex(rest->substr(0, kHex));
        const std::string_view number = rest->substr(kHex + 1);
        std::size_t index = 0;
        const auto [end, error] = std::from_chars(number.data(), number.data() + number.size(), index);
        if (message && (*rest)[kHex] == '_' && error == std::errc() && end == number.data() + number.size())
            return ItemRef{std::move(*message), index, false};
    }
    return std::nullopt;
}

} // namespace swh::conversation
