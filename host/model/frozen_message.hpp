// A stored message shared by the history cache and the sends that read it
// (issue 17): see FrozenMessage.
#pragma once

#include "model/model.hpp"

#include <memory>
#include <mutex>
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
        : message(std::move(m)), metadata_json(member_text(message.metadata)),
          provider_metadata_json(member_text(message.provider_metadata)),
          structured_json(message.structured.empty() ? std::string() : message.structured.dump()) {}

    const Message message;
    const std::string metadata_json, provider_metadata_json;
    const std::string structured_json; // "" for a plain text message

    // The message as the API answers it (http/json_codec's append_json),
    // rendered by the first reader and reused by every later one: a cached
    // message is read many times and never changes. Only that one renderer
    // may call this.
    template <class Render> const std::string &api_json(Render render) const {
        std::call_once(api_json_once_, [&] { render(api_json_); });
        return api_json_;
    }

  private:
    mutable std::once_flag api_json_once_;
    mutable std::string api_json_;
};
using MessageRef = std::shared_ptr<const FrozenMessage>;

inline MessageRef freeze(Message message) {
    return std::make_shared<const FrozenMessage>(std::move(message));
}

} // namespace swh
