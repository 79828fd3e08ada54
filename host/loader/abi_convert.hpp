// Conversions between the host's C++ model and the ABI's borrowed C structs.
// A *Abi object owns the text the C struct points into, so keep it alive for
// as long as the plugin may read the struct (the call).
#pragma once

#include "model/frozen_message.hpp"
#include "model/model.hpp"

#include <optional>
#include <string>
#include <string_view>
#include <swarmhost/swarmhost.h>

namespace swh::loader {

inline swh_str to_str(std::string_view s) {
    return swh_str{s.data(), s.size()};
}
inline std::string to_string(swh_str s) {
    return s.ptr ? std::string(s.ptr, s.len) : std::string();
}

class SessionAbi {
  public:
    explicit SessionAbi(const Session &session);
    SessionAbi(const SessionAbi &) = delete;
    SessionAbi &operator=(const SessionAbi &) = delete;
    const swh_session *get() const { return &raw_; }

  private:
    std::string config_, context_, metadata_;
    swh_session raw_{};
};

class MessageAbi {
  public:
    explicit MessageAbi(const Message &message);
    MessageAbi(const MessageAbi &) = delete;
    MessageAbi &operator=(const MessageAbi &) = delete;
    const swh_message *get() const { return &raw_; }

  private:
    std::string metadata_, provider_metadata_, structured_;
    swh_message raw_{};
};

// A hook event's ABI struct and the text it points into.
class EventAbi {
  public:
    EventAbi(uint32_t type, int64_t time, const Session &session, const Message *message,
             const Json &details);
    EventAbi(const EventAbi &) = delete;
    EventAbi &operator=(const EventAbi &) = delete;
    const swh_event *get() const { return &raw_; }

  private:
    SessionAbi session_;
    std::optional<MessageAbi> message_;
    std::string details_;
    swh_event raw_{};
};

// The ABI struct of a frozen message: it points into `message`, which must
// outlive the call; nothing is serialised.
swh_message abi_view(const FrozenMessage &message);

// Copy a plugin's struct into the host model. Malformed JSON members are a
// plugin bug: throws std::runtime_error naming the member.
Session from_abi(const swh_session &session);
Message from_abi(const swh_message &message);

// Parse a JSON object text coming from a plugin ("" counts as {}).
Json parse_object(std::string_view text, const char *what);

} // namespace swh::loader
