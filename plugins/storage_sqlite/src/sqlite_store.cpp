#include "sqlite_store.hpp"

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <system_error>
#include <utility>

namespace swh::sqlite {

using edge::Failure;
using store::quoted;

namespace {

// PRAGMA user_version: 1 = the first release's tables; 2 adds
// messages.structured (ABI 1.3 structured content). See migrate().
constexpr int kSchemaVersion = 2;
// Upper bound of group_commit_max_batch.
constexpr int64_t kMaxBatchLimit = 4096;

constexpr const char *kSchema = R"sql(
CREATE TABLE IF NOT EXISTS sessions (
    id            TEXT PRIMARY KEY NOT NULL,
    user_id       TEXT NOT NULL,
    provider      TEXT NOT NULL DEFAULT '',
    model         TEXT NOT NULL DEFAULT '',
    status        TEXT NOT NULL DEFAULT 'active',
    type          TEXT NOT NULL DEFAULT '',
    created_at    INTEGER NOT NULL,
    last_activity INTEGER NOT NULL,
    message_count INTEGER NOT NULL DEFAULT 0,
    config        TEXT NOT NULL DEFAULT '{}',
    context       TEXT NOT NULL DEFAULT '{}',
    metadata      TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX IF NOT EXISTS sessions_by_user ON sessions(user_id);
CREATE INDEX IF NOT EXISTS sessions_by_status ON sessions(status, last_activity);
CREATE TABLE IF NOT EXISTS messages (
    seq                 INTEGER PRIMARY KEY AUTOINCREMENT,
    id                  TEXT NOT NULL UNIQUE,
    session_id          TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
    role                TEXT NOT NULL,
    content             TEXT NOT NULL,
    timestamp           INTEGER NOT NULL,
    metadata            TEXT NOT NULL DEFAULT '{}',
    provider_message_id TEXT NOT NULL DEFAULT '',
    provider_metadata   TEXT NOT NULL DEFAULT '{}',
    structured          TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS messages_by_session_time ON messages(session_id, timestamp);
CREATE TABLE IF NOT EXISTS limit_counters (
    key        TEXT PRIMARY KEY NOT NULL,
    value      INTEGER NOT NULL,
    window_end INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS limit_leases (
    key        TEXT NOT NULL,
    owner      TEXT NOT NULL,
    weight     INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    PRIMARY KEY (key, owner)
);
)sql";
// (The two limit_* tables (ABI 1.5 shared limits) came without a version
// bump: kSchema adds them to any file, and a plugin that predates them opens
// the file as before and ignores them.)

const std::string kSessionColumns = "id, user_id, provider, model, status, type, created_at, last_activity, "
                                    "message_count, config, context, metadata";
const std::string kMessageColumns =
    "id, session_id, role, content, timestamp, metadata, provider_message_id, provider_metadata, structured";

bool is_memory_path(const std::string &path) {
    return path == ":memory:";
}

SessionRow read_session_row(const Statement &stmt) {
    SessionRow row;
    row.id = stmt.column_text(0);
    row.user_id = stmt.column_text(1);
    row.provider = stmt.column_text(2);
    row.model = stmt.column_text(3);
    row.status = stmt.column_text(4);
    row.type = stmt.column_text(5);
    row.created_at = stmt.column_int(6);
    row.last_activity = stmt.column_int(7);
    row.message_count = stmt.column_int(8);
    row.config = stmt.column_text(9);
    row.context = stmt.column_text(10);
    row.metadata = stmt.column_text(11);
    return row;
}

MessageRow read_message_row(const Statement &stmt) {
    MessageRow row;
    row.id = stmt.column_text(0);
    row.session_id = stmt.column_text(1);
    row.role = stmt.column_text(2);
    row.content = stmt.column_text(3);
    row.timestamp = stmt.column_int(4);
    row.metadata = stmt.column_text(5);
    row.provider_message_id = stmt.column_text(6);
    row.provider_metadata = stmt.column_text(7);
    row.structured = stmt.column_text(8);
    return row;
}

bool has_column(Connection &db, const char *table, const char *column) {
    auto stmt = db.prepare("SELECT 1 FROM pragma_table_info(?1) WHERE name = ?2");
    stmt.bind(1, std::string_view(table)).bind(2, std::string_view(column));
    return stmt.step();
}

// Brings a file of schema version `from` to kSchemaVersion, inside the
// caller's transaction. kSchema creates what is missing (all of it in a new
// file) but never changes an existing table, so the columns added since
// version 1 are added here. ADD COLUMN with a constant default rewrites no
// row: the old rows read back the default.
void migrate(Connection &db, int64_t from) {
    db.exec_script(kSchema);
    // Checked, not assumed from `from`: a new file (version 0) got the column
    // from kSchema already.
    if (from < 2 && !has_column(db, "messages", "structured"))
        db.exec_script("ALTER TABLE messages ADD COLUMN structured TEXT NOT NULL DEFAULT '';");
}

bool session_exists(Connection &db, std::string_view id) {
    auto stmt = db.prepare("SELECT 1 FROM sessions WHERE id = ?1");
    stmt.bind(1, id);
    return stmt.step();
}

// The status and message of the exception being handled (call in a catch).
std::pair<swh_status, std::string> current_error() noexcept {
    try {
        try {
            throw;
        } catch (const Failure &e) {
            return {e.status(), e.what()};
        } catch (const std::bad_alloc &) {
            return {SWH_E_INTERNAL, "out of memory"};
        } catch (const std::exception &e) {
            return {SWH_E_INTERNAL, std::string("internal error: ") + e.what()};
        } catch (...) {
            return {SWH_E_INTERNAL, "internal error: unknown exception"};
        }
    } catch (...) {
        return {SWH_E_INTERNAL, {}};
    }
}

} // namespace

// ------------------------------------------------------------------ open

struct Store::WriteRequest {
    const Operation *op = nullptr;
    swh_status status = SWH_OK;
    std::string error;
    bool done = false; // guarded by write_mutex_
};

class Store::ReaderLease {
  public:
    explicit ReaderLease(Store &store) : store_(store) {
        std::unique_lock lock(store_.read_mutex_);
        store_.read_cv_.wait(lock, [this] { return !store_.idle_readers_.empty(); });
        connection_ = std::move(store_.idle_readers_.back());
        store_.idle_readers_.pop_back();
    }
    ReaderLease(const ReaderLease &) = delete;
    ReaderLease &operator=(const ReaderLease &) = delete;
    ~ReaderLease() {
        {
            std::lock_guard lock(store_.read_mutex_);
            // Capacity was reserved for every reader: this never allocates.
            store_.idle_readers_.push_back(std::move(connection_));
        }
        store_.read_cv_.notify_one();
    }
    Connection &connection() noexcept { return *connection_; }

  private:
    Store &store_;
    std::unique_ptr<Connection> connection_;
};

Store::Store(StoreOptions options, edge::HostLog log, CommitObserver on_commit)
    : options_(std::move(options)), log_(log), on_commit_(std::move(on_commit)) {
    if (options_.path.empty()) throw Failure(SWH_E_INVALID, "config 'path' is empty");
    if (options_.busy_timeout_ms < 0 || options_.busy_timeout_ms > INT32_MAX)
        throw Failure(SWH_E_INVALID, "config 'busy_timeout_ms' must be between 0 and 2147483647");
    std::string sync = options_.synchronous;
    std::transform(sync.begin(), sync.end(), sync.begin(), [](unsigned char c) { return std::tolower(c); });
    if (sync != "full" && sync != "normal")
        throw Failure(SWH_E_INVALID, "config 'synchronous' must be \"full\" or \"normal\", not \"" +
                                         options_.synchronous + "\"");
    options_.synchronous = sync;
    if (options_.pool_size < 0 || options_.pool_size > 64)
        throw Failure(SWH_E_INVALID, "config 'pool_size' must be between 0 and 64");
    if (options_.group_commit_max_batch < 1 || options_.group_commit_max_batch > kMaxBatchLimit)
        throw Failure(SWH_E_INVALID, "config 'group_commit_max_batch' must be between 1 and " +
                                         std::to_string(kMaxBatchLimit));
    max_batch_ = options_.group_commit ? static_cast<size_t>(options_.group_commit_max_batch) : 1;

    const bool memory = is_memory_path(options_.path);
    if (memory && options_.pool_size > 0) {
        log_(SWH_LOG_INFO,
             "sqlite: ':memory:' database: reads share the writer connection (pool_size ignored)");
    }
    try {
        open_writer();
        const size_t readers = memory ? 0 : static_cast<size_t>(options_.pool_size);
        idle_readers_.reserve(readers);
        for (size_t i = 0; i < readers; ++i) {
            auto reader =
                std::make_unique<Connection>(options_.path, SQLITE_OPEN_READWRITE, options_.busy_timeout_ms);
            reader->exec_script("PRAGMA query_only = ON;");
            idle_readers_.push_back(std::move(reader));
        }
        readers_total_ = readers;
    } catch (const Failure &e) {
        std::string what = e.what();
        if (what.rfind("cannot open database", 0) == 0) throw;
        throw Failure(e.status(), "cannot open database '" + options_.path + "': " + what);
    }

    char line[512];
    std::snprintf(line, sizeof line,
                  "sqlite: opened '%s' (sqlite %s, synchronous=%s, %zu readers, group commit of up to %zu)",
                  options_.path.c_str(), sqlite3_libversion(), options_.synchronous.c_str(), readers_total_,
                  max_batch_);
    log_(SWH_LOG_INFO, line);
}

namespace {

// Commits and committed operations as host metrics (nothing when the host
// offers no metric_add: Host makes it a no-op).
CommitObserver count_commits(cpp::Host host) {
    return [host](size_t operations) {
        host.metric_add("swh_sqlite_commits_total", 1.0);
        host.metric_add("swh_sqlite_committed_operations_total", static_cast<double>(operations));
    };
}

} // namespace

Store::Store(cpp::Host host, const StoreOptions &options)
    : Store(options, edge::HostLog(host.raw()), count_commits(host)) {}

Store::~Store() {
    // Let SQLite refresh its planner statistics if it thinks they are stale
    // (cheap; a no-op most of the time). Connections close after this.
    if (writer_) {
        try {
            writer_->exec_script("PRAGMA optimize;");
        } catch (...) {
        }
    }
}

void Store::open_writer() {
    const bool memory = is_memory_path(options_.path);
    if (!memory) {
        std::filesystem::path parent = std::filesystem::path(options_.path).parent_path();
        if (!parent.empty()) {
            std::error_code ec;
            std::filesystem::create_directories(parent, ec);
            if (ec)
                throw Failure(SWH_E_UNAVAILABLE, "cannot open database '" + options_.path +
                                                     "': cannot create directory '" + parent.string() +
                                                     "': " + ec.message());
        }
    }
    writer_ = std::make_unique<Connection>(options_.path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE,
                                           static_cast<int>(options_.busy_timeout_ms));
    Connection &db = *writer_;
    std::string mode = db.query_text("PRAGMA journal_mode = WAL");
    if (mode != "wal" && !memory) {
        throw Failure(SWH_E_UNAVAILABLE, "cannot switch to WAL journal mode (got '" + mode + "')");
    }
    db.exec_script(options_.synchronous == "full" ? "PRAGMA synchronous = FULL;"
                                                  : "PRAGMA synchronous = NORMAL;");
    db.exec_script("PRAGMA foreign_keys = ON;");

    db.exec_script("BEGIN IMMEDIATE;");
    try {
        const std::string user_version = db.query_text("PRAGMA user_version");
        int64_t version = user_version.empty() ? 0 : std::stoll(user_version);
        if (version > kSchemaVersion)
            throw Failure(SWH_E_UNAVAILABLE, "database schema version " + std::to_string(version) +
                                                 " is newer than this plugin supports (" +
                                                 std::to_string(kSchemaVersion) + ")");
        migrate(db, version);
        db.exec_script(("PRAGMA user_version = " + std::to_string(kSchemaVersion) + ";").c_str());
        db.exec_script("COMMIT;");
    } catch (...) {
        if (db.in_transaction()) {
            try {
                db.exec_script("ROLLBACK;");
            } catch (...) {
            }
        }
        throw;
    }
}

// ------------------------------------------------------- group commit

void Store::write(const Operation &op) {
    WriteRequest request;
    request.op = &op;
    std::vector<WriteRequest *> batch;
    batch.reserve(max_batch_); // allocate before we may become the leader

    std::unique_lock lock(write_mutex_);
    write_queue_.push_back(&request);
    while (!request.done) {
        if (leader_active_) {
            write_cv_.wait(lock);
            continue;
        }
        // Lead one commit: take what is queued (FIFO, bounded).
        leader_active_ = true;
        const size_t n = std::min(write_queue_.size(), max_batch_);
        batch.assign(write_queue_.begin(), write_queue_.begin() + static_cast<std::ptrdiff_t>(n));
        write_queue_.erase(write_queue_.begin(), write_queue_.begin() + static_cast<std::ptrdiff_t>(n));
        lock.unlock();
        commit_batch(batch);
        lock.lock();
        for (WriteRequest *r : batch)
            r->done = true;
        leader_active_ = false;
        write_cv_.notify_all();
    }
    lock.unlock();
    if (request.status != SWH_OK) throw Failure(request.status, request.error);
}

void Store::commit_batch(const std::vector<WriteRequest *> &batch) noexcept {
    Connection &db = *writer_;
    auto record = [](WriteRequest *r, swh_status status, std::string message) noexcept {
        r->status = status;
        try {
            r->error = std::move(message);
        } catch (...) {
        }
    };
    // The whole transaction is gone: fail every operation not already failed.
    auto abort_batch = [&](swh_status status, const std::string &cause) noexcept {
        if (db.in_transaction()) {
            try {
                db.exec("ROLLBACK");
            } catch (...) {
            }
        }
        for (WriteRequest *r : batch) {
            if (r->status != SWH_OK) continue;
            try {
                record(r, status, "not stored, the transaction was rolled back: " + cause);
            } catch (...) {
                r->status = status;
            }
        }
        try {
            log_(SWH_LOG_WARN,
                 "commit of " + std::to_string(batch.size()) + " operation(s) failed: " + cause);
        } catch (...) {
        }
    };

    try {
        db.exec("BEGIN IMMEDIATE");
    } catch (...) {
        auto [status, message] = current_error();
        abort_batch(status, message);
        return;
    }
    size_t committed = 0;
    for (WriteRequest *r : batch) {
        try {
            db.exec("SAVEPOINT op");
        } catch (...) {
            auto [status, message] = current_error();
            abort_batch(status, message);
            return;
        }
        try {
            (*r->op)(db);
            db.exec("RELEASE op");
            ++committed;
        } catch (...) {
            auto [status, message] = current_error();
            record(r, status, message);
            if (!db.in_transaction()) { // SQLite rolled everything back (I/O error, disk full...)
                abort_batch(status == SWH_OK ? SWH_E_UNAVAILABLE : status, message);
                return;
            }
            try {
                db.exec("ROLLBACK TO op");
                db.exec("RELEASE op");
            } catch (...) {
                auto [rb_status, rb_message] = current_error();
                abort_batch(rb_status, rb_message);
                return;
            }
        }
    }
    try {
        db.exec("COMMIT");
    } catch (...) {
        auto [status, message] = current_error();
        abort_batch(status, "commit failed: " + message);
        return;
    }
    if (on_commit_ && committed > 0) {
        try {
            on_commit_(committed);
        } catch (...) {
        }
    }
}

void Store::read(const Operation &op) {
    if (readers_total_ == 0) {
        write(op); // no reader pool: serialise with the writes
        return;
    }
    ReaderLease lease(*this);
    Connection &db = lease.connection();
    db.exec("BEGIN"); // one snapshot for all statements of `op`
    try {
        op(db);
        db.exec("COMMIT");
    } catch (...) {
        if (db.in_transaction()) {
            try {
                db.exec("ROLLBACK");
            } catch (...) {
            }
        }
        throw;
    }
}

// ------------------------------------------------------------ sessions

void Store::create_session(const SessionInput &s) {
    if (s.message_count > static_cast<uint64_t>(INT64_MAX))
        throw Failure(SWH_E_INVALID, "session.message_count out of range");

    write([&](Connection &db) {
        auto stmt = db.prepare("INSERT INTO sessions (" + kSessionColumns +
                               ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)");
        stmt.bind(1, s.id).bind(2, s.user_id).bind(3, s.provider).bind(4, s.model).bind(5, s.status);
        stmt.bind(6, s.type).bind(7, s.created_at).bind(8, s.last_activity);
        stmt.bind(9, static_cast<int64_t>(s.message_count));
        stmt.bind(10, s.config).bind(11, s.context).bind(12, s.metadata);
        try {
            stmt.run();
        } catch (const Failure &e) {
            if (e.status() == SWH_E_CONFLICT)
                throw Failure(SWH_E_CONFLICT, "session " + quoted(s.id) + " already exists");
            throw;
        }
    });
}

std::optional<SessionRow> Store::get_session(std::string_view id) {
    std::optional<SessionRow> result;
    read([&](Connection &db) {
        auto stmt = db.prepare("SELECT " + kSessionColumns + " FROM sessions WHERE id = ?1");
        stmt.bind(1, id);
        if (stmt.step()) result = read_session_row(stmt);
    });
    return result;
}

// The template checked the field bits and the id, and the status when it is
// written.
void Store::update_session(const SessionInput &s, uint32_t fields) {
    const std::string_view id = s.id;

    // Columns in bit order; bound as ?2, ?3, ... (?1 is the id).
    std::string sql = "UPDATE sessions SET ";
    int next = 2;
    auto column = [&](uint32_t bit, const char *name) {
        if ((fields & bit) == 0) return;
        if (next > 2) sql += ", ";
        sql += name;
        sql += " = ?" + std::to_string(next++);
    };
    column(SWH_SESSION_FIELD_STATUS, "status");
    column(SWH_SESSION_FIELD_MODEL, "model");
    column(SWH_SESSION_FIELD_PROVIDER, "provider");
    column(SWH_SESSION_FIELD_CONFIG, "config");
    column(SWH_SESSION_FIELD_CONTEXT, "context");
    column(SWH_SESSION_FIELD_METADATA, "metadata");
    column(SWH_SESSION_FIELD_LAST_ACTIVITY, "last_activity");
    sql += " WHERE id = ?1";

    bool found = false;
    if (fields == 0) { // nothing to write; still report an absent session
        read([&](Connection &db) { found = session_exists(db, id); });
    } else {
        write([&](Connection &db) {
            auto stmt = db.prepare(sql);
            stmt.bind(1, id);
            int index = 2;
            if (fields & SWH_SESSION_FIELD_STATUS) stmt.bind(index++, s.status);
            if (fields & SWH_SESSION_FIELD_MODEL) stmt.bind(index++, s.model);
            if (fields & SWH_SESSION_FIELD_PROVIDER) stmt.bind(index++, s.provider);
            if (fields & SWH_SESSION_FIELD_CONFIG) stmt.bind(index++, s.config);
            if (fields & SWH_SESSION_FIELD_CONTEXT) stmt.bind(index++, s.context);
            if (fields & SWH_SESSION_FIELD_METADATA) stmt.bind(index++, s.metadata);
            if (fields & SWH_SESSION_FIELD_LAST_ACTIVITY) stmt.bind(index++, s.last_activity);
            stmt.run();
            found = db.changes() > 0;
        });
    }
    if (!found) throw Failure(SWH_E_NOT_FOUND, "session " + quoted(id) + " not found");
}

void Store::delete_session(std::string_view id) {
    write([&](Connection &db) {
        db.prepare("DELETE FROM messages WHERE session_id = ?1").bind(1, id).run();
        db.prepare("DELETE FROM sessions WHERE id = ?1").bind(1, id).run();
        if (db.changes() == 0) throw Failure(SWH_E_NOT_FOUND, "session " + quoted(id) + " not found");
    });
}

std::vector<SessionRow> Store::list_sessions(const SessionFilterInput &filter) {
    const std::string_view user_id = filter.user_id, status = filter.status;
    const uint32_t limit = filter.limit, offset = filter.offset;
    std::string sql = "SELECT " + kSessionColumns + " FROM sessions";
    if (!user_id.empty() && !status.empty())
        sql += " WHERE user_id = ?1 AND status = ?2";
    else if (!user_id.empty())
        sql += " WHERE user_id = ?1";
    else if (!status.empty())
        sql += " WHERE status = ?2";
    sql += " ORDER BY last_activity DESC, created_at DESC, id ASC LIMIT ?3 OFFSET ?4";

    std::vector<SessionRow> rows;
    read([&](Connection &db) {
        rows.clear();
        auto stmt = db.prepare(sql);
        if (!user_id.empty()) stmt.bind(1, user_id);
        if (!status.empty()) stmt.bind(2, status);
        stmt.bind(3, limit == 0 ? int64_t{-1} : int64_t{limit});
        stmt.bind(4, int64_t{offset});
        while (stmt.step())
            rows.push_back(read_session_row(stmt));
    });
    return rows;
}

// ------------------------------------------------------------ messages

void Store::add_message(const MessageInput &m) {
    write([&](Connection &db) {
        // One atomic step (this operation's savepoint in the batch
        // transaction): bump the session, then insert the message.
        auto bump = db.prepare(
            "UPDATE sessions SET message_count = message_count + 1, last_activity = ?2 WHERE id = ?1");
        bump.bind(1, m.session_id).bind(2, m.timestamp).run();
        if (db.changes() == 0)
            throw Failure(SWH_E_NOT_FOUND, "session " + quoted(m.session_id) + " not found");

        auto insert = db.prepare("INSERT INTO messages (" + kMessageColumns +
                                 ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)");
        insert.bind(1, m.id).bind(2, m.session_id).bind(3, m.role).bind(4, m.content).bind(5, m.timestamp);
        insert.bind(6, m.metadata).bind(7, m.provider_message_id).bind(8, m.provider_metadata);
        insert.bind(9, m.structured);
        try {
            insert.run();
        } catch (const Failure &e) {
            if (e.status() == SWH_E_CONFLICT)
                throw Failure(SWH_E_CONFLICT, "message " + quoted(m.id) + " already exists");
            throw;
        }
    });
}

// ------------------------------------------------------------ limits
// Shared limits (ABI 1.5) of the daemons on this one file: each is one write
// operation, so the writer's BEGIN IMMEDIATE makes it one step across
// processes. One file means one machine, so its clock is every daemon's.

namespace {
int64_t now_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}
} // namespace

int64_t Store::counter_add(std::string_view key, int64_t delta, uint32_t window_ms) {
    int64_t value = 0;
    const int64_t now = now_ms();
    write([&](Connection &db) {
        auto add =
            db.prepare("INSERT INTO limit_counters (key, value, window_end) VALUES (?1, ?2, ?3 + ?4) "
                       "ON CONFLICT (key) DO UPDATE SET "
                       "value = CASE WHEN window_end <= ?3 THEN excluded.value ELSE value + excluded.value "
                       "END, "
                       "window_end = CASE WHEN window_end <= ?3 THEN excluded.window_end ELSE window_end "
                       "END RETURNING value");
        add.bind(1, key).bind(2, delta).bind(3, now).bind(4, static_cast<int64_t>(window_ms));
        if (add.step()) value = add.column_int(0);
        while (add.step()) {
        }
    });
    return value;
}

store::LeaseOutcome Store::lease_acquire(const store::LeaseInput &lease) {
    store::LeaseOutcome outcome;
    const int64_t now = now_ms(), expires = now + lease.ttl_ms;
    write([&](Connection &db) {
        db.prepare("DELETE FROM limit_leases WHERE key = ?1 AND expires_at <= ?2")
            .bind(1, lease.key)
            .bind(2, now)
            .run();
        auto renew = db.prepare("UPDATE limit_leases SET expires_at = ?3 WHERE key = ?1 AND owner = ?2");
        renew.bind(1, lease.key).bind(2, lease.owner).bind(3, expires).run();
        const bool renewed = db.changes() > 0;
        auto sum = db.prepare("SELECT coalesce(sum(weight), 0) FROM limit_leases WHERE key = ?1");
        sum.bind(1, lease.key);
        outcome.held = sum.step() ? static_cast<uint64_t>(sum.column_int(0)) : 0;
        while (sum.step()) {
        }
        outcome.taken = renewed;
        if (renewed || (lease.limit > 0 && outcome.held + lease.weight > lease.limit)) return;
        auto take =
            db.prepare("INSERT INTO limit_leases (key, owner, weight, expires_at) VALUES (?1, ?2, ?3, ?4)");
        take.bind(1, lease.key)
            .bind(2, lease.owner)
            .bind(3, static_cast<int64_t>(lease.weight))
            .bind(4, expires);
        take.run();
        outcome.taken = true;
        outcome.held += lease.weight;
    });
    return outcome;
}

void Store::lease_release(std::string_view key, std::string_view owner) {
    write([&](Connection &db) {
        db.prepare("DELETE FROM limit_leases WHERE key = ?1 AND owner = ?2")
            .bind(1, key)
            .bind(2, owner)
            .run();
    });
}

std::vector<MessageRow> Store::get_messages(const MessageQueryInput &query) {
    const std::string_view session_id = query.session_id, role = query.role;
    const int64_t since = query.since;
    const uint32_t limit = query.limit;
    std::string sql = "SELECT " + kMessageColumns + " FROM messages WHERE session_id = ?1";
    if (!role.empty()) sql += " AND role = ?2";
    if (since != 0) sql += " AND timestamp >= ?3";
    // With a limit: the LAST `limit` matching, read newest first, then reversed.
    sql += limit == 0 ? " ORDER BY timestamp ASC, seq ASC" : " ORDER BY timestamp DESC, seq DESC LIMIT ?4";

    std::vector<MessageRow> rows;
    bool found = false;
    read([&](Connection &db) {
        rows.clear();
        found = session_exists(db, session_id);
        if (!found) return;
        auto stmt = db.prepare(sql);
        stmt.bind(1, session_id);
        if (!role.empty()) stmt.bind(2, role);
        if (since != 0) stmt.bind(3, since);
        if (limit != 0) stmt.bind(4, int64_t{limit});
        while (stmt.step())
            rows.push_back(read_message_row(stmt));
    });
    if (!found) throw Failure(SWH_E_NOT_FOUND, "session " + quoted(session_id) + " not found");
    if (limit != 0) std::reverse(rows.begin(), rows.end());
    return rows;
}

void Store::describe(nlohmann::json &report) const {
    report["backend"] = "sqlite";
    report["sqlite_version"] = sqlite3_libversion();
    report["path"] = options_.path;
}

void Store::health(nlohmann::json &report) {
    std::string journal_mode;
    int64_t sessions = 0;
    read([&](Connection &db) {
        {
            auto mode = db.prepare("PRAGMA journal_mode");
            journal_mode = mode.step() ? mode.column_text(0) : std::string();
        }
        auto count = db.prepare("SELECT COUNT(*) FROM sessions");
        sessions = count.step() ? count.column_int(0) : 0;
    });
    report["journal_mode"] = journal_mode;
    report["sessions"] = sessions;
    report["synchronous"] = options_.synchronous;
    report["readers"] = readers_total_;
}

} // namespace swh::sqlite
