// sqlite_baseline: the rows one POST /v1/sessions/{id}/messages writes, with
// no daemon, no HTTP and no plugin — the floor for the send path.
//
// Per "request": the user message and the assistant message, each inserted
// together with the session counter update (message_count + 1,
// last_activity), same schema and pragmas as the sqlite storage plugin
// (WAL, synchronous=FULL by default, foreign_keys=ON, busy_timeout 5000 ms).
// Modes:
//   --mode message  two transactions per request (the daemon's durability:
//                   the user message is durable before the provider runs)
//   --mode request  one transaction per request holding both messages
// Every thread has its own connection (naive concurrent writers: SQLite
// serialises them with its lock and busy handler; no group commit).
//
// Prints one line: "RESULT threads=.. mode=.. requests=.. seconds=..
// requests_per_s=.. msgs_per_s=.. commits_per_s=.. busy_retries=.." where
// msgs_per_s counts message rows inserted (2 per request).
#include "sqlite_schema.h" // generated: the sqlite plugin's schema

#include <sqlite3.h>

#include <atomic>
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace {

// The sqlite plugin's own schema (generated from its source: bench/CMakeLists.txt).
constexpr const char *kSchema = kSqlitePluginSchema;

int64_t now_us() {
    return std::chrono::duration_cast<std::chrono::microseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

std::string session_id(int i) {
    char buf[40];
    std::snprintf(buf, sizeof buf, "5e55107d-0000-4000-8000-%012d", i);
    return buf;
}

class Conn {
  public:
    Conn(const std::string &path, const std::string &sync) {
        if (sqlite3_open_v2(path.c_str(), &db_,
                            SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                            nullptr) != SQLITE_OK)
            fail("open");
        sqlite3_busy_timeout(db_, 5000);
        exec("PRAGMA journal_mode = WAL;");
        exec(("PRAGMA synchronous = " + sync + ";").c_str());
        exec("PRAGMA foreign_keys = ON;");
    }
    ~Conn() {
        for (auto *s : stmts_)
            sqlite3_finalize(s);
        sqlite3_close(db_);
    }
    void exec(const char *sql) {
        if (sqlite3_exec(db_, sql, nullptr, nullptr, nullptr) != SQLITE_OK) fail(sql);
    }
    sqlite3_stmt *prepare(const char *sql) {
        sqlite3_stmt *s = nullptr;
        if (sqlite3_prepare_v2(db_, sql, -1, &s, nullptr) != SQLITE_OK) fail(sql);
        stmts_.push_back(s);
        return s;
    }
    // Steps to completion; returns false on SQLITE_BUSY (caller retries).
    bool run(sqlite3_stmt *s) {
        int rc = sqlite3_step(s);
        sqlite3_reset(s);
        if (rc == SQLITE_DONE || rc == SQLITE_ROW) return true;
        if ((rc & 0xff) == SQLITE_BUSY) return false;
        fail(sqlite3_sql(s));
    }
    sqlite3 *db() { return db_; }
    [[noreturn]] void fail(const char *what) {
        throw std::runtime_error(std::string(what) + ": " + sqlite3_errmsg(db_));
    }

  private:
    sqlite3 *db_ = nullptr;
    std::vector<sqlite3_stmt *> stmts_;
};

struct Options {
    std::string db, mode = "message", sync = "full";
    int threads = 1, sessions = 64;
    double seconds = 3;
};

std::atomic<bool> stop{false};
std::atomic<uint64_t> total_requests{0}, total_busy{0};

void writer(const Options &o, int thread_index) {
    Conn c(o.db, o.sync);
    sqlite3_stmt *begin = c.prepare("BEGIN IMMEDIATE");
    sqlite3_stmt *commit = c.prepare("COMMIT");
    sqlite3_stmt *rollback = c.prepare("ROLLBACK");
    sqlite3_stmt *bump =
        c.prepare("UPDATE sessions SET message_count = message_count + ?3, last_activity = ?2 WHERE id = ?1");
    sqlite3_stmt *insert =
        c.prepare("INSERT INTO messages (id, session_id, role, content, timestamp, metadata, "
                  "provider_message_id, provider_metadata) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)");
    std::vector<std::string> sessions;
    for (int i = 0; i < o.sessions; ++i)
        sessions.push_back(session_id(i));
    uint64_t seq = 0, requests = 0, busy = 0;
    char id[40];

    auto insert_message = [&](const std::string &sid, const char *role, const char *content, int64_t ts) {
        std::snprintf(id, sizeof id, "%08x-0000-4000-8000-%012" PRIu64, thread_index, seq++);
        sqlite3_bind_text(insert, 1, id, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(insert, 2, sid.data(), static_cast<int>(sid.size()), SQLITE_STATIC);
        sqlite3_bind_text(insert, 3, role, -1, SQLITE_STATIC);
        sqlite3_bind_text(insert, 4, content, -1, SQLITE_STATIC);
        sqlite3_bind_int64(insert, 5, ts);
        sqlite3_bind_text(insert, 6, "{}", -1, SQLITE_STATIC);
        sqlite3_bind_text(insert, 7, "", -1, SQLITE_STATIC);
        sqlite3_bind_text(insert, 8, "{\"echo\":true}", -1, SQLITE_STATIC);
        return c.run(insert);
    };
    auto bump_session = [&](const std::string &sid, int64_t ts, int n) {
        sqlite3_bind_text(bump, 1, sid.data(), static_cast<int>(sid.size()), SQLITE_STATIC);
        sqlite3_bind_int64(bump, 2, ts);
        sqlite3_bind_int(bump, 3, n);
        return c.run(bump);
    };
    // One transaction; retried from BEGIN when SQLite reports BUSY.
    auto transaction = [&](auto &&body) {
        for (;;) {
            if (!c.run(begin)) {
                ++busy;
                continue;
            }
            if (body() && c.run(commit)) return;
            ++busy;
            if (!sqlite3_get_autocommit(c.db())) c.run(rollback);
        }
    };

    for (uint64_t r = 0; !stop.load(std::memory_order_relaxed); ++r) {
        const std::string &sid =
            sessions[(r * 7 + static_cast<uint64_t>(thread_index) * 13) % sessions.size()];
        if (o.mode == "request") {
            transaction([&] {
                const int64_t ts = now_us();
                return bump_session(sid, ts, 2) && insert_message(sid, "user", "hello world", ts) &&
                       insert_message(sid, "assistant", "hello world", ts + 1);
            });
        } else {
            transaction([&] {
                const int64_t ts = now_us();
                return bump_session(sid, ts, 1) && insert_message(sid, "user", "hello world", ts);
            });
            transaction([&] {
                const int64_t ts = now_us();
                return bump_session(sid, ts, 1) && insert_message(sid, "assistant", "hello world", ts);
            });
        }
        ++requests;
    }
    total_requests += requests;
    total_busy += busy;
}

std::string arg(int argc, char **argv, const char *name, const std::string &fallback) {
    for (int i = 1; i + 1 < argc; ++i)
        if (std::strcmp(argv[i], name) == 0) return argv[i + 1];
    return fallback;
}

} // namespace

int main(int argc, char **argv) {
    Options o;
    o.db = arg(argc, argv, "--db", "");
    if (o.db.empty()) {
        std::fprintf(stderr,
                     "usage: sqlite_baseline --db FILE [--threads N] [--seconds S] [--mode message|request]\n"
                     "                       [--sessions N] [--sync full|normal]\n");
        return 2;
    }
    o.threads = std::stoi(arg(argc, argv, "--threads", "1"));
    o.seconds = std::stod(arg(argc, argv, "--seconds", "3"));
    o.mode = arg(argc, argv, "--mode", "message");
    o.sessions = std::stoi(arg(argc, argv, "--sessions", "64"));
    o.sync = arg(argc, argv, "--sync", "full");
    if (o.mode != "message" && o.mode != "request") {
        std::fprintf(stderr, "sqlite_baseline: --mode must be message or request\n");
        return 2;
    }
    try {
        for (const char *extra : {"", "-wal", "-shm"})
            std::remove((o.db + extra).c_str());
        {
            Conn setup(o.db, o.sync);
            setup.exec(kSchema);
            setup.exec("BEGIN");
            sqlite3_stmt *s =
                setup.prepare("INSERT INTO sessions (id, user_id, provider, model, created_at, "
                              "last_activity) VALUES (?1, 'bench-user', 'echo', 'echo', ?2, ?2)");
            for (int i = 0; i < o.sessions; ++i) {
                const std::string id = session_id(i);
                sqlite3_bind_text(s, 1, id.c_str(), -1, SQLITE_TRANSIENT);
                sqlite3_bind_int64(s, 2, now_us());
                setup.run(s);
            }
            setup.exec("COMMIT");
        }
        std::vector<std::thread> threads;
        const auto start = std::chrono::steady_clock::now();
        for (int t = 0; t < o.threads; ++t)
            threads.emplace_back([&o, t] {
                try {
                    writer(o, t);
                } catch (const std::exception &e) {
                    std::fprintf(stderr, "sqlite_baseline: thread %d: %s\n", t, e.what());
                    std::exit(1);
                }
            });
        std::this_thread::sleep_for(std::chrono::duration<double>(o.seconds));
        stop = true;
        for (auto &t : threads)
            t.join();
        const double elapsed =
            std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        const double rps = static_cast<double>(total_requests.load()) / elapsed;
        std::printf("RESULT threads=%d mode=%s sync=%s requests=%" PRIu64 " seconds=%.2f requests_per_s=%.1f "
                    "msgs_per_s=%.1f commits_per_s=%.1f busy_retries=%" PRIu64 "\n",
                    o.threads, o.mode.c_str(), o.sync.c_str(), total_requests.load(), elapsed, rps, 2 * rps,
                    (o.mode == "message" ? 2 : 1) * rps, total_busy.load());
    } catch (const std::exception &e) {
        std::fprintf(stderr, "sqlite_baseline: %s\n", e.what());
        return 1;
    }
    for (const char *extra : {"", "-wal", "-shm"})
        std::remove((o.db + extra).c_str());
    return 0;
}
