// The host's asynchronous HTTP client (libcurl's multi interface on one
// thread): what provider plugins reach through host->http_start. Thousands of
// open streams cost memory, not threads; connections to one upstream are
// reused across requests.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <swarmhost/abi.h>
#include <utility>
#include <vector>

namespace swh {

struct HttpRequest {
    std::string method = "GET";
    std::string url;
    std::vector<std::pair<std::string, std::string>> headers;
    std::string body;
    uint32_t timeout_ms = 0;
    uint32_t connect_timeout_ms = 10000;
    uint32_t idle_timeout_ms = 0;
    uint32_t delay_ms = 0;
};

// Called on the client thread, never concurrently for one request:
// on_response once, on_body zero or more times, on_done exactly once.
struct HttpCallbacks {
    std::function<void(int status, const std::vector<std::pair<std::string, std::string>> &headers)>
        on_response;
    std::function<bool(std::string_view chunk)> on_body; // false = abort
    std::function<void(swh_status status, std::string error)> on_done;
};

class HttpClient {
  public:
    HttpClient();
    ~HttpClient(); // cancels what is still open (each gets on_done) and joins
    HttpClient(const HttpClient &) = delete;
    HttpClient &operator=(const HttpClient &) = delete;

    // Thread-safe, returns at once; callbacks never run inside start().
    uint64_t start(HttpRequest request, HttpCallbacks callbacks);
    void cancel(uint64_t id);
    std::size_t open_requests() const;

  private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

} // namespace swh
