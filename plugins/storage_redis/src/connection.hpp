// One hiredis connection to one Redis server (RAII), with the session scripts
// loaded, and the reply and status helpers the store and the cluster router
// share. Error replies are returned as replies by exec/pipeline/eval, so the
// router can act on MOVED and ASK before anything turns them into a Failure.
#pragma once

#include <swarmhost/cpp/storage_plugin.hpp>

#include <hiredis/hiredis.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace swh::redis {

struct Options {
    std::string host = "127.0.0.1";
    int64_t port = 6379;
    std::string password;
    int64_t db = 0;
    std::string key_prefix = "swarmhost:";
    int64_t ttl_hours = 168;
    int64_t ttl_seconds = 0; // > 0 overrides ttl_hours
    int64_t connect_timeout_ms = 2000;
    int64_t command_timeout_ms = 5000;
    int64_t pool_size = 8;
    bool cluster = false;
    std::vector<std::string> seeds; // more "host:port" cluster nodes to start from
    int64_t index_lag_ms = 60000;
    int64_t events_retention_seconds = 3600;
    int64_t events_max_per_session = 1000;

    int64_t ttl() const noexcept { return ttl_seconds > 0 ? ttl_seconds : ttl_hours * 3600; }
};

// A Lua script of the store; every one touches the keys of one session.
struct Script {
    const char *name;
    const char *body;
};

struct ReplyDeleter {
    void operator()(redisReply *r) const noexcept { freeReplyObject(r); }
};
using Reply = std::unique_ptr<redisReply, ReplyDeleter>;
using Args = std::vector<std::string_view>;

std::string reply_text(const redisReply *r);
bool is_error(const Reply &r, std::string_view prefix = {});
// A server error reply -> its status (server state: SWH_E_UNAVAILABLE).
swh_status status_for_error(std::string_view text);
// Throws the Failure for an error reply; `what` names the step.
void throw_if_error(const Reply &r, const char *what);

class Connection {
  public:
    // Connects, AUTHs, SELECTs (standalone only) and loads `scripts`, or throws Failure.
    Connection(const Options &o, const std::string &host, int port,
               const std::vector<const Script *> &scripts);
    Connection(const Connection &) = delete;
    Connection &operator=(const Connection &) = delete;

    bool broken() const noexcept { return ctx_->err != 0; }
    // The server did not answer within command_timeout_ms (the pool then
    // neither reuses nor retries: a silent server stays silent).
    bool timed_out() const noexcept { return timed_out_; }
    int socket() const noexcept { return ctx_->fd; }
    redisContext *raw() const noexcept { return ctx_.get(); } // the event listener reads it directly
    const std::string &where() const noexcept { return where_; }

    // One command; the reply, an error reply too. A lost connection throws.
    Reply exec(const Args &args, const char *what);
    // One command; an error reply throws.
    Reply command(const Args &args, const char *what);
    // Several commands in one round trip; replies in order (errors as replies).
    std::vector<Reply> pipeline(const std::vector<Args> &commands, const char *what);
    // EVALSHA, falling back to EVAL when the server lost its script cache;
    // the reply, an error reply too.
    Reply eval(const Script &script, const Args &keys, const Args &argv);

  private:
    void append(const Args &args);
    Reply read(const char *what);
    [[noreturn]] void lost(const char *what);

    struct Free {
        void operator()(redisContext *c) const noexcept { redisFree(c); }
    };
    // Owned from the first line of the constructor: a connect, AUTH or script
    // load that fails (as each does while the server is frozen) closes it.
    std::unique_ptr<redisContext, Free> ctx_;
    bool timed_out_ = false;
    std::string where_;
    std::vector<std::pair<const Script *, std::string>> sha_;
};

} // namespace swh::redis
