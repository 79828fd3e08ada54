#include "util/arrival_stamps.hpp"

#include <boost/asio/error.hpp>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <linux/net_tstamp.h>
#include <sys/socket.h>
#include <sys/uio.h>

namespace swh {

void stamp_arrivals(int fd) {
    const int flags = SOF_TIMESTAMPING_RX_SOFTWARE | SOF_TIMESTAMPING_SOFTWARE;
    (void)::setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPING, &flags, sizeof flags);
}

std::size_t receive_stamped(int fd, void *data, std::size_t size, int64_t &arrived_us,
                            boost::system::error_code &error) {
    iovec part{data, size};
    alignas(cmsghdr) char control[CMSG_SPACE(3 * sizeof(timespec))];
    msghdr message{};
    message.msg_iov = &part;
    message.msg_iovlen = 1;
    message.msg_control = control;
    message.msg_controllen = sizeof control;
    const ssize_t got = ::recvmsg(fd, &message, MSG_DONTWAIT);
    if (got < 0) {
        error = errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR
                    ? boost::system::error_code(boost::asio::error::would_block)
                    : boost::system::error_code(errno, boost::system::system_category());
        return 0;
    }
    if (got == 0) {
        error = boost::asio::error::eof;
        return 0;
    }
    for (cmsghdr *header = CMSG_FIRSTHDR(&message); header != nullptr;
         header = CMSG_NXTHDR(&message, header)) {
        if (header->cmsg_level != SOL_SOCKET || header->cmsg_type != SCM_TIMESTAMPING) continue;
        timespec stamps[3];
        std::memcpy(stamps, CMSG_DATA(header), sizeof stamps);
        if (stamps[0].tv_sec != 0)
            arrived_us = int64_t{stamps[0].tv_sec} * 1000000 + stamps[0].tv_nsec / 1000;
    }
    return static_cast<std::size_t>(got);
}

} // namespace swh
