#include "mongo_store.hpp"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <utility>

namespace swh::mongodb {

using edge::Failure;
using store::quoted;

namespace {

constexpr int kDuplicateKey[] = {11000, 11001, 12582};
constexpr int kTimedOut[] = {50 /* MaxTimeMSExpired */, 262 /* ExceededTimeLimit */,
                             64 /* WriteConcernFailed: wtimeout */, 89 /* NetworkTimeout */};
// The server is there but cannot serve now: shutting down, stepping down, no
// primary, auth refused. Retrying later may work, as with a lost connection.
// The document is refused for what it is (over the 16 MiB BSON limit).
constexpr int kInvalid[] = {10334 /* BSONObjectTooLarge */, 17419 /* document after update too large */};
constexpr int kUnavailable[] = {6,     7,     13,    18,    91,    100,   189, 9001,
                                10107, 11600, 11602, 13435, 13436, 10058, 133};

template <size_t N> bool among(const int (&codes)[N], uint32_t code) {
    return std::find(std::begin(codes), std::end(codes), static_cast<int>(code)) != std::end(codes);
}

swh_status status_for(const bson_error_t &e) {
    switch (e.domain) {
    case MONGOC_ERROR_STREAM:           // connect, send, receive (also socketTimeoutMS)
    case MONGOC_ERROR_SERVER_SELECTION: // no suitable server within serverSelectionTimeoutMS
    case MONGOC_ERROR_PROTOCOL:
        return SWH_E_UNAVAILABLE;
    case MONGOC_ERROR_CLIENT:
        return e.code == MONGOC_ERROR_CLIENT_AUTHENTICATE ? SWH_E_UNAVAILABLE : SWH_E_INTERNAL;
    case MONGOC_ERROR_BSON: // e.g. "Document 0 is too large for the cluster", found before sending
        return SWH_E_INVALID;
    case MONGOC_ERROR_COMMAND:
        return e.code == MONGOC_ERROR_COMMAND_INVALID_ARG ? SWH_E_INVALID : SWH_E_INTERNAL;
    case MONGOC_ERROR_SERVER:
    case MONGOC_ERROR_WRITE_CONCERN:
        if (among(kDuplicateKey, e.code)) return SWH_E_CONFLICT;
        if (among(kTimedOut, e.code)) return SWH_E_TIMEOUT;
        if (among(kInvalid, e.code)) return SWH_E_INVALID;
        if (among(kUnavailable, e.code)) return SWH_E_UNAVAILABLE;
        return SWH_E_INTERNAL;
    default:
        return SWH_E_INTERNAL;
    }
}

int64_t now_ms() {
    using namespace std::chrono;
    return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

int32_t as_int32(int64_t value, const char *key, int64_t low, int64_t high) {
    if (value < low || value > high)
        throw Failure(SWH_E_INVALID, std::string("mongodb: config '") + key + "' must be between " +
                                         std::to_string(low) + " and " + std::to_string(high));
    return static_cast<int32_t>(value);
}

// MongoDB's own limits on names, checked here so a bad config fails at
// create with the key's name rather than on the first write.
void check_name(const std::string &name, const char *key, const char *forbidden) {
    if (name.empty() || name.size() > 120 || name.find_first_of(forbidden) != std::string::npos ||
        name.find('\0') != std::string::npos)
        throw Failure(SWH_E_INVALID, std::string("mongodb: config '") + key +
                                         "' must be 1-120 characters without " + "any of \"" + forbidden +
                                         "\"");
    if (name.rfind("system.", 0) == 0)
        throw Failure(SWH_E_INVALID,
                      std::string("mongodb: config '") + key + "' may not start with 'system.'");
}

mongoc_read_mode_t read_mode(const std::string &name) {
    if (name == "primary") return MONGOC_READ_PRIMARY;
    if (name == "primaryPreferred") return MONGOC_READ_PRIMARY_PREFERRED;
    if (name == "secondary") return MONGOC_READ_SECONDARY;
    if (name == "secondaryPreferred") return MONGOC_READ_SECONDARY_PREFERRED;
    if (name == "nearest") return MONGOC_READ_NEAREST;
    throw Failure(SWH_E_INVALID,
                  "mongodb: config 'read_preference' must be one of primary, primaryPreferred, "
                  "secondary, secondaryPreferred, nearest");
}

WriteConcern write_concern(const Options &o) {
    WriteConcern wc(mongoc_write_concern_new());
    const int32_t wtimeout = as_int32(o.write_timeout_ms, "write_timeout_ms", 0, INT32_MAX);
    if (o.write_concern == "majority") {
        mongoc_write_concern_set_wmajority(wc.get(), wtimeout);
    } else {
        const auto digits = o.write_concern.find_first_not_of("0123456789");
        if (o.write_concern.empty() || digits != std::string::npos || o.write_concern.size() > 2)
            throw Failure(SWH_E_INVALID,
                          "mongodb: config 'write_concern' must be \"majority\" or a number of "
                          "members (\"1\", \"2\", ...)");
        mongoc_write_concern_set_w(wc.get(), std::stoi(o.write_concern));
        mongoc_write_concern_set_wtimeout_int64(wc.get(), wtimeout);
    }
    mongoc_write_concern_set_journal(wc.get(), o.journal);
    if (!mongoc_write_concern_is_valid(wc.get()))
        throw Failure(SWH_E_INVALID,
                      "mongodb: config 'write_concern' with 'journal' is not a valid write concern");
    return wc;
}

// The hosts and database, for messages: never the credentials.
std::string describe_target(const mongoc_uri_t *uri, const std::string &database) {
    std::string hosts;
    for (const mongoc_host_list_t *h = mongoc_uri_get_hosts(uri); h != nullptr; h = h->next)
        hosts += (hosts.empty() ? "" : ",") + std::string(h->host_and_port);
    if (hosts.empty()) hosts = mongoc_uri_get_srv_hostname(uri) ? mongoc_uri_get_srv_hostname(uri) : "?";
    return hosts + "/" + database;
}

SessionRow session_row(const bson_t *d) {
    SessionRow row;
    row.id = text_of(d, "session_id");
    row.user_id = text_of(d, "user_id");
    row.provider = text_of(d, "provider");
    row.model = text_of(d, "model");
    row.status = text_of(d, "status");
    row.type = text_of(d, "type");
    row.created_at = int_of(d, "created_at");
    row.last_activity = int_of(d, "last_activity");
    row.message_count = int_of(d, "message_count");
    row.config = text_of(d, "config");
    row.context = text_of(d, "context");
    row.metadata = text_of(d, "metadata");
    return row;
}

MessageRow message_row(const bson_t *d) {
    MessageRow row;
    row.id = text_of(d, "message_id");
    row.session_id = text_of(d, "session_id");
    row.role = text_of(d, "role");
    row.content = text_of(d, "content");
    row.timestamp = int_of(d, "timestamp");
    row.metadata = text_of(d, "metadata");
    row.provider_message_id = text_of(d, "provider_message_id");
    row.provider_metadata = text_of(d, "provider_metadata");
    row.structured = text_of(d, "structured");
    return row;
}

struct IndexKey {
    const char *field;
    int32_t order;
};

// One element of createIndexes' "indexes" array.
void add_index(Doc &indexes, int position, const char *name, std::initializer_list<IndexKey> keys,
               bool unique = false, bool ttl = false) {
    Doc key, index;
    for (const IndexKey &k : keys)
        key.i32(k.field, k.order);
    index.doc("key", key).str("name", name);
    if (unique) index.boolean("unique", true);
    if (ttl) index.i32("expireAfterSeconds", 0); // documents go when their expires_at has passed
    indexes.doc(std::to_string(position).c_str(), index);
}

} // namespace

// ---------------------------------------------------------------- store

Store::Store(Options options, edge::HostLog log) : options_(std::move(options)), log_(log) {
    // Once per process (idempotent). mongoc_cleanup is never called: another
    // instance (a hot reload) may still use the driver, and cleanup cannot be
    // undone.
    mongoc_init();
    // The driver logs to stderr at every level, DEBUG included (each monitor
    // heartbeat while a server is down). Its warnings and errors are kept;
    // what a call fails with reaches the host through last_error.
    mongoc_log_set_handler(
        [](mongoc_log_level_t level, const char *domain, const char *message, void *data) {
            if (level <= MONGOC_LOG_LEVEL_WARNING) mongoc_log_default_handler(level, domain, message, data);
        },
        nullptr);
    check_name(options_.database_name, "database_name", "/\\. \"$");
    check_name(options_.collection_name, "collection_name", "$");
    check_name(options_.message_collection, "message_collection", "$");
    if (options_.collection_name == options_.message_collection)
        throw Failure(SWH_E_INVALID, "mongodb: 'collection_name' and 'message_collection' must differ");
    if (options_.ttl_hours < 0 || options_.ttl_seconds < 0)
        throw Failure(SWH_E_INVALID, "mongodb: 'ttl_hours' and 'ttl_seconds' must not be negative");
    const ReadPrefs prefs(mongoc_read_prefs_new(read_mode(options_.read_preference)));
    const WriteConcern wc = write_concern(options_);

    bson_error_t error;
    uri_.reset(mongoc_uri_new_with_error(options_.connection_string.c_str(), &error));
    if (!uri_)
        throw Failure(SWH_E_INVALID,
                      std::string("mongodb: config 'connection_string' is not a MongoDB URI: ") +
                          error.message);
    // The config keys win over the same options in the URI: one place to read.
    mongoc_uri_set_option_as_int32(uri_.get(), MONGOC_URI_MAXPOOLSIZE,
                                   as_int32(options_.pool_size, "pool_size", 1, 256));
    mongoc_uri_set_option_as_int32(uri_.get(), MONGOC_URI_CONNECTTIMEOUTMS,
                                   as_int32(options_.connect_timeout_ms, "connect_timeout_ms", 1, INT32_MAX));
    mongoc_uri_set_option_as_int32(
        uri_.get(), MONGOC_URI_SERVERSELECTIONTIMEOUTMS,
        as_int32(options_.server_selection_timeout_ms, "server_selection_timeout_ms", 1, INT32_MAX));
    mongoc_uri_set_option_as_int32(uri_.get(), MONGOC_URI_SOCKETTIMEOUTMS,
                                   as_int32(options_.socket_timeout_ms, "socket_timeout_ms", 0, INT32_MAX));
    as_int32(options_.operation_timeout_ms, "operation_timeout_ms", 0, INT32_MAX);
    if (mongoc_uri_get_appname(uri_.get()) == nullptr) mongoc_uri_set_appname(uri_.get(), "swarmhost");
    mongoc_uri_set_write_concern(uri_.get(), wc.get());
    mongoc_uri_set_read_prefs_t(uri_.get(), prefs.get());
    where_ = describe_target(uri_.get(), options_.database_name);

    pool_.reset(mongoc_client_pool_new(uri_.get()));
    if (!pool_) throw Failure(SWH_E_INVALID, "mongodb: cannot make a client pool for " + where_);
    // Version 2: server errors carry the server's code in domain MONGOC_ERROR_SERVER.
    mongoc_client_pool_set_error_api(pool_.get(), MONGOC_ERROR_API_VERSION_2);

    create_indexes(); // also proves the server is reachable: fail fast at start
    log_(SWH_LOG_INFO, "mongodb: connected to " + where_ + " (collections '" + options_.collection_name +
                           "', '" + options_.message_collection + "', pool " +
                           std::to_string(options_.pool_size) + ")");
}

Collection Store::sessions(const Lease &lease) const {
    return Collection(mongoc_client_get_collection(lease.get(), options_.database_name.c_str(),
                                                   options_.collection_name.c_str()));
}

Collection Store::messages(const Lease &lease) const {
    return Collection(mongoc_client_get_collection(lease.get(), options_.database_name.c_str(),
                                                   options_.message_collection.c_str()));
}

void Store::fail(const bson_error_t &error, const char *what) const {
    throw Failure(status_for(error),
                  std::string("mongodb: ") + what + " on " + where_ + " failed: " + error.message +
                      " (error " + std::to_string(error.domain) + "." + std::to_string(error.code) + ")");
}

void Store::expiry(Doc &set) const {
    if (options_.ttl() > 0) set.date_ms("expires_at", now_ms() + options_.ttl() * 1000);
}

// The indexes the queries use. The unique ones make a real server refuse a
// second document with our id when two upserts race; the emulator ignores
// "unique", and the upserts alone keep ids unique there for sequential writes.
void Store::create_indexes() {
    const bool ttl = options_.ttl() > 0;
    Lease lease(pool_.get());
    Doc session_indexes;
    add_index(session_indexes, 0, "swh_session_id", {{"session_id", 1}}, true);
    add_index(session_indexes, 1, "swh_user_activity", {{"user_id", 1}, {"last_activity", -1}});
    add_index(session_indexes, 2, "swh_status_activity", {{"status", 1}, {"last_activity", -1}});
    add_index(session_indexes, 3, "swh_activity", {{"last_activity", -1}});
    if (ttl) add_index(session_indexes, 4, "swh_expiry", {{"expires_at", 1}}, false, true);
    Doc message_indexes;
    add_index(message_indexes, 0, "swh_message_id", {{"message_id", 1}}, true);
    add_index(message_indexes, 1, "swh_session_time", {{"session_id", 1}, {"timestamp", 1}, {"_id", 1}});
    add_index(message_indexes, 2, "swh_session_role_time",
              {{"session_id", 1}, {"role", 1}, {"timestamp", 1}, {"_id", 1}});
    add_index(message_indexes, 3, "swh_uncounted", {{"session_id", 1}, {"counted", 1}});
    if (ttl) add_index(message_indexes, 4, "swh_expiry", {{"expires_at", 1}}, false, true);

    for (auto [collection, indexes] : {std::pair{&options_.collection_name, &session_indexes},
                                       std::pair{&options_.message_collection, &message_indexes}}) {
        Doc command, reply;
        command.str("createIndexes", *collection).array("indexes", *indexes);
        bson_error_t error;
        if (!mongoc_client_write_command_with_opts(lease.get(), options_.database_name.c_str(), command.get(),
                                                   nullptr, reply.get(), &error))
            fail(error, "createIndexes");
    }
}

bool Store::session_exists(const Lease &lease, std::string_view id) {
    Doc filter, opts, projection;
    filter.str("session_id", id);
    projection.i32("_id", 1);
    opts.doc("projection", projection).i64("limit", 1).i64("maxTimeMS", options_.operation_timeout_ms);
    Cursor cursor(mongoc_collection_find_with_opts(sessions(lease).get(), filter.get(), opts.get(), nullptr));
    const bson_t *doc = nullptr;
    const bool found = mongoc_cursor_next(cursor.get(), &doc);
    bson_error_t error;
    if (!found && mongoc_cursor_error(cursor.get(), &error)) fail(error, "find session");
    return found;
}

// `doc` under `filter` unless a document matches it already (then
// SWH_E_CONFLICT naming `what`): an upsert of $setOnInsert, so our key stays
// unique even where unique indexes are not enforced.
void Store::insert_once(mongoc_collection_t *collection, const Doc &filter, const Doc &doc,
                        const std::string &what, const char *step) {
    Doc update, opts, reply;
    update.doc("$setOnInsert", doc);
    opts.boolean("upsert", true);
    bson_error_t error;
    if (!mongoc_collection_update_one(collection, filter.get(), update.get(), opts.get(), reply.get(),
                                      &error)) {
        if (status_for(error) == SWH_E_CONFLICT) throw Failure(SWH_E_CONFLICT, what + " already exists");
        fail(error, step);
    }
    if (int_of(reply.get(), "matchedCount") > 0) throw Failure(SWH_E_CONFLICT, what + " already exists");
}

void Store::create_session(const SessionInput &s) {
    Doc filter, doc;
    filter.str("session_id", s.id);
    doc.str("session_id", s.id)
        .str("user_id", s.user_id)
        .str("provider", s.provider)
        .str("model", s.model)
        .str("status", s.status)
        .str("type", s.type)
        .i64("created_at", s.created_at)
        .i64("last_activity", s.last_activity)
        .i64("message_count", 0)
        .array("counted_ids", Doc())
        .str("config", s.config)
        .str("context", s.context)
        .str("metadata", s.metadata);
    expiry(doc);
    Lease lease(pool_.get());
    insert_once(sessions(lease).get(), filter, doc, "session " + quoted(s.id), "create_session");
}

std::optional<SessionRow> Store::get_session(std::string_view id) {
    Doc filter, opts, projection;
    filter.str("session_id", id);
    projection.i32("counted_ids", 0);
    opts.doc("projection", projection).i64("limit", 1).i64("maxTimeMS", options_.operation_timeout_ms);
    Lease lease(pool_.get());
    count_stragglers(lease, id);
    Cursor cursor(mongoc_collection_find_with_opts(sessions(lease).get(), filter.get(), opts.get(), nullptr));
    const bson_t *doc = nullptr;
    if (mongoc_cursor_next(cursor.get(), &doc)) return session_row(doc);
    bson_error_t error;
    if (mongoc_cursor_error(cursor.get(), &error)) fail(error, "get_session");
    return std::nullopt;
}

void Store::update_session(const SessionInput &s, uint32_t fields) {
    Lease lease(pool_.get());
    if (fields == 0) {
        if (!session_exists(lease, s.id))
            throw Failure(SWH_E_NOT_FOUND, "session " + quoted(s.id) + " not found");
        return;
    }
    Doc filter, set, update, reply;
    filter.str("session_id", s.id);
    if (fields & SWH_SESSION_FIELD_STATUS) set.str("status", s.status);
    if (fields & SWH_SESSION_FIELD_MODEL) set.str("model", s.model);
    if (fields & SWH_SESSION_FIELD_PROVIDER) set.str("provider", s.provider);
    if (fields & SWH_SESSION_FIELD_CONFIG) set.str("config", s.config);
    if (fields & SWH_SESSION_FIELD_CONTEXT) set.str("context", s.context);
    if (fields & SWH_SESSION_FIELD_METADATA) set.str("metadata", s.metadata);
    if (fields & SWH_SESSION_FIELD_LAST_ACTIVITY) set.i64("last_activity", s.last_activity);
    expiry(set);
    update.doc("$set", set);
    bson_error_t error;
    if (!mongoc_collection_update_one(sessions(lease).get(), filter.get(), update.get(), nullptr, reply.get(),
                                      &error))
        fail(error, "update_session");
    if (int_of(reply.get(), "matchedCount") == 0)
        throw Failure(SWH_E_NOT_FOUND, "session " + quoted(s.id) + " not found");
}

// The messages first, then the session: a call that fails between the two
// leaves the session (with no messages) in place, so repeating the delete
// finishes it. The other order would leave messages no delete can reach.
void Store::delete_session(std::string_view id) {
    Doc filter, reply, message_reply;
    filter.str("session_id", id);
    Lease lease(pool_.get());
    bson_error_t error;
    if (!session_exists(lease, id)) throw Failure(SWH_E_NOT_FOUND, "session " + quoted(id) + " not found");
    if (!mongoc_collection_delete_many(messages(lease).get(), filter.get(), nullptr, message_reply.get(),
                                       &error))
        fail(error, "delete_session (messages)");
    if (!mongoc_collection_delete_one(sessions(lease).get(), filter.get(), nullptr, reply.get(), &error))
        fail(error, "delete_session");
    if (int_of(reply.get(), "deletedCount") == 0)
        throw Failure(SWH_E_NOT_FOUND, "session " + quoted(id) + " not found");
}

std::vector<SessionRow> Store::list_sessions(const SessionFilterInput &f) {
    Doc filter, sort, projection, opts;
    if (!f.user_id.empty()) filter.str("user_id", f.user_id);
    if (!f.status.empty()) filter.str("status", f.status);
    sort.i32("last_activity", -1).i32("created_at", -1).i32("session_id", 1);
    projection.i32("counted_ids", 0);
    opts.doc("sort", sort).doc("projection", projection).i64("maxTimeMS", options_.operation_timeout_ms);
    if (f.offset != 0) opts.i64("skip", f.offset);
    if (f.limit != 0) opts.i64("limit", f.limit);
    Lease lease(pool_.get());
    Cursor cursor(mongoc_collection_find_with_opts(sessions(lease).get(), filter.get(), opts.get(), nullptr));
    std::vector<SessionRow> rows;
    const bson_t *doc = nullptr;
    while (mongoc_cursor_next(cursor.get(), &doc))
        rows.push_back(session_row(doc));
    bson_error_t error;
    if (mongoc_cursor_error(cursor.get(), &error)) fail(error, "list_sessions");
    return rows;
}

// The message first, then its count (see mongo_store.hpp): a duplicate or a
// refused document changes nothing; an unknown session removes the message
// again. A call cut off after the insert leaves the message uncounted, which
// the next get_session counts (count_stragglers); counting is idempotent.
void Store::add_message(const MessageInput &m) {
    bson_oid_t oid; // client-made: orders messages of equal timestamp by insertion
    bson_oid_init(&oid, nullptr);
    Doc filter, doc;
    filter.str("message_id", m.id);
    doc.oid("_id", oid)
        .str("message_id", m.id)
        .str("session_id", m.session_id)
        .str("role", m.role)
        .str("content", m.content)
        .i64("timestamp", m.timestamp)
        .str("metadata", m.metadata)
        .str("provider_message_id", m.provider_message_id)
        .str("provider_metadata", m.provider_metadata)
        .boolean("counted", false);
    if (!m.structured.empty()) doc.str("structured", m.structured); // plain messages stay as before 1.3
    expiry(doc);
    Lease lease(pool_.get());
    insert_once(messages(lease).get(), filter, doc, "message " + quoted(m.id), "add_message (insert)");

    if (!count(lease, m.session_id, m.id, m.timestamp) && !session_exists(lease, m.session_id)) {
        Doc mine, gone;
        mine.oid("_id", oid);
        bson_error_t error;
        if (!mongoc_collection_delete_one(messages(lease).get(), mine.get(), nullptr, gone.get(), &error))
            fail(error, "add_message (removing the message of an unknown session)");
        throw Failure(SWH_E_NOT_FOUND, "session " + quoted(m.session_id) + " not found");
    }
    mark_counted(lease, m.id);
}

// Adds message `mid` to its session's count unless it is among the last
// kCountedWindow ids counted there; false when no session document matched
// (no session, or the id was counted already). `ts` > 0 also moves
// last_activity (the writer's own count; a late repair leaves it).
bool Store::count(const Lease &lease, std::string_view sid, std::string_view mid, int64_t ts) {
    Doc query, not_yet, inc, set, each, push, ids, update, reply;
    not_yet.str("$ne", mid);
    query.str("session_id", sid).doc("counted_ids", not_yet);
    inc.i64("message_count", 1);
    ids.str("0", mid);
    each.array("$each", ids).i32("$slice", -kCountedWindow);
    push.doc("counted_ids", each);
    update.doc("$inc", inc).doc("$push", push);
    if (ts > 0) {
        set.i64("last_activity", ts);
        expiry(set);
        update.doc("$set", set);
    }
    bson_error_t error;
    if (!mongoc_collection_update_one(sessions(lease).get(), query.get(), update.get(), nullptr, reply.get(),
                                      &error))
        fail(error, "add_message (session count)");
    return int_of(reply.get(), "matchedCount") > 0;
}

void Store::mark_counted(const Lease &lease, std::string_view mid) {
    Doc query, set, update, reply;
    query.str("message_id", mid);
    set.boolean("counted", true);
    update.doc("$set", set);
    bson_error_t error;
    if (!mongoc_collection_update_one(messages(lease).get(), query.get(), update.get(), nullptr, reply.get(),
                                      &error))
        fail(error, "add_message (marking the message counted)");
}

// Messages whose writer stopped between the insert and the count (a lost
// connection, a killed daemon): counted now. Safe while such a writer is
// still running: count() skips an id counted already.
void Store::count_stragglers(const Lease &lease, std::string_view sid) {
    Doc filter, projection, opts;
    filter.str("session_id", sid).boolean("counted", false);
    projection.i32("message_id", 1);
    opts.doc("projection", projection)
        .i64("limit", kCountedWindow)
        .i64("maxTimeMS", options_.operation_timeout_ms);
    std::vector<std::string> ids;
    {
        Cursor cursor(
            mongoc_collection_find_with_opts(messages(lease).get(), filter.get(), opts.get(), nullptr));
        const bson_t *doc = nullptr;
        while (mongoc_cursor_next(cursor.get(), &doc))
            ids.emplace_back(text_of(doc, "message_id"));
        bson_error_t error;
        if (mongoc_cursor_error(cursor.get(), &error)) fail(error, "get_session (uncounted messages)");
    }
    for (const std::string &mid : ids) {
        count(lease, sid, mid, 0);
        mark_counted(lease, mid);
    }
}

std::vector<MessageRow> Store::get_messages(const MessageQueryInput &q) {
    Doc filter, since, sort, opts;
    filter.str("session_id", q.session_id);
    if (!q.role.empty()) filter.str("role", q.role);
    if (q.since != 0) {
        since.i64("$gte", q.since);
        filter.doc("timestamp", since);
    }
    sort.i32("timestamp", -1).i32("_id", -1); // newest first, so `limit` keeps the last ones
    opts.doc("sort", sort).i64("maxTimeMS", options_.operation_timeout_ms);
    if (q.limit != 0) opts.i64("limit", q.limit);
    Lease lease(pool_.get());
    std::vector<MessageRow> rows;
    {
        Cursor cursor(
            mongoc_collection_find_with_opts(messages(lease).get(), filter.get(), opts.get(), nullptr));
        const bson_t *doc = nullptr;
        while (mongoc_cursor_next(cursor.get(), &doc))
            rows.push_back(message_row(doc));
        bson_error_t error;
        if (mongoc_cursor_error(cursor.get(), &error)) fail(error, "get_messages");
    }
    if (rows.empty() && !session_exists(lease, q.session_id))
        throw Failure(SWH_E_NOT_FOUND, "session " + quoted(q.session_id) + " not found");
    std::reverse(rows.begin(), rows.end());
    return rows;
}

void Store::describe(nlohmann::json &report) const {
    report["backend"] = "mongodb";
    report["server"] = where_;
    report["database"] = options_.database_name;
    report["collections"] = {options_.collection_name, options_.message_collection};
    report["driver_version"] = mongoc_get_version();
    report["write_concern"] = options_.write_concern;
    report["journal"] = options_.journal;
    report["read_preference"] = options_.read_preference;
    report["pool_size"] = options_.pool_size;
    report["ttl_seconds"] = options_.ttl();
}

void Store::health(nlohmann::json &report) {
    Lease lease(pool_.get());
    Doc ping, ping_reply, build_info, info_reply;
    ping.i32("ping", 1);
    bson_error_t error;
    if (!mongoc_client_command_simple(lease.get(), "admin", ping.get(), nullptr, ping_reply.get(), &error))
        fail(error, "ping");
    build_info.i32("buildInfo", 1);
    if (mongoc_client_command_simple(lease.get(), "admin", build_info.get(), nullptr, info_reply.get(),
                                     &error))
        report["server_version"] = std::string(text_of(info_reply.get(), "version"));
}

} // namespace swh::mongodb
