#include "connection.hpp"

#include <cerrno>
#include <cstring>

namespace swh::redis {

using edge::Failure;

namespace {

timeval to_timeval(int64_t ms) {
    return timeval{static_cast<time_t>(ms / 1000), static_cast<suseconds_t>((ms % 1000) * 1000)};
}

} // namespace

std::string reply_text(const redisReply *r) {
    return r && r->str ? std::string(r->str, r->len) : std::string();
}

bool is_error(const Reply &r, std::string_view prefix) {
    return r->type == REDIS_REPLY_ERROR && std::string_view(r->str, r->len).starts_with(prefix);
}

// Persistence, memory, replication and cluster trouble is the server's state,
// not the caller's: retry later.
swh_status status_for_error(std::string_view text) {
    for (const char *prefix : {"LOADING", "MISCONF", "OOM", "READONLY", "MASTERDOWN", "BUSY", "NOAUTH",
                               "WRONGPASS", "NOPERM", "CLUSTERDOWN", "TRYAGAIN", "MOVED", "ASK"})
        if (text.starts_with(prefix)) return SWH_E_UNAVAILABLE;
    return SWH_E_INTERNAL;
}

void throw_if_error(const Reply &r, const char *what) {
    if (r->type != REDIS_REPLY_ERROR) return;
    std::string text = reply_text(r.get());
    throw Failure(status_for_error(text), "redis: " + std::string(what) + ": " + text);
}

Connection::Connection(const Options &o, const std::string &host, int port,
                       const std::vector<const Script *> &scripts)
    : where_(host + ":" + std::to_string(port)) {
    ctx_.reset(redisConnectWithTimeout(host.c_str(), port, to_timeval(o.connect_timeout_ms)));
    if (ctx_ == nullptr) throw Failure(SWH_E_INTERNAL, "redis: out of memory while connecting");
    if (ctx_->err != 0)
        throw Failure(SWH_E_UNAVAILABLE,
                      "redis: cannot connect to " + where_ + ": " + std::string(ctx_->errstr));
    if (o.command_timeout_ms > 0) redisSetTimeout(ctx_.get(), to_timeval(o.command_timeout_ms));
    if (!o.password.empty()) command({"AUTH", o.password}, "AUTH");
    if (o.db != 0) command({"SELECT", std::to_string(o.db)}, "SELECT");
    for (const Script *s : scripts)
        sha_.emplace_back(s, reply_text(command({"SCRIPT", "LOAD", s->body}, "SCRIPT LOAD").get()));
}

Reply Connection::exec(const Args &args, const char *what) {
    append(args);
    return read(what);
}

Reply Connection::command(const Args &args, const char *what) {
    Reply r = exec(args, what);
    throw_if_error(r, what);
    return r;
}

std::vector<Reply> Connection::pipeline(const std::vector<Args> &commands, const char *what) {
    for (const Args &args : commands)
        append(args);
    std::vector<Reply> replies;
    replies.reserve(commands.size());
    for (size_t i = 0; i < commands.size(); ++i)
        replies.push_back(read(what));
    return replies;
}

Reply Connection::eval(const Script &script, const Args &keys, const Args &argv) {
    std::string_view sha;
    for (const auto &[s, digest] : sha_)
        if (s == &script) sha = digest;
    const std::string nkeys = std::to_string(keys.size());
    Args args{"EVALSHA", sha, nkeys};
    args.insert(args.end(), keys.begin(), keys.end());
    args.insert(args.end(), argv.begin(), argv.end());
    Reply r = exec(args, script.name);
    if (is_error(r, "NOSCRIPT")) {
        args[0] = "EVAL";
        args[1] = script.body;
        r = exec(args, script.name);
    }
    return r;
}

void Connection::append(const Args &args) {
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

Reply Connection::read(const char *what) {
    void *raw = nullptr;
    if (redisGetReply(ctx_.get(), &raw) != REDIS_OK || raw == nullptr) lost(what);
    return Reply(static_cast<redisReply *>(raw));
}

void Connection::lost(const char *what) {
    const bool timeout = ctx_->err == REDIS_ERR_IO && (errno == EAGAIN || errno == EWOULDBLOCK);
    const bool timed_out = timeout || std::strstr(ctx_->errstr, "imed out") != nullptr;
    timed_out_ = timed_out;
    if (ctx_->err == 0) ctx_->err = REDIS_ERR_OTHER; // whatever happened, do not reuse this connection
    throw Failure(timed_out ? SWH_E_TIMEOUT : SWH_E_UNAVAILABLE,
                  "redis: " + where_ + ": " + (timed_out ? "command timed out" : "connection lost") +
                      " during " + what + ": " + std::string(ctx_->errstr));
}

} // namespace swh::redis
