// The operator's console (docs/console.md): plain HTML, CSS and JavaScript
// modules under host/console/assets/, compiled into the binary by
// embed_assets.cmake, served at /console. Compiled in rather than installed
// beside the plugins so a daemon and its console can never disagree on the
// API, and a copied binary works offline with nothing else to deploy.
#pragma once

#include "http/server.hpp"

#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace swh::console {

struct Asset {
    std::string_view path;         // "index.html", "js/app.js"
    std::string_view content_type; // "text/html; charset=utf-8"
    std::string_view etag;         // "\"<sha256 prefix>\"", quotes included
    std::string_view bytes;
};

// Every embedded file, sorted by path (the generated console_assets.cpp).
std::span<const Asset> assets();

// nullptr when there is no such file.
const Asset *find_asset(std::string_view path);

// /console and everything under it.
bool owns_path(const std::vector<std::string> &segments);

// Answers GET and HEAD of an asset (index.html for /console itself), 304 to
// a matching If-None-Match, 404 / 405 as JSON errors otherwise.
void serve(const http::Request &request, http::Exchange &exchange);

} // namespace swh::console
