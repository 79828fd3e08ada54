// A stored message shared by the history cache and the sends that read it
// (issue 17): see FrozenMessage.
#pragma once

#include "model/model.hpp"

#include <memory>
#include <string>
#include <utility>

namespace swh {

// A message once it is stored or about to be: immutable, so that the history
// cache and every send reading a session's window share one copy instead of
// copying it per send, and with its JSON members already serialised as the
// ABI passes them (swh_message.*_json), so that handing the window to a
// provider dumps nothing again.
struct FrozenMessage {
    explicit FrozenMessage(Message m)
        : message(std::move(m)), metadata_json(message.metadata.dump()),
          provider_metadata_json(message.provider_metadata.dump()),
          structured_json(message.structured.empty() ? std::string() : message.structured.dump()) {}

    const Message message;
    const std::string metadata_json, provider_metadata_json;
    const std::string structured_json; // "" for a plain text message
};
using MessageRef = std::shared_ptr<const FrozenMessage>;

inline MessageRef freeze(Message message) {
    return std::make_shared<const FrozenMessage>(std::move(message));
}

} // namespace swh
