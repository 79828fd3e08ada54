// A session type's routes, METHOD /v1/sessions/{id}/<path>: the host checks
// tenancy, finds the type's route, and serves it under the session's lock
// (docs/session-types.md).
#include "session/session_manager.hpp"

#include <spdlog/spdlog.h>

namespace swh {

namespace {
// The index of the route matching `segments`, filling `params`; the
// methods of routes whose path matches go to `allowed` when none matches both.
std::optional<std::size_t> match_route(const std::vector<loader::RouteSpec> &routes,
                                       const std::string &method, const std::vector<std::string> &segments,
                                       std::vector<std::string> &params, std::string &allowed) {
    for (std::size_t i = 0; i < routes.size(); ++i) {
        const auto &route = routes[i];
        if (route.segments.size() != segments.size()) continue;
        std::vector<std::string> values;
        bool same = true;
        for (std::size_t k = 0; k < segments.size() && same; ++k) {
            const std::string &pattern = route.segments[k];
            if (pattern.size() >= 2 && pattern.front() == '{' && pattern.back() == '}')
                values.push_back(segments[k]);
            else
                same = pattern == segments[k];
        }
        if (!same) continue;
        if (route.method == method) {
            params = std::move(values);
            return i;
        }
        if (allowed.find(route.method) == std::string::npos)
            allowed += (allowed.empty() ? "" : ", ") + route.method;
    }
    return std::nullopt;
}

} // namespace

SessionRouteAnswer SessionManager::handle_route(SessionRouteRequest request) {
    const std::shared_ptr<Pipeline> pin = current();
    Pipeline &pipeline_ = *pin;
    std::lock_guard lock(locks_.of(request.session_id));
    Session session = get_session(request.session_id);
    authorize(session, tenancy_only(request.access), SWH_ACTION_READ); // the type checks its own routes
    std::string path;
    for (const auto &segment : request.segments)
        path += (path.empty() ? "" : "/") + segment;
    const std::string where = request.method + " /v1/sessions/" + request.session_id + "/" + path;
    loader::SessionTypeInstance *type = session_type_of(pipeline_, session);
    if (!type) throw ApiError(ErrorKind::NotFound, "no route for " + where + " (a session without a type)");
    loader::RouteCall call;
    std::string allowed;
    const auto index = match_route(type->routes(), request.method, request.segments, call.params, allowed);
    if (!index) {
        if (!allowed.empty())
            throw RouteMethodNotAllowed(
                "method " + request.method + " is not allowed here (allowed: " + allowed + ")", allowed);
        throw ApiError(ErrorKind::NotFound,
                       "no route for " + where + " (session type '" + session.type + "')");
    }
    call.route_index = *index;
    call.caller_user_id = request.access.user;
    call.query = std::move(request.query);
    call.content_type = std::move(request.content_type);
    call.body = std::move(request.body); // an upload may be tens of MiB: moved, not copied
    call.path = std::move(path);
    loader::RouteAnswer answer;
    try {
        answer = type->handle_route(session, call);
    } catch (const loader::PluginError &e) {
        if (e.status() == SWH_E_INTERNAL) spdlog::error("{}: {}", where, e.what());
        throw ApiError(kind_for_session_type_status(e.status()), e.what());
    }
    if (answer.metadata_patch) {
        session.metadata.update(*answer.metadata_patch);
        storage_call(gate_, "update_session",
                     [pin, session] { pin->storage->update_session(session, SWH_SESSION_FIELD_METADATA); });
    }
    for (auto &[event_type, data] : answer.events) {
        SessionEvent event;
        event.session_id = session.id;
        event.type = event_type;
        event.data = std::move(data);
        events_.publish(std::move(event));
    }
    return {answer.status, std::move(answer.content_type), std::move(answer.body)};
}

} // namespace swh
