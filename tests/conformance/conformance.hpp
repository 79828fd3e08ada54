// What every conformance test file shares: the store under test (from
// SWH_CONFORMANCE_STORE), its server and config, and row builders. One
// Backend per process (backend() is an inline function's static).
#pragma once

#include "loader/instances.hpp"
#include "server_control.hpp"
#include "util/clock.hpp"
#include "util/ids.hpp"

#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

namespace swh::conformance {

using loader::PluginError;
using loader::StorageInstance;

inline std::string store_kind() {
    const char *env = std::getenv("SWH_CONFORMANCE_STORE");
    return env && *env ? env : "sqlite";
}

// The server (if any) and the config of the store under test, one per process.
// "redis-cluster" is the redis plugin (kind "redis") on a three-master Redis
// Cluster.
struct Backend {
    bool cluster = store_kind() == "redis-cluster";
    std::string kind = cluster ? "redis" : store_kind();
    std::unique_ptr<tooling::ServerControl> server;
    std::filesystem::path dir = std::filesystem::temp_directory_path() / ("swh-conformance-" + new_uuid());
    std::string memory_name = "conformance-" + new_uuid(); // one store per process, like sqlite's one file
    std::string mongo_database = "swhtest_" + new_uuid().substr(0, 8); // one database per process

    Backend() {
        if (kind == "redis" || kind == "postgres" || kind == "mongodb")
            server = std::make_unique<tooling::ServerControl>(cluster ? "redis-cluster" : kind);
        std::filesystem::create_directories(dir);
    }
    ~Backend() { std::filesystem::remove_all(dir); }

    Json config(const Json &overrides = Json::object()) const {
        Json c;
        if (kind == "sqlite") {
            c = {{"path", (dir / "conformance.db").string()},
                 {"busy_timeout_ms", 5000},
                 {"synchronous", "full"},
                 {"pool_size", 4}};
        } else if (kind == "redis") {
            c = {{"host", "127.0.0.1"},
                 {"port", server->port()},
                 {"password", ""},
                 {"db", 0},
                 {"key_prefix", "swhtest:"},
                 {"ttl_hours", 168},
                 {"ttl_seconds", 0},
                 {"connect_timeout_ms", 2000},
                 {"command_timeout_ms", 5000},
                 {"pool_size", 8},
                 {"cluster", cluster}};
        } else if (kind == "postgres") {
            c = {{"conninfo", server->conninfo()},
                 {"pool_size", 8},
                 {"connect_timeout_ms", 5000},
                 {"statement_timeout_ms", 4000},
                 {"call_timeout_ms", 5000}};
        } else if (kind == "mongodb") {
            c = {{"connection_string", server->uri()},
                 {"database_name", mongo_database},
                 {"collection_name", "sessions"},
                 {"message_collection", "messages"},
                 {"write_concern", "majority"},
                 {"journal", true},
                 {"write_timeout_ms", 5000},
                 {"read_preference", "primary"},
                 {"pool_size", 8},
                 {"connect_timeout_ms", 2000},
                 {"server_selection_timeout_ms", 1500},
                 {"socket_timeout_ms", 5000},
                 {"operation_timeout_ms", 4000},
                 {"ttl_hours", 0},
                 {"ttl_seconds", 0}};
        } else if (kind == "memory") {
            c = {{"name", memory_name}};
        } else {
            FAIL("unknown SWH_CONFORMANCE_STORE '" << kind << "'");
        }
        for (auto &[k, v] : overrides.items())
            c[k] = v;
        return c;
    }
    bool has_server() const { return server != nullptr; }
};

inline Backend &backend() {
    static Backend b;
    return b;
}

inline std::unique_ptr<StorageInstance> open_store(const Json &overrides = Json::object()) {
    const char *file = std::getenv("SWH_CONFORMANCE_PLUGIN");
    auto lib = loader::PluginLibrary::load(file && *file ? std::string(file)
                                                         : std::string(SWH_TEST_PLUGIN_DIR) +
                                                               "/swh_storage_" + backend().kind + ".so");
    return std::make_unique<StorageInstance>(lib, "conformance", backend().config(overrides));
}

inline Session make_session(const std::string &user, int64_t at = now_us()) {
    Session s;
    s.id = new_uuid();
    s.user_id = user;
    s.provider = "echo";
    s.model = "echo-1";
    s.created_at = s.last_activity = at;
    s.config = {{"temperature", 0.5}};
    s.metadata = {{"k", "v"}};
    return s;
}

inline Message make_message(const Session &s, const std::string &role, const std::string &content,
                            int64_t ts) {
    Message m;
    m.id = new_uuid();
    m.session_id = s.id;
    m.role = role;
    m.content = content;
    m.timestamp = ts;
    m.metadata = {{"n", content.size() < 64 ? content : std::string("big")}};
    return m;
}

template <class F> swh_status status_of(F &&f) {
    try {
        f();
    } catch (const PluginError &e) {
        return e.status();
    }
    return SWH_OK;
}

inline std::vector<std::string> contents(const std::vector<Message> &ms) {
    std::vector<std::string> out;
    for (const auto &m : ms)
        out.push_back(m.content);
    return out;
}

// A socket to 127.0.0.1:`port` that has sent `args` as one RESP command (so
// values may hold spaces, newlines and any byte), or -1 if connecting or
// sending failed. Receives time out after 10 s, only so a broken server
// cannot hang the test. The caller closes it.
inline int redis_send(int port, const std::vector<std::string> &args) {
    std::string request = "*" + std::to_string(args.size()) + "\r\n";
    for (const std::string &a : args)
        request += "$" + std::to_string(a.size()) + "\r\n" + a + "\r\n";
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    REQUIRE(fd >= 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    timeval tv{10, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    if (::connect(fd, reinterpret_cast<sockaddr *>(&addr), sizeof addr) == 0 &&
        ::send(fd, request.data(), request.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(request.size()))
        return fd;
    ::close(fd);
    return -1;
}

// One line read from a socket, without its "\r\n" ("" at EOF or timeout).
inline std::string read_line(int fd) {
    std::string line;
    char c;
    while (::recv(fd, &c, 1, 0) == 1 && c != '\n')
        line.push_back(c);
    if (!line.empty() && line.back() == '\r') line.pop_back();
    return line;
}

// One command to the test's Redis server at `port`; the first line of the
// reply, e.g. ":1", "+OK" or "-MOVED 866 127.0.0.1:7001" -- or with `bulk`,
// the text of a bulk string reply (INFO, CLUSTER MYID).
inline std::string redis_line(int port, const std::vector<std::string> &args, bool bulk = false) {
    const int fd = redis_send(port, args);
    if (fd < 0) return "";
    std::string reply = read_line(fd);
    if (bulk && reply.size() > 1 && reply[0] == '$') {
        const long size = std::stol(reply.substr(1));
        reply.clear();
        char c;
        while (static_cast<long>(reply.size()) < size && ::recv(fd, &c, 1, 0) == 1)
            reply.push_back(c);
    }
    ::close(fd);
    return reply;
}

// One command to the test's Redis server, on a cluster to the node that owns
// the key (a MOVED reply is followed); the first line of the reply (with
// `bulk`, the text of a bulk string reply).
inline std::string redis_reply(const std::vector<std::string> &args, bool bulk = false) {
    int port = backend().server->port();
    std::string reply = redis_line(port, args, bulk);
    for (int hop = 0; hop < 3 && reply.rfind("-MOVED ", 0) == 0; ++hop) {
        port = std::stoi(reply.substr(reply.rfind(':') + 1));
        reply = redis_line(port, args, bulk);
    }
    INFO(args[0] << " -> " << reply);
    REQUIRE(reply.size() > 1);
    REQUIRE(reply[0] != '-');
    return reply;
}

} // namespace swh::conformance
