#include "cluster.hpp"

#include <algorithm>
#include <charconv>

namespace swh::redis {

using edge::Failure;

uint16_t key_slot(std::string_view key) noexcept {
    const auto open = key.find('{');
    if (open != std::string_view::npos) {
        const auto close = key.find('}', open + 1);
        if (close != std::string_view::npos && close > open + 1) key = key.substr(open + 1, close - open - 1);
    }
    uint16_t crc = 0; // CRC16-CCITT (XMODEM): polynomial 0x1021, initial 0
    for (unsigned char byte : key) {
        crc ^= static_cast<uint16_t>(byte << 8);
        for (int bit = 0; bit < 8; ++bit)
            crc = static_cast<uint16_t>((crc & 0x8000) ? (crc << 1) ^ 0x1021 : crc << 1);
    }
    return crc & 16383;
}

Node::Node(const Options &o, std::string h, int p, const std::vector<const Script *> &scripts)
    : host(std::move(h)), port(p), where(host + ":" + std::to_string(port)),
      pool(static_cast<size_t>(std::max<int64_t>(1, o.pool_size)), [options = &o, this, list = &scripts] {
          return std::make_unique<Connection>(*options, host, port, *list);
      }) {}

namespace {

// "host:port" -> host, port (0 when malformed).
std::pair<std::string, int> split_address(std::string_view address) {
    const auto colon = address.rfind(':');
    int port = 0;
    if (colon == std::string_view::npos ||
        std::from_chars(address.data() + colon + 1, address.data() + address.size(), port).ec != std::errc())
        return {std::string(address), 0};
    return {std::string(address.substr(0, colon)), port};
}

} // namespace

Router::Router(const Options &o, std::vector<const Script *> scripts, edge::HostLog log)
    : options_(o), scripts_(std::move(scripts)), log_(log), cluster_(o.cluster) {
    slots_.fill(0);
    nodes_.push_back(
        std::make_unique<Node>(options_, options_.host, static_cast<int>(options_.port), scripts_));
    if (!cluster_) {
        auto lease = nodes_.front()->pool.acquire(); // fail fast on a wrong address, password or db
        return;
    }
    slots_.fill(-1);
    for (const std::string &seed : options_.seeds) {
        auto [host, port] = split_address(seed);
        if (host.empty() || port < 1 || port > 65535)
            throw Failure(SWH_E_INVALID, "redis: config 'seeds': '" + seed + "' is not host:port");
        node_at(host, port);
    }
    std::string error;
    if (!refresh(error)) throw Failure(SWH_E_UNAVAILABLE, "redis: cluster: " + error);
}

Node *Router::node_at(const std::string &host, int port) {
    std::unique_lock lock(mutex_);
    for (const auto &n : nodes_)
        if (n->host == host && n->port == port) return n.get();
    nodes_.push_back(std::make_unique<Node>(options_, host, port, scripts_));
    return nodes_.back().get();
}

Node *Router::node_for(uint16_t slot) {
    if (cluster_ && stale_.exchange(false)) {
        std::string error;
        if (!refresh(error)) {
            stale_ = true;
            log_(SWH_LOG_WARN, "redis: cluster: " + error);
        }
    }
    std::shared_lock lock(mutex_);
    const int16_t i = slots_[slot];
    return nodes_[i < 0 ? 0 : static_cast<size_t>(i)].get(); // an unserved slot: a node answers CLUSTERDOWN
}

bool Router::refresh(std::string &error) {
    std::lock_guard serial(refresh_mutex_);
    std::vector<Node *> candidates;
    {
        std::shared_lock lock(mutex_);
        for (const auto &n : nodes_)
            candidates.push_back(n.get());
    }
    error.clear();
    for (Node *candidate : candidates) {
        Reply r;
        try {
            r = candidate->pool.run(true, [](Connection &c) {
                return c.exec({"CLUSTER", "SLOTS"}, "CLUSTER SLOTS");
            });
        } catch (const Failure &e) {
            error += std::string(error.empty() ? "" : "; ") + e.what();
            continue;
        }
        if (r->type == REDIS_REPLY_ERROR) {
            const std::string text = reply_text(r.get());
            if (text.find("cluster support disabled") != std::string::npos)
                throw Failure(SWH_E_INVALID, "redis: " + candidate->where +
                                                 " is not a Redis Cluster node (cluster support disabled); "
                                                 "set config 'cluster' to false");
            error += std::string(error.empty() ? "" : "; ") + candidate->where + ": CLUSTER SLOTS: " + text;
            continue;
        }
        // [[first, last, [host, port, id], replica...], ...]
        std::array<int16_t, 16384> slots;
        slots.fill(-1);
        for (size_t i = 0; r->type == REDIS_REPLY_ARRAY && i < r->elements; ++i) {
            const redisReply *range = r->element[i];
            if (range->type != REDIS_REPLY_ARRAY || range->elements < 3 ||
                range->element[2]->type != REDIS_REPLY_ARRAY || range->element[2]->elements < 2)
                continue;
            const redisReply *master = range->element[2];
            std::string host = reply_text(master->element[0]);
            if (host.empty() || host == "?") host = candidate->host; // the node does not know its own address
            Node *owner = node_at(host, static_cast<int>(master->element[1]->integer));
            int16_t index = 0;
            {
                std::shared_lock lock(mutex_);
                while (nodes_[static_cast<size_t>(index)].get() != owner)
                    ++index;
            }
            const long long first = std::clamp<long long>(range->element[0]->integer, 0, 16383);
            const long long last = std::clamp<long long>(range->element[1]->integer, 0, 16383);
            for (long long s = first; s <= last; ++s)
                slots[static_cast<size_t>(s)] = index;
        }
        std::unique_lock lock(mutex_);
        slots_ = slots;
        return true;
    }
    error = "no node answered CLUSTER SLOTS: " + error;
    return false;
}

Node *Router::redirected(const Reply &r, const char *what, bool &asking) {
    // "MOVED 3999 127.0.0.1:6381" / "ASK 3999 127.0.0.1:6381"
    const std::string text = reply_text(r.get());
    if (!cluster_)
        throw Failure(SWH_E_UNAVAILABLE,
                      "redis: " + std::string(what) + ": " + text +
                          ": the server is a Redis Cluster node; set config 'cluster' to true");
    const auto first = text.find(' '), second = text.find(' ', first + 1);
    auto [host, port] = split_address(std::string_view(text).substr(second + 1));
    if (first == std::string::npos || second == std::string::npos || port == 0)
        throw Failure(SWH_E_INTERNAL,
                      "redis: " + std::string(what) + ": malformed redirection '" + text + "'");
    Node *target = node_at(host, port);
    asking = text.starts_with("ASK ");
    if (!asking) {
        int slot = 0;
        std::from_chars(text.data() + first + 1, text.data() + second, slot);
        {
            std::unique_lock lock(mutex_);
            for (size_t i = 0; i < nodes_.size(); ++i)
                if (nodes_[i].get() == target)
                    slots_[static_cast<size_t>(slot & 16383)] = static_cast<int16_t>(i);
        }
        stale_ = true; // one slot moved: more may have; re-read the whole map on the next call
    }
    return target;
}

std::vector<Reply> Router::spread(const std::vector<Keyed> &commands, bool retryable, const char *what) {
    std::vector<Reply> replies(commands.size());
    std::vector<Node *> owners(commands.size());
    for (size_t i = 0; i < commands.size(); ++i)
        owners[i] = node_for(key_slot(commands[i].key));
    std::vector<Node *> done;
    for (size_t i = 0; i < commands.size(); ++i) {
        Node *node = owners[i];
        if (std::find(done.begin(), done.end(), node) != done.end()) continue;
        done.push_back(node);
        std::vector<size_t> mine;
        std::vector<Args> batch;
        for (size_t j = i; j < commands.size(); ++j)
            if (owners[j] == node) {
                mine.push_back(j);
                batch.push_back(commands[j].args);
            }
        std::vector<Reply> got =
            run(*node, retryable, [&](Connection &c) { return c.pipeline(batch, what); });
        for (size_t k = 0; k < mine.size(); ++k)
            replies[mine[k]] = std::move(got[k]);
    }
    for (size_t i = 0; i < commands.size(); ++i) // the rare redirected one, again on its own
        if (is_error(replies[i], "MOVED ") || is_error(replies[i], "ASK ")) {
            const Args &args = commands[i].args;
            auto again = [&](Connection &c) { return c.exec(args, what); };
            replies[i] = route(commands[i].key, retryable, what, again);
        }
    return replies;
}

std::vector<Node *> Router::masters() const {
    std::shared_lock lock(mutex_);
    std::vector<Node *> out;
    for (int16_t i : slots_)
        if (i >= 0 && std::find(out.begin(), out.end(), nodes_[static_cast<size_t>(i)].get()) == out.end())
            out.push_back(nodes_[static_cast<size_t>(i)].get());
    if (out.empty()) out.push_back(nodes_.front().get());
    return out;
}

size_t Router::open_connections() const {
    std::shared_lock lock(mutex_);
    size_t n = 0;
    for (const auto &node : nodes_)
        n += node->pool.open_connections();
    return n;
}

} // namespace swh::redis
