// The wire between the daemon and a plugin process (host/isolation/): one
// frame = a 4-byte little-endian length, then that many bytes of JSON text.
// When the length's top bit is set, a bytes section follows the JSON: a
// 4-byte count, then per entry a 4-byte key length, the key, a 4-byte value
// length and the value, raw. Both ends use these helpers; the daemon bounds
// every wait by a deadline.
#pragma once

#include "model/model.hpp"

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace swh::isolation {

using Clock = std::chrono::steady_clock;

// A frame larger than this is a protocol error (a garbled length).
constexpr std::size_t kMaxFrameBytes = std::size_t{64} << 20;

enum class IoStatus { ok, closed, timeout, error };

// Writes one frame (the message must be an object when it has "bytes"). Never raises SIGPIPE (MSG_NOSIGNAL):
// a dead peer is an `error`, not the end of the daemon. nullopt deadline = wait as needed.
IoStatus send_frame(int fd, const Json &message, std::optional<Clock::time_point> deadline);
// Reads one frame into `out`. `closed` = the peer closed the connection
// (or died) before a whole frame arrived.
IoStatus recv_frame(int fd, Json &out, std::optional<Clock::time_point> deadline);

// Reads frames through a buffer: one recv takes in every frame that has
// arrived (a streamed reply's chunks come in bursts), where recv_frame makes
// several system calls per frame. For a reader that owns the fd's input.
class FrameReader {
  public:
    explicit FrameReader(int fd) : fd_(fd) {}
    // Whether a whole frame is already buffered (next() will not wait).
    bool buffered() const;
    // The next frame, as recv_frame gives it.
    IoStatus next(Json &out, std::optional<Clock::time_point> deadline);

  private:
    int fd_;
    std::string buffer_;
    std::size_t start_ = 0; // where the unread bytes begin
};

// Sessions and messages on the wire: every field, JSON members as objects.
Json to_wire(const Session &session);
Json to_wire(const Message &message);
Session session_from_wire(const Json &json);
Message message_from_wire(const Json &json);

// Bytes that are not JSON text (an upload's body, a raw query string, a
// route's answer) go in the message's top-level object "bytes" (key -> raw
// string): send_frame sends them raw beside the JSON text, which would
// otherwise replace invalid UTF-8 and costs far more per byte than a copy;
// recv_frame puts them back there. bytes_at: the entry `key`, "" if absent.
constexpr const char *kBytesKey = "bytes";
const std::string &bytes_at(const Json &message, const char *key);

} // namespace swh::isolation
