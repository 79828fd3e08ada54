// Runs tools/fake_upstream/server.py as a child process for one test and
// reads what it recorded (GET /__requests) through the host's HTTP client.
#pragma once

#include "model/model.hpp"
#include "upstream/http_client.hpp"

#include <chrono>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <future>
#include <stdexcept>
#include <string>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

namespace swh::test {

class FakeUpstream {
  public:
    FakeUpstream() {
        port_file_ = std::filesystem::temp_directory_path() /
                     ("swh-fake-port-" + std::to_string(::getpid()) + "-" + std::to_string(counter()++));
        std::filesystem::remove(port_file_);
        pid_ = ::fork();
        if (pid_ < 0) throw std::runtime_error("fork failed");
        if (pid_ == 0) {
            std::string pf = port_file_.string();
            ::execl(SWH_TEST_PYTHON, SWH_TEST_PYTHON, SWH_TEST_FAKE_UPSTREAM, "--port", "0", "--port-file",
                    pf.c_str(), static_cast<char *>(nullptr));
            ::_exit(127);
        }
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(15);
        while (std::chrono::steady_clock::now() < deadline) {
            std::ifstream in(port_file_);
            if (in >> port_ && port_ > 0) break;
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
        }
        if (port_ <= 0) {
            stop();
            throw std::runtime_error(
                "the fake upstream did not start (python3 tools/fake_upstream/server.py)");
        }
    }
    ~FakeUpstream() { stop(); }
    FakeUpstream(const FakeUpstream &) = delete;
    FakeUpstream &operator=(const FakeUpstream &) = delete;

    std::string base() const { return "http://127.0.0.1:" + std::to_string(port_); }

    // The vendor requests recorded so far (control requests excluded).
    Json requests() {
        Json all = Json::parse(call("GET", "/__requests"));
        Json out = Json::array();
        for (auto &r : all["requests"])
            if (r["method"] == "POST") out.push_back(r);
        return out;
    }
    void reset() { call("DELETE", "/__requests"); }

  private:
    static int &counter() {
        static int n = 0;
        return n;
    }
    std::string call(const std::string &method, const std::string &path) {
        HttpRequest req;
        req.method = method;
        req.url = base() + path;
        req.timeout_ms = 10000;
        auto body = std::make_shared<std::string>();
        auto done = std::make_shared<std::promise<swh_status>>();
        HttpCallbacks cb;
        cb.on_response = [](int, const auto &) {};
        cb.on_body = [body](std::string_view chunk) {
            body->append(chunk);
            return true;
        };
        cb.on_done = [done](swh_status status, std::string) { done->set_value(status); };
        auto result = done->get_future();
        client_.start(std::move(req), std::move(cb));
        if (result.get() != SWH_OK) throw std::runtime_error("fake upstream control request failed: " + path);
        return *body;
    }
    void stop() {
        if (pid_ > 0) {
            ::kill(pid_, SIGTERM);
            int status = 0;
            ::waitpid(pid_, &status, 0);
            pid_ = -1;
        }
        std::filesystem::remove(port_file_);
    }

    std::filesystem::path port_file_;
    pid_t pid_ = -1;
    int port_ = 0;
    HttpClient client_;
};

} // namespace swh::test
