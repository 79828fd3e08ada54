#include "isolation/wire.hpp"

#include <array>
#include <cerrno>
#include <poll.h>
#include <sys/socket.h>

namespace swh::isolation {

namespace {

// Milliseconds left until `deadline` for poll(): -1 = no deadline, 0 = due.
int poll_timeout(std::optional<Clock::time_point> deadline) {
    if (!deadline) return -1;
    const auto left = std::chrono::ceil<std::chrono::milliseconds>(*deadline - Clock::now()).count();
    return left <= 0 ? 0 : static_cast<int>(std::min<long long>(left, 1 << 30));
}

// Waits until `fd` is ready for `events`; ok, timeout or error.
IoStatus wait_ready(int fd, short events, std::optional<Clock::time_point> deadline) {
    for (;;) {
        pollfd p{fd, events, 0};
        const int n = ::poll(&p, 1, poll_timeout(deadline));
        if (n > 0) return IoStatus::ok; // POLLHUP/POLLERR: the read or write tells which
        if (n == 0) return IoStatus::timeout;
        if (errno != EINTR) return IoStatus::error;
    }
}

IoStatus send_all(int fd, const char *data, std::size_t size, std::optional<Clock::time_point> deadline) {
    while (size > 0) {
        if (auto ready = wait_ready(fd, POLLOUT, deadline); ready != IoStatus::ok) return ready;
        const ssize_t n = ::send(fd, data, size, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n < 0) {
            if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK) continue;
            return errno == EPIPE || errno == ECONNRESET ? IoStatus::closed : IoStatus::error;
        }
        data += n;
        size -= static_cast<std::size_t>(n);
    }
    return IoStatus::ok;
}

IoStatus recv_all(int fd, char *data, std::size_t size, std::optional<Clock::time_point> deadline) {
    while (size > 0) {
        if (auto ready = wait_ready(fd, POLLIN, deadline); ready != IoStatus::ok) return ready;
        const ssize_t n = ::recv(fd, data, size, MSG_DONTWAIT);
        if (n == 0) return IoStatus::closed;
        if (n < 0) {
            if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK) continue;
            return errno == ECONNRESET ? IoStatus::closed : IoStatus::error;
        }
        data += n;
        size -= static_cast<std::size_t>(n);
    }
    return IoStatus::ok;
}

const std::string &text(const Json &json, const char *key) {
    return json.at(key).get_ref<const std::string &>();
}

} // namespace

IoStatus send_frame(int fd, const Json &message, std::optional<Clock::time_point> deadline) {
    const std::string body = message.dump(-1, ' ', false, Json::error_handler_t::replace);
    if (body.size() > kMaxFrameBytes) return IoStatus::error;
    const auto size = static_cast<uint32_t>(body.size());
    std::string frame(4, '\0');
    for (int i = 0; i < 4; ++i)
        frame[static_cast<std::size_t>(i)] = static_cast<char>((size >> (8 * i)) & 0xFF);
    frame += body; // one send for small frames: one wake-up of the peer
    return send_all(fd, frame.data(), frame.size(), deadline);
}

IoStatus recv_frame(int fd, Json &out, std::optional<Clock::time_point> deadline) {
    std::array<unsigned char, 4> header{};
    if (auto s = recv_all(fd, reinterpret_cast<char *>(header.data()), header.size(), deadline);
        s != IoStatus::ok)
        return s;
    const uint32_t size = header[0] | (header[1] << 8) | (header[2] << 16) | (uint32_t{header[3]} << 24);
    if (size > kMaxFrameBytes) return IoStatus::error;
    std::string body(size, '\0');
    if (auto s = recv_all(fd, body.data(), body.size(), deadline); s != IoStatus::ok) return s;
    out = Json::parse(body, nullptr, false);
    return out.is_discarded() ? IoStatus::error : IoStatus::ok;
}

Json to_wire(const Session &s) {
    return Json{{"id", s.id},
                {"user_id", s.user_id},
                {"provider", s.provider},
                {"model", s.model},
                {"status", s.status},
                {"type", s.type},
                {"created_at", s.created_at},
                {"last_activity", s.last_activity},
                {"message_count", s.message_count},
                {"config", s.config},
                {"context", s.context},
                {"metadata", s.metadata}};
}

Json to_wire(const Message &m) {
    return Json{{"id", m.id},
                {"session_id", m.session_id},
                {"role", m.role},
                {"content", m.content},
                {"timestamp", m.timestamp},
                {"metadata", m.metadata},
                {"provider_message_id", m.provider_message_id},
                {"provider_metadata", m.provider_metadata}};
}

Session session_from_wire(const Json &json) {
    Session s;
    s.id = text(json, "id");
    s.user_id = text(json, "user_id");
    s.provider = text(json, "provider");
    s.model = text(json, "model");
    s.status = text(json, "status");
    s.type = text(json, "type");
    s.created_at = json.at("created_at").get<int64_t>();
    s.last_activity = json.at("last_activity").get<int64_t>();
    s.message_count = json.at("message_count").get<uint64_t>();
    s.config = json.at("config");
    s.context = json.at("context");
    s.metadata = json.at("metadata");
    return s;
}

Message message_from_wire(const Json &json) {
    Message m;
    m.id = text(json, "id");
    m.session_id = text(json, "session_id");
    m.role = text(json, "role");
    m.content = text(json, "content");
    m.timestamp = json.at("timestamp").get<int64_t>();
    m.metadata = json.at("metadata");
    m.provider_message_id = text(json, "provider_message_id");
    m.provider_metadata = json.at("provider_metadata");
    return m;
}

} // namespace swh::isolation
