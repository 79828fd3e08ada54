#include "redis_store.hpp"

#include <hiredis/hiredis.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <utility>

namespace swh::redis {

using edge::Failure;
using store::quoted;

namespace {

// ------------------------------------------------------------------ scripts
// Each script touches the keys of ONE session (one hash tag, one Cluster
// slot) and runs atomically on the server.

struct Script {
    const char *name;
    const char *body;
};

// KEYS: session; ARGV: ttl, field, value, ... -> 1 created, 0 exists
constexpr Script kCreate = {"create", R"lua(
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV, 2))
if tonumber(ARGV[1]) > 0 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
return 1
)lua"};

// KEYS: session, messages, ids; ARGV: id, timestamp, element, ttl
// -> {message_count, user_id}, or -1 (no session), -2 (duplicate id).
// The element goes after the last one with timestamp <= its own, so the list
// stays chronological when concurrent writers arrive out of timestamp order
// (the usual case is one RPUSH).
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

constexpr const Script *kScripts[] = {&kCreate, &kAddMessage,   &kGetMessages, &kUpdate,
                                      &kDelete, &kEventPublish, &kEventRead};
constexpr size_t kScriptCount = sizeof(kScripts) / sizeof(kScripts[0]);

size_t script_index(const Script &s) {
    for (size_t i = 0; i < kScriptCount; ++i)
        if (kScripts[i] == &s) return i;
    return 0;
}

struct ReplyDeleter {
    void operator()(redisReply *r) const noexcept { freeReplyObject(r); }
};
using Reply = std::unique_ptr<redisReply, ReplyDeleter>;
using Args = std::vector<std::string_view>;

timeval to_timeval(int64_t ms) {
    return timeval{static_cast<time_t>(ms / 1000), static_cast<suseconds_t>((ms % 1000) * 1000)};
}

std::string reply_text(const redisReply *r) {
    return r && r->str ? std::string(r->str, r->len) : std::string();
}

int64_t to_int(const std::string &s) {
    return s.empty() ? 0 : std::strtoll(s.c_str(), nullptr, 10);
}

// A server error reply -> status. Persistence, memory and replication
// trouble is the server's state, not the caller's: retry later.
swh_status status_for_error(std::string_view text) {
    for (const char *prefix : {"LOADING", "MISCONF", "OOM", "READONLY", "MASTERDOWN", "BUSY", "NOAUTH",
                               "WRONGPASS", "NOPERM", "CLUSTERDOWN", "TRYAGAIN"})
        if (text.rfind(prefix, 0) == 0) return SWH_E_UNAVAILABLE;
    return SWH_E_INTERNAL;
}

} // namespace

// ---------------------------------------------------------------- connection

class Connection {
  public:
    Connection(const Options &o, const std::string &where) : where_(where) {
        timeval connect_tv = to_timeval(o.connect_timeout_ms);
        ctx_.reset(redisConnectWithTimeout(o.host.c_str(), static_cast<int>(o.port), connect_tv));
        if (ctx_ == nullptr) throw Failure(SWH_E_INTERNAL, "redis: out of memory while connecting");
        if (ctx_->err != 0)
            throw Failure(SWH_E_UNAVAILABLE,
                          "redis: cannot connect to " + where_ + ": " + std::string(ctx_->errstr));
        if (o.command_timeout_ms > 0) redisSetTimeout(ctx_.get(), to_timeval(o.command_timeout_ms));
        if (!o.password.empty()) command({"AUTH", o.password}, "AUTH");
        if (o.db != 0) command({"SELECT", std::to_string(o.db)}, "SELECT");
        for (size_t i = 0; i < kScriptCount; ++i) {
            Reply r = command({"SCRIPT", "LOAD", kScripts[i]->body}, "SCRIPT LOAD");
            sha_[i] = reply_text(r.get());
        }
    }
    Connection(const Connection &) = delete;
    Connection &operator=(const Connection &) = delete;

    bool broken() const noexcept { return ctx_->err != 0; }
    // The server did not answer within command_timeout_ms (the pool then
    // neither reuses nor retries: a silent server stays silent).
    bool timed_out() const noexcept { return timed_out_; }
    int socket() const noexcept { return ctx_->fd; }
    redisContext *raw() const noexcept { return ctx_.get(); }

    // One command; a server error reply throws.
    Reply command(const Args &args, const char *what) {
        append(args);
        return read(what);
    }

    // Several commands in one round trip; replies in order (errors as replies).
    std::vector<Reply> pipeline(const std::vector<Args> &commands, const char *what) {
        for (const Args &args : commands)
            append(args);
        std::vector<Reply> replies;
        replies.reserve(commands.size());
        for (size_t i = 0; i < commands.size(); ++i)
            replies.push_back(read(what, false));
        return replies;
    }

    // EVALSHA, falling back to EVAL when the server lost its script cache.
    Reply eval(const Script &script, const Args &keys, const Args &argv) {
        Args args{"EVALSHA", sha_[script_index(script)]};
        std::string nkeys = std::to_string(keys.size());
        args.push_back(nkeys);
        args.insert(args.end(), keys.begin(), keys.end());
        args.insert(args.end(), argv.begin(), argv.end());
        append(args);
        Reply r = read(script.name, false);
        if (r->type == REDIS_REPLY_ERROR && reply_text(r.get()).rfind("NOSCRIPT", 0) == 0) {
            args[0] = "EVAL";
            args[1] = script.body;
            append(args);
            r = read(script.name, false);
        }
        throw_if_error(r, script.name);
        return r;
    }

  private:
    void append(const Args &args) {
        std::vector<const char *> argv(args.size());
        std::vector<size_t> lens(args.size());
        for (size_t i = 0; i < args.size(); ++i) {
            argv[i] = args[i].data() != nullptr ? args[i].data() : "";
            lens[i] = args[i].size();
        }
        if (redisAppendCommandArgv(ctx_.get(), static_cast<int>(args.size()), argv.data(), lens.data()) !=
            REDIS_OK)
            lost("sending a command");
    }
    Reply read(const char *what, bool throw_on_error = true) {
        void *raw = nullptr;
        if (redisGetReply(ctx_.get(), &raw) != REDIS_OK || raw == nullptr) lost(what);
        Reply r(static_cast<redisReply *>(raw));
        if (throw_on_error) throw_if_error(r, what);
        return r;
    }
    void throw_if_error(const Reply &r, const char *what) const {
        if (r->type != REDIS_REPLY_ERROR) return;
        std::string text = reply_text(r.get());
        throw Failure(status_for_error(text), "redis: " + std::string(what) + ": " + text);
    }
    [[noreturn]] void lost(const char *what) {
        const bool timeout = ctx_->err == REDIS_ERR_IO && (errno == EAGAIN || errno == EWOULDBLOCK);
        const bool timed_out = timeout || std::strstr(ctx_->errstr, "imed out") != nullptr;
        timed_out_ = timed_out;
        if (ctx_->err == 0) ctx_->err = REDIS_ERR_OTHER; // whatever happened, do not reuse this connection
        throw Failure(timed_out ? SWH_E_TIMEOUT : SWH_E_UNAVAILABLE,
                      "redis: " + where_ + ": " + (timed_out ? "command timed out" : "connection lost") +
                          " during " + what + ": " + std::string(ctx_->errstr));
    }

    struct Free {
        void operator()(redisContext *c) const noexcept { redisFree(c); }
    };
    // Owned from the first line of the constructor: a connect, AUTH or script
    // load that fails (as each does while the server is frozen) closes it.
    std::unique_ptr<redisContext, Free> ctx_;
    bool timed_out_ = false;
    std::string where_;
    std::string sha_[kScriptCount];
};

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
}

} // namespace

// ---------------------------------------------------------------- store

Store::Store(Options options, edge::HostLog log)
    : options_(std::move(options)), log_(log), where_(options_.host + ":" + std::to_string(options_.port)),
      pool_(static_cast<size_t>(std::max<int64_t>(1, options_.pool_size)), [this] { return connect(); }) {
    if (options_.host.empty()) throw Failure(SWH_E_INVALID, "redis: config 'host' is empty");
    if (options_.port < 1 || options_.port > 65535)
        throw Failure(SWH_E_INVALID, "redis: config 'port' out of range");
    if (options_.db < 0) throw Failure(SWH_E_INVALID, "redis: config 'db' must be >= 0");
    if (options_.pool_size < 1 || options_.pool_size > 256)
        throw Failure(SWH_E_INVALID, "redis: config 'pool_size' must be between 1 and 256");
    if (options_.ttl_hours < 0 || options_.ttl_seconds < 0)
        throw Failure(SWH_E_INVALID, "redis: config 'ttl_hours' / 'ttl_seconds' must be >= 0");
    if (options_.connect_timeout_ms < 1 || options_.command_timeout_ms < 0)
        throw Failure(SWH_E_INVALID, "redis: timeouts must be positive");
    if (options_.key_prefix.find_first_of("{}") != std::string::npos)
        throw Failure(SWH_E_INVALID, "redis: config 'key_prefix' must not contain '{' or '}' (hash tags)");
    { auto lease = pool_.acquire(); } // fail fast on a wrong address, password or db
    log_(SWH_LOG_INFO, "redis: connected to " + where_ + " db " + std::to_string(options_.db) + " (prefix '" +
                           options_.key_prefix + "', ttl " + std::to_string(options_.ttl()) + " s, pool " +
                           std::to_string(options_.pool_size) + ")");
}

Store::~Store() = default;

std::unique_ptr<Connection> Store::connect() {
    return std::make_unique<Connection>(options_, where_);
}

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
    return pool_.run(false, [&](Connection &c) {
        Reply r = c.eval(kEventPublish, {seq_key, stream_key},
                         {payload, now_ms, retention_ms, max, channel, session_id, ttl});
        return static_cast<uint64_t>(r->integer);
    });
}

store::EventPage Store::events_read(std::string_view session_id, uint64_t after_seq, uint32_t limit) {
    const std::string seq_key = session_key(session_id, "evseq"),
                      stream_key = session_key(session_id, "events");
    const std::string after = std::to_string(after_seq), count = std::to_string(limit);
    return pool_.run(true, [&](Connection &c) {
        Reply r = c.eval(kEventRead, {seq_key, stream_key}, {after, count});
        if (r->type != REDIS_REPLY_ARRAY || r->elements < 2 || r->elements % 2 != 0)
            throw Failure(SWH_E_INTERNAL, "redis: events_read: unexpected reply");
        store::EventPage page;
        page.last_seq = static_cast<uint64_t>(r->element[0]->integer);
        page.first_seq = static_cast<uint64_t>(r->element[1]->integer);
        for (size_t i = 2; i + 1 < r->elements; i += 2)
            page.events.push_back(
                {static_cast<uint64_t>(to_int(reply_text(r->element[i]))), reply_text(r->element[i + 1])});
        return page;
    });
}

// The subscribed connection belongs to the listener thread alone: made in
// connect, read in drain, dropped in close.
void Store::events_watch(store::EventWatcher watcher) {
    std::lock_guard lock(watch_mutex_);
    if (listener_) throw Failure(SWH_E_CONFLICT, "redis: already watching events");
    auto link = std::make_shared<std::unique_ptr<Connection>>();
    auto connect = [this, link] {
        *link = std::make_unique<Connection>(options_, where_);
        (*link)->command({"SUBSCRIBE", event_channel()}, "SUBSCRIBE");
        return (*link)->socket();
    };
    auto drain = [link, watcher, where = where_] {
        redisContext *ctx = (*link)->raw();
        if (redisBufferRead(ctx) != REDIS_OK)
            throw Failure(SWH_E_UNAVAILABLE, "redis: event listener lost " + where + ": " + ctx->errstr);
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

std::string Store::user_index(std::string_view user_id) const {
    return options_.key_prefix + "{user:" + std::string(user_id) + "}:sessions";
}

std::string Store::all_index() const {
    return options_.key_prefix + "{sessions}:all";
}

void Store::index(Connection &c, std::string_view sid, std::string_view user_id, int64_t score) {
    const std::string s = std::to_string(score), user_key = user_index(user_id), all_key = all_index(),
                      ttl = std::to_string(options_.ttl());
    std::vector<Args> commands = {{"ZADD", user_key, s, sid}, {"ZADD", all_key, s, sid}};
    if (options_.ttl() > 0) commands.push_back({"EXPIRE", user_key, ttl}); // an idle user's index expires too
    for (const Reply &r : c.pipeline(commands, "index update"))
        if (r->type == REDIS_REPLY_ERROR)
            log_(SWH_LOG_WARN, "redis: index update failed: " + reply_text(r.get()));
}

void Store::create_session(const SessionInput &s) {
    const std::string key = session_key(s.id, "session"), ttl = std::to_string(options_.ttl());
    const std::string created = std::to_string(s.created_at);
    std::vector<std::string> numbers;
    Args argv{ttl,    "id",         s.id,    "user_id",       s.user_id, "type",
              s.type, "created_at", created, "message_count", "0"};
    session_fields(argv, s, store::kKnownSessionFields, numbers);
    pool_.run(false, [&](Connection &c) {
        Reply r = c.eval(kCreate, {key}, argv);
        if (r->integer == 0) throw Failure(SWH_E_CONFLICT, "session " + quoted(s.id) + " already exists");
        index(c, s.id, s.user_id, s.last_activity);
    });
}

std::optional<SessionRow> Store::get_session(std::string_view id) {
    const std::string key = session_key(id, "session");
    return pool_.run(true, [&](Connection &c) {
        return decode_session(c.command({"HGETALL", key}, "HGETALL").get());
    });
}

void Store::update_session(const SessionInput &s, uint32_t fields) {
    const std::string ttl = std::to_string(options_.ttl());
    std::vector<std::string> numbers;
    Args argv{ttl};
    session_fields(argv, s, fields, numbers);
    pool_.run(false, [&](Connection &c) {
        Reply r = c.eval(
            kUpdate, {session_key(s.id, "session"), session_key(s.id, "messages"), session_key(s.id, "ids")},
            argv);
        if (r->type != REDIS_REPLY_ARRAY || r->elements < 2)
            throw Failure(SWH_E_NOT_FOUND, "session " + quoted(s.id) + " not found");
        if (fields & SWH_SESSION_FIELD_LAST_ACTIVITY)
            index(c, s.id, reply_text(r->element[0]), s.last_activity);
    });
}

void Store::delete_session(std::string_view id) {
    pool_.run(false, [&](Connection &c) {
        Reply r = c.eval(
            kDelete, {session_key(id, "session"), session_key(id, "messages"), session_key(id, "ids")}, {});
        if (r->type != REDIS_REPLY_STRING)
            throw Failure(SWH_E_NOT_FOUND, "session " + quoted(id) + " not found");
        c.pipeline({{"ZREM", user_index(reply_text(r.get())), id}, {"ZREM", all_index(), id}},
                   "index update");
    });
}

std::vector<SessionRow> Store::list_sessions(const SessionFilterInput &f) {
    const std::string key = f.user_id.empty() ? all_index() : user_index(f.user_id);
    constexpr int64_t kPage = 256;
    return pool_.run(true, [&](Connection &c) {
        std::vector<SessionRow> rows;
        uint64_t skipped = 0;
        for (int64_t start = 0;; start += kPage) {
            Reply ids = c.command(
                {"ZREVRANGE", key, std::to_string(start), std::to_string(start + kPage - 1)}, "ZREVRANGE");
            if (ids->type != REDIS_REPLY_ARRAY || ids->elements == 0) return rows;
            std::vector<Args> reads;
            std::vector<std::string> keys;
            keys.reserve(ids->elements);
            for (size_t i = 0; i < ids->elements; ++i)
                keys.push_back(session_key(reply_text(ids->element[i]), "session"));
            for (const std::string &k : keys)
                reads.push_back({"HGETALL", k});
            std::vector<Reply> replies = c.pipeline(reads, "HGETALL");
            std::vector<Args> stale;
            for (size_t i = 0; i < replies.size(); ++i) {
                auto row = decode_session(replies[i].get());
                if (!row) { // expired (TTL) or deleted: drop the index entry
                    stale.push_back({"ZREM", key, reply_text(ids->element[i])});
                    continue;
                }
                if (!f.user_id.empty() && row->user_id != f.user_id) continue;
                if (!f.status.empty() && row->status != f.status) continue;
                if (skipped < f.offset) {
                    ++skipped;
                    continue;
                }
                rows.push_back(std::move(*row));
                if (f.limit != 0 && rows.size() >= f.limit) return rows;
            }
            if (!stale.empty()) c.pipeline(stale, "index cleanup");
            if (static_cast<int64_t>(ids->elements) < kPage) return rows;
            start -= static_cast<int64_t>(stale.size()); // removed entries shifted the ranks
        }
    });
}

void Store::add_message(const MessageInput &m) {
    if (m.role.find('\n') != std::string_view::npos)
        throw Failure(SWH_E_INVALID, "redis: message.role must not contain a newline");
    const std::string element = encode_message(m), ts = std::to_string(m.timestamp),
                      ttl = std::to_string(options_.ttl());
    pool_.run(false, [&](Connection &c) {
        Reply r = c.eval(kAddMessage,
                         {session_key(m.session_id, "session"), session_key(m.session_id, "messages"),
                          session_key(m.session_id, "ids")},
                         {m.id, ts, element, ttl});
        if (r->type == REDIS_REPLY_INTEGER && r->integer == -1)
            throw Failure(SWH_E_NOT_FOUND, "session " + quoted(m.session_id) + " not found");
        if (r->type == REDIS_REPLY_INTEGER && r->integer == -2)
            throw Failure(SWH_E_CONFLICT, "message " + quoted(m.id) + " already exists");
        if (r->type != REDIS_REPLY_ARRAY || r->elements < 2)
            throw Failure(SWH_E_INTERNAL, "redis: add_message: unexpected reply");
        index(c, m.session_id, reply_text(r->element[1]), m.timestamp);
    });
}

std::vector<MessageRow> Store::get_messages(const MessageQueryInput &q) {
    const std::string since = std::to_string(q.since), limit = std::to_string(q.limit);
    std::vector<MessageRow> rows;
    bool found = pool_.run(true, [&](Connection &c) {
        Reply r = c.eval(kGetMessages,
                         {session_key(q.session_id, "session"), session_key(q.session_id, "messages")},
                         {q.role, since, limit});
        if (r->type != REDIS_REPLY_ARRAY) return false;
        rows.clear();
        rows.reserve(r->elements);
        for (size_t i = 0; i < r->elements; ++i)
            rows.push_back(decode_message(std::string_view(r->element[i]->str, r->element[i]->len)));
        return true;
    });
    if (!found) throw Failure(SWH_E_NOT_FOUND, "session " + quoted(q.session_id) + " not found");
    return rows;
}

void Store::describe(nlohmann::json &report) const {
    report["backend"] = "redis";
    report["server"] = where_;
    report["db"] = options_.db;
    report["key_prefix"] = options_.key_prefix;
    report["ttl_seconds"] = options_.ttl();
    report["pool_size"] = options_.pool_size;
    report["hiredis_version"] = std::to_string(HIREDIS_MAJOR) + "." + std::to_string(HIREDIS_MINOR) + "." +
                                std::to_string(HIREDIS_PATCH);
}

void Store::health(nlohmann::json &report) {
    pool_.run(true, [&](Connection &c) {
        std::vector<Reply> r =
            c.pipeline({{"PING"}, {"INFO"}, {"CONFIG", "GET", "appendfsync"}}, "health check");
        if (r[0]->type == REDIS_REPLY_ERROR)
            throw Failure(SWH_E_UNAVAILABLE, "redis: PING: " + reply_text(r[0].get()));
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
            throw Failure(SWH_E_UNAVAILABLE, "redis: server is loading its data");
        return 0;
    });
    report["open_connections"] = pool_.open_connections();
}

} // namespace swh::redis
