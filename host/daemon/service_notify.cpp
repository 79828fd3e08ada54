#include "daemon/service_notify.hpp"

#include <cerrno>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

namespace swh::daemon {

namespace {

// Closes the datagram socket on every return path.
class Socket {
  public:
    Socket() : fd_(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0)) {}
    Socket(const Socket &) = delete;
    Socket &operator=(const Socket &) = delete;
    ~Socket() {
        if (fd_ >= 0) ::close(fd_);
    }
    int fd() const { return fd_; }

  private:
    int fd_;
};

} // namespace

bool notify_service_manager(std::string_view state) {
    const char *path = std::getenv("NOTIFY_SOCKET");
    if (path == nullptr || path[0] == '\0') return true;
    const std::size_t length = std::strlen(path);
    sockaddr_un address{};
    // "/run/systemd/notify" or "@name" (the abstract namespace: a leading NUL).
    if ((path[0] != '/' && path[0] != '@') || length >= sizeof(address.sun_path)) return false;
    address.sun_family = AF_UNIX;
    std::memcpy(address.sun_path, path, length);
    if (path[0] == '@') address.sun_path[0] = '\0';
    const auto address_size = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + length);

    Socket socket;
    if (socket.fd() < 0) return false;
    ssize_t sent = -1;
    do {
        sent = ::sendto(socket.fd(), state.data(), state.size(), MSG_NOSIGNAL,
                        reinterpret_cast<const sockaddr *>(&address), address_size);
    } while (sent < 0 && errno == EINTR);
    return sent == static_cast<ssize_t>(state.size());
}

std::string reloading_state() {
    timespec now{};
    ::clock_gettime(CLOCK_MONOTONIC, &now);
    const auto usec = static_cast<unsigned long long>(now.tv_sec) * 1000000ULL +
                      static_cast<unsigned long long>(now.tv_nsec) / 1000ULL;
    return "RELOADING=1\nMONOTONIC_USEC=" + std::to_string(usec);
}

} // namespace swh::daemon
