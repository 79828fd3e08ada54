#include "upstream/http_client.hpp"

#include <chrono>
#include <condition_variable>
#include <curl/curl.h>
#include <map>
#include <mutex>
#include <spdlog/spdlog.h>
#include <thread>

namespace swh {

namespace {

using Clock = std::chrono::steady_clock;

// curl_global_init is not thread-safe: do it once, before any client exists.
void global_init_once() {
    static std::once_flag once;
    std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

swh_status status_of(CURLcode code) {
    switch (code) {
    case CURLE_OK:
        return SWH_OK;
    case CURLE_OPERATION_TIMEDOUT:
        return SWH_E_TIMEOUT;
    case CURLE_WRITE_ERROR:
    case CURLE_ABORTED_BY_CALLBACK:
        return SWH_E_CANCELLED;
    case CURLE_COULDNT_CONNECT:
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
    case CURLE_SSL_CONNECT_ERROR:
        return SWH_E_UNAVAILABLE;
    default:
        return SWH_E_UPSTREAM;
    }
}

// One exchange: the easy handle and everything its options point into.
struct Transfer {
    uint64_t id = 0;
    HttpRequest request;
    HttpCallbacks callbacks;
    Clock::time_point due;
    CURL *easy = nullptr;
    curl_slist *header_list = nullptr;
    std::vector<std::pair<std::string, std::string>> response_headers;
    bool response_reported = false;
    bool aborted_by_plugin = false;
    char error_buffer[CURL_ERROR_SIZE] = {0};

    ~Transfer() {
        if (easy) curl_easy_cleanup(easy);
        if (header_list) curl_slist_free_all(header_list);
    }

    void report_response() {
        if (response_reported) return;
        response_reported = true;
        long status = 0;
        curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);
        if (callbacks.on_response) callbacks.on_response(static_cast<int>(status), response_headers);
    }

    static size_t on_header(char *data, size_t size, size_t count, void *user) {
        auto &t = *static_cast<Transfer *>(user);
        std::string_view line(data, size * count);
        if (line.starts_with("HTTP/")) {
            t.response_headers.clear(); // a new response (after 100-continue or a redirect)
        } else if (auto colon = line.find(':'); colon != std::string_view::npos) {
            auto value = line.substr(colon + 1);
            while (!value.empty() && (value.front() == ' ' || value.front() == '\t'))
                value.remove_prefix(1);
            while (!value.empty() && (value.back() == '\r' || value.back() == '\n'))
                value.remove_suffix(1);
            t.response_headers.emplace_back(std::string(line.substr(0, colon)), std::string(value));
        }
        return size * count;
    }

    static size_t on_write(char *data, size_t size, size_t count, void *user) {
        auto &t = *static_cast<Transfer *>(user);
        t.report_response();
        try {
            if (t.callbacks.on_body && !t.callbacks.on_body(std::string_view(data, size * count))) {
                t.aborted_by_plugin = true;
                return 0; // makes curl stop with CURLE_WRITE_ERROR
            }
        } catch (const std::exception &e) {
            spdlog::error("http body handler failed: {}", e.what());
            t.aborted_by_plugin = true;
            return 0;
        }
        return size * count;
    }

    void configure() {
        easy = curl_easy_init();
        if (!easy) throw std::runtime_error("curl_easy_init failed");
        curl_easy_setopt(easy, CURLOPT_URL, request.url.c_str());
        curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, error_buffer);
        curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "http,https");
        if (request.method == "POST" || !request.body.empty()) {
            curl_easy_setopt(easy, CURLOPT_POSTFIELDS, request.body.data());
            curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(request.body.size()));
        }
        if (request.method != "GET" && request.method != "POST")
            curl_easy_setopt(easy, CURLOPT_CUSTOMREQUEST, request.method.c_str());
        for (const auto &[name, value] : request.headers)
            header_list = curl_slist_append(header_list, (name + ": " + value).c_str());
        header_list = curl_slist_append(header_list, "Expect:"); // no 100-continue round trip
        curl_easy_setopt(easy, CURLOPT_HTTPHEADER, header_list);
        curl_easy_setopt(easy, CURLOPT_HEADERFUNCTION, &Transfer::on_header);
        curl_easy_setopt(easy, CURLOPT_HEADERDATA, this);
        curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, &Transfer::on_write);
        curl_easy_setopt(easy, CURLOPT_WRITEDATA, this);
        if (request.timeout_ms)
            curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, static_cast<long>(request.timeout_ms));
        curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS,
                         static_cast<long>(request.connect_timeout_ms ? request.connect_timeout_ms : 10000));
        if (request.idle_timeout_ms) {
            // "Fewer than 1 byte/s for N seconds" is curl's idle timeout.
            curl_easy_setopt(easy, CURLOPT_LOW_SPEED_LIMIT, 1L);
            curl_easy_setopt(easy, CURLOPT_LOW_SPEED_TIME,
                             std::max(1L, static_cast<long>(request.idle_timeout_ms / 1000)));
        }
        curl_easy_setopt(easy, CURLOPT_PRIVATE, this);
    }

    void finish(swh_status status, std::string error) {
        if (status == SWH_OK) report_response();
        if (aborted_by_plugin) status = SWH_E_CANCELLED;
        try {
            if (callbacks.on_done) callbacks.on_done(status, std::move(error));
        } catch (const std::exception &e) {
            spdlog::error("http done handler failed: {}", e.what());
        }
    }
};

} // namespace

struct HttpClient::Impl {
    CURLM *multi = nullptr;
    mutable std::mutex mutex;
    uint64_t next_id = 1;
    bool stopping = false;
    std::vector<std::unique_ptr<Transfer>> incoming;       // started, not yet seen by the loop
    std::vector<uint64_t> cancels;                         // ids to cancel
    std::map<uint64_t, std::unique_ptr<Transfer>> delayed; // waiting for their delay
    std::map<uint64_t, std::unique_ptr<Transfer>> active;  // in the multi handle
    std::size_t open = 0;
    std::thread thread;

    Impl() {
        global_init_once();
        multi = curl_multi_init();
        if (!multi) throw std::runtime_error("curl_multi_init failed");
        thread = std::thread([this] { run(); });
    }
    ~Impl() {
        {
            std::lock_guard lock(mutex);
            stopping = true;
        }
        curl_multi_wakeup(multi);
        thread.join();
        curl_multi_cleanup(multi);
    }

    void activate(std::unique_ptr<Transfer> t) {
        try {
            t->configure();
        } catch (const std::exception &e) {
            close(std::move(t), SWH_E_INTERNAL, e.what());
            return;
        }
        curl_multi_add_handle(multi, t->easy);
        const uint64_t id = t->id;
        active.emplace(id, std::move(t));
    }

    void close(std::unique_ptr<Transfer> t, swh_status status, std::string error) {
        {
            // Counted as closed before on_done runs, so whoever on_done wakes
            // sees a consistent count.
            std::lock_guard lock(mutex);
            --open;
        }
        t->finish(status, std::move(error));
    }

    // Moves work handed over by other threads into the loop's own state.
    bool take_work(std::vector<std::unique_ptr<Transfer>> &starts, std::vector<uint64_t> &cancel_ids) {
        std::lock_guard lock(mutex);
        starts.swap(incoming);
        cancel_ids.swap(cancels);
        return stopping;
    }

    void cancel_one(uint64_t id) {
        if (auto it = delayed.find(id); it != delayed.end()) {
            auto t = std::move(it->second);
            delayed.erase(it);
            close(std::move(t), SWH_E_CANCELLED, "cancelled");
        } else if (auto it2 = active.find(id); it2 != active.end()) {
            auto t = std::move(it2->second);
            active.erase(it2);
            curl_multi_remove_handle(multi, t->easy);
            close(std::move(t), SWH_E_CANCELLED, "cancelled");
        }
    }

    void collect_finished() {
        int pending = 0;
        while (CURLMsg *msg = curl_multi_info_read(multi, &pending)) {
            if (msg->msg != CURLMSG_DONE) continue;
            Transfer *raw = nullptr;
            curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &raw);
            const CURLcode code = msg->data.result;
            curl_multi_remove_handle(multi, msg->easy_handle);
            auto it = active.find(raw->id);
            auto t = std::move(it->second);
            active.erase(it);
            std::string error =
                code == CURLE_OK ? "" : (t->error_buffer[0] ? t->error_buffer : curl_easy_strerror(code));
            close(std::move(t), status_of(code), std::move(error));
        }
    }

    int poll_timeout_ms() const {
        int timeout = 1000;
        const auto now = Clock::now();
        for (const auto &[id, t] : delayed) {
            auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(t->due - now).count();
            timeout = std::min<int>(timeout, std::max<int>(0, static_cast<int>(wait)));
        }
        return timeout;
    }

    void run() {
        std::vector<std::unique_ptr<Transfer>> starts;
        std::vector<uint64_t> cancel_ids;
        while (true) {
            const bool stop = take_work(starts, cancel_ids);
            for (auto &t : starts) {
                const uint64_t id = t->id;
                if (t->request.delay_ms > 0)
                    delayed.emplace(id, std::move(t));
                else
                    activate(std::move(t));
            }
            starts.clear();
            for (uint64_t id : cancel_ids)
                cancel_one(id);
            cancel_ids.clear();
            if (stop) break;
            const auto now = Clock::now();
            for (auto it = delayed.begin(); it != delayed.end();) {
                if (it->second->due <= now) {
                    auto t = std::move(it->second);
                    it = delayed.erase(it);
                    activate(std::move(t));
                } else {
                    ++it;
                }
            }
            int running = 0;
            curl_multi_perform(multi, &running);
            collect_finished();
            curl_multi_poll(multi, nullptr, 0, poll_timeout_ms(), nullptr);
        }
        // Shutting down: everything still open is cancelled, each told so.
        std::vector<uint64_t> open_ids;
        for (const auto &[id, t] : delayed)
            open_ids.push_back(id);
        for (const auto &[id, t] : active)
            open_ids.push_back(id);
        for (uint64_t id : open_ids)
            cancel_one(id);
    }
};

HttpClient::HttpClient() : impl_(std::make_unique<Impl>()) {}
HttpClient::~HttpClient() = default;

uint64_t HttpClient::start(HttpRequest request, HttpCallbacks callbacks) {
    auto t = std::make_unique<Transfer>();
    t->request = std::move(request);
    t->callbacks = std::move(callbacks);
    t->due = Clock::now() + std::chrono::milliseconds(t->request.delay_ms);
    uint64_t id;
    {
        std::lock_guard lock(impl_->mutex);
        if (impl_->stopping) throw std::runtime_error("http client is shutting down");
        id = t->id = impl_->next_id++;
        ++impl_->open;
        impl_->incoming.push_back(std::move(t));
    }
    curl_multi_wakeup(impl_->multi);
    return id;
}

void HttpClient::cancel(uint64_t id) {
    {
        std::lock_guard lock(impl_->mutex);
        impl_->cancels.push_back(id);
    }
    curl_multi_wakeup(impl_->multi);
}

std::size_t HttpClient::open_requests() const {
    std::lock_guard lock(impl_->mutex);
    return impl_->open;
}

} // namespace swh
