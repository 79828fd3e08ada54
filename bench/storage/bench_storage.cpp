// Storage benchmark: each store through its plugin (the real loader, the C
// ABI, as the daemon calls it) against that store's own client in a plain
// loop doing the same work, in one program, on servers started by
// tests/tooling (redis: appendonly + appendfsync always; postgres: defaults,
// synchronous_commit on; sqlite: WAL + synchronous=FULL; mongodb: the CongoDB
// emulator, memory mode, so nothing there is durable and its row measures
// the plugin's overhead over libmongoc only). Every write is acknowledged
// before the next one starts, in both columns.
//
//   bench_storage [--messages N] [--reads N] [--big N] [stores...]
//
// Prints a Markdown table: messages/s of add_message (1 writer) and of
// get_messages(limit=50), plugin vs native, and the mean latency of
// get_messages(limit=50) on a 1k- and an N-message session (default 100k).
#include "loader/instances.hpp"
#include "server_control.hpp"
#include "util/clock.hpp"
#include "util/ids.hpp"

#include <hiredis/hiredis.h>
#include <libpq-fe.h>
#include <sqlite3.h>
#ifdef SWH_BENCH_HAVE_MONGOC
#include <mongoc/mongoc.h>
#endif

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

using namespace swh;
using Clock = std::chrono::steady_clock;

namespace {

double seconds_of(const std::function<void()> &f) {
    auto t0 = Clock::now();
    f();
    return std::chrono::duration<double>(Clock::now() - t0).count();
}

Message message(const std::string &sid, int i) {
    Message m;
    m.id = new_uuid();
    m.session_id = sid;
    m.role = i % 2 ? "assistant" : "user";
    m.content =
        "benchmark message number " + std::to_string(i) + " with a typical short sentence of chat text.";
    m.timestamp = now_us();
    return m;
}

struct Row {
    std::string store;
    double add_plugin = 0, add_native = 0, read_plugin = 0, read_native = 0, lat_small_us = 0, lat_big_us = 0;
};

// ---------------------------------------------------------------- native loops

struct NativeLoop {
    std::function<void(int)> add; // one durable message insert + counter update
    std::function<void()> read50; // the last 50 messages of a session
};

NativeLoop sqlite_native(const std::string &path) {
    sqlite3 *db = nullptr;
    sqlite3_open(path.c_str(), &db);
    sqlite3_exec(db,
                 "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;"
                 "CREATE TABLE s(id TEXT PRIMARY KEY, n INTEGER, last INTEGER);"
                 "CREATE TABLE m(seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT UNIQUE, sid TEXT, role TEXT,"
                 " content TEXT, ts INTEGER); CREATE INDEX m_by ON m(sid, ts);"
                 "INSERT INTO s VALUES('s', 0, 0);",
                 nullptr, nullptr, nullptr);
    auto shared = std::shared_ptr<sqlite3>(db, sqlite3_close);
    sqlite3_stmt *ins = nullptr, *upd = nullptr, *sel = nullptr;
    sqlite3_prepare_v2(db, "INSERT INTO m(id, sid, role, content, ts) VALUES(?1, 's', ?2, ?3, ?4)", -1, &ins,
                       nullptr);
    sqlite3_prepare_v2(db, "UPDATE s SET n = n + 1, last = ?1 WHERE id = 's'", -1, &upd, nullptr);
    sqlite3_prepare_v2(
        db, "SELECT id, role, content, ts FROM m WHERE sid = 's' ORDER BY ts DESC, seq DESC LIMIT 50", -1,
        &sel, nullptr);
    NativeLoop loop;
    loop.add = [shared, ins, upd](int i) {
        Message m = message("s", i);
        sqlite3_exec(shared.get(), "BEGIN IMMEDIATE", nullptr, nullptr, nullptr);
        sqlite3_bind_int64(upd, 1, m.timestamp);
        sqlite3_step(upd);
        sqlite3_reset(upd);
        sqlite3_bind_text(ins, 1, m.id.c_str(), -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(ins, 2, m.role.c_str(), -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(ins, 3, m.content.c_str(), -1, SQLITE_TRANSIENT);
        sqlite3_bind_int64(ins, 4, m.timestamp);
        if (sqlite3_step(ins) != SQLITE_DONE) throw std::runtime_error(sqlite3_errmsg(shared.get()));
        sqlite3_reset(ins);
        sqlite3_exec(shared.get(), "COMMIT", nullptr, nullptr, nullptr);
    };
    loop.read50 = [shared, sel] {
        std::vector<std::string> out;
        while (sqlite3_step(sel) == SQLITE_ROW)
            out.emplace_back(reinterpret_cast<const char *>(sqlite3_column_text(sel, 2)));
        sqlite3_reset(sel);
    };
    return loop;
}

NativeLoop redis_native(int port) {
    auto ctx = std::shared_ptr<redisContext>(redisConnect("127.0.0.1", port), redisFree);
    if (!ctx || ctx->err) throw std::runtime_error("redis connect failed");
    NativeLoop loop;
    loop.add = [ctx](int i) {
        Message m = message("s", i);
        std::string element = std::to_string(m.timestamp) + " " + m.role + "\n" + m.content;
        std::string ts = std::to_string(m.timestamp);
        // MULTI/EXEC: the message and the counters together, as the plugin's script does.
        redisAppendCommand(ctx.get(), "MULTI");
        redisAppendCommand(ctx.get(), "RPUSH bench:{s}:messages %b", element.data(), element.size());
        redisAppendCommand(ctx.get(), "HINCRBY bench:{s}:session message_count 1");
        redisAppendCommand(ctx.get(), "HSET bench:{s}:session last_activity %s", ts.c_str());
        redisAppendCommand(ctx.get(), "EXEC");
        for (int k = 0; k < 5; ++k) {
            void *r = nullptr;
            if (redisGetReply(ctx.get(), &r) != REDIS_OK) throw std::runtime_error("redis error");
            freeReplyObject(r);
        }
    };
    loop.read50 = [ctx] {
        auto *r = static_cast<redisReply *>(redisCommand(ctx.get(), "LRANGE bench:{s}:messages -50 -1"));
        freeReplyObject(r);
    };
    return loop;
}

NativeLoop postgres_native(const std::string &conninfo) {
    auto conn = std::shared_ptr<PGconn>(PQconnectdb(conninfo.c_str()), PQfinish);
    auto exec = [conn](const char *sql) { PQclear(PQexec(conn.get(), sql)); };
    exec("DROP TABLE IF EXISTS bench_m; DROP TABLE IF EXISTS bench_s;"
         "CREATE TABLE bench_s(id text PRIMARY KEY, n bigint, last bigint);"
         "CREATE TABLE bench_m(seq bigserial PRIMARY KEY, id text UNIQUE, sid text, role text, content text,"
         " ts bigint); CREATE INDEX ON bench_m(sid, ts, seq); INSERT INTO bench_s VALUES('s', 0, 0);");
    PQclear(PQprepare(
        conn.get(), "add",
        "WITH b AS (UPDATE bench_s SET n = n + 1, last = $4::bigint WHERE id = 's' RETURNING id) "
        "INSERT INTO bench_m(id, sid, role, content, ts) SELECT $1, b.id, $2, $3, $4::bigint FROM b",
        0, nullptr));
    PQclear(PQprepare(
        conn.get(), "read",
        "SELECT id, role, content, ts FROM bench_m WHERE sid = 's' ORDER BY ts DESC, seq DESC LIMIT 50", 0,
        nullptr));
    NativeLoop loop;
    loop.add = [conn](int i) {
        Message m = message("s", i);
        std::string ts = std::to_string(m.timestamp);
        const char *values[] = {m.id.c_str(), m.role.c_str(), m.content.c_str(), ts.c_str()};
        PGresult *r = PQexecPrepared(conn.get(), "add", 4, values, nullptr, nullptr, 0);
        if (PQresultStatus(r) != PGRES_COMMAND_OK) throw std::runtime_error(PQerrorMessage(conn.get()));
        PQclear(r);
    };
    loop.read50 = [conn] { PQclear(PQexecPrepared(conn.get(), "read", 0, nullptr, nullptr, nullptr, 0)); };
    return loop;
}

#ifdef SWH_BENCH_HAVE_MONGOC
// The plugin's three writes with libmongoc directly: the message upsert on
// message_id, its count on the session (once per id), the counted mark; the
// same write concern (majority, j) and indexes. What it leaves out: the pool,
// the ABI, the plugin's other fields.
NativeLoop mongodb_native(const std::string &uri_text) {
    mongoc_init();
    auto uri = std::shared_ptr<mongoc_uri_t>(mongoc_uri_new(uri_text.c_str()), mongoc_uri_destroy);
    auto client =
        std::shared_ptr<mongoc_client_t>(mongoc_client_new_from_uri(uri.get()), mongoc_client_destroy);
    mongoc_client_set_error_api(client.get(), MONGOC_ERROR_API_VERSION_2);
    auto *wc = mongoc_write_concern_new();
    mongoc_write_concern_set_wmajority(wc, 5000);
    mongoc_write_concern_set_journal(wc, true);
    mongoc_client_set_write_concern(client.get(), wc);
    mongoc_write_concern_destroy(wc);
    auto collection = [client](const char *name) { // the deleter keeps the client alive
        return std::shared_ptr<mongoc_collection_t>(
            mongoc_client_get_collection(client.get(), "bench_native", name),
            [client](mongoc_collection_t *c) { mongoc_collection_destroy(c); });
    };
    auto sessions = collection("sessions"), messages = collection("messages");
    // The plugin's indexes, so both sides maintain the same ones.
    bson_t *indexes = BCON_NEW(
        "createIndexes", BCON_UTF8("messages"), "indexes", "[", "{", "key", "{", "message_id", BCON_INT32(1),
        "}", "name", BCON_UTF8("id"), "unique", BCON_BOOL(true), "}", "{", "key", "{", "session_id",
        BCON_INT32(1), "timestamp", BCON_INT32(1), "_id", BCON_INT32(1), "}", "name", BCON_UTF8("time"), "}",
        "{", "key", "{", "session_id", BCON_INT32(1), "role", BCON_INT32(1), "timestamp", BCON_INT32(1),
        "_id", BCON_INT32(1), "}", "name", BCON_UTF8("role"), "}", "{", "key", "{", "session_id",
        BCON_INT32(1), "counted", BCON_INT32(1), "}", "name", BCON_UTF8("uncounted"), "}", "]");
    bson_t *session_index = BCON_NEW(
        "createIndexes", BCON_UTF8("sessions"), "indexes", "[", "{", "key", "{", "session_id", BCON_INT32(1),
        "}", "name", BCON_UTF8("id"), "unique", BCON_BOOL(true), "}", "{", "key", "{", "user_id",
        BCON_INT32(1), "last_activity", BCON_INT32(-1), "}", "name", BCON_UTF8("user"), "}", "{", "key", "{",
        "status", BCON_INT32(1), "last_activity", BCON_INT32(-1), "}", "name", BCON_UTF8("status"), "}", "{",
        "key", "{", "last_activity", BCON_INT32(-1), "}", "name", BCON_UTF8("activity"), "}", "]");
    for (bson_t *command : {indexes, session_index}) {
        bson_error_t error;
        if (!mongoc_client_write_command_with_opts(client.get(), "bench_native", command, nullptr, nullptr,
                                                   &error))
            throw std::runtime_error(error.message);
        bson_destroy(command);
    }
    bson_t *doc =
        BCON_NEW("session_id", BCON_UTF8("s"), "user_id", BCON_UTF8("bench"), "status", BCON_UTF8("active"),
                 "last_activity", BCON_INT64(0), "message_count", BCON_INT64(0), "counted_ids", "[", "]");
    bson_error_t error;
    if (!mongoc_collection_insert_one(sessions.get(), doc, nullptr, nullptr, &error))
        throw std::runtime_error(error.message);
    bson_destroy(doc);
    NativeLoop loop;
    loop.add = [sessions, messages](int i) {
        Message m = message("s", i);
        // 1. the message, unique by upsert on message_id
        bson_t *filter = BCON_NEW("message_id", BCON_UTF8(m.id.c_str()));
        bson_t *insert =
            BCON_NEW("$setOnInsert", "{", "message_id", BCON_UTF8(m.id.c_str()), "session_id", BCON_UTF8("s"),
                     "role", BCON_UTF8(m.role.c_str()), "content", BCON_UTF8(m.content.c_str()), "timestamp",
                     BCON_INT64(m.timestamp), "counted", BCON_BOOL(false), "}");
        bson_t *upsert = BCON_NEW("upsert", BCON_BOOL(true));
        // 2. its count, once per id; 3. the mark
        bson_t *query =
            BCON_NEW("session_id", BCON_UTF8("s"), "counted_ids", "{", "$ne", BCON_UTF8(m.id.c_str()), "}");
        bson_t *count =
            BCON_NEW("$inc", "{", "message_count", BCON_INT64(1), "}", "$push", "{", "counted_ids", "{",
                     "$each", "[", BCON_UTF8(m.id.c_str()), "]", "$slice", BCON_INT32(-256), "}", "}", "$set",
                     "{", "last_activity", BCON_INT64(m.timestamp), "}");
        bson_t *mark = BCON_NEW("$set", "{", "counted", BCON_BOOL(true), "}");
        bson_error_t error;
        bool ok = mongoc_collection_update_one(messages.get(), filter, insert, upsert, nullptr, &error) &&
                  mongoc_collection_update_one(sessions.get(), query, count, nullptr, nullptr, &error) &&
                  mongoc_collection_update_one(messages.get(), filter, mark, nullptr, nullptr, &error);
        for (bson_t *b : {filter, insert, upsert, query, count, mark})
            bson_destroy(b);
        if (!ok) throw std::runtime_error(error.message);
    };
    loop.read50 = [messages] {
        bson_t *filter = BCON_NEW("session_id", BCON_UTF8("s"));
        bson_t *opts = BCON_NEW("sort", "{", "timestamp", BCON_INT32(-1), "_id", BCON_INT32(-1), "}", "limit",
                                BCON_INT64(50));
        mongoc_cursor_t *cursor = mongoc_collection_find_with_opts(messages.get(), filter, opts, nullptr);
        const bson_t *doc = nullptr;
        std::vector<std::string> out;
        while (mongoc_cursor_next(cursor, &doc)) {
            bson_iter_t it;
            if (bson_iter_init_find(&it, doc, "content")) out.emplace_back(bson_iter_utf8(&it, nullptr));
        }
        mongoc_cursor_destroy(cursor);
        bson_destroy(filter);
        bson_destroy(opts);
    };
    return loop;
}
#endif

// ---------------------------------------------------------------- plugin side

Session session(const std::string &user) {
    Session s;
    s.id = new_uuid();
    s.user_id = user;
    s.provider = "echo";
    s.created_at = s.last_activity = now_us();
    return s;
}

// Fills a session with `n` messages through the plugin, 8 writers at once.
void fill(loader::StorageInstance &store, const std::string &sid, int n) {
    std::atomic<int> next{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < 8; ++t)
        threads.emplace_back([&] {
            for (int i; (i = next++) < n;)
                store.add_message(message(sid, i));
        });
    for (auto &th : threads)
        th.join();
}

double read_latency_us(loader::StorageInstance &store, const std::string &sid, int reads) {
    MessageQuery q;
    q.session_id = sid;
    q.limit = 50;
    return seconds_of([&] {
               for (int i = 0; i < reads; ++i)
                   if (store.get_messages(q).size() != 50) throw std::runtime_error("short read");
           }) /
           reads * 1e6;
}

Row run(const std::string &kind, int messages, int reads, int big) {
    std::unique_ptr<tooling::ServerControl> server;
    if (kind != "sqlite") server = std::make_unique<tooling::ServerControl>(kind);
    auto dir = std::filesystem::temp_directory_path() / ("swh-bench-storage-" + new_uuid());
    std::filesystem::create_directories(dir);
    Json config;
    NativeLoop native;
    if (kind == "sqlite") {
        config = {{"path", (dir / "plugin.db").string()},
                  {"busy_timeout_ms", 5000},
                  {"synchronous", "full"},
                  {"pool_size", 4}};
        native = sqlite_native((dir / "native.db").string());
    } else if (kind == "redis") {
        config = {{"host", "127.0.0.1"},
                  {"port", server->port()},
                  {"password", ""},
                  {"db", 0},
                  {"key_prefix", "swh:"},
                  {"ttl_hours", 168},
                  {"ttl_seconds", 0},
                  {"connect_timeout_ms", 2000},
                  {"command_timeout_ms", 30000},
                  {"pool_size", 8}};
        native = redis_native(server->port());
    } else if (kind == "mongodb") {
#ifdef SWH_BENCH_HAVE_MONGOC
        config = {{"connection_string", server->uri()},
                  {"database_name", "bench_plugin"},
                  {"socket_timeout_ms", 60000},
                  {"operation_timeout_ms", 0}};
        native = mongodb_native(server->uri());
#else
        throw std::runtime_error("built without libmongoc: no mongodb row");
#endif
    } else {
        config = {{"conninfo", server->conninfo()},
                  {"pool_size", 8},
                  {"connect_timeout_ms", 5000},
                  {"statement_timeout_ms", 60000}};
        native = postgres_native(server->conninfo());
    }
    Row row;
    row.store = kind;
    {
        auto lib =
            loader::PluginLibrary::load(std::string(SWH_BENCH_PLUGIN_DIR) + "/swh_storage_" + kind + ".so");
        loader::StorageInstance store(lib, "bench", config);
        Session s = session("bench");
        store.create_session(s);
        row.add_plugin = messages / seconds_of([&] {
                             for (int i = 0; i < messages; ++i)
                                 store.add_message(message(s.id, i));
                         });
        row.add_native = messages / seconds_of([&] {
                             for (int i = 0; i < messages; ++i)
                                 native.add(i);
                         });
        MessageQuery q;
        q.session_id = s.id;
        q.limit = 50;
        row.read_plugin = reads * 50 / seconds_of([&] {
                              for (int i = 0; i < reads; ++i)
                                  store.get_messages(q);
                          });
        row.read_native = reads * 50 / seconds_of([&] {
                              for (int i = 0; i < reads; ++i)
                                  native.read50();
                          });
        Session small = session("bench"), large = session("bench");
        store.create_session(small);
        store.create_session(large);
        fill(store, small.id, 1000);
        std::fprintf(stderr, "%s: filling a %d-message session...\n", kind.c_str(), big);
        fill(store, large.id, big);
        read_latency_us(store, small.id, 50); // warm up
        row.lat_small_us = read_latency_us(store, small.id, reads);
        row.lat_big_us = read_latency_us(store, large.id, reads);
    }
    std::filesystem::remove_all(dir);
    return row;
}

} // namespace

int main(int argc, char **argv) {
    int messages = 2000, reads = 2000, big = 100000;
    std::vector<std::string> stores;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        if (a == "--messages" && i + 1 < argc)
            messages = std::atoi(argv[++i]);
        else if (a == "--reads" && i + 1 < argc)
            reads = std::atoi(argv[++i]);
        else if (a == "--big" && i + 1 < argc)
            big = std::atoi(argv[++i]);
        else
            stores.push_back(a);
    }
    if (stores.empty()) stores = {"sqlite", "redis", "postgres"};
    std::vector<Row> rows;
    for (const auto &s : stores) {
        std::fprintf(stderr, "%s: running...\n", s.c_str());
        rows.push_back(run(s, messages, reads, big));
    }
    std::printf("| store | add_message msg/s: plugin | native | get_messages(50) msg/s: plugin | native | "
                "latency(50) 1k msgs | latency(50) %dk msgs |\n|---|---|---|---|---|---|---|\n",
                big / 1000);
    for (const Row &r : rows)
        std::printf("| %s | %.0f | %.0f | %.0f | %.0f | %.0f µs | %.0f µs |\n", r.store.c_str(), r.add_plugin,
                    r.add_native, r.read_plugin, r.read_native, r.lat_small_us, r.lat_big_us);
    return 0;
}
