#include "http/route_table.hpp"

#include "util/text.hpp"

namespace swh::http {

namespace {

bool is_placeholder(std::string_view segment) {
    return segment.size() >= 2 && segment.front() == '{' && segment.back() == '}';
}

// A table path ("v1/sessions/{id}") split at its slashes once, on first use:
// matching a request then compares segment counts first and whole segments
// after, instead of splitting 37 patterns per request (issue 17).
using SplitPath = std::vector<std::string_view>;

std::vector<SplitPath> split_table() {
    std::vector<SplitPath> table;
    table.reserve(kHostRoutes.size());
    for (const HostRoute &route : kHostRoutes)
        table.push_back(split_pieces(route.path, '/'));
    return table;
}

// Whether the split table path matches `segments`.
bool path_matches(const SplitPath &pattern, const std::vector<std::string> &segments) {
    if (pattern.size() != segments.size()) return false;
    for (std::size_t i = 0; i < segments.size(); ++i)
        if (!is_placeholder(pattern[i]) && pattern[i] != segments[i]) return false;
    return true;
}

} // namespace

RouteMatch match_host_route(std::string_view method, const std::vector<std::string> &segments) {
    static const std::vector<SplitPath> split = split_table();
    RouteMatch match;
    for (std::size_t i = 0; i < kHostRoutes.size(); ++i) {
        const HostRoute &route = kHostRoutes[i];
        if (!path_matches(split[i], segments)) continue;
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
