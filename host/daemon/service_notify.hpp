// Readiness that a service manager can see: systemd's notify protocol
// (sd_notify(3)) — one datagram such as "READY=1" sent to the AF_UNIX socket
// named by $NOTIFY_SOCKET. Written here in a few lines instead of linking
// libsystemd: the protocol is a stable, documented wire format, and the
// daemon then needs no extra library (nor a package dependency) to be run
// with or without systemd. Without $NOTIFY_SOCKET every call does nothing.
#pragma once

#include <string>
#include <string_view>

namespace swh::daemon {

// Sends `state` ("READY=1", "RELOADING=1\nMONOTONIC_USEC=…", "STOPPING=1", …)
// to $NOTIFY_SOCKET. Returns false only when the variable is set and the
// send failed (the caller logs it; serving goes on either way).
bool notify_service_manager(std::string_view state);

// "RELOADING=1\nMONOTONIC_USEC=<CLOCK_MONOTONIC now>": systemd 253's
// Type=notify-reload requires the timestamp; older versions ignore it.
std::string reloading_state();

} // namespace swh::daemon
