// Data written before ABI 1.3 (no structured content) opened by today's
// stores: the old rows read back unchanged with no structured content, and
// new structured messages round-trip beside them.
//  - sqlite: fixtures/sqlite_schema1.db, a file the release before 1.3 wrote
//    (fixtures/README.md says how), copied and opened;
//  - postgres: a database made with that release's DDL and rows;
//  - redis: that release's hash and message elements.
// The old rows are the ones of the sqlite fixture, in every store.
#include "conformance.hpp"

#include <sqlite3.h>
#ifdef SWH_CONFORMANCE_HAVE_LIBPQ
#include <libpq-fe.h>
#endif

#include <algorithm>
#include <filesystem>
#include <string>
#include <vector>

using namespace swh;
using namespace swh::conformance;

namespace {

// ------------------------------------------------------------ the old rows

Session old_session() {
    Session s;
    s.id = "19df1837-b87e-4b13-8924-02f3b8f7edef";
    s.user_id = "old-release-user";
    s.provider = "echo";
    s.status = "active";
    s.created_at = 1796565658033635;
    s.last_activity = 1796565659579013;
    s.message_count = 4;
    s.context = Json::parse(R"({"system_context":{"model":"","provider":"echo"},"user_context":{}})");
    s.metadata = {{"title", "made by the release before ABI 1.3"}};
    return s;
}

Message old_message(const char *id, const char *role, const std::string &content, int64_t ts,
                    const char *metadata, const char *provider_id, const char *provider_metadata) {
    Message m;
    m.id = id;
    m.session_id = old_session().id;
    m.role = role;
    m.content = content;
    m.timestamp = ts;
    m.metadata = Json::parse(metadata);
    m.provider_message_id = provider_id;
    m.provider_metadata = Json::parse(provider_metadata);
    return m;
}

std::vector<Message> old_messages() {
    const std::string unicode = "Grüße 👋 — line\nbreak \"quoted\"";
    return {
        old_message("9af4a1b3-f10e-4126-967d-28c407b1090d", "user", "hello from schema 1", 1796565659430148,
                    "{}", "", "{}"),
        old_message(
            "ceaa505f-5f22-4d28-bc43-662088f05b55", "assistant", "echo#1 hello from schema 1",
            1796565659446367,
            R"({"provider":"echo","reply_to":"9af4a1b3-f10e-4126-967d-28c407b1090d",)"
            R"("response_time_ms":19.939,"streaming":false})",
            "echo-19df1837-b87e-4b13-8924-02f3b8f7edef-1",
            R"({"finish_reason":"stop","model":"echo-1","usage":{"completion_tokens":5,"prompt_tokens":4}})"),
        old_message("7586b0be-d0ba-4f4b-b11a-aa21270bafac", "user", unicode, 1796565659570278, "{}", "",
                    "{}"),
        old_message(
            "508deef3-e2e7-4ccd-b85d-0b017f2d5974", "assistant", "echo#2 " + unicode, 1796565659579013,
            R"({"provider":"echo","reply_to":"7586b0be-d0ba-4f4b-b11a-aa21270bafac",)"
            R"("response_time_ms":12.688,"streaming":false})",
            "echo-19df1837-b87e-4b13-8924-02f3b8f7edef-2",
            R"({"finish_reason":"stop","model":"echo-1","usage":{"completion_tokens":7,"prompt_tokens":15}})"),
    };
}

// check_new_structured_rows' messages come this long after the old ones.
constexpr int64_t kAppendedAt = 10;

// The old rows as today's store returns them: unchanged, nothing structured.
// `appended`: the messages check_new_structured_rows added since (they moved
// last_activity on).
void check_old_rows(StorageInstance &store, int appended = 0) {
    const Session want = old_session();
    auto got = store.get_session(want.id);
    REQUIRE(got);
    CHECK(got->user_id == want.user_id);
    CHECK(got->provider == want.provider);
    CHECK(got->status == want.status);
    CHECK(got->created_at == want.created_at);
    CHECK(got->last_activity == want.last_activity + (appended ? kAppendedAt + appended - 1 : 0));
    CHECK(got->context == want.context);
    CHECK(got->metadata == want.metadata);

    MessageQuery q;
    q.session_id = want.id;
    const auto messages = store.get_messages(q);
    const auto old = old_messages();
    REQUIRE(messages.size() >= old.size());
    for (size_t i = 0; i < old.size(); ++i) {
        INFO("old message " << i);
        CHECK(messages[i].id == old[i].id);
        CHECK(messages[i].session_id == old[i].session_id);
        CHECK(messages[i].role == old[i].role);
        CHECK(messages[i].content == old[i].content);
        CHECK(messages[i].timestamp == old[i].timestamp);
        CHECK(messages[i].metadata == old[i].metadata);
        CHECK(messages[i].provider_message_id == old[i].provider_message_id);
        CHECK(messages[i].provider_metadata == old[i].provider_metadata);
        CHECK(messages[i].structured.empty());
    }
}

// A tool loop appended to the old session round-trips beside the old rows.
void check_new_structured_rows(StorageInstance &store) {
    const Session s = old_session();
    Message call = make_message(s, "assistant", "", s.last_activity + kAppendedAt);
    call.structured = {{"tool_calls", {{{"id", "call_9"}, {"name", "get_weather"}, {"arguments", "{}"}}}},
                       {"reasoning", "weather needs a tool"}};
    Message result = make_message(s, "tool", "18 °C", s.last_activity + kAppendedAt + 1);
    result.structured = {{"tool_call_id", "call_9"}};
    store.add_message(call);
    store.add_message(result);

    MessageQuery q;
    q.session_id = s.id;
    auto all = store.get_messages(q);
    REQUIRE(all.size() == old_messages().size() + 2);
    CHECK(all[4].id == call.id);
    CHECK(all[4].structured == call.structured);
    CHECK(all[5].structured == result.structured);
    CHECK(store.get_session(s.id)->message_count == 6);
}

// ------------------------------------------------------------ sqlite

int64_t sqlite_int(const std::filesystem::path &file, const char *sql) {
    sqlite3 *db = nullptr;
    REQUIRE(sqlite3_open_v2(file.c_str(), &db, SQLITE_OPEN_READWRITE, nullptr) == SQLITE_OK);
    sqlite3_stmt *stmt = nullptr;
    int64_t value = -1;
    if (sqlite3_prepare_v2(db, sql, -1, &stmt, nullptr) == SQLITE_OK && sqlite3_step(stmt) == SQLITE_ROW)
        value = sqlite3_column_int64(stmt, 0);
    sqlite3_finalize(stmt);
    sqlite3_close(db);
    return value;
}

constexpr const char *kHasStructured =
    "SELECT count(*) FROM pragma_table_info('messages') WHERE name = 'structured'";

} // namespace

TEST_CASE("migration: sqlite opens a file of the release before 1.3 and keeps its rows") {
    if (backend().kind != "sqlite") return;
    const auto file = backend().dir / ("schema1-" + new_uuid() + ".db");
    std::filesystem::copy_file(SWH_CONFORMANCE_FIXTURES "/sqlite_schema1.db", file);
    REQUIRE(sqlite_int(file, "PRAGMA user_version") == 1); // the fixture is what it claims
    REQUIRE(sqlite_int(file, kHasStructured) == 0);

    {
        auto store = open_store({{"path", file.string()}});
        CHECK(sqlite_int(file, "PRAGMA user_version") == 2);
        CHECK(sqlite_int(file, kHasStructured) == 1);
        check_old_rows(*store);
        check_new_structured_rows(*store);
    }
    auto reopened = open_store({{"path", file.string()}}); // migrated once, opens as it is
    check_old_rows(*reopened, 2);
    MessageQuery q;
    q.session_id = old_session().id;
    CHECK(reopened->get_messages(q)[5].structured == Json{{"tool_call_id", "call_9"}});
}

// ------------------------------------------------------------ postgres

#ifdef SWH_CONFORMANCE_HAVE_LIBPQ
namespace {

// Schema version 1 as the release before 1.3 created it (its kMigrations[0]
// and the version table of its migrate()), verbatim.
constexpr const char *kPostgresSchema1 = R"sql(
CREATE TABLE IF NOT EXISTS swh_schema_version (version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE IF NOT EXISTS swh_sessions (
    id            text PRIMARY KEY,
    user_id       text NOT NULL,
    provider      text NOT NULL DEFAULT '',
    model         text NOT NULL DEFAULT '',
    status        text NOT NULL DEFAULT 'active',
    type          text NOT NULL DEFAULT '',
    created_at    bigint NOT NULL,
    last_activity bigint NOT NULL,
    message_count bigint NOT NULL DEFAULT 0,
    config        text NOT NULL DEFAULT '{}',
    context       text NOT NULL DEFAULT '{}',
    metadata      text NOT NULL DEFAULT '{}'
);
CREATE INDEX IF NOT EXISTS swh_sessions_by_user ON swh_sessions (user_id, last_activity DESC);
CREATE INDEX IF NOT EXISTS swh_sessions_by_status ON swh_sessions (status, last_activity DESC);
CREATE INDEX IF NOT EXISTS swh_sessions_by_activity ON swh_sessions (last_activity DESC);
CREATE TABLE IF NOT EXISTS swh_messages (
    seq                 bigserial PRIMARY KEY,
    id                  text NOT NULL UNIQUE,
    session_id          text NOT NULL REFERENCES swh_sessions (id) ON DELETE CASCADE,
    role                text NOT NULL,
    content             text NOT NULL,
    timestamp           bigint NOT NULL,
    metadata            text NOT NULL DEFAULT '{}',
    provider_message_id text NOT NULL DEFAULT '',
    provider_metadata   text NOT NULL DEFAULT '{}'
);
CREATE INDEX IF NOT EXISTS swh_messages_by_session_time ON swh_messages (session_id, timestamp, seq);
CREATE INDEX IF NOT EXISTS swh_messages_by_session_role_time ON swh_messages (session_id, role, timestamp, seq);
INSERT INTO swh_schema_version (version) VALUES (1);
)sql";

struct Pg {
    explicit Pg(const std::string &conninfo) : conn(PQconnectdb(conninfo.c_str())) {
        REQUIRE(PQstatus(conn) == CONNECTION_OK);
    }
    ~Pg() { PQfinish(conn); }
    Pg(const Pg &) = delete;
    Pg &operator=(const Pg &) = delete;

    // Runs `sql` with text parameters; the first cell of the result ("" if none).
    std::string run(const std::string &sql, const std::vector<std::string> &params = {}) {
        std::vector<const char *> values;
        for (const std::string &p : params)
            values.push_back(p.c_str());
        PGresult *r = params.empty() ? PQexec(conn, sql.c_str())
                                     : PQexecParams(conn, sql.c_str(), static_cast<int>(values.size()),
                                                    nullptr, values.data(), nullptr, nullptr, 0);
        const ExecStatusType status = PQresultStatus(r);
        std::string error = PQresultErrorMessage(r), first;
        if (status == PGRES_TUPLES_OK && PQntuples(r) > 0) first = PQgetvalue(r, 0, 0);
        PQclear(r);
        INFO(sql << ": " << error);
        REQUIRE((status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK));
        return first;
    }
    PGconn *conn;
};

// The old rows with the release's own INSERTs (the columns it knew).
void insert_old_rows(Pg &db) {
    const Session s = old_session();
    db.run(
        "INSERT INTO swh_sessions (id, user_id, provider, model, status, type, created_at, last_activity, "
        "message_count, config, context, metadata) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 4, $9, $10, $11)",
        {s.id, s.user_id, s.provider, s.model, s.status, s.type, std::to_string(s.created_at),
         std::to_string(s.last_activity), s.config.dump(), s.context.dump(), s.metadata.dump()});
    for (const Message &m : old_messages())
        db.run("INSERT INTO swh_messages (id, session_id, role, content, timestamp, metadata, "
               "provider_message_id, provider_metadata) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
               {m.id, m.session_id, m.role, m.content, std::to_string(m.timestamp), m.metadata.dump(),
                m.provider_message_id, m.provider_metadata.dump()});
}

} // namespace

TEST_CASE("migration: postgres opens a database of the release before 1.3 and keeps its rows") {
    if (backend().kind != "postgres") return;
    const std::string base = backend().config()["conninfo"];
    std::string name = "swh_schema1_" + new_uuid();
    std::replace(name.begin(), name.end(), '-', '_');
    Pg(base).run("CREATE DATABASE " + name);
    const std::string conninfo = base + " dbname=" + name; // the last dbname wins
    {
        Pg old(conninfo);
        old.run(kPostgresSchema1);
        insert_old_rows(old);
    }
    {
        auto store = open_store({{"conninfo", conninfo}});
        CHECK(store->health_check()["schema_version"] == 4); // 2: structured content, 3: events, 4: limits
        CHECK(Pg(conninfo).run("SELECT count(*) FROM information_schema.columns WHERE table_name = "
                               "'swh_messages' AND column_name = 'structured'") == "1");
        CHECK(Pg(conninfo).run("SELECT count(*) FROM information_schema.tables WHERE table_name IN "
                               "('swh_events', 'swh_event_heads')") == "2");
        check_old_rows(*store);
        check_new_structured_rows(*store);
    }
    auto reopened = open_store({{"conninfo", conninfo}}); // nothing left to migrate
    CHECK(reopened->health_check()["schema_version"] == 4);
    check_old_rows(*reopened, 2);
    reopened.reset();
    Pg(base).run("DROP DATABASE " + name);
}
#endif

// ------------------------------------------------------------ redis

namespace {

// The release's message element: "<timestamp> <role>\n<JSON>" without a
// "structured" key (its encode_message).
std::string old_element(const Message &m) {
    const Json j = {{"id", m.id},
                    {"session_id", m.session_id},
                    {"role", m.role},
                    {"content", m.content},
                    {"timestamp", m.timestamp},
                    {"metadata", m.metadata.dump()},
                    {"provider_message_id", m.provider_message_id},
                    {"provider_metadata", m.provider_metadata.dump()}};
    return std::to_string(m.timestamp) + " " + m.role + "\n" + j.dump();
}

void write_old_records(const std::string &prefix) {
    const Session s = old_session();
    const std::string key = prefix + "{" + s.id + "}:";
    redis_reply({"HSET",
                 key + "session",
                 "id",
                 s.id,
                 "user_id",
                 s.user_id,
                 "type",
                 s.type,
                 "created_at",
                 std::to_string(s.created_at),
                 "message_count",
                 "4",
                 "status",
                 s.status,
                 "model",
                 s.model,
                 "provider",
                 s.provider,
                 "config",
                 s.config.dump(),
                 "context",
                 s.context.dump(),
                 "metadata",
                 s.metadata.dump(),
                 "last_activity",
                 std::to_string(s.last_activity)});
    for (const Message &m : old_messages()) {
        redis_reply({"RPUSH", key + "messages", old_element(m)});
        redis_reply({"SADD", key + "ids", m.id});
    }
}

} // namespace

TEST_CASE("migration: redis reads the records of the release before 1.3") {
    if (backend().kind != "redis") return;
    const std::string prefix = "swhold" + new_uuid().substr(0, 8) + ":";
    write_old_records(prefix);
    auto store = open_store({{"key_prefix", prefix}});
    check_old_rows(*store);
    check_new_structured_rows(*store);
}
