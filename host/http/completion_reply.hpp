// What the completion doors (OpenAI chat, Anthropic messages) share beyond
// openai::token_counts / openai::finish_reason_of: one piece of code per
// job, each door renders the result in its vendor's words.
#pragma once

#include "http/server.hpp"
#include "model/model.hpp"
#include "session/session_manager.hpp"

#include <memory>
#include <string>

namespace swh::http {

// X-Swarmhost-Overhead-Ms: the daemon's own time on a proxied exchange.
std::string format_ms(double ms);

// Runs `params` through SessionManager::complete on `post` (a worker), or
// on this thread for a stateless exchange whose pipeline has nothing that
// may block (Pipeline::stateless_inline), with the door's observer hearing
// the outcome; a client that goes away cancels.
void run_completion(SessionManager &sessions, const PostBlocking &post, CompletionParams params,
                    std::shared_ptr<SendObserver> observer, std::shared_ptr<Exchange> exchange);

} // namespace swh::http
