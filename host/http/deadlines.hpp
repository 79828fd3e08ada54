// A deadline for each request as a whole, handler included (server.deadlines;
// docs/reliability.md, "Deadlines"). The server's Exchange keeps the time
// (Exchange::set_deadline); this is the part that knows the doors: which
// door a route is, its limits, a client's shorter X-Swarmhost-Timeout-Ms,
// and the observer that turns a send's cancelled ending into the door's own
// timeout error.
#pragma once

#include "http/route_table.hpp"
#include "http/server.hpp"
#include "session/session_manager.hpp"

#include <memory>
#include <string_view>

namespace swh::http {

// The door whose limits a host route has (the names of
// server.deadlines.doors); "" = none: GET /v1/sessions/{id}/events is a
// subscription, not a request with an answer to wait for.
std::string_view deadline_door(RouteId route);
inline constexpr std::string_view kSessionTypeRoutesDoor = "session_type_routes";

// The limits of `door` for `request`: the manifest's, shortened by the
// client's X-Swarmhost-Timeout-Ms (a positive integer of milliseconds; it
// caps request_ms and stream_ms, never lengthens them). Throws ApiError 400
// for a header that is not such a number.
DeadlineLimits deadline_limits(const Request &request, std::string_view door);

// The 504 a request whose deadline passed gets when nothing was sent yet,
// in its door's error shape (OpenAI's on /v1/responses and
// /v1/conversations, Anthropic's on /v1/messages, the native one elsewhere,
// as each door answers its other errors).
ApiError deadline_error(const DeadlinePassed &passed);
void respond_deadline_error(std::string_view door, Exchange &exchange, const ApiError &error);

// Wraps a door's observer of a send or completion: once the exchange's
// deadline has passed, pieces of the reply are no longer relayed (false:
// the send stops) and the send's ending -- the error its cancel caused, or a
// reply that finished anyway -- reaches the door as the 504 timeout error,
// which the door renders as its last stream event. Each piece counts as the
// upstream's activity for the idle limit.
std::shared_ptr<SendObserver> under_deadline(std::shared_ptr<SendObserver> door_observer,
                                             std::shared_ptr<Exchange> exchange);

} // namespace swh::http
