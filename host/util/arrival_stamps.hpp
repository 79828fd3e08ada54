// Reads that say when the kernel received their bytes (issue 17, target 7):
// the daemon's own overhead (X-Swarmhost-Overhead-Ms) is counted from when a
// request arrived, not from when a loop thread woke up and read it, and the
// upstream's share ends when its answer arrived.
#pragma once

#include <boost/system/error_code.hpp>
#include <cstddef>
#include <cstdint>

namespace swh {

// Asks the kernel to stamp what it receives on `fd` (software time stamps,
// SO_TIMESTAMPING). Best effort: without it receive_stamped leaves the
// arrival time as it was, and the read time stands in.
void stamp_arrivals(int fd);

// One non-blocking recvmsg of up to `size` bytes into `data`. Sets
// `arrived_us` (now_us's clock, CLOCK_REALTIME) to the kernel's receive time
// of the bytes returned, when the kernel gives one. `error`: would_block when
// nothing was there (an interrupted read counts as that: the wait it leads to
// re-arms the socket, which reports bytes already there), eof when the peer
// closed its side, else the system error. Returns the bytes read.
std::size_t receive_stamped(int fd, void *data, std::size_t size, int64_t &arrived_us,
                            boost::system::error_code &error);

} // namespace swh
