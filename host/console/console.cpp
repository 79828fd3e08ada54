#include "console/console.hpp"

#include <algorithm>

namespace swh::console {

namespace {

// The files are ours and fixed: only they may run, style or be fetched. An
// injected <script> or inline handler in rendered content is refused by the
// browser even if an escaping bug let one through.
constexpr const char *kPolicy =
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'";

std::string asset_path(const std::vector<std::string> &segments) {
    std::string path;
    for (std::size_t i = 1; i < segments.size(); ++i)
        path.append(i > 1 ? "/" : "").append(segments[i]);
    return path.empty() ? "index.html" : path;
}

} // namespace

const Asset *find_asset(std::string_view path) {
    const auto all = assets();
    const auto it =
        std::lower_bound(all.begin(), all.end(), path,
                         [](const Asset &asset, std::string_view key) { return asset.path < key; });
    return it != all.end() && it->path == path ? &*it : nullptr;
}

bool owns_path(const std::vector<std::string> &segments) {
    return !segments.empty() && segments[0] == "console";
}

void serve(const http::Request &request, http::Exchange &exchange) {
    if (request.method != "GET" && request.method != "HEAD")
        return exchange.respond(
            405, "application/json",
            http::error_json("method_not_allowed",
                             "method " + request.method + " is not allowed here (allowed: GET)"),
            {{"Allow", "GET"}});
    const std::string path = asset_path(request.segments);
    const Asset *asset = find_asset(path);
    if (!asset)
        return exchange.respond(404, "application/json",
                                http::error_json("not_found", "the console has no file '" + path + "'"));
    std::vector<std::pair<std::string, std::string>> headers = {
        {"ETag", std::string(asset->etag)},
        // Revalidate every time: a new daemon build serves new files at once.
        {"Cache-Control", "no-cache"},
        {"X-Content-Type-Options", "nosniff"},
        {"Referrer-Policy", "no-referrer"},
        {"Content-Security-Policy", kPolicy}};
    if (!request.if_none_match.empty() && request.if_none_match == asset->etag)
        return exchange.respond(304, std::string(asset->content_type), {}, std::move(headers));
    exchange.respond(200, std::string(asset->content_type), std::string(asset->bytes), std::move(headers));
}

} // namespace swh::console
