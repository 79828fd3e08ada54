// What of a session's history the provider is sent (docs/http-api.md,
// "Session config"): the newest messages, at most `max_history_messages` of
// them and about `max_history_tokens` tokens, the new message always
// included, and an assistant message with tool calls never separated from
// the tool results that answer it.
#pragma once

#include "model/frozen_message.hpp"
#include "model/model.hpp"

#include <cstddef>
#include <cstdint>
#include <vector>

namespace swh {

struct HistoryWindow {
    static constexpr uint32_t kDefaultMessages = 100;
    static constexpr uint32_t kMaxMessages = 10000; // a session may not ask for more
    static constexpr uint64_t kDefaultTokens = 100000;

    uint32_t max_messages = kDefaultMessages;
    uint64_t max_tokens = kDefaultTokens;
};

// The session's config keys `max_history_messages` and `max_history_tokens`;
// a key that is absent or not a positive integer takes the default.
HistoryWindow history_window_of(const Session &session);

// About how many tokens a message costs a provider: its text and structured
// content (tool calls, parts) at four bytes a token, plus a little per message.
uint64_t estimate_tokens(const Message &message);

// About how many bytes a JSON value holds (strings, keys, scalars), without
// serialising it.
std::size_t json_bytes(const Json &value);

// `messages` in chronological order, the last one the new message: keeps the
// newest suffix that fits `window`. The new message (and, for a tool result,
// the call it answers with everything after it) is always kept, even alone
// over the budget. A tool result whose call is not among `messages` ends the
// window there (it cannot be sent without its call).
std::vector<Message> fit_window(std::vector<Message> messages, const HistoryWindow &window);
// The same over shared frozen messages (the send path's history).
std::vector<MessageRef> fit_window(std::vector<MessageRef> messages, const HistoryWindow &window);

} // namespace swh
