#include "sqlite_db.hpp"

#include <climits>

namespace swh::sqlite {

using edge::Failure;

swh_status status_from_sqlite(int rc) noexcept {
    switch (rc) {
    case SQLITE_CONSTRAINT_PRIMARYKEY:
    case SQLITE_CONSTRAINT_UNIQUE:
        return SWH_E_CONFLICT;
    case SQLITE_CONSTRAINT_FOREIGNKEY:
        return SWH_E_NOT_FOUND;
    default:
        break;
    }
    switch (rc & 0xff) {
    case SQLITE_OK:
    case SQLITE_ROW:
    case SQLITE_DONE:
        return SWH_OK;
    case SQLITE_CONSTRAINT:
    case SQLITE_MISMATCH:
    case SQLITE_TOOBIG:
    case SQLITE_RANGE:
        return SWH_E_INVALID;
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
    case SQLITE_IOERR:
    case SQLITE_FULL:
    case SQLITE_CANTOPEN:
    case SQLITE_PROTOCOL:
    case SQLITE_READONLY:
    case SQLITE_PERM:
    case SQLITE_AUTH:
    case SQLITE_NOTADB:
    case SQLITE_CORRUPT:
    case SQLITE_NOLFS:
        return SWH_E_UNAVAILABLE;
    case SQLITE_INTERRUPT:
        return SWH_E_CANCELLED;
    default:
        return SWH_E_INTERNAL;
    }
}

void throw_sqlite(sqlite3 *db, int rc, std::string_view context) {
    std::string message(context);
    if (!message.empty()) message += ": ";
    // sqlite3_errmsg describes the connection's most recent error, which is
    // `rc` as long as nothing ran on the connection in between.
    message += db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
    throw Failure(status_from_sqlite(rc), message);
}

Statement::~Statement() {
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
}

Statement &Statement::bind(int index, std::string_view text) {
    // An empty view may have a NULL data pointer, which SQLite would bind as
    // NULL; bind "" instead. SQLITE_STATIC: the text outlives the statement's
    // use (it is reset before the borrowed input goes away).
    const char *data = text.data() != nullptr ? text.data() : "";
    int rc = sqlite3_bind_text64(stmt_, index, data, text.size(), SQLITE_STATIC, SQLITE_UTF8);
    if (rc != SQLITE_OK) throw_sqlite(db_, rc, {});
    return *this;
}

Statement &Statement::bind(int index, int64_t value) {
    int rc = sqlite3_bind_int64(stmt_, index, value);
    if (rc != SQLITE_OK) throw_sqlite(db_, rc, {});
    return *this;
}

bool Statement::step() {
    int rc = sqlite3_step(stmt_);
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    throw_sqlite(db_, rc, {});
}

void Statement::run() {
    while (step()) {
    }
}

std::string Statement::column_text(int column) const {
    const auto *text = reinterpret_cast<const char *>(sqlite3_column_text(stmt_, column));
    if (text == nullptr) return {};
    return std::string(text, static_cast<size_t>(sqlite3_column_bytes(stmt_, column)));
}

Connection::Connection(const std::string &path, int flags, int busy_timeout_ms) {
    sqlite3 *raw = nullptr;
    int rc = sqlite3_open_v2(path.c_str(), &raw, flags | SQLITE_OPEN_NOMUTEX, nullptr);
    db_.reset(raw); // closes even a half-open handle
    if (rc != SQLITE_OK) throw_sqlite(raw, rc, "cannot open database '" + path + "'");
    sqlite3_extended_result_codes(raw, 1);
    sqlite3_busy_timeout(raw, busy_timeout_ms);
}

Statement Connection::prepare(const std::string &sql) {
    auto it = cache_.find(sql);
    if (it == cache_.end()) {
        sqlite3_stmt *raw = nullptr;
        if (sql.size() > INT_MAX) throw Failure(SWH_E_INVALID, "statement too long");
        int rc = sqlite3_prepare_v3(db_.get(), sql.c_str(), static_cast<int>(sql.size()) + 1,
                                    SQLITE_PREPARE_PERSISTENT, &raw, nullptr);
        std::unique_ptr<sqlite3_stmt, Finalize> stmt(raw);
        if (rc != SQLITE_OK) throw_sqlite(db_.get(), rc, {});
        it = cache_.emplace(sql, std::move(stmt)).first;
    }
    return Statement(db_.get(), it->second.get());
}

void Connection::exec_script(const char *sql) {
    int rc = sqlite3_exec(db_.get(), sql, nullptr, nullptr, nullptr);
    if (rc != SQLITE_OK) throw_sqlite(db_.get(), rc, {});
}

std::string Connection::query_text(const char *sql) {
    sqlite3_stmt *raw = nullptr;
    int rc = sqlite3_prepare_v2(db_.get(), sql, -1, &raw, nullptr);
    std::unique_ptr<sqlite3_stmt, Finalize> owner(raw);
    if (rc != SQLITE_OK) throw_sqlite(db_.get(), rc, {});
    Statement stmt(db_.get(), raw);
    return stmt.step() ? stmt.column_text(0) : std::string();
}

} // namespace swh::sqlite
