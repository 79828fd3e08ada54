// The printable names of the ABI's codes, for logs, errors and metrics
// (header-only, part of the optional C++ layer of the SDK; no ABI). One place
// for them, so the host and every plugin spell a status or an event the same.
#pragma once

#include <swarmhost/swarmhost.h>

#include <cstdint>

namespace swh::cpp {

// "ok", "invalid", ... as the SWH_E_* comments name them; "out-of-range" for
// a value no ABI version defines.
constexpr const char *status_name(swh_status status) noexcept {
    switch (status) {
    case SWH_OK:
        return "ok";
    case SWH_E_INVALID:
        return "invalid";
    case SWH_E_NOT_FOUND:
        return "not_found";
    case SWH_E_CONFLICT:
        return "conflict";
    case SWH_E_UNAVAILABLE:
        return "unavailable";
    case SWH_E_TIMEOUT:
        return "timeout";
    case SWH_E_UNSUPPORTED:
        return "unsupported";
    case SWH_E_REJECTED:
        return "rejected";
    case SWH_E_INTERNAL:
        return "internal";
    case SWH_E_CANCELLED:
        return "cancelled";
    case SWH_E_RATE_LIMITED:
        return "rate_limited";
    case SWH_E_UPSTREAM:
        return "upstream";
    case SWH_E_PERMISSION:
        return "permission";
    default:
        return "out-of-range";
    }
}

// "session_created", ... for one SWH_EVENT_* bit; "unknown" otherwise.
constexpr const char *event_name(uint32_t type) noexcept {
    switch (type) {
    case SWH_EVENT_SESSION_CREATED:
        return "session_created";
    case SWH_EVENT_MESSAGE_SENT:
        return "message_sent";
    case SWH_EVENT_SESSION_ARCHIVED:
        return "session_archived";
    case SWH_EVENT_SESSION_DELETED:
        return "session_deleted";
    case SWH_EVENT_PROVIDER_ERROR:
        return "provider_error";
    case SWH_EVENT_QUEUE_IDLE:
        return "queue_idle";
    default:
        return "unknown";
    }
}

} // namespace swh::cpp
