// Errors inside the host are exceptions carrying an API error kind; the HTTP
// layer maps the kind to a status and the JSON error body.
#pragma once

#include <stdexcept>
#include <string>
#include <swarmhost/abi.h>

namespace swh {

enum class ErrorKind {
    InvalidJson,      // 400
    InvalidRequest,   // 400
    Unauthorized,     // 401
    Forbidden,        // 403
    NotFound,         // 404
    MethodNotAllowed, // 405
    Conflict,         // 409
    PayloadTooLarge,  // 413
    Rejected,         // 422
    RateLimited,      // 429
    BudgetExceeded,   // 429 budget_exceeded (docs/budgets.md: why 429)
    Upstream,         // 502
    Unavailable,      // 503
    Timeout,          // 504
    Internal,         // 500
};

class ApiError : public std::runtime_error {
  public:
    ApiError(ErrorKind kind, const std::string &message, int retry_after_seconds = -1,
             std::string details_json = {})
        : std::runtime_error(message), kind_(kind), retry_after_seconds_(retry_after_seconds),
          details_json_(std::move(details_json)) {}
    ErrorKind kind() const { return kind_; }
    // Members every door adds to its error object (a JSON object's text, ""
    // = none): what a budget_exceeded error says about the budget.
    const std::string &details_json() const { return details_json_; }
    // For 429/503: when the client may try again (-1 = not known).
    int retry_after_seconds() const { return retry_after_seconds_; }

  private:
    ErrorKind kind_;
    int retry_after_seconds_;
    std::string details_json_;
};

// Providers report an upstream's Retry-After as "retry_after=N" in their
// error text (see plugins/provider_openai); -1 when absent.
int retry_after_from(const std::string &error_text);

int http_status(ErrorKind kind);
const char *error_code(ErrorKind kind); // "invalid_request", ...

// How a plugin status surfaces to the client: a storage that is down is 503,
// a provider that failed is 502, and so on.
ErrorKind kind_for_storage_status(swh_status status);
ErrorKind kind_for_provider_status(swh_status status);
// A session type plugin refusing or failing (docs/session-types.md).
ErrorKind kind_for_session_type_status(swh_status status);

} // namespace swh
