// One send, from the user message to the stored reply (docs/architecture.md,
// "The flow of one message"): the session's type and the user-stage
// middleware vet the message, it is stored, the provider chain answers
// (failing over mid-stream), the assistant stage and stream guardrails see
// the reply, it is stored, the client hears the outcome. The session service
// (SessionManager) owns the store, the guards and the events this uses.
#pragma once

#include "model/errors.hpp"
#include "model/model.hpp"
#include "pipeline/pipeline.hpp"
#include "session/history_cache.hpp"

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace swh {

class SessionManager;
struct SendParams;
struct CompletionParams;
struct Access;
class SendObserver;
using PostBlocking = std::function<void(std::function<void()>)>;

class SendPath {
  public:
    // `post_free`: where work that needs no storage goes (a stateless reply).
    SendPath(SessionManager &sessions, PostBlocking post_blocking, PostBlocking post_free);

    // See SessionManager::send_message and ::complete.
    std::function<void()> send_message(const SendParams &params, std::shared_ptr<SendObserver> observer);
    std::function<void()> complete(CompletionParams params, std::shared_ptr<SendObserver> observer);

  private:
    struct SendState;
    std::function<void()> launch(std::shared_ptr<SendState> state);
    void start_attempt(std::shared_ptr<SendState> state);
    void cancel_send(const std::shared_ptr<SendState> &state);
    void finish_send(std::shared_ptr<SendState> state, swh_status status, std::string error);
    static void release_holds(SendState &state);
    void release_and_report(SendState &state, const ApiError &error);
    Message run_assistant_stage(SendState &state, Message assistant);
    static void record_event(SendState &state, const ReplyEvent &event);
    static void attach_reply_events(SendState &state, Message &assistant);
    void record_usage(SendState &state, const Message &assistant);
    static void drop_reply_events(SendState &state);
    static void release_tool_calls(SendState &state, const Message &assistant);
    // Every door that appends a user message to a stored session calls this
    // (POST .../messages, chat completions with X-Swarmhost-Session): the
    // session's type checks the caller's write permission and may edit it.
    void vet_with_session_type(SendState &state, const Access &access);
    void store_message(SendState &state, const MessageRef &message);
    HistoryCache::Snapshot recent_messages(SendState &state, uint32_t limit);
    std::pair<std::optional<Message>, std::optional<Message>>
    find_prior_attempt(const std::shared_ptr<Pipeline> &pin, const std::string &session_id,
                       const std::string &key);

    SessionManager &sessions_;
    PostBlocking post_blocking_;
    PostBlocking post_free_;
};

} // namespace swh
