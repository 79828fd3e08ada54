#include "redis_store.hpp"

#include <algorithm>
#include <cstdlib>
#include <deque>
#include <utility>

namespace swh::redis {

using edge::Failure;
using store::quoted;

namespace {

// ------------------------------------------------------------------ scripts
// Each script touches the keys of ONE session (one hash tag, one Cluster
// slot) and runs atomically on the server.

// KEYS: session; ARGV: ttl, field, value, ... -> 1 created, 0 exists
constexpr Script kCreate = {"create", R"lua(
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV, 2))
if tonumber(ARGV[1]) > 0 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
return 1
)lua"};

// KEYS: session, messages, ids; ARGV: id, timestamp, element, ttl, lag (µs)
// -> {message_count}, {message_count, user_id} when the indexes are due (see
// below), or -1 (no session), -2 (duplicate id).
// The element goes after the last one with timestamp <= its own, so the list
// stays chronological when concurrent writers arrive out of timestamp order
// (the usual case is one RPUSH). The indexes (other slots) hold indexed_at as
// the score; they are rewritten only when last_activity left
// [indexed_at, indexed_at + lag], so most messages cost this one script.
constexpr Script kAddMessage = {"add_message", R"lua(
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
if redis.call('SADD', KEYS[3], ARGV[1]) == 0 then return -2 end
local ts = tonumber(ARGV[2])
local n = redis.call('LLEN', KEYS[2])
local i = -1
while -i <= n do
  local e = redis.call('LINDEX', KEYS[2], i)
  if tonumber(string.match(e, '^(%-?%d+) ')) <= ts then break end
  i = i - 1
end
if i == -1 then
  redis.call('RPUSH', KEYS[2], ARGV[3])
elseif -i > n then
  redis.call('LPUSH', KEYS[2], ARGV[3])
else
  redis.call('LINSERT', KEYS[2], 'AFTER', redis.call('LINDEX', KEYS[2], i), ARGV[3])
end
local count = redis.call('HINCRBY', KEYS[1], 'message_count', 1)
redis.call('HSET', KEYS[1], 'last_activity', ARGV[2])
local ttl = tonumber(ARGV[4])
if ttl > 0 then
  for k = 1, 3 do redis.call('EXPIRE', KEYS[k], ttl) end
end
local indexed = tonumber(redis.call('HGET', KEYS[1], 'indexed_at') or '')
if indexed ~= nil and ts >= indexed and ts - indexed <= tonumber(ARGV[5]) then return {count} end
redis.call('HSET', KEYS[1], 'indexed_at', ARGV[2])
return {count, redis.call('HGET', KEYS[1], 'user_id')}
)lua"};

// KEYS: session, messages; ARGV: role ('' = any), since, limit (0 = all)
// -> elements, chronological; nil when the session is absent. Reads from the
// tail and stops at `limit` matches or at the first element older than
// `since`: the whole list is read only when every element may match.
constexpr Script kGetMessages = {"get_messages", R"lua(
if redis.call('EXISTS', KEYS[1]) == 0 then return false end
local role, since, limit = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
if role == '' and since == 0 then
  if limit == 0 then return redis.call('LRANGE', KEYS[2], 0, -1) end
  return redis.call('LRANGE', KEYS[2], -limit, -1)
end
local out, hi, done = {}, redis.call('LLEN', KEYS[2]) - 1, false
local page = math.max(64, math.min(limit * 2, 1024))
while hi >= 0 and not done do
  local lo = math.max(0, hi - page + 1)
  local chunk = redis.call('LRANGE', KEYS[2], lo, hi)
  for j = #chunk, 1, -1 do
    local ts, r = string.match(chunk[j], '^(%-?%d+) ([^\n]*)\n')
    if tonumber(ts) < since then done = true; break end
    if role == '' or r == role then
      out[#out + 1] = chunk[j]
      if limit > 0 and #out >= limit then done = true; break end
    end
  end
  hi = lo - 1
end
local n = #out
for k = 1, math.floor(n / 2) do out[k], out[n - k + 1] = out[n - k + 1], out[k] end
return out
)lua"};

// KEYS: session, messages, ids; ARGV: ttl, field, value, ...
// -> {user_id, last_activity}, or nil when absent. Refreshes the TTL.
constexpr Script kUpdate = {"update", R"lua(
if redis.call('EXISTS', KEYS[1]) == 0 then return false end
if #ARGV > 1 then redis.call('HSET', KEYS[1], unpack(ARGV, 2)) end
local ttl = tonumber(ARGV[1])
if ttl > 0 then
  for k = 1, 3 do redis.call('EXPIRE', KEYS[k], ttl) end
end
return redis.call('HMGET', KEYS[1], 'user_id', 'last_activity')
)lua"};

// KEYS: session, messages, ids -> user_id, or nil when absent.
constexpr Script kDelete = {"delete", R"lua(
local uid = redis.call('HGET', KEYS[1], 'user_id')
if not uid then return false end
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3])
return uid
)lua"};

// KEYS: evseq, events; ARGV: payload, now_ms, retention_ms, max, channel,
// session id, counter ttl (s, 0 = keep) -> the event's seq. Entries older
// than the retention go from the head, at most 100 per call (each publish
// takes a few, so a busy stream keeps up).
constexpr Script kEventPublish = {"events_publish", R"lua(
local seq = redis.call('INCR', KEYS[1])
redis.call('XADD', KEYS[2], 'MAXLEN', ARGV[4], seq .. '-0', 't', ARGV[2], 'p', ARGV[1])
local cutoff = tonumber(ARGV[2]) - tonumber(ARGV[3])
local keep = nil
for _, e in ipairs(redis.call('XRANGE', KEYS[2], '-', '+', 'COUNT', 100)) do
  if tonumber(e[2][2]) >= cutoff then break end
  keep = tonumber(string.match(e[1], '^(%d+)')) + 1
end
if keep then redis.call('XTRIM', KEYS[2], 'MINID', keep .. '-0') end
redis.call('PEXPIRE', KEYS[2], ARGV[3])
local ttl = tonumber(ARGV[7])
if ttl > 0 then redis.call('EXPIRE', KEYS[1], ttl) end
redis.call('PUBLISH', ARGV[5], ARGV[6] .. ' ' .. seq)
return seq
)lua"};

// KEYS: evseq, events; ARGV: after, limit -> {last_seq, first_seq, seq,
// payload, seq, payload, ...} (first_seq = last_seq + 1 when none is kept).
constexpr Script kEventRead = {"events_read", R"lua(
local last = tonumber(redis.call('GET', KEYS[1]) or '0')
local head = redis.call('XRANGE', KEYS[2], '-', '+', 'COUNT', 1)
local first = 0
if #head > 0 then first = tonumber(string.match(head[1][1], '^(%d+)')) elseif last > 0 then first = last + 1 end
local out = {last, first}
local limit = tonumber(ARGV[2])
if limit > 0 then
  local from = string.format('%.0f', tonumber(ARGV[1]) + 1) .. '-0'
  for _, e in ipairs(redis.call('XRANGE', KEYS[2], from, '+', 'COUNT', limit)) do
    out[#out + 1] = string.match(e[1], '^(%d+)')
    out[#out + 1] = e[2][4]
  end
end
return out
)lua"};

// Shared limits (ABI 1.5). Time is the server's (TIME), so the daemons'
// clocks never matter.

// KEYS: counter; ARGV: delta, window_ms -> the sum in the current window. The
// first add of a window sets the expiry; the key's end is the window's end.
constexpr Script kCounterAdd = {"counter_add", R"lua(
local v = redis.call('INCRBY', KEYS[1], ARGV[1])
if redis.call('PTTL', KEYS[1]) < 0 then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return v
)lua"};

// KEYS: expiries (zset owner -> expiry ms), weights (hash owner -> units);
// ARGV: owner, weight, limit (0 = none), ttl_ms -> {taken 1|0, held}.
// Lapsed owners go first; both keys expire with the last lease.
constexpr Script kLeaseAcquire = {"lease_acquire", R"lua(
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local gone = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now)
if #gone > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
  for _, o in ipairs(gone) do redis.call('HDEL', KEYS[2], o) end
end
local held = 0
for _, w in ipairs(redis.call('HVALS', KEYS[2])) do held = held + tonumber(w) end
local expiry = now + tonumber(ARGV[4])
if not redis.call('ZSCORE', KEYS[1], ARGV[1]) then
  local limit = tonumber(ARGV[3])
  if limit > 0 and held + tonumber(ARGV[2]) > limit then return {0, held} end
  redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
  held = held + tonumber(ARGV[2])
end
redis.call('ZADD', KEYS[1], expiry, ARGV[1])
local last = tonumber(redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')[2])
redis.call('PEXPIREAT', KEYS[1], last)
redis.call('PEXPIREAT', KEYS[2], last)
return {1, held}
)lua"};

// KEYS: expiries, weights; ARGV: owner.
constexpr Script kLeaseRelease = {"lease_release", R"lua(
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[2], ARGV[1])
return 1
)lua"};

std::vector<const Script *> all_scripts() {
    return {&kCreate,       &kAddMessage, &kGetMessages, &kUpdate,       &kDelete,
            &kEventPublish, &kEventRead,  &kCounterAdd,  &kLeaseAcquire, &kLeaseRelease};
}

int64_t to_int(const std::string &s) {
    return s.empty() ? 0 : std::strtoll(s.c_str(), nullptr, 10);
}

} // namespace

// ---------------------------------------------------------------- encoding

namespace {

std::string encode_message(const MessageInput &m) {
    nlohmann::json j = {{"id", m.id},
                        {"session_id", m.session_id},
                        {"role", m.role},
                        {"content", m.content},
                        {"timestamp", m.timestamp},
                        {"metadata", m.metadata},
                        {"provider_message_id", m.provider_message_id},
                        {"provider_metadata", m.provider_metadata}};
    // Only when there is some: a plain message is stored as before 1.3, so
    // elements old and new read the same way.
    if (!m.structured.empty()) j["structured"] = m.structured;
    return std::to_string(m.timestamp) + " " + std::string(m.role) + "\n" + store::dump(j);
}

MessageRow decode_message(std::string_view element) {
    auto newline = element.find('\n');
    if (newline == std::string_view::npos) throw Failure(SWH_E_INTERNAL, "redis: malformed message element");
    auto j = nlohmann::json::parse(element.substr(newline + 1), nullptr, false);
    if (j.is_discarded() || !j.is_object()) throw Failure(SWH_E_INTERNAL, "redis: malformed message JSON");
    MessageRow row;
    row.id = j.value("id", "");
    row.session_id = j.value("session_id", "");
    row.role = j.value("role", "");
    row.content = j.value("content", "");
    row.timestamp = j.value("timestamp", int64_t{0});
    row.metadata = j.value("metadata", "{}");
    row.provider_message_id = j.value("provider_message_id", "");
    row.provider_metadata = j.value("provider_metadata", "{}");
    row.structured = j.value("structured", ""); // absent in plain and pre-1.3 elements
    return row;
}

std::optional<SessionRow> decode_session(const redisReply *r) {
    if (r->type != REDIS_REPLY_ARRAY || r->elements == 0) return std::nullopt;
    SessionRow row;
    for (size_t i = 0; i + 1 < r->elements; i += 2) {
        std::string key = reply_text(r->element[i]);
        std::string value = reply_text(r->element[i + 1]);
        if (key == "id")
            row.id = std::move(value);
        else if (key == "user_id")
            row.user_id = std::move(value);
        else if (key == "provider")
            row.provider = std::move(value);
        else if (key == "model")
            row.model = std::move(value);
        else if (key == "status")
            row.status = std::move(value);
        else if (key == "type")
            row.type = std::move(value);
        else if (key == "created_at")
            row.created_at = to_int(value);
        else if (key == "last_activity")
            row.last_activity = to_int(value);
        else if (key == "message_count")
            row.message_count = to_int(value);
        else if (key == "config")
            row.config = std::move(value);
        else if (key == "context")
            row.context = std::move(value);
        else if (key == "metadata")
            row.metadata = std::move(value);
    }
    if (row.id.empty()) return std::nullopt; // only a stray field: treat as absent
    return row;
}

// The session fields named by `fields` (all of them for create) as HSET pairs.
void session_fields(Args &args, const SessionInput &s, uint32_t fields, std::vector<std::string> &numbers) {
    auto put = [&](uint32_t bit, const char *key, std::string_view value) {
        if ((fields & bit) == 0) return;
        args.push_back(key);
        args.push_back(value);
    };
    numbers.push_back(std::to_string(s.last_activity));
    put(SWH_SESSION_FIELD_STATUS, "status", s.status);
    put(SWH_SESSION_FIELD_MODEL, "model", s.model);
    put(SWH_SESSION_FIELD_PROVIDER, "provider", s.provider);
    put(SWH_SESSION_FIELD_CONFIG, "config", s.config);
    put(SWH_SESSION_FIELD_CONTEXT, "context", s.context);
    put(SWH_SESSION_FIELD_METADATA, "metadata", s.metadata);
    put(SWH_SESSION_FIELD_LAST_ACTIVITY, "last_activity", numbers.back());
    put(SWH_SESSION_FIELD_LAST_ACTIVITY, "indexed_at", numbers.back()); // the indexes get this score too
}

} // namespace

// ---------------------------------------------------------------- store

namespace {

// What the schema cannot say; throws Failure.
void check(const Options &o) {
    if (o.host.empty()) throw Failure(SWH_E_INVALID, "redis: config 'host' is empty");
    if (o.port < 1 || o.port > 65535) throw Failure(SWH_E_INVALID, "redis: config 'port' out of range");
    if (o.db < 0) throw Failure(SWH_E_INVALID, "redis: config 'db' must be >= 0");
    if (o.cluster && o.db != 0)
        throw Failure(SWH_E_INVALID, "redis: config 'db' must be 0 on a Redis Cluster");
    if (o.pool_size < 1 || o.pool_size > 256)
        throw Failure(SWH_E_INVALID, "redis: config 'pool_size' must be between 1 and 256");
    if (o.ttl_hours < 0 || o.ttl_seconds < 0)
        throw Failure(SWH_E_INVALID, "redis: config 'ttl_hours' / 'ttl_seconds' must be >= 0");
    if (o.connect_timeout_ms < 1 || o.command_timeout_ms < 0)
        throw Failure(SWH_E_INVALID, "redis: timeouts must be positive");
    if (o.index_lag_ms < 0) throw Failure(SWH_E_INVALID, "redis: config 'index_lag_ms' must be >= 0");
    if (o.key_prefix.find_first_of("{}") != std::string::npos)
        throw Failure(SWH_E_INVALID, "redis: config 'key_prefix' must not contain '{' or '}' (hash tags)");
}

} // namespace

Store::Store(Options options, edge::HostLog log)
    : options_(std::move(options)), log_(log), where_(options_.host + ":" + std::to_string(options_.port)),
      router_((check(options_), options_), all_scripts(), log) {
    log_(SWH_LOG_INFO,
         "redis: connected to " + where_ +
             (options_.cluster ? " (cluster, " + std::to_string(router_.masters().size()) + " masters)"
                               : " db " + std::to_string(options_.db)) +
             " (prefix '" + options_.key_prefix + "', ttl " + std::to_string(options_.ttl()) + " s, pool " +
             std::to_string(options_.pool_size) + ")");
}

Store::~Store() = default;

std::string Store::session_key(std::string_view sid, const char *suffix) const {
    return options_.key_prefix + "{" + std::string(sid) + "}:" + suffix;
}

// ---------------------------------------------------------------- events

std::string Store::event_channel() const {
    return options_.key_prefix + "events";
}

uint64_t Store::events_publish(std::string_view session_id, std::string_view payload) {
    const std::string now_ms = std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(
                                                  std::chrono::system_clock::now().time_since_epoch())
                                                  .count());
    const std::string retention_ms = std::to_string(options_.events_retention_seconds * 1000);
    const std::string max = std::to_string(options_.events_max_per_session);
    const std::string channel = event_channel();
    const std::string ttl = std::to_string(options_.ttl());
    const std::string seq_key = session_key(session_id, "evseq"),
                      stream_key = session_key(session_id, "events");
    Reply r = router_.on(seq_key, false, "events_publish", [&](Connection &c) {
        return c.eval(kEventPublish, {seq_key, stream_key},
                      {payload, now_ms, retention_ms, max, channel, session_id, ttl});
    });
    return static_cast<uint64_t>(r->integer);
}

store::EventPage Store::events_read(std::string_view session_id, uint64_t after_seq, uint32_t limit) {
    const std::string seq_key = session_key(session_id, "evseq"),
                      stream_key = session_key(session_id, "events");
    const std::string after = std::to_string(after_seq), count = std::to_string(limit);
    Reply r = router_.on(seq_key, true, "events_read", [&](Connection &c) {
        return c.eval(kEventRead, {seq_key, stream_key}, {after, count});
    });
    {
        if (r->type != REDIS_REPLY_ARRAY || r->elements < 2 || r->elements % 2 != 0)
            throw Failure(SWH_E_INTERNAL, "redis: events_read: unexpected reply");
        store::EventPage page;
        page.last_seq = static_cast<uint64_t>(r->element[0]->integer);
        page.first_seq = static_cast<uint64_t>(r->element[1]->integer);
        for (size_t i = 2; i + 1 < r->elements; i += 2)
            page.events.push_back(
                {static_cast<uint64_t>(to_int(reply_text(r->element[i]))), reply_text(r->element[i + 1])});
        return page;
    }
}

// The subscribed connection belongs to the listener thread alone: made in
// connect, read in drain, dropped in close. On a Redis Cluster a PUBLISH
// reaches the subscribers of every node, so any master serves (the first
// one the slot map names, again at each reconnect).
void Store::events_watch(store::EventWatcher watcher) {
    std::lock_guard lock(watch_mutex_);
    if (listener_) throw Failure(SWH_E_CONFLICT, "redis: already watching events");
    auto link = std::make_shared<std::unique_ptr<Connection>>();
    auto connect = [this, link] {
        std::string host = options_.host;
        int port = static_cast<int>(options_.port);
        if (router_.cluster())
            if (const std::vector<Node *> masters = router_.masters(); !masters.empty())
                host = masters.front()->host, port = masters.front()->port;
        *link = std::make_unique<Connection>(options_, host, port, std::vector<const Script *>{});
        (*link)->command({"SUBSCRIBE", event_channel()}, "SUBSCRIBE");
        return (*link)->socket();
    };
    auto drain = [link, watcher] {
        redisContext *ctx = (*link)->raw();
        if (redisBufferRead(ctx) != REDIS_OK)
            throw Failure(SWH_E_UNAVAILABLE,
                          "redis: event listener lost " + (*link)->where() + ": " + ctx->errstr);
        std::string session_id;
        uint64_t seq = 0;
        for (;;) {
            void *raw = nullptr;
            if (redisGetReplyFromReader(ctx, &raw) != REDIS_OK)
                throw Failure(SWH_E_UNAVAILABLE, "redis: event listener: " + std::string(ctx->errstr));
            if (raw == nullptr) return;
            Reply r(static_cast<redisReply *>(raw));
            // ["message", channel, "<sid> <seq>"]
            if (r->type == REDIS_REPLY_ARRAY && r->elements == 3 && reply_text(r->element[0]) == "message" &&
                store::parse_wake(reply_text(r->element[2]), session_id, seq))
                watcher.wake(session_id, seq);
        }
    };
    auto close = [link] { link->reset(); };
    listener_ = std::make_unique<store::ListenerThread>(watcher, connect, drain, close);
}

void Store::events_unwatch() noexcept {
    std::lock_guard lock(watch_mutex_);
    listener_.reset();
}

// ---------------------------------------------------------------- limits

std::string Store::limit_key(std::string_view key, const char *suffix) const {
    return options_.key_prefix + "{limit:" + std::string(key) + "}:" + suffix;
}

int64_t Store::counter_add(std::string_view key, int64_t delta, uint32_t window_ms) {
    const std::string counter = limit_key(key, "n"), by = std::to_string(delta),
                      window = std::to_string(window_ms);
    Reply r = router_.on(counter, false, "counter_add", [&](Connection &c) {
        return c.eval(kCounterAdd, {counter}, {by, window});
    });
    return r->integer;
}

store::LeaseOutcome Store::lease_acquire(const store::LeaseInput &lease) {
    const std::string expiries = limit_key(lease.key, "lease"), weights = limit_key(lease.key, "weight");
    const std::string weight = std::to_string(lease.weight), limit = std::to_string(lease.limit),
                      ttl = std::to_string(lease.ttl_ms);
    Reply r = router_.on(expiries, false, "lease_acquire", [&](Connection &c) {
        return c.eval(kLeaseAcquire, {expiries, weights}, {lease.owner, weight, limit, ttl});
    });
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 2)
        throw Failure(SWH_E_INTERNAL, "redis: lease_acquire: unexpected reply");
    return {r->element[0]->integer == 1, static_cast<uint64_t>(r->element[1]->integer)};
}

void Store::lease_release(std::string_view key, std::string_view owner) {
    const std::string expiries = limit_key(key, "lease"), weights = limit_key(key, "weight");
    router_.on(expiries, false, "lease_release", [&](Connection &c) {
        return c.eval(kLeaseRelease, {expiries, weights}, {owner});
    });
}

std::string Store::user_index(std::string_view user_id) const {
    return options_.key_prefix + "{user:" + std::string(user_id) + "}:sessions";
}

std::string Store::all_index() const {
    return options_.key_prefix + "{sessions}:all";
}

void Store::index(std::string_view sid, std::string_view user_id, int64_t score, bool create) {
    const std::string s = std::to_string(score), user_key = user_index(user_id), all_key = all_index(),
                      ttl = std::to_string(options_.ttl());
    const std::string_view mode = create ? "NX" : "CH"; // CH: a no-op flag, so both forms have one shape
    std::vector<Keyed> commands = {{user_key, {"ZADD", user_key, mode, s, sid}},
                                   {all_key, {"ZADD", all_key, mode, s, sid}}};
    if (options_.ttl() > 0)
        commands.push_back({user_key, {"EXPIRE", user_key, ttl}}); // an idle user's index expires too
    if (!create) return best_effort(commands, "index update");
    for (const Reply &r : router_.spread(commands, false, "index update")) // refuse a create not indexed
        throw_if_error(r, "index update");
}

void Store::best_effort(const std::vector<Keyed> &commands, const char *what) {
    try {
        for (const Reply &r : router_.spread(commands, false, what))
            if (r->type == REDIS_REPLY_ERROR)
                log_(SWH_LOG_WARN, "redis: " + std::string(what) + " failed: " + reply_text(r.get()));
    } catch (const Failure &e) {
        log_(SWH_LOG_WARN, std::string(e.what()) + " (the index is repaired when listed)");
    }
}

void Store::create_session(const SessionInput &s) {
    const std::string key = session_key(s.id, "session"), ttl = std::to_string(options_.ttl());
    const std::string created = std::to_string(s.created_at);
    std::vector<std::string> numbers;
    Args argv{ttl,    "id",         s.id,    "user_id",       s.user_id, "type",
              s.type, "created_at", created, "message_count", "0"};
    session_fields(argv, s, store::kKnownSessionFields, numbers);
    // The index entries first: if the session's script then fails or never
    // runs, list_sessions finds an entry without a session and drops it. The
    // other order could leave a session that no listing shows.
    index(s.id, s.user_id, s.last_activity, true);
    Reply r =
        router_.on(key, false, kCreate.name, [&](Connection &c) { return c.eval(kCreate, {key}, argv); });
    if (r->integer == 0) throw Failure(SWH_E_CONFLICT, "session " + quoted(s.id) + " already exists");
}

std::optional<SessionRow> Store::get_session(std::string_view id) {
    const std::string key = session_key(id, "session");
    Reply r = router_.on(key, true, "HGETALL", [&](Connection &c) {
        return c.exec({"HGETALL", key}, "HGETALL");
    });
    return decode_session(r.get());
}

void Store::update_session(const SessionInput &s, uint32_t fields) {
    const std::string ttl = std::to_string(options_.ttl());
    std::vector<std::string> numbers;
    Args argv{ttl};
    session_fields(argv, s, fields, numbers);
    const std::string key = session_key(s.id, "session"), messages = session_key(s.id, "messages"),
                      ids = session_key(s.id, "ids");
    Reply r = router_.on(key, false, kUpdate.name, [&](Connection &c) {
        return c.eval(kUpdate, {key, messages, ids}, argv);
    });
    if (r->type != REDIS_REPLY_ARRAY || r->elements < 2)
        throw Failure(SWH_E_NOT_FOUND, "session " + quoted(s.id) + " not found");
    if (fields & SWH_SESSION_FIELD_LAST_ACTIVITY) index(s.id, reply_text(r->element[0]), s.last_activity);
}

void Store::delete_session(std::string_view id) {
    const std::string key = session_key(id, "session"), messages = session_key(id, "messages"),
                      ids = session_key(id, "ids");
    Reply r = router_.on(key, false, kDelete.name, [&](Connection &c) {
        return c.eval(kDelete, {key, messages, ids}, {});
    });
    if (r->type != REDIS_REPLY_STRING) throw Failure(SWH_E_NOT_FOUND, "session " + quoted(id) + " not found");
    // Left behind if this fails: list_sessions drops entries without a session.
    const std::string user_key = user_index(reply_text(r.get())), all_key = all_index();
    best_effort({{user_key, {"ZREM", user_key, id}}, {all_key, {"ZREM", all_key, id}}}, "index update");
}

std::vector<SessionRow> Store::list_sessions(const SessionFilterInput &f) {
    // The index is walked by score (indexed_at), but a session's true
    // last_activity may be up to `lag` later, so rows are sorted by the hash's
    // last_activity and the walk stops only once no entry further down can
    // outrank the rows it already holds.
    const std::string key = f.user_id.empty() ? all_index() : user_index(f.user_id);
    const int64_t lag = options_.index_lag_ms * 1000;
    const size_t want = f.limit == 0 ? 0 : static_cast<size_t>(f.offset + f.limit);
    const auto newer = [](const SessionRow &a, const SessionRow &b) {
        return a.last_activity != b.last_activity ? a.last_activity > b.last_activity : a.id > b.id;
    };
    constexpr int64_t kPage = 256;
    std::vector<SessionRow> rows;
    std::vector<Keyed> repairs;
    std::deque<std::string> repair_text; // what the repairs' Args point into (a deque does not move them)
    for (int64_t start = 0;; start += kPage) {
        Reply page = router_.on(key, true, "ZREVRANGE", [&](Connection &c) {
            return c.exec(
                {"ZREVRANGE", key, std::to_string(start), std::to_string(start + kPage - 1), "WITHSCORES"},
                "ZREVRANGE");
        });
        const size_t n = page->type == REDIS_REPLY_ARRAY ? page->elements / 2 : 0;
        if (n == 0) break;
        std::vector<std::string> keys;
        keys.reserve(n);
        for (size_t i = 0; i < n; ++i)
            keys.push_back(session_key(reply_text(page->element[2 * i]), "session"));
        std::vector<Keyed> reads;
        for (const std::string &k : keys)
            reads.push_back({k, {"HGETALL", k}});
        std::vector<Reply> hashes = router_.spread(reads, true, "HGETALL");
        int64_t lowest = 0;
        for (size_t i = 0; i < n; ++i) {
            const std::string id = reply_text(page->element[2 * i]);
            const int64_t score = to_int(reply_text(page->element[2 * i + 1]));
            lowest = score;
            throw_if_error(hashes[i], "HGETALL");
            auto row = decode_session(hashes[i].get());
            if (!row || (!f.user_id.empty() && row->user_id != f.user_id)) {
                // expired (TTL), deleted, or created for another user: drop the entry
                repair_text.push_back(id);
                repairs.push_back({key, {"ZREM", key, repair_text.back()}});
            } else if (row->last_activity < score || row->last_activity - score > lag) {
                // a failed index update left the score behind: put it right
                repair_text.push_back(id);
                repair_text.push_back(std::to_string(row->last_activity));
                repairs.push_back(
                    {key, {"ZADD", key, repair_text.back(), repair_text[repair_text.size() - 2]}});
            }
            if (!row || (!f.user_id.empty() && row->user_id != f.user_id)) continue;
            if (!f.status.empty() && row->status != f.status) continue;
            rows.push_back(std::move(*row));
        }
        if (static_cast<int64_t>(n) < kPage) break;
        if (want != 0 && rows.size() >= want) {
            std::partial_sort(rows.begin(), rows.begin() + static_cast<std::ptrdiff_t>(want), rows.end(),
                              newer);
            rows.resize(want);
            if (rows.back().last_activity > lowest + lag) break; // nothing further down can outrank these
        }
    }
    if (!repairs.empty()) best_effort(repairs, "index repair");
    std::sort(rows.begin(), rows.end(), newer);
    rows.erase(rows.begin(),
               rows.begin() + static_cast<std::ptrdiff_t>(std::min<size_t>(f.offset, rows.size())));
    if (f.limit != 0 && rows.size() > f.limit) rows.resize(f.limit);
    return rows;
}

void Store::add_message(const MessageInput &m) {
    if (m.role.find('\n') != std::string_view::npos)
        throw Failure(SWH_E_INVALID, "redis: message.role must not contain a newline");
    const std::string element = encode_message(m), ts = std::to_string(m.timestamp),
                      ttl = std::to_string(options_.ttl()),
                      lag = std::to_string(options_.index_lag_ms * 1000),
                      key = session_key(m.session_id, "session"),
                      messages = session_key(m.session_id, "messages"),
                      ids = session_key(m.session_id, "ids");
    Reply r = router_.on(key, false, kAddMessage.name, [&](Connection &c) {
        return c.eval(kAddMessage, {key, messages, ids}, {m.id, ts, element, ttl, lag});
    });
    if (r->type == REDIS_REPLY_INTEGER && r->integer == -1)
        throw Failure(SWH_E_NOT_FOUND, "session " + quoted(m.session_id) + " not found");
    if (r->type == REDIS_REPLY_INTEGER && r->integer == -2)
        throw Failure(SWH_E_CONFLICT, "message " + quoted(m.id) + " already exists");
    if (r->type != REDIS_REPLY_ARRAY || r->elements < 1)
        throw Failure(SWH_E_INTERNAL, "redis: add_message: unexpected reply");
    if (r->elements >= 2) index(m.session_id, reply_text(r->element[1]), m.timestamp); // the indexes are due
}

std::vector<MessageRow> Store::get_messages(const MessageQueryInput &q) {
    const std::string since = std::to_string(q.since), limit = std::to_string(q.limit),
                      key = session_key(q.session_id, "session"),
                      messages = session_key(q.session_id, "messages");
    Reply r = router_.on(key, true, kGetMessages.name, [&](Connection &c) {
        return c.eval(kGetMessages, {key, messages}, {q.role, since, limit});
    });
    if (r->type != REDIS_REPLY_ARRAY)
        throw Failure(SWH_E_NOT_FOUND, "session " + quoted(q.session_id) + " not found");
    std::vector<MessageRow> rows;
    rows.reserve(r->elements);
    for (size_t i = 0; i < r->elements; ++i)
        rows.push_back(decode_message(std::string_view(r->element[i]->str, r->element[i]->len)));
    return rows;
}

void Store::describe(nlohmann::json &report) const {
    report["backend"] = "redis";
    report["server"] = where_;
    report["db"] = options_.db;
    report["key_prefix"] = options_.key_prefix;
    report["ttl_seconds"] = options_.ttl();
    report["pool_size"] = options_.pool_size;
    report["cluster"] = options_.cluster;
    report["index_lag_ms"] = options_.index_lag_ms;
    report["hiredis_version"] = std::to_string(HIREDIS_MAJOR) + "." + std::to_string(HIREDIS_MINOR) + "." +
                                std::to_string(HIREDIS_PATCH);
}

namespace {

// PING, INFO and CONFIG (and CLUSTER INFO) of one server; throws when it is
// not serving. The INFO fields go into `report`.
void check_node(Node &node, bool cluster, nlohmann::json &report) {
    node.pool.run(true, [&](Connection &c) {
        std::vector<Args> commands = {{"PING"}, {"INFO"}, {"CONFIG", "GET", "appendfsync"}};
        if (cluster) commands.push_back({"CLUSTER", "INFO"});
        std::vector<Reply> r = c.pipeline(commands, "health check");
        if (r[0]->type == REDIS_REPLY_ERROR)
            throw Failure(SWH_E_UNAVAILABLE, "redis: " + node.where + ": PING: " + reply_text(r[0].get()));
        std::string info = reply_text(r[1].get());
        for (const char *field : {"redis_version", "used_memory_human", "connected_clients", "aof_enabled",
                                  "role", "loading", "rdb_last_bgsave_status", "aof_last_write_status"}) {
            std::string needle = std::string("\r\n") + field + ":";
            auto at = info.find(needle);
            if (at == std::string::npos) continue;
            at += needle.size();
            report[field] = info.substr(at, info.find("\r\n", at) - at);
        }
        // CONFIG may be disabled (renamed) on managed servers: then it is left out.
        if (r[2]->type == REDIS_REPLY_ARRAY && r[2]->elements == 2)
            report["appendfsync"] = reply_text(r[2]->element[1]);
        if (report.value("loading", "0") == "1")
            throw Failure(SWH_E_UNAVAILABLE, "redis: " + node.where + ": server is loading its data");
        if (cluster) {
            const std::string state = reply_text(r[3].get());
            report["cluster_state"] = state.find("cluster_state:ok") != std::string::npos ? "ok" : "fail";
            if (report["cluster_state"] != "ok")
                throw Failure(SWH_E_UNAVAILABLE, "redis: " + node.where + ": cluster_state is not ok");
        }
        return 0;
    });
}

} // namespace

void Store::health(nlohmann::json &report) {
    std::vector<Node *> nodes = router_.masters();
    // The first master's facts at the top level (as for one server); on a
    // cluster each master's state under "nodes", and any master down makes
    // the store unhealthy (its sessions cannot be served).
    std::string failure;
    nlohmann::json per_node = nlohmann::json::array();
    for (size_t i = 0; i < nodes.size(); ++i) {
        nlohmann::json facts;
        try {
            check_node(*nodes[i], router_.cluster(), i == 0 ? report : facts);
            per_node.push_back({{"server", nodes[i]->where}, {"status", "ok"}});
        } catch (const Failure &e) {
            if (!router_.cluster()) throw;
            per_node.push_back({{"server", nodes[i]->where}, {"status", "unreachable"}, {"error", e.what()}});
            if (failure.empty()) failure = e.what();
        }
    }
    if (router_.cluster()) report["nodes"] = per_node;
    report["open_connections"] = router_.open_connections();
    if (!failure.empty()) throw Failure(SWH_E_UNAVAILABLE, failure);
}

} // namespace swh::redis
