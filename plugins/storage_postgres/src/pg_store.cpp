#include "pg_store.hpp"

#include <poll.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <utility>

namespace swh::postgres {

using edge::Failure;
using store::quoted;

namespace {

// Schema migrations, applied in order under an advisory lock; each is
// idempotent (IF NOT EXISTS) and recorded in swh_schema_version. Append only:
// a database is at the version of the last one applied.
constexpr std::array<const char *, 4> kMigrations = {
    R"sql(
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
)sql",
    // 2: ABI 1.3 structured content (tool calls, parts, reasoning) as text; ""
    // = a plain message, which every row of version 1 is. A constant default
    // rewrites no row (PostgreSQL 11+).
    R"sql(
ALTER TABLE swh_messages ADD COLUMN IF NOT EXISTS structured text NOT NULL DEFAULT '';
)sql",
    // 3: ABI 1.4 event carrier. No foreign key to swh_sessions: a session's
    // last event ("session_deleted") outlives its row until trimmed.
    R"sql(
CREATE TABLE IF NOT EXISTS swh_event_heads (
    session_id text PRIMARY KEY,
    last_seq   bigint NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS swh_events (
    session_id text NOT NULL,
    seq        bigint NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    payload    text NOT NULL,
    PRIMARY KEY (session_id, seq)
);
CREATE INDEX IF NOT EXISTS swh_events_by_time ON swh_events (created_at);
)sql",
    // 4: ABI 1.5 shared limits. A lease is taken under the row lock of its
    // key's head row (the upsert), so the sum of the key's leases and the
    // insert are one step across daemons; in a plpgsql function each
    // statement sees what the previous holder of that lock committed.
    R"sql(
CREATE TABLE IF NOT EXISTS swh_counters (
    key        text PRIMARY KEY,
    value      bigint NOT NULL,
    window_end timestamptz NOT NULL
);
CREATE TABLE IF NOT EXISTS swh_lease_heads (key text PRIMARY KEY);
CREATE TABLE IF NOT EXISTS swh_leases (
    key        text NOT NULL,
    owner      text NOT NULL,
    weight     bigint NOT NULL,
    expires_at timestamptz NOT NULL,
    PRIMARY KEY (key, owner)
);
CREATE INDEX IF NOT EXISTS swh_leases_by_expiry ON swh_leases (expires_at);
CREATE OR REPLACE FUNCTION swh_lease_acquire(k text, o text, w bigint, lim bigint, ttl_ms bigint,
                                             OUT taken boolean, OUT held bigint) AS $fn$
BEGIN
  INSERT INTO swh_lease_heads (key) VALUES (k) ON CONFLICT (key) DO UPDATE SET key = excluded.key;
  DELETE FROM swh_leases WHERE key = k AND expires_at <= clock_timestamp();
  UPDATE swh_leases SET expires_at = clock_timestamp() + ttl_ms * interval '1 millisecond'
   WHERE key = k AND owner = o;
  taken := FOUND;
  SELECT coalesce(sum(weight), 0) INTO held FROM swh_leases WHERE key = k;
  IF taken THEN RETURN; END IF;
  IF lim > 0 AND held + w > lim THEN RETURN; END IF;
  INSERT INTO swh_leases (key, owner, weight, expires_at)
  VALUES (k, o, w, clock_timestamp() + ttl_ms * interval '1 millisecond');
  taken := true;
  held := held + w;
END
$fn$ LANGUAGE plpgsql;
)sql",
};

// The NOTIFY channel of the event carrier.
constexpr const char *kEventChannel = "swh_events";

// Any constant works; it only has to be the same for every daemon.
constexpr const char *kMigrationLock = "SELECT pg_advisory_xact_lock(7304615120394871)";

#define SWH_PG_SESSION_COLUMNS                                                                               \
    "id, user_id, provider, model, status, type, created_at, last_activity, message_count, config, "         \
    "context, metadata"
#define SWH_PG_MESSAGE_COLUMNS                                                                               \
    "id, session_id, role, content, timestamp, metadata, provider_message_id, provider_metadata, structured"

constexpr Oid kText = 25, kInt8 = 20;
constexpr Oid kFilterTypes[] = {kText, kText, kInt8, kInt8}; // $1..$4 of list_* / messages_*

struct Statement {
    const char *name;
    const char *sql;
    const Oid *types = nullptr; // declared parameter types (needed when one is unused)
    int ntypes = 0;
};

// Prepared on every connection. list_* and get_messages_* come in variants so
// that each has a plan that uses its index.
constexpr Statement kStatements[] = {
    {"create_session", "INSERT INTO swh_sessions (" SWH_PG_SESSION_COLUMNS
                       ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 0, $9, $10, $11)"},
    {"get_session", "SELECT " SWH_PG_SESSION_COLUMNS " FROM swh_sessions WHERE id = $1"},
    {"session_exists", "SELECT 1 FROM swh_sessions WHERE id = $1"},
    // $2 = SWH_SESSION_FIELD_* mask: one statement for every combination.
    {"update_session", "UPDATE swh_sessions SET "
                       "status        = CASE WHEN ($2::int & 1)  <> 0 THEN $3 ELSE status END, "
                       "model         = CASE WHEN ($2::int & 2)  <> 0 THEN $4 ELSE model END, "
                       "provider      = CASE WHEN ($2::int & 4)  <> 0 THEN $5 ELSE provider END, "
                       "config        = CASE WHEN ($2::int & 8)  <> 0 THEN $6 ELSE config END, "
                       "context       = CASE WHEN ($2::int & 16) <> 0 THEN $7 ELSE context END, "
                       "metadata      = CASE WHEN ($2::int & 32) <> 0 THEN $8 ELSE metadata END, "
                       "last_activity = CASE WHEN ($2::int & 64) <> 0 THEN $9::bigint ELSE last_activity END "
                       "WHERE id = $1"},
    {"delete_session", "DELETE FROM swh_sessions WHERE id = $1"},
    {"list_all",
     "SELECT " SWH_PG_SESSION_COLUMNS " FROM swh_sessions "
     "ORDER BY last_activity DESC, created_at DESC, id LIMIT $3 OFFSET $4",
     kFilterTypes, 4},
    {"list_user",
     "SELECT " SWH_PG_SESSION_COLUMNS " FROM swh_sessions WHERE user_id = $1 "
     "ORDER BY last_activity DESC, created_at DESC, id LIMIT $3 OFFSET $4",
     kFilterTypes, 4},
    {"list_status",
     "SELECT " SWH_PG_SESSION_COLUMNS " FROM swh_sessions WHERE status = $2 "
     "ORDER BY last_activity DESC, created_at DESC, id LIMIT $3 OFFSET $4",
     kFilterTypes, 4},
    {"list_user_status",
     "SELECT " SWH_PG_SESSION_COLUMNS " FROM swh_sessions WHERE user_id = $1 AND status = $2 "
     "ORDER BY last_activity DESC, created_at DESC, id LIMIT $3 OFFSET $4",
     kFilterTypes, 4},
    // The session row's lock (UPDATE) serialises writers of one session; the
    // INSERT runs only when the session exists. One statement, one transaction.
    {"add_message", "WITH bumped AS (UPDATE swh_sessions SET message_count = message_count + 1, "
                    "last_activity = $5::bigint WHERE id = $2 RETURNING id) "
                    "INSERT INTO swh_messages (" SWH_PG_MESSAGE_COLUMNS ") "
                    "SELECT $1, bumped.id, $3, $4, $5::bigint, $6, $7, $8, $9 FROM bumped"},
    // Newest first (reversed by the caller); LIMIT NULL means no limit.
    {"messages_any",
     "SELECT " SWH_PG_MESSAGE_COLUMNS " FROM swh_messages WHERE session_id = $1 "
     "AND timestamp >= $3::bigint ORDER BY timestamp DESC, seq DESC LIMIT $4::bigint",
     kFilterTypes, 4},
    // Event carrier: the counter row's lock orders one session's events
    // across daemons; the NOTIFY goes out at commit, after the row is
    // visible. Older events beyond the per-session bound go in the same step.
    {"events_publish",
     "WITH head AS (INSERT INTO swh_event_heads AS h (session_id, last_seq) VALUES ($1, 1) "
     "ON CONFLICT (session_id) DO UPDATE SET last_seq = h.last_seq + 1, updated_at = now() "
     "RETURNING last_seq), "
     "added AS (INSERT INTO swh_events (session_id, seq, payload) SELECT $1, last_seq, $2 FROM head "
     "RETURNING seq), "
     "trimmed AS (DELETE FROM swh_events WHERE session_id = $1 AND seq <= (SELECT seq FROM added) - "
     "$4::bigint) "
     "SELECT seq, pg_notify($3, $1 || ' ' || seq) FROM added"},
    {"events_range", "SELECT coalesce((SELECT min(seq) FROM swh_events WHERE session_id = $1), 0), "
                     "coalesce((SELECT last_seq FROM swh_event_heads WHERE session_id = $1), 0)"},
    {"events_read",
     "SELECT seq, payload FROM swh_events WHERE session_id = $1 AND seq > $2::bigint ORDER BY seq "
     "LIMIT $3::bigint"},
    // Counters of sessions that are gone and quiet go too (a live session
    // keeps its counter, so its numbering never restarts under a listener).
    {"events_trim",
     "WITH old AS (DELETE FROM swh_events WHERE created_at < now() - make_interval(secs => $1::bigint)) "
     "DELETE FROM swh_event_heads h WHERE updated_at < now() - make_interval(secs => $1::bigint) "
     "AND NOT EXISTS (SELECT 1 FROM swh_sessions s WHERE s.id = h.session_id)"},
    // Shared limits (1.5). A counter whose window ended starts again from
    // the delta; the row lock of the upsert orders concurrent adds.
    {"counter_add", "INSERT INTO swh_counters AS c (key, value, window_end) "
                    "VALUES ($1, $2::bigint, clock_timestamp() + $3::bigint * interval '1 millisecond') "
                    "ON CONFLICT (key) DO UPDATE SET "
                    "value = CASE WHEN c.window_end <= clock_timestamp() THEN excluded.value ELSE c.value + "
                    "excluded.value END, "
                    "window_end = CASE WHEN c.window_end <= clock_timestamp() THEN excluded.window_end ELSE "
                    "c.window_end END "
                    "RETURNING value"},
    {"lease_acquire",
     "SELECT taken, held FROM swh_lease_acquire($1, $2, $3::bigint, $4::bigint, $5::bigint)"},
    {"lease_release", "DELETE FROM swh_leases WHERE key = $1 AND owner = $2"},
    // Lapsed leases and ended windows; head rows without leases (a head row
    // is only the lock of its key: one deleted under a waiter is re-made).
    {"limits_trim",
     "WITH counters AS (DELETE FROM swh_counters WHERE window_end < clock_timestamp() - interval '1 "
     "minute'), "
     "leases AS (DELETE FROM swh_leases WHERE expires_at < clock_timestamp() - interval '1 minute') "
     "DELETE FROM swh_lease_heads h WHERE NOT EXISTS (SELECT 1 FROM swh_leases l WHERE l.key = h.key)"},
    {"messages_role",
     "SELECT " SWH_PG_MESSAGE_COLUMNS " FROM swh_messages WHERE session_id = $1 AND role = $2 "
     "AND timestamp >= $3::bigint ORDER BY timestamp DESC, seq DESC LIMIT $4::bigint",
     kFilterTypes, 4},
};

struct ResultDeleter {
    void operator()(PGresult *r) const noexcept { PQclear(r); }
};
using Result = std::unique_ptr<PGresult, ResultDeleter>;

int64_t to_int(const char *text) {
    return text == nullptr ? 0 : std::strtoll(text, nullptr, 10);
}

std::string trimmed(const char *message) {
    std::string text = message ? message : "";
    while (!text.empty() && (text.back() == '\n' || text.back() == ' '))
        text.pop_back();
    return text;
}

// SQLSTATE -> status. Connection-level problems are UNAVAILABLE (retry later).
swh_status status_for(std::string_view state) {
    if (state == "23505") return SWH_E_CONFLICT;  // unique_violation
    if (state == "23503") return SWH_E_NOT_FOUND; // foreign_key_violation
    if (state == "57014") return SWH_E_TIMEOUT;   // query_canceled (statement_timeout)
    if (state.size() != 5) return SWH_E_UNAVAILABLE;
    const std::string_view cls = state.substr(0, 2);
    if (cls == "22" || cls == "23") return SWH_E_INVALID; // data exception, constraint
    if (cls == "08" || cls == "53" || cls == "57" || cls == "58" || cls == "40" || cls == "28" || cls == "3D")
        return SWH_E_UNAVAILABLE; // connection, resources, shutdown, I/O, retry, auth, no database
    return SWH_E_INTERNAL;
}

} // namespace

// ---------------------------------------------------------------- connection

// An integer parameter, kept as decimal text for the duration of the call.
struct Int {
    explicit Int(int64_t v) : text(std::to_string(v)) {}
    std::string text;
};

struct Param {
    Param(std::string_view s)
        : data(s.data() != nullptr ? s.data() : ""), length(static_cast<int>(s.size())) {}
    Param(const Int &i) : data(i.text.c_str()), length(0), format(0) {}
    Param(std::nullopt_t) : data(nullptr), length(0), format(0) {}
    Param(std::optional<Int> const &i) : data(i ? i->text.c_str() : nullptr), length(0), format(0) {}
    const char *data;
    int length;
    int format = 1;
};

class Connection {
  public:
    Connection(const Options &options, const std::string &where)
        : where_(where), call_timeout_ms_(options.call_timeout_ms) {
        const std::string timeout_s =
            std::to_string(std::max<int64_t>(2, (options.connect_timeout_ms + 999) / 1000));
        // tcp_user_timeout and keepalives find a dead host or a cut network;
        // a stopped server's kernel still acknowledges, which only the call
        // deadline below notices.
        const std::string user_timeout = std::to_string(options.call_timeout_ms + options.connect_timeout_ms);
        const char *keys[] = {"dbname",     "connect_timeout",  "tcp_user_timeout",
                              "keepalives", "application_name", nullptr};
        const char *values[] = {
            options.conninfo.c_str(), timeout_s.c_str(), user_timeout.c_str(), "1", "swarmhost", nullptr};
        conn_.reset(PQconnectdbParams(keys, values, 1));
        if (conn_ == nullptr) throw Failure(SWH_E_INTERNAL, "postgres: out of memory while connecting");
        if (PQstatus(raw()) != CONNECTION_OK)
            throw Failure(SWH_E_UNAVAILABLE,
                          "postgres: cannot connect to " + where_ + ": " + trimmed(PQerrorMessage(raw())));
        // Server notices ("already exists, skipping") would go to stderr.
        PQsetNoticeProcessor(
            raw(), [](void *, const char *) {}, nullptr);
        // Sends never block: every wait is a poll() with the call's deadline.
        if (PQsetnonblocking(raw(), 1) != 0)
            throw Failure(SWH_E_INTERNAL, "postgres: cannot make the connection non-blocking");
        exec("SET statement_timeout = " + std::to_string(options.statement_timeout_ms));
    }
    Connection(const Connection &) = delete;
    Connection &operator=(const Connection &) = delete;

    bool broken() const noexcept { return timed_out_ || PQstatus(raw()) != CONNECTION_OK; }
    // The server did not answer within call_timeout_ms: the connection is
    // dropped, not reused, and a read is not retried (see store::Pool::run).
    bool timed_out() const noexcept { return timed_out_; }
    int socket() const noexcept { return PQsocket(raw()); }
    PGconn *raw() const noexcept { return conn_.get(); }

    void prepare_all() {
        for (const Statement &s : kStatements)
            finish(PQsendPrepare(raw(), s.name, s.sql, s.ntypes, s.types), s.name);
    }

    Result exec(const std::string &sql) { return finish(PQsendQuery(raw(), sql.c_str()), "query"); }

    // Parameters: text bytes as is (binary format of text = the raw UTF-8,
    // no NUL terminator needed), integers as decimal text, nullopt = NULL.
    Result run(const char *name, std::initializer_list<Param> params) {
        const size_t n = params.size();
        std::vector<const char *> values(n);
        std::vector<int> lengths(n), formats(n);
        size_t i = 0;
        for (const Param &p : params) {
            values[i] = p.data;
            lengths[i] = p.length;
            formats[i] = p.format;
            ++i;
        }
        return finish(PQsendQueryPrepared(raw(), name, static_cast<int>(n), values.data(), lengths.data(),
                                          formats.data(), 0),
                      name);
    }

  private:
    using Clock = std::chrono::steady_clock;

    // Waits for the answer to what was just sent, at most call_timeout_ms
    // from now, and returns its result (the first failing one of a
    // multi-statement text, else the last).
    Result finish(int sent, const char *what) {
        if (sent == 0) lost(what);
        const auto deadline = Clock::now() + std::chrono::milliseconds(call_timeout_ms_);
        for (;;) { // the request may be bigger than the socket buffer
            const int flushed = PQflush(raw());
            if (flushed < 0) lost(what);
            if (flushed == 0) break;
            wait(POLLIN | POLLOUT, deadline, what); // reading lets libpq drain server output
            if (PQconsumeInput(raw()) == 0) lost(what);
        }
        Result kept;
        for (;;) {
            while (PQisBusy(raw()) != 0) {
                wait(POLLIN, deadline, what);
                if (PQconsumeInput(raw()) == 0) lost(what);
            }
            Result r(PQgetResult(raw()));
            if (!r) break;
            if (!kept || succeeded(kept.get())) kept = std::move(r); // a failure, once kept, stays
        }
        return check(std::move(kept), what);
    }

    // poll() until the socket is ready or the deadline has passed; a silent
    // server (stopped, hung, a dropped link) ends in SWH_E_TIMEOUT.
    void wait(short events, Clock::time_point deadline, const char *what) {
        for (;;) {
            int timeout_ms = -1;
            if (call_timeout_ms_ > 0) {
                const auto left =
                    std::chrono::ceil<std::chrono::milliseconds>(deadline - Clock::now()).count();
                if (left <= 0) give_up(what);
                timeout_ms = static_cast<int>(std::min<int64_t>(left, 60'000));
            }
            pollfd p{PQsocket(raw()), events, 0};
            const int ready = ::poll(&p, 1, timeout_ms);
            if (ready > 0) return;
            if (ready < 0 && errno != EINTR) lost(what);
        }
    }

    [[noreturn]] void give_up(const char *what) {
        timed_out_ = true;
        throw Failure(SWH_E_TIMEOUT, "postgres: " + where_ + " did not answer " + what + " within " +
                                         std::to_string(call_timeout_ms_) +
                                         " ms (call_timeout_ms); connection dropped");
    }

    [[noreturn]] void lost(const char *what) const {
        throw Failure(SWH_E_UNAVAILABLE, "postgres: connection to " + where_ + " lost during " + what + ": " +
                                             trimmed(PQerrorMessage(raw())));
    }

    static bool succeeded(const PGresult *r) noexcept {
        const ExecStatusType st = PQresultStatus(r);
        return st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK;
    }

    Result check(Result r, const char *what) {
        if (r && succeeded(r.get())) return r;
        if (!r || broken()) lost(what);
        const char *state = PQresultErrorField(r.get(), PG_DIAG_SQLSTATE);
        std::string message = trimmed(PQresultErrorMessage(r.get()));
        throw Failure(status_for(state ? state : ""), "postgres: " + std::string(what) + ": " + message);
    }

    struct Finish {
        void operator()(PGconn *c) const noexcept { PQfinish(c); }
    };
    std::string where_;
    int64_t call_timeout_ms_;
    // Owned from the first line of the constructor, so a connection whose
    // set-up fails (as it does against a frozen server) is closed.
    std::unique_ptr<PGconn, Finish> conn_;
    bool timed_out_ = false;
};

// ---------------------------------------------------------------- helpers

namespace {

const char *cell(const PGresult *r, int row, int col) {
    return PQgetisnull(r, row, col) ? "" : PQgetvalue(r, row, col);
}

std::string text(const PGresult *r, int row, int col) {
    return std::string(cell(r, row, col), static_cast<size_t>(PQgetlength(r, row, col)));
}

SessionRow session_row(const PGresult *r, int i) {
    SessionRow row;
    row.id = text(r, i, 0);
    row.user_id = text(r, i, 1);
    row.provider = text(r, i, 2);
    row.model = text(r, i, 3);
    row.status = text(r, i, 4);
    row.type = text(r, i, 5);
    row.created_at = to_int(cell(r, i, 6));
    row.last_activity = to_int(cell(r, i, 7));
    row.message_count = to_int(cell(r, i, 8));
    row.config = text(r, i, 9);
    row.context = text(r, i, 10);
    row.metadata = text(r, i, 11);
    return row;
}

MessageRow message_row(const PGresult *r, int i) {
    MessageRow row;
    row.id = text(r, i, 0);
    row.session_id = text(r, i, 1);
    row.role = text(r, i, 2);
    row.content = text(r, i, 3);
    row.timestamp = to_int(cell(r, i, 4));
    row.metadata = text(r, i, 5);
    row.provider_message_id = text(r, i, 6);
    row.provider_metadata = text(r, i, 7);
    row.structured = text(r, i, 8);
    return row;
}

int64_t affected(const Result &r) {
    return to_int(PQcmdTuples(r.get()));
}

std::string describe_target(const std::string &conninfo) {
    // Parse the conninfo to name host/port/db without the password.
    char *err = nullptr;
    PQconninfoOption *opts = PQconninfoParse(conninfo.c_str(), &err);
    if (opts == nullptr) {
        std::string reason = err ? trimmed(err) : "invalid";
        PQfreemem(err);
        throw Failure(SWH_E_INVALID,
                      "postgres: config 'conninfo' is not a valid connection string: " + reason);
    }
    std::string host = "localhost", port = "5432", db;
    for (PQconninfoOption *o = opts; o->keyword != nullptr; ++o) {
        if (o->val == nullptr) continue;
        if (std::strcmp(o->keyword, "host") == 0 ||
            (std::strcmp(o->keyword, "hostaddr") == 0 && host == "localhost"))
            host = o->val;
        else if (std::strcmp(o->keyword, "port") == 0)
            port = o->val;
        else if (std::strcmp(o->keyword, "dbname") == 0)
            db = o->val;
    }
    PQconninfoFree(opts);
    return host + ":" + port + (db.empty() ? "" : "/" + db);
}

} // namespace

// ---------------------------------------------------------------- store

Store::Store(Options options, edge::HostLog log)
    : options_(std::move(options)), log_(log), where_(describe_target(options_.conninfo)),
      pool_(static_cast<size_t>(options_.pool_size), [this] { return connect(); }) {
    if (options_.pool_size < 1 || options_.pool_size > 256)
        throw Failure(SWH_E_INVALID, "postgres: config 'pool_size' must be between 1 and 256");
    if (options_.connect_timeout_ms < 1 || options_.statement_timeout_ms < 0 || options_.call_timeout_ms < 0)
        throw Failure(SWH_E_INVALID, "postgres: timeouts must be positive");
    // Migrate through a plain connection (statements are prepared after).
    {
        Connection db(options_, where_);
        migrate(db);
    }
    { auto lease = pool_.acquire(); } // one pooled connection, proves prepare works
    log_(SWH_LOG_INFO, "postgres: connected to " + where_ + " (schema version " +
                           std::to_string(schema_version_) + ", pool " + std::to_string(options_.pool_size) +
                           ")");
}

Store::~Store() = default;

std::unique_ptr<Connection> Store::connect() {
    auto db = std::make_unique<Connection>(options_, where_);
    db->prepare_all();
    return db;
}

void Store::migrate(Connection &db) {
    db.exec("BEGIN");
    try {
        db.exec(kMigrationLock); // two daemons starting at once: one migrates, the other waits
        db.exec("CREATE TABLE IF NOT EXISTS swh_schema_version (version integer PRIMARY KEY, "
                "applied_at timestamptz NOT NULL DEFAULT now())");
        Result r = db.exec("SELECT coalesce(max(version), 0) FROM swh_schema_version");
        int current = static_cast<int>(to_int(cell(r.get(), 0, 0)));
        const int known = static_cast<int>(kMigrations.size());
        if (current > known)
            throw Failure(SWH_E_UNAVAILABLE, "postgres: database schema version " + std::to_string(current) +
                                                 " is newer than this plugin supports (" +
                                                 std::to_string(known) + ")");
        for (int v = current + 1; v <= known; ++v) {
            db.exec(kMigrations[static_cast<size_t>(v - 1)]);
            db.exec("INSERT INTO swh_schema_version (version) VALUES (" + std::to_string(v) + ")");
            log_(SWH_LOG_INFO, "postgres: applied schema migration " + std::to_string(v));
        }
        db.exec("COMMIT");
        schema_version_ = known;
    } catch (...) {
        if (!db.broken()) {
            try {
                db.exec("ROLLBACK");
            } catch (const Failure &) { // the first failure is the one to report
            }
        }
        throw;
    }
}

void Store::create_session(const SessionInput &s) {
    pool_.run(false, [&](Connection &db) {
        try {
            db.run("create_session",
                   {s.id, s.user_id, s.provider, s.model, s.status, s.type, Int(s.created_at),
                    Int(s.last_activity), s.config, s.context, s.metadata});
        } catch (const Failure &e) {
            if (e.status() == SWH_E_CONFLICT)
                throw Failure(SWH_E_CONFLICT, "session " + quoted(s.id) + " already exists");
            throw;
        }
    });
}

std::optional<SessionRow> Store::get_session(std::string_view id) {
    return pool_.run(true, [&](Connection &db) -> std::optional<SessionRow> {
        Result r = db.run("get_session", {id});
        if (PQntuples(r.get()) == 0) return std::nullopt;
        return session_row(r.get(), 0);
    });
}

void Store::update_session(const SessionInput &s, uint32_t fields) {
    bool found = pool_.run(false, [&](Connection &db) {
        if (fields == 0) return PQntuples(db.run("session_exists", {s.id}).get()) > 0;
        Result r = db.run("update_session", {s.id, Int(fields), s.status, s.model, s.provider, s.config,
                                             s.context, s.metadata, Int(s.last_activity)});
        return affected(r) > 0;
    });
    if (!found) throw Failure(SWH_E_NOT_FOUND, "session " + quoted(s.id) + " not found");
}

void Store::delete_session(std::string_view id) {
    bool found =
        pool_.run(false, [&](Connection &db) { return affected(db.run("delete_session", {id})) > 0; });
    if (!found) throw Failure(SWH_E_NOT_FOUND, "session " + quoted(id) + " not found");
}

std::vector<SessionRow> Store::list_sessions(const SessionFilterInput &f) {
    const char *name = f.user_id.empty() ? (f.status.empty() ? "list_all" : "list_status")
                                         : (f.status.empty() ? "list_user" : "list_user_status");
    std::optional<Int> limit;
    if (f.limit != 0) limit.emplace(f.limit);
    return pool_.run(true, [&](Connection &db) {
        Result r = db.run(name, {f.user_id, f.status, limit, Int(f.offset)});
        std::vector<SessionRow> rows;
        rows.reserve(static_cast<size_t>(PQntuples(r.get())));
        for (int i = 0; i < PQntuples(r.get()); ++i)
            rows.push_back(session_row(r.get(), i));
        return rows;
    });
}

void Store::add_message(const MessageInput &m) {
    int64_t inserted = pool_.run(false, [&](Connection &db) {
        try {
            return affected(
                db.run("add_message", {m.id, m.session_id, m.role, m.content, Int(m.timestamp), m.metadata,
                                       m.provider_message_id, m.provider_metadata, m.structured}));
        } catch (const Failure &e) {
            if (e.status() == SWH_E_CONFLICT)
                throw Failure(SWH_E_CONFLICT, "message " + quoted(m.id) + " already exists");
            throw;
        }
    });
    if (inserted == 0) throw Failure(SWH_E_NOT_FOUND, "session " + quoted(m.session_id) + " not found");
}

std::vector<MessageRow> Store::get_messages(const MessageQueryInput &q) {
    std::optional<Int> limit;
    if (q.limit != 0) limit.emplace(q.limit);
    bool found = true;
    auto rows = pool_.run(true, [&](Connection &db) {
        Result r = db.run(q.role.empty() ? "messages_any" : "messages_role",
                          {q.session_id, q.role, Int(q.since), limit});
        const int n = PQntuples(r.get());
        std::vector<MessageRow> out;
        out.reserve(static_cast<size_t>(n));
        for (int i = n - 1; i >= 0; --i) // newest first -> chronological
            out.push_back(message_row(r.get(), i));
        if (n == 0) found = PQntuples(db.run("session_exists", {q.session_id}).get()) > 0;
        return out;
    });
    if (!found) throw Failure(SWH_E_NOT_FOUND, "session " + quoted(q.session_id) + " not found");
    return rows;
}

// ---------------------------------------------------------------- events

uint64_t Store::events_publish(std::string_view session_id, std::string_view payload) {
    const uint64_t seq = pool_.run(false, [&](Connection &db) {
        Result r = db.run("events_publish", {session_id, payload, std::string_view(kEventChannel),
                                             Int(options_.events_max_per_session)});
        return static_cast<uint64_t>(to_int(cell(r.get(), 0, 0)));
    });
    if (published_.fetch_add(1) % 256 == 0) {
        try {
            pool_.run(false, [&](Connection &db) {
                trim_events(db);
                return 0;
            });
        } catch (const Failure &e) { // the event is stored; trimming waits for the next round
            log_(SWH_LOG_WARN, std::string("postgres: trimming old events failed: ") + e.what());
        }
    }
    return seq;
}

void Store::trim_events(Connection &db) {
    db.run("events_trim", {Int(options_.events_retention_seconds)});
}

store::EventPage Store::events_read(std::string_view session_id, uint64_t after_seq, uint32_t limit) {
    return pool_.run(true, [&](Connection &db) {
        store::EventPage page;
        Result range = db.run("events_range", {session_id});
        page.last_seq = static_cast<uint64_t>(to_int(cell(range.get(), 0, 1)));
        const auto first = static_cast<uint64_t>(to_int(cell(range.get(), 0, 0)));
        page.first_seq = first != 0 ? first : (page.last_seq != 0 ? page.last_seq + 1 : 0);
        if (limit == 0) return page;
        Result r = db.run("events_read", {session_id, Int(static_cast<int64_t>(after_seq)), Int(limit)});
        const int n = PQntuples(r.get());
        page.events.reserve(static_cast<size_t>(n));
        for (int i = 0; i < n; ++i)
            page.events.push_back({static_cast<uint64_t>(to_int(cell(r.get(), i, 0))), text(r.get(), i, 1)});
        return page;
    });
}

// ---------------------------------------------------------------- limits

int64_t Store::counter_add(std::string_view key, int64_t delta, uint32_t window_ms) {
    const int64_t value = pool_.run(false, [&](Connection &db) {
        Result r = db.run("counter_add", {key, Int(delta), Int(window_ms)});
        return to_int(cell(r.get(), 0, 0));
    });
    trim_limits_now_and_then();
    return value;
}

store::LeaseOutcome Store::lease_acquire(const store::LeaseInput &lease) {
    const store::LeaseOutcome outcome = pool_.run(false, [&](Connection &db) {
        Result r = db.run("lease_acquire", {lease.key, lease.owner, Int(static_cast<int64_t>(lease.weight)),
                                            Int(static_cast<int64_t>(lease.limit)), Int(lease.ttl_ms)});
        const char *taken = cell(r.get(), 0, 0);
        return store::LeaseOutcome{taken != nullptr && taken[0] == 't',
                                   static_cast<uint64_t>(to_int(cell(r.get(), 0, 1)))};
    });
    trim_limits_now_and_then();
    return outcome;
}

void Store::lease_release(std::string_view key, std::string_view owner) {
    pool_.run(false, [&](Connection &db) { return affected(db.run("lease_release", {key, owner})); });
}

// Every 1024th call sweeps what has lapsed; a failure only delays the sweep.
void Store::trim_limits_now_and_then() {
    if (limit_calls_.fetch_add(1) % 1024 != 0) return;
    try {
        pool_.run(false, [&](Connection &db) { return affected(db.run("limits_trim", {})); });
    } catch (const Failure &e) {
        log_(SWH_LOG_WARN, std::string("postgres: sweeping lapsed limits failed: ") + e.what());
    }
}

// The listening connection belongs to the listener thread alone: made in
// connect, read in drain, dropped in close.
void Store::events_watch(store::EventWatcher watcher) {
    std::lock_guard lock(watch_mutex_);
    if (listener_) throw Failure(SWH_E_CONFLICT, "postgres: already watching events");
    auto link = std::make_shared<std::unique_ptr<Connection>>();
    auto connect = [this, link] {
        *link = std::make_unique<Connection>(options_, where_);
        (*link)->exec(std::string("LISTEN ") + kEventChannel);
        return (*link)->socket();
    };
    auto drain = [link, watcher, where = where_] {
        PGconn *conn = (*link)->raw();
        if (PQconsumeInput(conn) == 0 || PQstatus(conn) != CONNECTION_OK)
            throw Failure(SWH_E_UNAVAILABLE,
                          "postgres: event listener lost " + where + ": " + trimmed(PQerrorMessage(conn)));
        std::string session_id;
        uint64_t seq = 0;
        while (PGnotify *note = PQnotifies(conn)) {
            if (store::parse_wake(note->extra ? note->extra : "", session_id, seq))
                watcher.wake(session_id, seq);
            PQfreemem(note);
        }
    };
    auto close = [link] { link->reset(); };
    listener_ = std::make_unique<store::ListenerThread>(watcher, connect, drain, close);
}

void Store::events_unwatch() noexcept {
    std::lock_guard lock(watch_mutex_);
    listener_.reset();
}

void Store::describe(nlohmann::json &report) const {
    report["backend"] = "postgres";
    report["server"] = where_;
    report["libpq_version"] = PQlibVersion();
    report["pool_size"] = options_.pool_size;
    report["schema_version"] = schema_version_;
}

void Store::health(nlohmann::json &report) {
    pool_.run(true, [&](Connection &db) {
        Result r = db.exec("SELECT current_setting('server_version'), current_setting('synchronous_commit'), "
                           "current_setting('fsync'), (SELECT count(*) FROM pg_stat_activity "
                           "WHERE application_name = 'swarmhost'), "
                           "(SELECT reltuples::bigint FROM pg_class WHERE oid = 'swh_sessions'::regclass)");
        report["server_version"] = text(r.get(), 0, 0);
        report["synchronous_commit"] = text(r.get(), 0, 1);
        report["fsync"] = text(r.get(), 0, 2);
        report["swarmhost_connections"] = to_int(cell(r.get(), 0, 3));
        report["sessions_estimate"] = std::max<int64_t>(0, to_int(cell(r.get(), 0, 4)));
        return 0;
    });
    report["open_connections"] = pool_.open_connections();
}

} // namespace swh::postgres
