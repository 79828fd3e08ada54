// Thin RAII layer over the SQLite C API: one connection with a cache of
// prepared statements, and a borrowed statement that resets itself. Errors
// are thrown as edge::Failure carrying the swarmhost status they map to.
//
// A Connection is not thread-safe: its owner (the writer's commit leader or a
// reader lease) uses it from one thread at a time.
#pragma once

#include <swarmhost/cpp/edge.hpp>

#include <sqlite3.h>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>

namespace swh::sqlite {

// SQLite result code (extended) → swarmhost status.
swh_status status_from_sqlite(int rc) noexcept;

// Throws Failure(status_from_sqlite(rc), "<context>: <sqlite message>") (no
// prefix when `context` is empty).
[[noreturn]] void throw_sqlite(sqlite3 *db, int rc, std::string_view context);

// A cached prepared statement in use. Resets and clears its bindings when it
// goes out of scope, so the cache always holds idle statements. Text bound
// with bind() is NOT copied: it must outlive this object.
class Statement {
  public:
    Statement(sqlite3 *db, sqlite3_stmt *stmt) noexcept : db_(db), stmt_(stmt) {}
    Statement(const Statement &) = delete;
    Statement &operator=(const Statement &) = delete;
    ~Statement();

    Statement &bind(int index, std::string_view text);
    Statement &bind(int index, int64_t value);
    // Advances; true when a row is ready, false when done.
    bool step();
    // Runs a statement that returns no rows (or ignores them).
    void run();

    int64_t column_int(int column) const noexcept { return sqlite3_column_int64(stmt_, column); }
    std::string column_text(int column) const;

  private:
    sqlite3 *db_;
    sqlite3_stmt *stmt_;
};

class Connection {
  public:
    // Opens `path` with SQLITE_OPEN_* `flags` (NOMUTEX is added: the owner
    // serialises use) and sets the busy timeout.
    Connection(const std::string &path, int flags, int busy_timeout_ms);
    Connection(const Connection &) = delete;
    Connection &operator=(const Connection &) = delete;

    // The cached prepared statement for `sql` (prepared on first use).
    Statement prepare(const std::string &sql);
    // Prepare (cached) and run a statement without results.
    void exec(const std::string &sql) { prepare(sql).run(); }
    // Run one or more statements once, uncached (schema, pragmas).
    void exec_script(const char *sql);
    // First column of the first row of a one-off query, as text.
    std::string query_text(const char *sql);

    bool in_transaction() const noexcept { return sqlite3_get_autocommit(db_.get()) == 0; }
    int64_t changes() const noexcept { return sqlite3_changes64(db_.get()); }

  private:
    struct CloseDb {
        void operator()(sqlite3 *db) const noexcept { sqlite3_close_v2(db); }
    };
    struct Finalize {
        void operator()(sqlite3_stmt *stmt) const noexcept { sqlite3_finalize(stmt); }
    };
    // Declared before the cache: statements are finalized before the close.
    std::unique_ptr<sqlite3, CloseDb> db_;
    std::unordered_map<std::string, std::unique_ptr<sqlite3_stmt, Finalize>> cache_;
};

} // namespace swh::sqlite
