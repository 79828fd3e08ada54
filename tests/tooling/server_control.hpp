// A real storage server for a C++ test, run by tests/tooling/swh_servers.py in
// supervisor mode: the supervisor starts the server on a free loopback port
// in a temporary folder, obeys stop/kill/start, and tears everything down
// when this object is destroyed -- or when the test process dies, since the
// supervisor then reads EOF on its stdin. One implementation of the server
// handling (the Python one) serves the C++ and the Python tests.
//
// Needs SWH_SERVERS_PY (path of swh_servers.py) at compile time and python3
// on PATH.
#pragma once

#include <nlohmann/json.hpp>

#include <csignal>
#include <cstdio>
#include <stdexcept>
#include <string>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>
#include <vector>

namespace swh::tooling {

class ServerControl {
  public:
    // kind: "redis", "postgres", "redis-cluster" (three masters; port() is
    // the first node's) or "mongodb" (the CongoDB emulator, installed on
    // first use). Blocks until the server is ready.
    explicit ServerControl(const std::string &kind) {
        int to_child[2], from_child[2];
        if (::pipe(to_child) != 0 || ::pipe(from_child) != 0) throw std::runtime_error("pipe failed");
        pid_ = ::fork();
        if (pid_ < 0) throw std::runtime_error("fork failed");
        if (pid_ == 0) {
            ::dup2(to_child[0], 0);
            ::dup2(from_child[1], 1);
            ::close(to_child[1]);
            ::close(from_child[0]);
            ::execlp("python3", "python3", SWH_SERVERS_PY, "serve", kind.c_str(),
                     static_cast<char *>(nullptr));
            ::_exit(127);
        }
        ::close(to_child[0]);
        ::close(from_child[1]);
        in_ = ::fdopen(to_child[1], "w");
        out_ = ::fdopen(from_child[0], "r");
        info_ = nlohmann::json::parse(read_line(), nullptr, false);
        if (info_.is_discarded() || !info_.contains("port"))
            throw std::runtime_error(kind + " server did not start: " + info_.dump());
    }
    ~ServerControl() {
        if (in_ != nullptr) {
            std::fputs("quit\n", in_);
            std::fclose(in_);
        }
        if (out_ != nullptr) std::fclose(out_);
        if (pid_ > 0) {
            int status = 0;
            ::waitpid(pid_, &status, 0); // the supervisor's own waits are bounded
        }
    }
    ServerControl(const ServerControl &) = delete;
    ServerControl &operator=(const ServerControl &) = delete;

    int port() const { return info_["port"].get<int>(); }
    std::string conninfo() const { return info_.value("conninfo", ""); }
    // Every node's port (a cluster), or just port().
    std::vector<int> ports() const {
        return info_.contains("ports") ? info_["ports"].get<std::vector<int>>() : std::vector<int>{port()};
    }
    std::string uri() const { return info_.value("uri", ""); } // mongodb
    // Acknowledged data survives kill() + start(). False for the MongoDB
    // emulator (memory mode): a test that needs it says SKIP and why.
    bool durable() const { return info_.value("durable", true); }
    // The server features this test server lacks, as the supervisor lists
    // them ("unique indexes (not enforced)", ...); empty for a real server.
    // `feature` is matched as a prefix.
    bool lacks(const std::string &feature) const {
        if (!info_.contains("missing")) return false;
        for (const auto &m : info_["missing"])
            if (m.get<std::string>().rfind(feature, 0) == 0) return true;
        return false;
    }
    std::string server_name() const { return info_.value("server", ""); }

    void stop() { command("stop"); }   // clean shutdown
    void kill() { command("kill"); }   // crash
    void start() { command("start"); } // same port, same data
    // One node of a cluster (index into ports()); start waits until the
    // whole cluster is healthy again.
    void stop_node(size_t i) { command(("stop " + std::to_string(i)).c_str()); }
    void kill_node(size_t i) { command(("kill " + std::to_string(i)).c_str()); }
    void start_node(size_t i) { command(("start " + std::to_string(i)).c_str()); }

  private:
    std::string read_line() {
        std::string line;
        int c;
        while ((c = std::fgetc(out_)) != EOF && c != '\n')
            line.push_back(static_cast<char>(c));
        return line;
    }
    void command(const char *cmd) {
        std::fprintf(in_, "%s\n", cmd);
        std::fflush(in_);
        auto answer = nlohmann::json::parse(read_line(), nullptr, false);
        if (answer.is_discarded() || !answer.value("ok", false))
            throw std::runtime_error(std::string("server ") + cmd + " failed: " + answer.dump());
    }

    pid_t pid_ = -1;
    FILE *in_ = nullptr;
    FILE *out_ = nullptr;
    nlohmann::json info_;
};

} // namespace swh::tooling
