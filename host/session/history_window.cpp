#include "session/history_window.hpp"

#include <algorithm>
#include <optional>

namespace swh {

namespace {

uint64_t positive_or(const Json &config, const char *key, uint64_t fallback) {
    const auto it = config.find(key);
    if (it == config.end() || !it->is_number_integer()) return fallback;
    // A value parsed from JSON text is unsigned; one built in code may be signed.
    const uint64_t value = it->is_number_unsigned() ? it->get<uint64_t>()
                           : it->get<int64_t>() > 0 ? static_cast<uint64_t>(it->get<int64_t>())
                                                    : 0;
    return value > 0 ? value : fallback;
}

// The id of the call a tool result answers ("" when it names none).
const std::string &answered_call(const Message &m) {
    static const std::string none;
    if (m.role != "tool") return none;
    const auto id = m.structured.find("tool_call_id");
    return id != m.structured.end() && id->is_string() ? id->get_ref<const std::string &>() : none;
}

bool makes_call(const Message &m, const std::string &id) {
    if (m.role != "assistant") return false;
    const auto calls = m.structured.find("tool_calls");
    if (calls == m.structured.end() || !calls->is_array()) return false;
    return std::any_of(calls->begin(), calls->end(), [&](const Json &call) {
        const auto it = call.find("id");
        return it != call.end() && it->is_string() && it->get_ref<const std::string &>() == id;
    });
}

const Message &message_of(const Message &m) {
    return m;
}
const Message &message_of(const MessageRef &m) {
    return m->message;
}

// Where the suffix must start so that every tool result in
// messages[from, end) travels with the assistant message that made its
// call; nullopt when one of those calls is not in `messages` at all.
template <class M>
std::optional<std::size_t> closed_start(const std::vector<M> &messages, std::size_t from, std::size_t end) {
    std::size_t start = from;
    for (std::size_t i = end; i > start;) {
        --i;
        const std::string &id = answered_call(message_of(messages[i]));
        if (id.empty()) continue;
        std::size_t call = i;
        while (call > 0 && !makes_call(message_of(messages[call - 1]), id))
            --call;
        if (call == 0) return std::nullopt;
        start = std::min(start, call - 1);
    }
    return start;
}

// Where the window of `messages` starts (see fit_window).
template <class M> std::size_t window_start(const std::vector<M> &messages, const HistoryWindow &window) {
    const std::size_t end = messages.size();
    // The new message's own unit is kept whatever it costs.
    std::size_t start = closed_start(messages, end - 1, end).value_or(end - 1);
    uint64_t tokens = 0;
    for (std::size_t i = start; i < end; ++i)
        tokens += estimate_tokens(message_of(messages[i]));
    // Then older units while they fit, newest first.
    while (start > 0) {
        const std::optional<std::size_t> unit = closed_start(messages, start - 1, start);
        if (!unit) break;
        uint64_t more = 0;
        for (std::size_t i = *unit; i < start; ++i)
            more += estimate_tokens(message_of(messages[i]));
        if (end - *unit > window.max_messages || tokens + more > window.max_tokens) break;
        tokens += more;
        start = *unit;
    }
    return start;
}

} // namespace

HistoryWindow history_window_of(const Session &session) {
    HistoryWindow window;
    window.max_messages = static_cast<uint32_t>(std::min<uint64_t>(
        positive_or(session.config, "max_history_messages", HistoryWindow::kDefaultMessages),
        HistoryWindow::kMaxMessages));
    window.max_tokens = positive_or(session.config, "max_history_tokens", HistoryWindow::kDefaultTokens);
    return window;
}

std::size_t json_bytes(const Json &value) {
    switch (value.type()) {
    case Json::value_t::string:
        return value.get_ref<const std::string &>().size() + 2;
    case Json::value_t::object: {
        std::size_t bytes = 2;
        for (const auto &[key, member] : value.items())
            bytes += key.size() + 4 + json_bytes(member);
        return bytes;
    }
    case Json::value_t::array: {
        std::size_t bytes = 2;
        for (const Json &member : value)
            bytes += json_bytes(member) + 1;
        return bytes;
    }
    case Json::value_t::null:
    case Json::value_t::discarded:
        return 4;
    default:
        return 8; // a number or a boolean
    }
}

uint64_t estimate_tokens(const Message &message) {
    constexpr uint64_t kPerMessage = 4; // the role and the framing around it
    const std::size_t structured = message.structured.empty() ? 0 : json_bytes(message.structured);
    return kPerMessage + (message.content.size() + structured + 3) / 4;
}

std::vector<Message> fit_window(std::vector<Message> messages, const HistoryWindow &window) {
    if (messages.empty()) return messages;
    const std::size_t start = window_start(messages, window);
    messages.erase(messages.begin(), messages.begin() + static_cast<std::ptrdiff_t>(start));
    return messages;
}

std::vector<MessageRef> fit_window(std::vector<MessageRef> messages, const HistoryWindow &window) {
    if (messages.empty()) return messages;
    const std::size_t start = window_start(messages, window);
    messages.erase(messages.begin(), messages.begin() + static_cast<std::ptrdiff_t>(start));
    return messages;
}

} // namespace swh
