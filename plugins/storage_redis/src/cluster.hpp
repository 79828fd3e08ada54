// Routing of commands to Redis servers: one server, or the masters of a Redis
// Cluster. hiredis is not a Cluster client and Debian 12 ships no
// hiredis-cluster, so this is the small layer the store needs on top of it:
//   - the slot of a key (CRC16 of its hash tag, as the Cluster spec defines);
//   - the slot map (CLUSTER SLOTS), read at start, after a MOVED and after a
//     node was unreachable;
//   - a connection pool per node (store::Pool, pool_size each);
//   - MOVED (refresh the map, go to the new owner) and ASK (ASKING, then the
//     command, on the node named) followed at most kMaxRedirects times. A
//     redirected command was not executed, so following it is safe for
//     writes too.
// Every command or script sent through it touches one slot.
#pragma once

#include "connection.hpp"

#include <swarmhost/cpp/connection_pool.hpp>

#include <array>
#include <atomic>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <vector>

namespace swh::redis {

// The Cluster slot (0..16383) of a key: CRC16 (XMODEM) of its hash tag -- the
// part between the first '{' and the next '}' when not empty -- or of the
// whole key.
uint16_t key_slot(std::string_view key) noexcept;

// One server and its connections. `o` and `scripts` must outlive it (the
// Router's own members).
struct Node {
    Node(const Options &o, std::string host, int port, const std::vector<const Script *> &scripts);
    std::string host;
    int port;
    std::string where; // "host:port"
    store::Pool<Connection> pool;
};

// A command and the key that routes it.
struct Keyed {
    std::string_view key;
    Args args;
};

class Router {
  public:
    static constexpr int kMaxRedirects = 5;

    // Standalone: one node (host:port). Cluster: reads the slot map from
    // host:port or a seed, and throws Failure when none answers.
    Router(const Options &o, std::vector<const Script *> scripts, edge::HostLog log);
    Router(const Router &) = delete;
    Router &operator=(const Router &) = delete;

    // body(Connection&) -> Reply, run on the node serving `key`, redirections
    // followed; an error reply left at the end throws (`what` names the step).
    // `retryable`: a read, run once more on a fresh connection when the
    // connection broke (Pool::run).
    template <class Body> Reply on(std::string_view key, bool retryable, const char *what, Body &&body) {
        Reply r = route(key, retryable, what, body);
        throw_if_error(r, what);
        return r;
    }

    // Each command on its key's node, one pipeline per node; replies in the
    // order of `commands`, error replies as replies (redirections followed).
    std::vector<Reply> spread(const std::vector<Keyed> &commands, bool retryable, const char *what);

    bool cluster() const noexcept { return cluster_; }
    // The nodes that serve slots (cluster), or the one server.
    std::vector<Node *> masters() const;
    size_t open_connections() const;

  private:
    template <class Body> Reply route(std::string_view key, bool retryable, const char *what, Body &body) {
        Node *node = node_for(key_slot(key));
        bool asking = false;
        for (int hop = 0;; ++hop) {
            Reply r = run(*node, retryable, [&](Connection &c) {
                if (asking) c.command({"ASKING"}, "ASKING");
                return body(c);
            });
            if (!is_error(r, "MOVED ") && !is_error(r, "ASK ")) return r;
            if (hop >= kMaxRedirects) return r;
            node = redirected(r, what, asking);
        }
    }
    template <class Body> auto run(Node &node, bool retryable, Body &&body) {
        try {
            return node.pool.run(retryable, body);
        } catch (const edge::Failure &) {
            stale_ = true; // a node gone may mean a failover: re-read the map on the next call
            throw;
        }
    }
    // The node a MOVED or ASK reply names (MOVED also updates the map).
    Node *redirected(const Reply &r, const char *what, bool &asking);
    Node *node_for(uint16_t slot);
    Node *node_at(const std::string &host, int port);
    // Reads CLUSTER SLOTS from the first node that answers; false if none did
    // (`error` says why).
    bool refresh(std::string &error);

    Options options_;
    std::vector<const Script *> scripts_;
    edge::HostLog log_;
    bool cluster_;
    mutable std::shared_mutex mutex_; // nodes_ (append only) and slots_
    std::vector<std::unique_ptr<Node>> nodes_;
    std::array<int16_t, 16384> slots_{}; // index into nodes_, -1 = not served
    std::mutex refresh_mutex_;
    std::atomic<bool> stale_{false};
};

} // namespace swh::redis
