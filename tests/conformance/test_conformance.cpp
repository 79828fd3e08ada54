// One conformance suite for every storage plugin, through the real loader
// (swh::loader::StorageInstance, i.e. the C ABI as the daemon uses it).
// The store comes from SWH_CONFORMANCE_STORE (sqlite | redis | postgres |
// mongodb | memory); for redis, postgres and mongodb the real server is started by tests/tooling
// and stopped and restarted by the outage test. "memory" is the C99 example
// of docs/sdk.md (examples/storage_memory), whose file SWH_CONFORMANCE_PLUGIN
// names. CTest runs this binary once per store; test_structured.cpp and
// test_migration.cpp are part of it.
#include "conformance.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <set>
#include <thread>

using namespace swh;
using namespace swh::conformance;

TEST_CASE("sessions: create, get, update, list, delete") {
    auto store = open_store();
    const std::string user = "u-" + new_uuid();
    Session s = make_session(user);
    s.type = "templated";
    s.context = {{"user_context", {{"lang", "de"}}}, {"system_context", Json::object()}};
    store->create_session(s);
    CHECK(status_of([&] { store->create_session(s); }) == SWH_E_CONFLICT);

    auto got = store->get_session(s.id);
    REQUIRE(got);
    CHECK(got->user_id == user);
    CHECK(got->provider == "echo");
    CHECK(got->model == "echo-1");
    CHECK(got->status == "active");
    CHECK(got->type == "templated");
    CHECK(got->created_at == s.created_at);
    CHECK(got->last_activity == s.last_activity);
    CHECK(got->message_count == 0);
    CHECK(got->config == s.config);
    CHECK(got->context == s.context);
    CHECK(got->metadata == s.metadata);
    CHECK_FALSE(store->get_session("no-such-session-" + new_uuid()));

    // update writes only the named fields
    Session u = s;
    u.model = "echo-2";
    u.metadata = {{"k", "changed"}};
    u.provider = "must-not-be-written";
    store->update_session(u, SWH_SESSION_FIELD_MODEL | SWH_SESSION_FIELD_METADATA);
    got = store->get_session(s.id);
    CHECK(got->model == "echo-2");
    CHECK(got->metadata == Json{{"k", "changed"}});
    CHECK(got->provider == "echo");
    u.status = "archived";
    u.last_activity = s.last_activity + 10;
    store->update_session(u, SWH_SESSION_FIELD_STATUS | SWH_SESSION_FIELD_LAST_ACTIVITY);
    got = store->get_session(s.id);
    CHECK(got->status == "archived");
    CHECK(got->last_activity == s.last_activity + 10);
    Session ghost = make_session(user);
    CHECK(status_of([&] { store->update_session(ghost, SWH_SESSION_FIELD_MODEL); }) == SWH_E_NOT_FOUND);
    CHECK(status_of([&] { store->update_session(s, 0x8000u); }) == SWH_E_INVALID);

    // list: filters, most recently active first, limit/offset
    const int64_t t0 = now_us();
    std::vector<Session> mine;
    for (int i = 0; i < 5; ++i) {
        mine.push_back(make_session(user, t0 + i * 1000));
        store->create_session(mine.back());
    }
    SessionFilter f;
    f.user_id = user;
    auto listed = store->list_sessions(f);
    REQUIRE(listed.size() == 6);
    CHECK(listed[0].id == mine[4].id);
    CHECK(listed[4].id == mine[0].id);
    f.status = "archived";
    listed = store->list_sessions(f);
    REQUIRE(listed.size() == 1);
    CHECK(listed[0].id == s.id);
    f.status = "active";
    f.limit = 2;
    f.offset = 1;
    listed = store->list_sessions(f);
    REQUIRE(listed.size() == 2);
    CHECK(listed[0].id == mine[3].id);
    CHECK(listed[1].id == mine[2].id);
    SessionFilter other;
    other.user_id = "nobody-" + new_uuid();
    CHECK(store->list_sessions(other).empty());
    SessionFilter by_status; // no user: every store can list across users
    by_status.status = "archived";
    auto archived = store->list_sessions(by_status);
    CHECK(std::any_of(archived.begin(), archived.end(), [&](const Session &x) { return x.id == s.id; }));

    // delete removes the session and its messages
    store->add_message(make_message(mine[0], "user", "bye", t0));
    store->delete_session(mine[0].id);
    CHECK_FALSE(store->get_session(mine[0].id));
    MessageQuery q;
    q.session_id = mine[0].id;
    CHECK(status_of([&] { store->get_messages(q); }) == SWH_E_NOT_FOUND);
    CHECK(status_of([&] { store->delete_session(mine[0].id); }) == SWH_E_NOT_FOUND);
    f = SessionFilter{};
    f.user_id = user;
    CHECK(store->list_sessions(f).size() == 5);
}

TEST_CASE("list: a message makes its session the most recently active, across 300 sessions") {
    // 300 > one page of the redis index walk; the message's session is the
    // oldest in every index until the message, and then must come first.
    auto store = open_store();
    const std::string user = "u-" + new_uuid();
    const int64_t t0 = now_us();
    std::vector<Session> sessions;
    for (int i = 0; i < 300; ++i) {
        sessions.push_back(make_session(user, t0 + i * 1000));
        store->create_session(sessions.back());
    }
    store->add_message(make_message(sessions[0], "user", "back again", t0 + 400 * 1000));
    SessionFilter f;
    f.user_id = user;
    f.limit = 2;
    auto listed = store->list_sessions(f);
    REQUIRE(listed.size() == 2);
    CHECK(listed[0].id == sessions[0].id);
    CHECK(listed[0].last_activity == t0 + 400 * 1000);
    CHECK(listed[1].id == sessions[299].id);
    f.limit = 1;
    f.offset = 1; // the page after the first row
    listed = store->list_sessions(f);
    REQUIRE(listed.size() == 1);
    CHECK(listed[0].id == sessions[299].id);
    f = SessionFilter{};
    f.user_id = user;
    listed = store->list_sessions(f);
    REQUIRE(listed.size() == 300);
    CHECK(listed[0].id == sessions[0].id);
    CHECK(listed[1].id == sessions[299].id);
    CHECK(listed[299].id == sessions[1].id);
}

TEST_CASE("messages: chronological order and the role/since/limit filters") {
    auto store = open_store();
    Session s = make_session("u-" + new_uuid());
    store->create_session(s);
    const int64_t t0 = now_us();
    for (int i = 0; i < 10; ++i)
        store->add_message(
            make_message(s, i % 2 ? "assistant" : "user", "m" + std::to_string(i), t0 + i * 10));
    // Out of timestamp order (a slow writer) and a tie: ordered by timestamp,
    // then insertion.
    store->add_message(make_message(s, "system", "late", t0 + 35));
    store->add_message(make_message(s, "user", "tie", t0 + 90));

    MessageQuery q;
    q.session_id = s.id;
    auto all = store->get_messages(q);
    CHECK(contents(all) == std::vector<std::string>{"m0", "m1", "m2", "m3", "late", "m4", "m5", "m6", "m7",
                                                    "m8", "m9", "tie"});
    CHECK(all[0].metadata == Json{{"n", "m0"}});
    CHECK(all[0].session_id == s.id);
    CHECK(all[0].timestamp == t0);

    q.limit = 3; // the LAST three
    CHECK(contents(store->get_messages(q)) == std::vector<std::string>{"m8", "m9", "tie"});
    q.limit = 100;
    CHECK(store->get_messages(q).size() == 12);
    q.limit = 0;
    q.role = "assistant";
    CHECK(contents(store->get_messages(q)) == std::vector<std::string>{"m1", "m3", "m5", "m7", "m9"});
    q.limit = 2;
    CHECK(contents(store->get_messages(q)) == std::vector<std::string>{"m7", "m9"});
    q.role = "";
    q.limit = 0;
    q.since = t0 + 60;
    CHECK(contents(store->get_messages(q)) == std::vector<std::string>{"m6", "m7", "m8", "m9", "tie"});
    q.role = "user";
    q.limit = 2;
    CHECK(contents(store->get_messages(q)) == std::vector<std::string>{"m8", "tie"});
    q.role = "system";
    q.limit = 0;
    q.since = 0;
    CHECK(contents(store->get_messages(q)) == std::vector<std::string>{"late"});
    q.role = "nobody";
    CHECK(store->get_messages(q).empty());

    Session empty = make_session("u-" + new_uuid());
    store->create_session(empty);
    MessageQuery eq;
    eq.session_id = empty.id;
    CHECK(store->get_messages(eq).empty());
    eq.session_id = "missing-" + new_uuid();
    CHECK(status_of([&] { store->get_messages(eq); }) == SWH_E_NOT_FOUND);
}

TEST_CASE("counters: message_count and last_activity move with each message, and only then") {
    auto store = open_store();
    Session s = make_session("u-" + new_uuid());
    store->create_session(s);
    const int64_t t0 = now_us();
    Message first = make_message(s, "user", "one", t0 + 5);
    store->add_message(first);
    store->add_message(make_message(s, "assistant", "two", t0 + 7));
    auto got = store->get_session(s.id);
    CHECK(got->message_count == 2);
    CHECK(got->last_activity == t0 + 7);

    // a duplicate id changes nothing
    Message dup = first;
    dup.timestamp = t0 + 99;
    CHECK(status_of([&] { store->add_message(dup); }) == SWH_E_CONFLICT);
    got = store->get_session(s.id);
    CHECK(got->message_count == 2);
    CHECK(got->last_activity == t0 + 7);
    MessageQuery q;
    q.session_id = s.id;
    CHECK(store->get_messages(q).size() == 2);

    Session ghost = make_session("x");
    CHECK(status_of([&] { store->add_message(make_message(ghost, "user", "hi", t0)); }) == SWH_E_NOT_FOUND);
    CHECK_FALSE(store->get_session(ghost.id));
}

TEST_CASE("concurrency: 8 threads x 50 messages to one session lose and duplicate nothing") {
    auto store = open_store();
    Session s = make_session("u-" + new_uuid());
    store->create_session(s);
    constexpr int kThreads = 8, kEach = 50;
    std::vector<std::thread> threads;
    std::atomic<int> failures{0};
    for (int t = 0; t < kThreads; ++t)
        threads.emplace_back([&, t] {
            for (int i = 0; i < kEach; ++i) {
                try {
                    store->add_message(
                        make_message(s, "user", std::to_string(t) + ":" + std::to_string(i), now_us()));
                } catch (const std::exception &) {
                    ++failures;
                }
            }
        });
    for (auto &th : threads)
        th.join();
    CHECK(failures == 0);
    MessageQuery q;
    q.session_id = s.id;
    auto all = store->get_messages(q);
    auto texts = contents(all);
    std::set<std::string> seen(texts.begin(), texts.end());
    std::set<std::string> ids;
    for (const auto &m : all)
        ids.insert(m.id);
    CHECK(all.size() == kThreads * kEach);
    CHECK(seen.size() == kThreads * kEach);
    CHECK(ids.size() == kThreads * kEach);
    CHECK(store->get_session(s.id)->message_count == kThreads * kEach);
    CHECK(std::is_sorted(all.begin(), all.end(),
                         [](const Message &a, const Message &b) { return a.timestamp < b.timestamp; }));
    // per writer, its own messages keep their order
    for (int t = 0; t < kThreads; ++t) {
        int next = 0;
        for (const auto &m : all)
            if (m.content.rfind(std::to_string(t) + ":", 0) == 0)
                CHECK(m.content == std::to_string(t) + ":" + std::to_string(next++));
    }
}

// Concurrent writers share commits in the stores that batch them (sqlite's
// group commit): a write that fails inside such a batch (a duplicate id, an
// unknown session) must fail alone, with its own status, while every other
// write of the batch is stored, exactly once.
TEST_CASE("concurrency: a failing write among concurrent ones fails alone, the others are stored once") {
    auto store = open_store();
    const std::string user = "u-" + new_uuid();
    Session a = make_session(user), b = make_session(user);
    store->create_session(a);
    store->create_session(b);
    // Ids already taken: a write reusing one is a conflict.
    std::vector<Message> taken;
    for (int i = 0; i < 4; ++i) {
        taken.push_back(make_message(a, "user", "taken " + std::to_string(i), now_us()));
        store->add_message(taken.back());
    }
    const Session ghost = make_session(user); // never created: not found
    constexpr int kThreads = 8, kEach = 40;
    enum class Kind { Good, Duplicate, NoSession };
    const auto kind_of = [](int i) {
        return i % 5 == 4 ? Kind::Duplicate : i % 7 == 6 ? Kind::NoSession : Kind::Good;
    };
    std::vector<std::vector<swh_status>> outcome(kThreads, std::vector<swh_status>(kEach, SWH_OK));
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t)
        threads.emplace_back([&, t] {
            for (int i = 0; i < kEach; ++i) {
                const Session &target = t % 2 == 0 ? a : b;
                Message m = make_message(kind_of(i) == Kind::NoSession ? ghost : target, "user",
                                         std::to_string(t) + ":" + std::to_string(i), now_us());
                if (kind_of(i) == Kind::Duplicate) {
                    m.id = taken[static_cast<size_t>(i) % taken.size()].id;
                    m.session_id = taken[0].session_id;
                }
                outcome[static_cast<size_t>(t)][static_cast<size_t>(i)] =
                    status_of([&] { store->add_message(m); });
            }
        });
    for (auto &th : threads)
        th.join();

    int good_a = 0, good_b = 0;
    for (int t = 0; t < kThreads; ++t)
        for (int i = 0; i < kEach; ++i) {
            INFO("thread " << t << ", write " << i);
            const swh_status got = outcome[static_cast<size_t>(t)][static_cast<size_t>(i)];
            switch (kind_of(i)) {
            case Kind::Good:
                CHECK(got == SWH_OK);
                ++(t % 2 == 0 ? good_a : good_b);
                break;
            case Kind::Duplicate:
                CHECK(got == SWH_E_CONFLICT);
                break;
            case Kind::NoSession:
                CHECK(got == SWH_E_NOT_FOUND);
                break;
            }
        }
    for (const Session *s : {&a, &b}) {
        MessageQuery q;
        q.session_id = s->id;
        const auto all = store->get_messages(q);
        std::set<std::string> ids, texts;
        for (const auto &m : all) {
            ids.insert(m.id);
            texts.insert(m.content);
        }
        const size_t expected = static_cast<size_t>(s == &a ? good_a + 4 : good_b);
        CHECK(all.size() == expected);
        CHECK(ids.size() == expected);
        CHECK(texts.size() == expected);
        CHECK(store->get_session(s->id)->message_count == expected);
        // the taken messages were not overwritten by the duplicates
        if (s == &a)
            for (const auto &m : taken)
                CHECK(texts.count(m.content) == 1);
    }
    CHECK_FALSE(store->get_session(ghost.id));
}

TEST_CASE("content: unicode and 1 MiB survive the round trip") {
    auto store = open_store();
    Session s = make_session("юзер-" + new_uuid());
    s.metadata = {{"title", "Grüße 👋 — 你好 — שלום"}};
    store->create_session(s);
    const std::string unicode =
        "Grüße 👋🏽 你好 שלום مرحبا e\u0301 \u00a0 tab\tnew\nline \"quoted\" \\ {json}";
    const std::string big(1024 * 1024, 'x');
    std::string big_mixed;
    while (big_mixed.size() < 1024 * 1024)
        big_mixed += "ünïcødé 🚀 ";
    const int64_t t0 = now_us();
    store->add_message(make_message(s, "user", unicode, t0));
    store->add_message(make_message(s, "assistant", big, t0 + 1));
    store->add_message(make_message(s, "user", big_mixed, t0 + 2));
    MessageQuery q;
    q.session_id = s.id;
    auto all = store->get_messages(q);
    REQUIRE(all.size() == 3);
    CHECK(all[0].content == unicode);
    CHECK(all[1].content.size() == big.size());
    CHECK(all[1].content == big);
    CHECK(all[2].content == big_mixed);
    auto got = store->get_session(s.id);
    CHECK(got->user_id == s.user_id);
    CHECK(got->metadata == s.metadata);
    q.limit = 1;
    CHECK(store->get_messages(q)[0].content == big_mixed);
}

TEST_CASE("health_check reports the backend and its state") {
    auto store = open_store();
    Json h = store->health_check();
    INFO(h.dump());
    CHECK(h["status"] == "healthy");
    CHECK(h["backend"] == backend().kind);
    if (backend().kind == "redis") {
        CHECK(h.contains("redis_version"));
        CHECK(h["appendfsync"] == "always");
        CHECK(h["aof_enabled"] == "1");
        CHECK(h.contains("ttl_seconds"));
    } else if (backend().kind == "postgres") {
        CHECK(h.contains("server_version"));
        CHECK(h["synchronous_commit"] == "on");
        CHECK(h["schema_version"] == 4); // 3: events, 4: shared limits
    } else if (backend().kind == "sqlite") {
        CHECK(h["journal_mode"] == "wal");
    } else if (backend().kind == "mongodb") {
        CHECK(h.contains("server_version"));
        CHECK(h["write_concern"] == "majority"); // durable by default
        CHECK(h["journal"] == true);
        CHECK(h["read_preference"] == "primary");
    }
}

TEST_CASE("postgres: reopening runs no migration twice and keeps the data") {
    if (backend().kind != "postgres") return;
    auto first = open_store();
    Session s = make_session("u-" + new_uuid());
    first->create_session(s);
    first.reset();
    // two instances starting at once serialise on the migration lock
    std::unique_ptr<StorageInstance> a, b;
    std::thread ta([&] { a = open_store(); });
    std::thread tb([&] { b = open_store(); });
    ta.join();
    tb.join();
    REQUIRE(a);
    REQUIRE(b);
    CHECK(a->get_session(s.id));
    CHECK(b->health_check()["schema_version"] == 4);
}

namespace {

// One command to the test's Redis server, e.g. "PEXPIRETIME
// swhttl:{id}:session"; the integer reply.
long long redis_integer(const std::string &command) {
    std::vector<std::string> args;
    for (size_t at = 0; at < command.size();) {
        const size_t space = std::min(command.find(' ', at), command.size());
        args.push_back(command.substr(at, space - at));
        at = space + 1;
    }
    const std::string reply = redis_reply(args);
    REQUIRE(reply[0] == ':');
    return std::stoll(reply.substr(1));
}

} // namespace

TEST_CASE("redis: activity refreshes a session's TTL") {
    if (backend().kind != "redis") return;
    // Proved on the expiry times Redis keeps (PEXPIRETIME, absolute ms), so
    // nothing races with the clock: `idle` is written last after `busy` was
    // created, then `busy` gets a message. Without a refresh busy's keys
    // would expire before idle's (they were set earlier); refreshed, after.
    auto store = open_store({{"ttl_seconds", 3600}, {"key_prefix", "swhttl:"}});
    Session idle = make_session("u-" + new_uuid()), busy = make_session("u-" + new_uuid());
    store->create_session(busy);
    store->create_session(idle);
    store->add_message(make_message(idle, "user", "hello", now_us()));
    const auto key = [](const Session &s, const char *suffix) { return "swhttl:{" + s.id + "}:" + suffix; };
    const long long idle_expiry = redis_integer("PEXPIRETIME " + key(idle, "session"));
    CHECK(idle_expiry > 0); // -1: no TTL at all
    CHECK(redis_integer("PEXPIRETIME " + key(busy, "session")) <= idle_expiry);
    std::this_thread::sleep_for(std::chrono::milliseconds(20)); // a later millisecond for the refresh
    store->add_message(make_message(busy, "user", "still here", now_us()));
    for (const char *suffix : {"session", "messages", "ids"}) {
        INFO(suffix);
        CHECK(redis_integer("PEXPIRETIME " + key(busy, suffix)) > idle_expiry);
    }
    CHECK(redis_integer("PEXPIRETIME " + key(idle, "session")) == idle_expiry); // untouched
}

TEST_CASE("redis: sessions expire after ttl_seconds without activity") {
    if (backend().kind != "redis") return;
    auto store = open_store({{"ttl_seconds", 1}, {"key_prefix", "swhttl1:"}});
    Session idle = make_session("u-" + new_uuid());
    store->create_session(idle);
    store->add_message(make_message(idle, "user", "hello", now_us()));
    // Redis expires it about 1 s after that write; the bound only keeps a
    // store that never expires anything from hanging the test.
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (store->get_session(idle.id) && std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
    CHECK_FALSE(store->get_session(idle.id));
    MessageQuery q;
    q.session_id = idle.id;
    CHECK(status_of([&] { store->get_messages(q); }) == SWH_E_NOT_FOUND);
    SessionFilter f;
    f.user_id = idle.user_id;
    CHECK(store->list_sessions(f).empty()); // stale index entries are dropped
}

// ------------------------------------------------------------ mongodb

TEST_CASE("mongodb: a bad config or an unreachable server fails create with the reason") {
    if (backend().kind != "mongodb") return;
    CHECK_THROWS_WITH(open_store({{"read_preference", "fastest"}}), Catch::Contains("read_preference"));
    CHECK_THROWS_WITH(open_store({{"write_concern", "all"}}), Catch::Contains("write_concern"));
    CHECK_THROWS_WITH(open_store({{"message_collection", "sessions"}}), Catch::Contains("must differ"));
    CHECK_THROWS_WITH(open_store({{"database_name", "a/b"}}), Catch::Contains("database_name"));
    CHECK_THROWS_WITH(open_store({{"connection_string", "http://nope"}}),
                      Catch::Contains("connection_string"));
    CHECK_THROWS_WITH(open_store({{"pool_size", 0}}), Catch::Contains("pool_size"));
    // A port nobody listens on (the server's own port while it is stopped).
    backend().server->stop();
    CHECK_THROWS_WITH(open_store(), Catch::Contains("mongodb: createIndexes on 127.0.0.1:") &&
                                        Catch::Contains("No suitable servers found"));
    backend().server->start();
}

TEST_CASE("mongodb: a message over MongoDB's 16 MiB document limit is refused and changes nothing") {
    if (backend().kind != "mongodb") return;
    auto store = open_store();
    Session s = make_session("u-" + new_uuid());
    store->create_session(s);
    const int64_t t0 = now_us();
    store->add_message(make_message(s, "user", "small", t0));
    std::string error;
    swh_status status = SWH_OK;
    try {
        store->add_message(make_message(s, "user", std::string(17 * 1024 * 1024, 'x'), t0 + 1));
    } catch (const PluginError &e) {
        status = e.status();
        error = e.what();
    }
    INFO(error);
    CHECK(status == SWH_E_INVALID);
    CHECK(error.find("mongodb") != std::string::npos);
    auto got = store->get_session(s.id);
    CHECK(got->message_count == 1); // nothing was written
    CHECK(got->last_activity == t0);
    MessageQuery q;
    q.session_id = s.id;
    CHECK(contents(store->get_messages(q)) == std::vector<std::string>{"small"});
}

TEST_CASE("mongodb: database_name namespaces deployments on one server") {
    if (backend().kind != "mongodb") return;
    auto store = open_store();
    auto other = open_store({{"database_name", "swhtest_other_" + new_uuid().substr(0, 8)}});
    Session s = make_session("u-" + new_uuid());
    store->create_session(s);
    CHECK_FALSE(other->get_session(s.id));
    other->create_session(s); // the same id is free in the other database
    other->add_message(make_message(s, "user", "elsewhere", now_us()));
    CHECK(store->get_session(s.id)->message_count == 0);
    CHECK(other->get_session(s.id)->message_count == 1);
}

TEST_CASE("mongodb: racing creates of one id, enforced by the unique indexes: exactly one wins") {
    if (backend().kind != "mongodb") return;
    if (backend().server->lacks("unique indexes")) {
        WARN("SKIP: needs a server that enforces unique indexes; "
             << backend().server->server_name() << " does not (run it against a real mongod)");
        return;
    }
    auto store = open_store();
    Session s = make_session("u-" + new_uuid());
    Message m = make_message(s, "user", "once", now_us());
    std::atomic<int> sessions_won{0}, messages_won{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < 8; ++t)
        threads.emplace_back([&] {
            if (status_of([&] { store->create_session(s); }) == SWH_OK) ++sessions_won;
        });
    for (auto &th : threads)
        th.join();
    threads.clear();
    for (int t = 0; t < 8; ++t)
        threads.emplace_back([&] {
            if (status_of([&] { store->add_message(m); }) == SWH_OK) ++messages_won;
        });
    for (auto &th : threads)
        th.join();
    CHECK(sessions_won == 1);
    CHECK(messages_won == 1);
    CHECK(store->get_session(s.id)->message_count == 1);
}

TEST_CASE("mongodb: with ttl_seconds the store creates its TTL indexes and serves as before") {
    if (backend().kind != "mongodb") return;
    auto store = open_store({{"ttl_seconds", 3600}});
    Session s = make_session("u-" + new_uuid());
    store->create_session(s);
    store->add_message(make_message(s, "user", "kept for an hour", now_us()));
    CHECK(store->get_session(s.id)->message_count == 1);
    // Deletion itself is the server's TTL monitor (once a minute on mongod).
    WARN("SKIP (part of this test): expiry itself needs mongod's TTL monitor, which runs once a minute; "
         "not waited for here");
}

TEST_CASE("outage: server stopped mid-run -> SWH_E_UNAVAILABLE, then recovery after restart") {
    if (!backend().has_server()) return; // sqlite has no server to stop
    auto store = open_store();
    Session s = make_session("u-" + new_uuid());
    store->create_session(s);
    store->add_message(make_message(s, "user", "before", now_us()));

    backend().server->kill();
    swh_status status = SWH_OK;
    std::string error;
    try {
        store->add_message(make_message(s, "user", "during", now_us()));
    } catch (const PluginError &e) {
        status = e.status();
        error = e.what();
    }
    CHECK(status == SWH_E_UNAVAILABLE);
    INFO(error);
    CHECK(error.find(backend().kind) != std::string::npos); // names the backend and what failed
    CHECK(status_of([&] { store->get_session(s.id); }) == SWH_E_UNAVAILABLE);
    MessageQuery q;
    q.session_id = s.id;
    CHECK(status_of([&] { store->get_messages(q); }) == SWH_E_UNAVAILABLE);
    Json h = store->health_check();
    CHECK(h["status"] == "unhealthy");
    CHECK(h.contains("error"));

    backend().server->start();
    if (!backend().server->durable()) {
        // The recovery is still checked below; what the data does across a
        // crash is not, so the store's state before the kill is rebuilt.
        WARN("SKIP (part of this test): acknowledged data across a server kill needs a durable server; "
             << backend().server->server_name() << " keeps nothing across a restart (memory mode)");
        store->create_session(s);
        store->add_message(make_message(s, "user", "before", now_us()));
    }
    // the same instance reconnects on the next call
    store->add_message(make_message(s, "user", "after", now_us()));
    auto got = store->get_session(s.id);
    REQUIRE(got);
    CHECK(got->message_count == 2); // "during" was never stored
    CHECK(contents(store->get_messages(q)) == std::vector<std::string>{"before", "after"});
    CHECK(store->health_check()["status"] == "healthy");

    // a clean stop behaves the same
    backend().server->stop();
    CHECK(status_of([&] { store->get_session(s.id); }) == SWH_E_UNAVAILABLE);
    backend().server->start();
    if (backend().server->durable())
        CHECK(store->get_session(s.id));
    else
        CHECK_NOTHROW(store->get_session(s.id)); // served again (the emulator forgot the session)
}

TEST_CASE(
    "memory: a second instance of the same store (a hot reload) shares the data; another name does not") {
    if (backend().kind != "memory") return;
    auto old_instance = open_store();
    Session s = make_session("u-" + new_uuid());
    old_instance->create_session(s);
    auto new_instance = open_store(); // a reload creates it while the old one still serves
    old_instance->add_message(make_message(s, "user", "through the old instance", now_us()));
    old_instance.reset();
    REQUIRE(new_instance->get_session(s.id));
    CHECK(new_instance->get_session(s.id)->message_count == 1);
    auto other = open_store({{"name", "other-" + new_uuid()}});
    CHECK_FALSE(other->get_session(s.id));
    // create refuses a bad name with its reason (last_error read before destroy)
    CHECK_THROWS_WITH(open_store({{"name", "Not Valid"}}), Catch::Contains("may hold only a-z"));
}
