#include "http/route_table.hpp"

namespace swh::http {

namespace {

bool is_placeholder(std::string_view segment) {
    return segment.size() >= 2 && segment.front() == '{' && segment.back() == '}';
}

// Whether the table path `pattern` ("v1/sessions/{id}") matches `segments`.
bool path_matches(std::string_view pattern, const std::vector<std::string> &segments) {
    std::size_t index = 0;
    std::size_t start = 0;
    while (start <= pattern.size()) {
        std::size_t end = pattern.find('/', start);
        if (end == std::string_view::npos) end = pattern.size();
        const std::string_view piece = pattern.substr(start, end - start);
        if (index >= segments.size()) return false;
        if (!is_placeholder(piece) && piece != segments[index]) return false;
        ++index;
        start = end + 1;
    }
    return index == segments.size();
}

} // namespace

RouteMatch match_host_route(std::string_view method, const std::vector<std::string> &segments) {
    RouteMatch match;
    for (const HostRoute &route : kHostRoutes) {
        if (!path_matches(route.path, segments)) continue;
        if (route.method == method) {
            match.route = &route;
            return match;
        }
        if (match.allowed.find(route.method) == std::string::npos)
            match.allowed.append(match.allowed.empty() ? "" : ", ").append(route.method);
    }
    return match;
}

std::string_view scope_name(SessionScope scope) {
    switch (scope) {
    case SessionScope::Path:
        return "path";
    case SessionScope::Header:
        return "header:X-Swarmhost-Session";
    case SessionScope::Response:
        return "object:response";
    case SessionScope::Conversation:
        return "object:conversation";
    case SessionScope::Body:
        return "body:previous_response_id|conversation";
    case SessionScope::None:
        break;
    }
    return "none";
}

std::string_view caller_name(Caller caller) {
    switch (caller) {
    case Caller::Admin:
        return "admin";
    case Caller::User:
        return "user";
    case Caller::Anyone:
        break;
    }
    return "anyone";
}

} // namespace swh::http
