#include "model/errors.hpp"

namespace swh {

int http_status(ErrorKind kind) {
    switch (kind) {
    case ErrorKind::InvalidJson:
    case ErrorKind::InvalidRequest:
        return 400;
    case ErrorKind::Unauthorized:
        return 401;
    case ErrorKind::Forbidden:
        return 403;
    case ErrorKind::NotFound:
        return 404;
    case ErrorKind::MethodNotAllowed:
        return 405;
    case ErrorKind::Conflict:
        return 409;
    case ErrorKind::PayloadTooLarge:
        return 413;
    case ErrorKind::Rejected:
        return 422;
    case ErrorKind::RateLimited:
    case ErrorKind::BudgetExceeded:
        return 429;
    case ErrorKind::Upstream:
        return 502;
    case ErrorKind::Unavailable:
        return 503;
    case ErrorKind::Timeout:
        return 504;
    case ErrorKind::Internal:
        return 500;
    }
    return 500;
}

const char *error_code(ErrorKind kind) {
    switch (kind) {
    case ErrorKind::InvalidJson:
        return "invalid_json";
    case ErrorKind::InvalidRequest:
        return "invalid_request";
    case ErrorKind::Unauthorized:
        return "unauthorized";
    case ErrorKind::Forbidden:
        return "forbidden";
    case ErrorKind::NotFound:
        return "not_found";
    case ErrorKind::MethodNotAllowed:
        return "method_not_allowed";
    case ErrorKind::Conflict:
        return "conflict";
    case ErrorKind::PayloadTooLarge:
        return "payload_too_large";
    case ErrorKind::Rejected:
        return "rejected";
    case ErrorKind::RateLimited:
        return "rate_limited";
    case ErrorKind::BudgetExceeded:
        return "budget_exceeded";
    case ErrorKind::Upstream:
        return "upstream_error";
    case ErrorKind::Unavailable:
        return "unavailable";
    case ErrorKind::Timeout:
        return "upstream_timeout";
    case ErrorKind::Internal:
        return "internal";
    }
    return "internal";
}

ErrorKind kind_for_storage_status(swh_status status) {
    switch (status) {
    case SWH_E_NOT_FOUND:
        return ErrorKind::NotFound;
    case SWH_E_CONFLICT:
        return ErrorKind::Conflict;
    case SWH_E_INVALID:
        return ErrorKind::InvalidRequest;
    case SWH_E_UNAVAILABLE:
    case SWH_E_TIMEOUT:
        return ErrorKind::Unavailable;
    default:
        return ErrorKind::Internal;
    }
}

ErrorKind kind_for_provider_status(swh_status status) {
    switch (status) {
    case SWH_E_TIMEOUT:
        return ErrorKind::Timeout;
    case SWH_E_UNAVAILABLE:
        return ErrorKind::Unavailable;
    case SWH_E_RATE_LIMITED:
        return ErrorKind::RateLimited;
    case SWH_E_INVALID:
        return ErrorKind::InvalidRequest;
    case SWH_E_REJECTED:
        return ErrorKind::Rejected;
    default:
        return ErrorKind::Upstream;
    }
}

ErrorKind kind_for_session_type_status(swh_status status) {
    switch (status) {
    case SWH_E_INVALID:
        return ErrorKind::InvalidRequest;
    case SWH_E_PERMISSION:
        return ErrorKind::Forbidden;
    case SWH_E_NOT_FOUND:
        return ErrorKind::NotFound;
    case SWH_E_CONFLICT:
        return ErrorKind::Conflict;
    case SWH_E_REJECTED:
        return ErrorKind::Rejected;
    case SWH_E_UNAVAILABLE:
    case SWH_E_TIMEOUT:
        return ErrorKind::Unavailable;
    case SWH_E_RATE_LIMITED:
        return ErrorKind::RateLimited;
    default:
        return ErrorKind::Internal;
    }
}

int retry_after_from(const std::string &error_text) {
    const std::string marker = "retry_after=";
    const auto at = error_text.rfind(marker);
    if (at == std::string::npos) return -1;
    int seconds = 0;
    std::size_t i = at + marker.size();
    if (i >= error_text.size() || error_text[i] < '0' || error_text[i] > '9') return -1;
    for (; i < error_text.size() && error_text[i] >= '0' && error_text[i] <= '9' && seconds < 1'000'000; ++i)
        seconds = seconds * 10 + (error_text[i] - '0');
    return seconds;
}

} // namespace swh
