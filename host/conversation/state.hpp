// The state of the OpenAI Responses and Conversations doors on the session
// store (docs/conversation-state.md). A response chain and a conversation
// are each a session of the caller's user, on whatever storage plugin is
// configured; marks in metadata say what is what:
//   session.metadata.openai  {"kind":"responses"|"conversation",
//                             "metadata":{…} (a conversation's own),
//                             "deleted_items":[item ids], "deleted_responses":[message uuids],
//                             "branched_from":"resp_…"}
//   an input turn's metadata.openai  {"response":"<reply message uuid>"}
//   a reply's metadata.openai        {"response":{the response's request envelope},
//                                     "parent":"<the reply it continues in this session>"|""}
// Nothing else is stored: the ids (conversation/openai_ids.hpp) say where
// an object lives, so another daemon on the same store finds it at once.
#pragma once

#include "model/model.hpp"
#include "session/session_manager.hpp"

#include <chrono>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace swh::conversation {

enum class Kind { Responses, Conversation };
const char *kind_name(Kind kind);

// One session of the doors, loaded.
struct StoredObject {
    Session session;
    Kind kind = Kind::Responses;
    std::vector<Message> messages; // everything stored, chronological
};

// ----------------------------------------------------- the marks (pure)

// A reply of the Responses door (an assistant message with an envelope).
bool is_response(const Message &message);
const Json &envelope_of(const Message &reply); // {} when none
std::set<std::string> deleted_items(const Session &session);
std::set<std::string> deleted_responses(const Session &session);
const Message *find_message(const std::vector<Message> &messages, const std::string &id);

// What the provider sees when a request continues `reply_id`: the messages
// up to and including it, less the turns of other replies that are not its
// ancestors (two requests may continue the same response at once and
// interleave in the store), less removed items. A conversation is one line:
// everything up to it counts.
std::vector<Message> history_through(const StoredObject &object, const std::string &reply_id);
// A response's input turns (marked with its reply's uuid), in order.
std::vector<Message> inputs_of(const std::vector<Message> &messages, const std::string &reply_id);
// A stored message copied into a branch: a new id, the doors' marks gone.
Message branch_copy(const Message &message, const std::string &session_id);

// How often the daemon sweeps expired objects out of the store: a quarter
// of the retention, between 1 second and 1 hour. Each sweep reads at most
// kSweepRows session rows.
std::chrono::seconds sweep_interval(uint64_t retention_seconds);
inline constexpr std::size_t kSweepRows = 10'000;

// ---------------------------------------------------- the store (blocks)

class StateStore {
  public:
    explicit StateStore(SessionManager &sessions) : sessions_(sessions) {}

    // The session `session_id` if it is one of the doors' (of `kind`, any
    // when nullopt), the caller may read it (tenancy) and it has not
    // expired; else ApiError 404 with `not_found`.
    StoredObject load(const std::string &session_id, const Access &access, std::optional<Kind> kind,
                      const std::string &not_found);
    // A new session of the caller's user for a chain or a conversation.
    Session create(Kind kind, const Access &access, const std::string &provider, const std::string &model,
                   Json openai_marks = Json::object());
    // A new chain holding copies of `prefix` (a branch): the original is untouched.
    Session branch(const StoredObject &from, const std::vector<Message> &prefix, const Access &access,
                   const std::string &branched_from);
    // Conversation items added without a reply: stored in order; returns them stored.
    std::vector<Message> append(const Session &session, std::vector<Message> items);
    // Read-modify-write of session.metadata.openai under the session's lock.
    Session update_marks(const std::string &session_id, const std::function<void(Json &marks)> &change);
    void remove(const std::string &session_id);

    // Whether the session has outlived server.responses_retention_seconds
    // since its last write.
    bool expired(const Session &session) const;
    // Deletes expired sessions of the doors, reading at most `max_sessions`
    // session rows from the store, from `cursor` on (the list's offset where
    // the previous sweep stopped; back to 0 at its end), so a store larger
    // than one sweep is covered over several; returns how many it deleted.
    std::size_t sweep(std::size_t max_sessions, uint32_t &cursor);

  private:
    void store_all(const std::string &session_id, const std::vector<Message> &messages);
    SessionManager &sessions_;
};

} // namespace swh::conversation
