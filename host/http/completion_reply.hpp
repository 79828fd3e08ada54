// What every completion door (OpenAI chat, Anthropic messages) reads off a
// stored reply in the same way, and how each starts a completion: one piece
// of code per job, each door renders the result in its vendor's words.
#pragma once

#include "http/server.hpp"
#include "model/model.hpp"
#include "session/session_manager.hpp"

#include <cstdint>
#include <memory>
#include <string>

namespace swh::http {

// A reply's token counts, from provider_metadata.usage: the neutral keys of
// ReplyEvent usage, else the OpenAI-style ones a 1.0-1.2 provider wrote; 0
// when unknown. `input` is the whole prompt, `cached_input` part of it.
struct ReplyUsage {
    int64_t input = 0, output = 0, cached_input = 0, reasoning = 0;
};
ReplyUsage usage_of_reply(const Message &assistant);

bool has_tool_calls(const Message &assistant);

// The neutral finish reason (stop, length, tool_calls, content_filter): what
// the provider reported, an older provider's Anthropic word translated;
// tool_calls when the reply has tool calls and no other reason; else stop.
std::string neutral_finish_reason(const Message &assistant);

// X-Swarmhost-Overhead-Ms: the daemon's own time on a proxied exchange.
std::string format_ms(double ms);

// Runs `params` through SessionManager::complete on `post` (a worker), with
// the door's observer hearing the outcome; a client that goes away cancels.
void run_completion(SessionManager &sessions, const PostBlocking &post, CompletionParams params,
                    std::shared_ptr<SendObserver> observer, std::shared_ptr<Exchange> exchange);

} // namespace swh::http
