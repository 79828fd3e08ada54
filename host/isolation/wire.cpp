#include "isolation/wire.hpp"

#include "model/model_json.hpp"

#include <algorithm>
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

// The top bit of a frame's length: a bytes section follows the JSON.
constexpr uint32_t kBytesFlag = uint32_t{1} << 31;

void put_u32(std::string &out, uint32_t value) {
    for (int i = 0; i < 4; ++i)
        out += static_cast<char>((value >> (8 * i)) & 0xFF);
}

IoStatus recv_u32(int fd, uint32_t &value, std::optional<Clock::time_point> deadline) {
    std::array<unsigned char, 4> raw{};
    if (auto s = recv_all(fd, reinterpret_cast<char *>(raw.data()), raw.size(), deadline); s != IoStatus::ok)
        return s;
    value = raw[0] | (raw[1] << 8) | (raw[2] << 16) | (uint32_t{raw[3]} << 24);
    return IoStatus::ok;
}

const std::string &text(const Json &json, const char *key) {
    return json.at(key).get_ref<const std::string &>();
}

} // namespace

IoStatus send_frame(int fd, const Json &message, std::optional<Clock::time_point> deadline) {
    const auto bytes = message.is_object() ? message.find(kBytesKey) : message.end();
    const bool with_bytes = bytes != message.end() && bytes->is_object();
    std::string frame(4, '\0');
    if (!with_bytes) {
        frame += message.dump(-1, ' ', false, Json::error_handler_t::replace);
    } else {
        // The JSON text of every other member; the raw section after it.
        frame += '{';
        for (const auto &[key, value] : message.items()) {
            if (key == kBytesKey) continue;
            if (frame.size() > 5) frame += ',';
            frame += Json(key).dump() + ':' + value.dump(-1, ' ', false, Json::error_handler_t::replace);
        }
        frame += '}';
    }
    const std::size_t json_size = frame.size() - 4;
    if (with_bytes) {
        put_u32(frame, static_cast<uint32_t>(bytes->size()));
        for (const auto &[key, value] : bytes->items()) {
            if (!value.is_string()) return IoStatus::error;
            const std::string &raw = value.get_ref<const std::string &>();
            if (frame.size() + key.size() + raw.size() > kMaxFrameBytes) return IoStatus::error;
            put_u32(frame, static_cast<uint32_t>(key.size()));
            frame += key;
            put_u32(frame, static_cast<uint32_t>(raw.size()));
            frame += raw;
        }
    }
    if (frame.size() - 4 > kMaxFrameBytes) return IoStatus::error;
    const uint32_t header = static_cast<uint32_t>(json_size) | (with_bytes ? kBytesFlag : 0);
    for (int i = 0; i < 4; ++i)
        frame[static_cast<std::size_t>(i)] = static_cast<char>((header >> (8 * i)) & 0xFF);
    return send_all(fd, frame.data(), frame.size(), deadline); // one send: one wake-up of the peer
}

IoStatus recv_frame(int fd, Json &out, std::optional<Clock::time_point> deadline) {
    uint32_t header = 0;
    if (auto s = recv_u32(fd, header, deadline); s != IoStatus::ok) return s;
    const uint32_t size = header & ~kBytesFlag;
    if (size > kMaxFrameBytes) return IoStatus::error;
    std::string body(size, '\0');
    if (auto s = recv_all(fd, body.data(), body.size(), deadline); s != IoStatus::ok) return s;
    out = Json::parse(body, nullptr, false);
    if (out.is_discarded()) return IoStatus::error;
    if (!(header & kBytesFlag)) return IoStatus::ok;
    if (!out.is_object()) return IoStatus::error;
    // Every length is checked against what the frame may still hold: a
    // garbled (or hostile) count cannot make us allocate more.
    std::size_t budget = kMaxFrameBytes - size;
    uint32_t count = 0;
    if (auto s = recv_u32(fd, count, deadline); s != IoStatus::ok) return s;
    Json section = Json::object();
    for (uint32_t i = 0; i < count; ++i) {
        if (budget < 8) return IoStatus::error; // the two lengths count too
        budget -= 8;
        std::string key, value;
        for (std::string *part : {&key, &value}) {
            uint32_t length = 0;
            if (auto s = recv_u32(fd, length, deadline); s != IoStatus::ok) return s;
            if (length > budget) return IoStatus::error;
            budget -= length;
            part->resize(length);
            if (auto s = recv_all(fd, part->data(), part->size(), deadline); s != IoStatus::ok) return s;
        }
        section[key] = std::move(value);
    }
    out[kBytesKey] = std::move(section);
    return IoStatus::ok;
}

namespace {

uint32_t u32_at(const char *p) {
    const auto *u = reinterpret_cast<const unsigned char *>(p);
    return u[0] | (u[1] << 8) | (u[2] << 16) | (uint32_t{u[3]} << 24);
}

enum class Scan { complete, partial, bad };

// The length of the frame at the start of `data`, if it is all there; the
// same bounds as recv_frame.
Scan scan_frame(std::string_view data, std::size_t &length) {
    if (data.size() < 4) return Scan::partial;
    const uint32_t header = u32_at(data.data());
    const uint32_t size = header & ~kBytesFlag;
    if (size > kMaxFrameBytes) return Scan::bad;
    std::size_t at = 4 + std::size_t{size};
    if (header & kBytesFlag) {
        if (data.size() < at + 4) return Scan::partial;
        std::size_t budget = kMaxFrameBytes - size;
        const uint32_t count = u32_at(data.data() + at);
        at += 4;
        for (uint32_t i = 0; i < count; ++i) {
            if (budget < 8) return Scan::bad;
            budget -= 8;
            for (int part = 0; part < 2; ++part) {
                if (data.size() < at + 4) return Scan::partial;
                const uint32_t n = u32_at(data.data() + at);
                if (n > budget) return Scan::bad;
                budget -= n;
                at += 4 + std::size_t{n};
            }
        }
    }
    if (data.size() < at) return Scan::partial;
    length = at;
    return Scan::complete;
}

// Decodes one complete frame (scan_frame said so).
IoStatus decode_frame(std::string_view frame, Json &out) {
    const uint32_t header = u32_at(frame.data());
    const uint32_t size = header & ~kBytesFlag;
    out = Json::parse(frame.substr(4, size), nullptr, false);
    if (out.is_discarded()) return IoStatus::error;
    if (!(header & kBytesFlag)) return IoStatus::ok;
    if (!out.is_object()) return IoStatus::error;
    std::size_t at = 4 + std::size_t{size};
    const uint32_t count = u32_at(frame.data() + at);
    at += 4;
    Json section = Json::object();
    for (uint32_t i = 0; i < count; ++i) {
        const uint32_t key_size = u32_at(frame.data() + at);
        std::string key(frame.substr(at + 4, key_size));
        at += 4 + key_size;
        const uint32_t value_size = u32_at(frame.data() + at);
        section[key] = std::string(frame.substr(at + 4, value_size));
        at += 4 + value_size;
    }
    out[kBytesKey] = std::move(section);
    return IoStatus::ok;
}

} // namespace

bool FrameReader::buffered() const {
    std::size_t length = 0;
    return scan_frame(std::string_view(buffer_).substr(start_), length) != Scan::partial;
}

IoStatus FrameReader::next(Json &out, std::optional<Clock::time_point> deadline) {
    for (;;) {
        const std::string_view unread = std::string_view(buffer_).substr(start_);
        std::size_t length = 0;
        const Scan scan = scan_frame(unread, length);
        if (scan == Scan::bad) return IoStatus::error;
        if (scan == Scan::complete) {
            const IoStatus status = decode_frame(unread.substr(0, length), out);
            start_ += length;
            if (start_ == buffer_.size()) {
                buffer_.clear();
                start_ = 0;
            }
            return status;
        }
        if (start_ > 0) {
            buffer_.erase(0, start_);
            start_ = 0;
        }
        if (auto ready = wait_ready(fd_, POLLIN, deadline); ready != IoStatus::ok) return ready;
        const std::size_t old_size = buffer_.size();
        buffer_.resize(old_size + (std::size_t{64} << 10));
        const ssize_t n = ::recv(fd_, buffer_.data() + old_size, buffer_.size() - old_size, MSG_DONTWAIT);
        buffer_.resize(old_size + static_cast<std::size_t>(std::max<ssize_t>(n, 0)));
        if (n == 0) return IoStatus::closed;
        if (n < 0) {
            if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK) continue;
            return errno == ECONNRESET ? IoStatus::closed : IoStatus::error;
        }
    }
}

Json to_wire(const Session &s) {
    return full_json(s);
}

Json to_wire(const Message &m) {
    return full_json(m);
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

const std::string &bytes_at(const Json &message, const char *key) {
    static const std::string empty;
    const auto section = message.find(kBytesKey);
    if (section == message.end() || !section->is_object()) return empty;
    const auto it = section->find(key);
    return it != section->end() && it->is_string() ? it->get_ref<const std::string &>() : empty;
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
    m.structured = json.value("structured", Json::object());
    return m;
}

} // namespace swh::isolation
