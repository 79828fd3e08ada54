// The redis store's own promises, on one server and on a three-master Redis
// Cluster (SWH_CONFORMANCE_STORE=redis | redis-cluster):
//  - add_message is one script on the session's slot; the listing indexes
//    (other slots) follow only when index_lag_ms has passed -- the commands
//    counted with MONITOR on every node, not timed;
//  - on a cluster, ASK and MOVED redirections are followed while a session's
//    slot migrates to another master;
//  - on a cluster, a master that is down fails its own sessions with
//    SWH_E_UNAVAILABLE naming it, the other masters' sessions are served, and
//    the same instance recovers when it returns.
#include "conformance.hpp"

#include <set>

namespace {

using namespace swh;
using namespace swh::conformance;

// MONITOR on every node: the commands that clients sent, not those the
// scripts ran (MONITOR marks them "lua"). Commands inside a script are one
// round trip with it, so the commands seen are the plugin's round trips (a
// pipeline's commands aside).
class Monitor {
  public:
    Monitor() {
        for (int port : backend().server->ports()) {
            const int fd = redis_send(port, {"MONITOR"});
            REQUIRE(fd >= 0);
            fds_.push_back(fd);
            REQUIRE(read_line(fd) == "+OK");
        }
    }
    ~Monitor() {
        for (int fd : fds_)
            ::close(fd);
    }
    Monitor(const Monitor &) = delete;
    Monitor &operator=(const Monitor &) = delete;

    // The names of the client commands since the last call, sorted: "EVALSHA ZADD".
    std::string commands() {
        const std::string marker = "swh-monitor-" + new_uuid();
        std::vector<std::string> names;
        const auto ports = backend().server->ports();
        for (size_t i = 0; i < ports.size(); ++i) {
            REQUIRE(redis_line(ports[i], {"ECHO", marker}).size() > 1); // ends this node's stretch
            for (int n = 0; n < 10000; ++n) { // +1701234567.123456 [0 127.0.0.1:50000] "EVALSHA" "..." ...
                const std::string l = read_line(fds_[i]);
                REQUIRE(!l.empty());
                if (l.find(marker) != std::string::npos) break;
                if (l.find(" lua] ") != std::string::npos) continue;
                const size_t open = l.find("] \"") + 3;
                names.push_back(l.substr(open, l.find('"', open) - open));
            }
        }
        std::sort(names.begin(), names.end());
        std::string out;
        for (const std::string &name : names)
            out += (out.empty() ? "" : " ") + name;
        return out;
    }

  private:
    std::vector<int> fds_;
};

// The port of the node that serves `key` (the others answer MOVED).
int owner_port(const std::string &key) {
    for (int port : backend().server->ports())
        if (redis_line(port, {"EXISTS", key}).rfind("-MOVED", 0) != 0) return port;
    FAIL("no node serves " << key);
    return 0;
}

// How many MOVED (or ASK) error replies all nodes have given (INFO errorstats).
long long redirections(const std::string &error = "MOVED") {
    long long count = 0;
    for (int port : backend().server->ports()) {
        const std::string info = redis_line(port, {"INFO", "errorstats"}, true);
        const auto at = info.find("errorstat_" + error + ":count=");
        if (at != std::string::npos) count += std::stoll(info.substr(at + error.size() + 17));
    }
    return count;
}

size_t node_of(int port) {
    const auto ports = backend().server->ports();
    return static_cast<size_t>(std::find(ports.begin(), ports.end(), port) - ports.begin());
}

} // namespace

TEST_CASE("redis: add_message is one EVALSHA; the indexes follow only past index_lag_ms") {
    if (backend().kind != "redis") return;
    Session s = make_session("u-" + new_uuid());
    const std::string user_index = "swhrt:{user:" + s.user_id + "}:sessions";
    const int user_index_port = owner_port(user_index);
    const long long moved = redirections();
    auto store = open_store({{"key_prefix", "swhrt:"}}); // index_lag_ms: 60000 (default)
    const int64_t t0 = s.last_activity;
    store->create_session(s);
    store->add_message(make_message(s, "user", "warm", t0 + 1)); // the session's node has a connection now

    Monitor monitor;
    store->add_message(make_message(s, "assistant", "one round trip", t0 + 2));
    CHECK(monitor.commands() == "EVALSHA");

    // More than a minute after the score the indexes hold: they follow (two
    // ZADD and the user index's EXPIRE, after the script).
    store->add_message(make_message(s, "user", "a minute later", t0 + 61'000'000));
    CHECK(monitor.commands() == "EVALSHA EXPIRE ZADD ZADD");
    CHECK(redis_line(user_index_port, {"ZSCORE", user_index, s.id}, true) == std::to_string(t0 + 61'000'000));

    // index_lag_ms 0: every message updates the indexes (the layout before the lag).
    auto eager = open_store({{"key_prefix", "swhrt:"}, {"index_lag_ms", 0}});
    eager->add_message(make_message(s, "user", "warm", t0 + 61'000'001));
    monitor.commands(); // what opening and warming `eager` sent
    eager->add_message(make_message(s, "user", "eager", t0 + 61'000'002));
    CHECK(monitor.commands() == "EVALSHA EXPIRE ZADD ZADD");
    CHECK(store->get_session(s.id)->message_count == 5);
    // Every command went straight to its slot's master: the slot (CRC16 of the
    // hash tag) and the map agree with the cluster's.
    CHECK(redirections() == moved);
}

TEST_CASE("redis cluster: ASK and then MOVED are followed while a session's slot migrates") {
    if (!backend().cluster) return;
    auto store = open_store({{"key_prefix", "swhmig:"}});
    Session s = make_session("u-" + new_uuid());
    store->create_session(s);
    store->add_message(make_message(s, "user", "before", s.last_activity + 1));

    const std::string prefix = "swhmig:{" + s.id + "}:";
    const int from = owner_port(prefix + "session");
    const auto ports = backend().server->ports();
    const int to = ports[0] != from ? ports[0] : ports[1];
    const std::string slot = redis_line(from, {"CLUSTER", "KEYSLOT", prefix + "session"}).substr(1);
    const std::string from_id = redis_line(from, {"CLUSTER", "MYID"}, true);
    const std::string to_id = redis_line(to, {"CLUSTER", "MYID"}, true);
    REQUIRE(redis_line(to, {"CLUSTER", "SETSLOT", slot, "IMPORTING", from_id}) == "+OK");
    REQUIRE(redis_line(from, {"CLUSTER", "SETSLOT", slot, "MIGRATING", to_id}) == "+OK");
    REQUIRE(redis_line(from, {"MIGRATE", "127.0.0.1", std::to_string(to), "", "0", "5000", "KEYS",
                              prefix + "session", prefix + "messages", prefix + "ids"}) == "+OK");
    // The keys are on `to`, the slot still belongs to `from`: it answers ASK.
    REQUIRE(redis_line(from, {"EXISTS", prefix + "session"}).rfind("-ASK ", 0) == 0);
    const long long asked = redirections("ASK"), moved = redirections();
    store->add_message(make_message(s, "assistant", "during", s.last_activity + 2));
    MessageQuery q;
    q.session_id = s.id;
    CHECK(contents(store->get_messages(q)) == std::vector<std::string>{"before", "during"});
    CHECK(redirections("ASK") > asked); // the store was sent on by ASK (and followed it)

    // The slot moves for good: `from` now answers MOVED, and the store follows.
    for (int port : ports)
        REQUIRE(redis_line(port, {"CLUSTER", "SETSLOT", slot, "NODE", to_id}) == "+OK");
    REQUIRE(redis_line(from, {"EXISTS", prefix + "session"}).rfind("-MOVED ", 0) == 0);
    store->add_message(make_message(s, "user", "after", s.last_activity + 3));
    CHECK(redirections() > moved); // ... and by MOVED
    auto got = store->get_session(s.id);
    REQUIRE(got);
    CHECK(got->message_count == 3);
    CHECK(contents(store->get_messages(q)) == std::vector<std::string>{"before", "during", "after"});
    SessionFilter f;
    f.user_id = s.user_id;
    CHECK(store->list_sessions(f).size() == 1);
    CHECK(owner_port(prefix + "session") == to);
}

TEST_CASE("redis cluster: a master down fails only its sessions (SWH_E_UNAVAILABLE), then recovers") {
    if (!backend().cluster) return;
    auto store = open_store({{"key_prefix", "swhdown:"}});
    const std::string user = "u-" + new_uuid();
    // The victim serves neither listing index of `user` (a create needs both).
    const std::set<int> index_nodes{owner_port("swhdown:{sessions}:all"),
                                    owner_port("swhdown:{user:" + user + "}:sessions")};
    int victim = 0;
    for (int port : backend().server->ports())
        if (!index_nodes.count(port)) victim = port;
    REQUIRE(victim != 0);
    // One session on the victim, one elsewhere: a new id lands on any slot, so try a bounded number.
    std::optional<Session> lost, kept;
    for (int i = 0; i < 200 && (!lost || !kept); ++i) {
        Session s = make_session(user);
        auto &slot = owner_port("swhdown:{" + s.id + "}:session") == victim ? lost : kept;
        if (slot) continue;
        store->create_session(s);
        store->add_message(make_message(s, "user", "before", s.last_activity + 1));
        slot = s;
    }
    REQUIRE(lost);
    REQUIRE(kept);

    backend().server->kill_node(node_of(victim));
    swh_status status = SWH_OK;
    std::string error;
    try {
        store->add_message(make_message(*lost, "user", "during", lost->last_activity + 2));
    } catch (const PluginError &e) {
        status = e.status();
        error = e.what();
    }
    CHECK(status == SWH_E_UNAVAILABLE);
    INFO(error);
    CHECK(error.find("127.0.0.1:" + std::to_string(victim)) != std::string::npos); // names the node
    CHECK(status_of([&] { store->get_session(lost->id); }) == SWH_E_UNAVAILABLE);
    // The other masters' sessions are served meanwhile.
    store->add_message(make_message(*kept, "user", "during", kept->last_activity + 2));
    CHECK(store->get_session(kept->id)->message_count == 2);
    Json h = store->health_check();
    INFO(h.dump());
    CHECK(h["status"] == "unhealthy");
    CHECK(h["error"].get<std::string>().find(std::to_string(victim)) != std::string::npos);

    backend().server->start_node(node_of(victim)); // returns once the cluster is ok again
    store->add_message(make_message(*lost, "user", "after", lost->last_activity + 3));
    MessageQuery q;
    q.session_id = lost->id;
    CHECK(contents(store->get_messages(q)) ==
          std::vector<std::string>{"before", "after"}); // "during" never stored
    SessionFilter f;
    f.user_id = user;
    CHECK(store->list_sessions(f).size() == 2);
    CHECK(store->health_check()["status"] == "healthy");
}

TEST_CASE("redis: a cluster setting that does not fit the server fails with the reason") {
    if (backend().kind != "redis") return;
    if (!backend().cluster) {
        CHECK_THROWS_WITH(open_store({{"cluster", true}}), Catch::Contains("cluster support disabled"));
        return;
    }
    CHECK_THROWS_WITH(open_store({{"db", 1}}), Catch::Contains("'db' must be 0 on a Redis Cluster"));
    // cluster: false on a cluster node: a key that another master serves is answered MOVED.
    auto store = open_store({{"cluster", false}, {"key_prefix", "swhplain:"}});
    bool refused = false;
    for (int i = 0; i < 50 && !refused; ++i) { // 2 ids in 3 land on another master
        try {
            store->get_session(new_uuid());
        } catch (const PluginError &e) {
            refused = true;
            CHECK(e.status() == SWH_E_UNAVAILABLE);
            CHECK_THAT(e.what(), Catch::Contains("MOVED") && Catch::Contains("set config 'cluster' to true"));
        }
    }
    CHECK(refused);
}
