#include "isolation/provider_process.hpp"

#include "loader/abi_convert.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <poll.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>

namespace swh::isolation {

namespace {

using std::chrono::milliseconds;

long long ms_until(Clock::time_point when) {
    return std::max<long long>(0, std::chrono::ceil<milliseconds>(when - Clock::now()).count());
}

const std::string &string_at(const Json &json, const char *key) {
    static const std::string empty;
    auto it = json.find(key);
    return it != json.end() && it->is_string() ? it->get_ref<const std::string &>() : empty;
}

uint64_t id_at(const Json &json, const char *key) {
    auto it = json.find(key);
    return it != json.end() && it->is_number_unsigned() ? it->get<uint64_t>() : 0;
}

} // namespace

// One request waiting for its reply (or for the failure of its child).
struct ProviderProcess::Waiter {
    std::mutex mutex;
    std::condition_variable cv;
    bool ready = false;
    Json reply;
    swh_status failure = SWH_OK;
    std::string failure_text;
    std::shared_ptr<Stream> stream; // a start's: acknowledged by an OK reply

    void fulfil(Json answer) {
        std::lock_guard lock(mutex);
        reply = std::move(answer);
        ready = true;
        cv.notify_all();
    }
    void fail(swh_status status, const std::string &text) {
        std::lock_guard lock(mutex);
        failure = status;
        failure_text = text;
        ready = true;
        cv.notify_all();
    }
};

// One open provider call. Only the reader thread touches the flags (and
// calls the sink), so the sink is never called concurrently for one call.
struct ProviderProcess::Stream {
    swh_provider_sink sink{};
    bool acked = false;   // the child's start said OK
    bool touched = false; // the sink got a frame: the call must end with done
    bool cancel_sent = false;
};

// One child generation: the process, its reader, and what is open on it.
struct ProviderProcess::Link {
    ChildProcess child;
    std::thread reader;
    std::thread::id reader_id;
    std::mutex send_mutex; // one frame at a time; closed, broken
    bool closed = false;   // the reader has closed the fd: nothing more is sent
    std::string broken;    // why a send failed (the socket was shut down)
    bool send_timed_out = false;
    // Under ProviderProcess::mutex_:
    std::map<uint64_t, std::shared_ptr<Waiter>> waiters; // by rid
    std::map<uint64_t, std::shared_ptr<Stream>> streams; // by call id
    bool dead = false;
    std::atomic<bool> stopping{false};
    std::atomic<bool> exited{false};
};

ProviderProcess::ProviderProcess(ProcessOptions options, const swh_host_api *host, Json config)
    : options_(std::move(options)), host_(host), config_(std::move(config)) {}

ProviderProcess::~ProviderProcess() = default; // stop() ended every reader

const char *ProviderProcess::error() {
    return errors_.get();
}

void ProviderProcess::set_error(std::string text) {
    errors_.set(std::move(text));
}

swh_status ProviderProcess::start() {
    std::lock_guard lock(mutex_);
    const swh_status status = start_child_locked();
    if (status != SWH_OK) set_error("plugin process for '" + options_.instance + "' " + last_failure_);
    return status;
}

void ProviderProcess::stop() {
    std::vector<std::shared_ptr<Link>> links;
    {
        std::lock_guard lock(mutex_);
        stopped_ = true;
        if (link_) links.push_back(std::move(link_));
        links.insert(links.end(), retired_.begin(), retired_.end());
        retired_.clear();
    }
    for (const auto &link : links) {
        link->stopping = true;
        std::lock_guard lock(link->send_mutex);
        // EOF: a healthy child runs the plugin's destroy and exits; the
        // reader reaps it (and kills it if it does not go within 2 s).
        if (!link->closed) ::shutdown(link->child.fd(), SHUT_WR);
    }
    for (const auto &link : links) {
        if (!link->reader.joinable()) continue;
        // A destroy from inside this reader's own sink call: it holds its
        // own reference to us and finishes on its own.
        if (link->reader_id == std::this_thread::get_id())
            link->reader.detach();
        else
            link->reader.join();
    }
}

std::string ProviderProcess::record_failure_locked(const std::string &what) {
    ++failures_;
    const auto backoff =
        std::min<milliseconds>(kMaxBackoff, kFirstBackoff * (1LL << std::min<unsigned>(failures_ - 1, 16)));
    retry_at_ = Clock::now() + backoff;
    last_failure_ = what;
    const std::string text = "plugin process for '" + options_.instance + "' " + what + "; restarting in " +
                             std::to_string(backoff.count()) + " ms";
    spdlog::error("[{}] {}", options_.instance, text);
    return text;
}

swh_status ProviderProcess::start_child_locked() {
    auto link = std::make_shared<Link>();
    const auto failed = [&](swh_status status, const std::string &what) {
        link->child.finish(milliseconds(0));
        set_error(record_failure_locked(what));
        return status;
    };
    try {
        link->child.start({options_.helper, "--plugin", options_.file, "--sha256", options_.sha256, "--kind",
                           std::to_string(options_.kind), "--log-level",
                           std::to_string(static_cast<int>(spdlog::get_level())), "--instance",
                           options_.instance});
    } catch (const std::exception &e) {
        return failed(SWH_E_UNAVAILABLE, std::string("could not be started: ") + e.what());
    }
    // create runs before the reader does: one request, one reply, as for
    // every other kind.
    const auto deadline = Clock::now() + options_.timeout;
    const Json request{{"op", "create"},
                       {"instance", options_.instance},
                       {"config", config_},
                       {"http_version", options_.http_version}};
    IoStatus io = send_frame(link->child.fd(), request, deadline);
    Json reply;
    while (io == IoStatus::ok) {
        io = recv_frame(link->child.fd(), reply, deadline);
        if (io != IoStatus::ok || string_at(reply, "op") == "reply") break;
        if (!forward_notice(host_, reply)) return failed(SWH_E_INTERNAL, "broke the protocol during create");
    }
    if (io == IoStatus::timeout)
        return failed(SWH_E_TIMEOUT, "did not answer create within " +
                                         std::to_string(options_.timeout.count()) + " ms and was killed");
    if (io != IoStatus::ok)
        return failed(SWH_E_UNAVAILABLE, link->child.finish(milliseconds(1000)) + " during create");
    const swh_status status = reply.value("status", SWH_E_INTERNAL);
    if (status != SWH_OK) return failed(status, "refused to start: " + string_at(reply, "error"));
    link->reader = std::thread(&ProviderProcess::read_loop, shared_from_this(), link);
    link->reader_id = link->reader.get_id();
    const bool restart = failures_ > 0;
    link_ = std::move(link);
    if (restart)
        spdlog::warn("[{}] plugin process restarted (pid {})", options_.instance, link_->child.pid());
    else
        spdlog::debug("[{}] plugin process {} started for {}", options_.instance, link_->child.pid(),
                      options_.file);
    return SWH_OK;
}

std::shared_ptr<ProviderProcess::Link> ProviderProcess::ensure_child_locked() {
    const std::string who = "plugin process for '" + options_.instance + "'";
    if (stopped_) {
        set_error(who + " is stopping");
        return nullptr;
    }
    if (link_ && !link_->dead) return link_;
    if (link_) retired_.push_back(std::move(link_));
    // Readers that have finished are joined here (at once: they ended).
    std::erase_if(retired_, [](const std::shared_ptr<Link> &old) {
        if (!old->exited || old->reader_id == std::this_thread::get_id()) return false;
        if (old->reader.joinable()) old->reader.join();
        return true;
    });
    if (Clock::now() < retry_at_) {
        set_error(who + " is restarting (it " + last_failure_ + "); next attempt in " +
                  std::to_string(ms_until(retry_at_)) + " ms");
        return nullptr;
    }
    if (start_child_locked() != SWH_OK) return nullptr;
    return link_;
}

bool ProviderProcess::send(Link &link, const Json &message, Clock::time_point deadline) {
    std::lock_guard lock(link.send_mutex);
    if (link.closed || !link.broken.empty()) return false;
    const IoStatus io = send_frame(link.child.fd(), message, deadline);
    if (io == IoStatus::ok) return true;
    // A frame may be half written: nothing after it could be read. Both
    // directions are shut, the reader sees the end and fails what is open.
    link.broken = io == IoStatus::timeout
                      ? "did not read its requests within " + std::to_string(options_.timeout.count()) +
                            " ms and was killed"
                      : "could not be written to";
    link.send_timed_out = io == IoStatus::timeout;
    ::shutdown(link.child.fd(), SHUT_RDWR);
    return false;
}

swh_status ProviderProcess::exchange(const std::shared_ptr<Link> &link, uint64_t rid, Json request,
                                     const std::shared_ptr<Waiter> &waiter, Json &reply) {
    request["rid"] = rid;
    // A failed send needs no handling here: the reader sees the socket end
    // (or the silence) and fails the waiter.
    send(*link, request, Clock::now() + options_.timeout);
    std::unique_lock lock(waiter->mutex);
    waiter->cv.wait(lock, [&] { return waiter->ready; });
    if (waiter->failure != SWH_OK) {
        set_error(waiter->failure_text);
        return waiter->failure;
    }
    reply = std::move(waiter->reply);
    return SWH_OK;
}

swh_status ProviderProcess::start_call(uint64_t call_id, const Json &request, const swh_provider_sink *sink) {
    auto stream = std::make_shared<Stream>();
    std::memcpy(&stream->sink, sink, std::min<std::size_t>(sink->struct_size, sizeof stream->sink));
    if (sink->struct_size < sizeof stream->sink) stream->sink.event = nullptr; // a 1.0-1.2 sink
    auto waiter = std::make_shared<Waiter>();
    waiter->stream = stream;
    std::shared_ptr<Link> link;
    uint64_t rid = 0;
    {
        std::lock_guard lock(mutex_);
        link = ensure_child_locked();
        if (!link) return SWH_E_UNAVAILABLE;
        if (link->reader_id == std::this_thread::get_id()) {
            // Waiting for the reply here would wait for ourselves.
            set_error("plugin process for '" + options_.instance +
                      "': a call cannot be started from one of its own callbacks");
            return SWH_E_UNAVAILABLE;
        }
        rid = next_rid_++;
        link->streams[call_id] = stream;
        link->waiters[rid] = waiter;
    }
    Json reply;
    const swh_status lost = exchange(link, rid, request, waiter, reply);
    // The child died before its start answered: if the sink already got a
    // frame, the reader has ended the call with done (the ABI: touched
    // means started); else the call never started.
    if (lost != SWH_OK) return stream->touched ? SWH_OK : lost;
    const swh_status status = reply.value("status", SWH_E_INTERNAL);
    if (status != SWH_OK) {
        {
            std::lock_guard lock(mutex_);
            link->streams.erase(call_id);
        }
        set_error(string_at(reply, "error"));
    }
    return status;
}

void ProviderProcess::cancel(uint64_t call_id) {
    std::shared_ptr<Link> link;
    uint64_t rid = 0;
    {
        std::lock_guard lock(mutex_);
        if (!link_ || link_->dead || !link_->streams.contains(call_id)) return;
        link = link_;
        rid = next_rid_++;
    }
    send(*link, Json{{"op", "provider_cancel"}, {"rid", rid}, {"id", call_id}},
         Clock::now() + options_.timeout);
}

swh_status ProviderProcess::call(Json request, Json &reply) {
    auto waiter = std::make_shared<Waiter>();
    std::shared_ptr<Link> link;
    uint64_t rid = 0;
    {
        std::lock_guard lock(mutex_);
        link = ensure_child_locked();
        if (!link) return SWH_E_UNAVAILABLE;
        if (link->reader_id == std::this_thread::get_id()) {
            set_error("plugin process for '" + options_.instance + "': called from one of its own callbacks");
            return SWH_E_UNAVAILABLE;
        }
        rid = next_rid_++;
        link->waiters[rid] = waiter;
    }
    return exchange(link, rid, std::move(request), waiter, reply);
}

// The reader of one child: every frame it sends, and the watchdog. It is
// the only thread that ends (and reaps) its child.
void ProviderProcess::read_loop(std::shared_ptr<ProviderProcess> self, std::shared_ptr<Link> link) {
    ProviderProcess &me = *self;
    const auto timeout = me.options_.timeout;
    const auto tick = std::clamp<milliseconds>(timeout / 4, milliseconds(10), milliseconds(250));
    const int fd = link->child.fd(); // open until this thread finishes the child
    FrameReader reader(fd);
    auto last_frame = Clock::now();
    bool pinged = false;
    Clock::time_point stop_deadline{};
    enum class End { lost, hung, stopped, broken } end = End::lost;
    std::string protocol_error;
    for (;;) {
        int n = 1;
        if (!reader.buffered()) {
            pollfd p{fd, POLLIN, 0};
            n = ::poll(&p, 1, static_cast<int>(tick.count()));
        }
        if (n < 0) {
            if (errno == EINTR) continue;
            break;
        }
        if (n > 0) {
            Json message;
            // A frame once begun must end within the timeout (a child
            // stopped mid-frame is hung).
            const IoStatus io = reader.next(message, Clock::now() + timeout);
            if (io == IoStatus::timeout) {
                end = End::hung;
                break;
            }
            if (io != IoStatus::ok) break; // EOF: it died, or we shut the socket
            last_frame = Clock::now();
            pinged = false;
            try {
                me.dispatch(*link, message);
            } catch (const std::exception &e) {
                protocol_error = e.what();
                end = End::broken;
                break;
            }
            continue;
        }
        const auto now = Clock::now();
        if (link->stopping) {
            if (stop_deadline == Clock::time_point{}) stop_deadline = now + milliseconds(2000);
            if (now >= stop_deadline) break;
            continue;
        }
        bool active = false;
        {
            std::lock_guard lock(me.mutex_);
            active = !link->streams.empty() || !link->waiters.empty();
        }
        // Silence is measured only while something is open: an idle child
        // owes us nothing.
        if (!active) {
            last_frame = now;
            pinged = false;
            continue;
        }
        if (now - last_frame >= timeout) {
            end = End::hung;
            break;
        }
        if (!pinged && now - last_frame >= timeout / 2) {
            pinged = true; // the child's main thread answers with a reply frame
            me.send(*link, Json{{"op", "ping"}, {"rid", 0}}, now + tick);
        }
    }
    bool timed_out = false;
    std::string broken;
    {
        std::lock_guard lock(link->send_mutex);
        link->closed = true;
        broken = link->broken;
        timed_out = link->send_timed_out;
    }
    if (!broken.empty()) end = End::broken;
    if (link->stopping && end == End::lost) end = End::stopped;
    // A crashed child is reaped at once; one that only closed its end gets
    // a moment, a hung or broken one none.
    const auto grace = end == End::lost || end == End::stopped ? milliseconds(1000) : milliseconds(0);
    const std::string how = link->child.finish(grace);
    swh_status status = SWH_E_UNAVAILABLE;
    std::string what;
    if (end == End::hung) {
        status = SWH_E_TIMEOUT;
        what = "sent nothing for " + std::to_string(timeout.count()) +
               " ms while a call was open (no answer to a ping) and was killed";
    } else if (end == End::broken) {
        if (timed_out) status = SWH_E_TIMEOUT;
        what = !broken.empty() ? broken : "broke the protocol (" + protocol_error + ") and was killed";
    } else {
        what = how;
    }
    if (end == End::stopped) {
        status = SWH_E_UNAVAILABLE;
        what = "stopped";
    }
    me.child_lost(*link, status, what);
    link->exited = true;
}

void ProviderProcess::child_lost(Link &link, swh_status status, const std::string &why) {
    std::map<uint64_t, std::shared_ptr<Waiter>> waiters;
    std::map<uint64_t, std::shared_ptr<Stream>> streams;
    std::string text;
    {
        std::lock_guard lock(mutex_);
        link.dead = true;
        waiters.swap(link.waiters);
        streams.swap(link.streams);
        const std::size_t open = streams.size();
        const std::string what = why + (open == 0   ? std::string()
                                        : open == 1 ? std::string(" with 1 call open")
                                                    : " with " + std::to_string(open) + " calls open");
        // A child we stopped is no failure: no backoff for it.
        text = link.stopping ? "plugin process for '" + options_.instance + "' " + what
                             : record_failure_locked(what);
    }
    for (const auto &[rid, waiter] : waiters)
        waiter->fail(status, text);
    // A call the sink has heard of ends like an upstream failure (the send
    // path's failover continues on the fallback after the partial answer);
    // one it has not is failed by its start instead.
    for (const auto &[id, stream] : streams)
        if (stream->acked || stream->touched)
            stream->sink.done(stream->sink.ctx, status, loader::to_str(text));
}

void ProviderProcess::dispatch(Link &link, Json &message) {
    const std::string &op = string_at(message, "op");
    const auto find = [&](bool erase) -> std::shared_ptr<Stream> {
        const uint64_t id = id_at(message, "id");
        std::lock_guard lock(mutex_);
        auto it = link.streams.find(id);
        if (it == link.streams.end()) return nullptr;
        auto stream = it->second;
        if (erase) link.streams.erase(it);
        return stream;
    };
    // The host wants no more of a stream (a sink refused a piece): the
    // child is told once, and its next call into the host says so too.
    auto refused = [&](swh_status status, auto &stream) {
        if (status == SWH_OK || stream.cancel_sent) return;
        stream.cancel_sent = true;
        send(link, Json{{"op", "provider_cancel"}, {"rid", 0}, {"id", message.at("id")}},
             Clock::now() + options_.timeout);
    };
    if (op == "chunk") {
        const auto stream = find(false);
        if (!stream) return; // after done, or a call we gave up on
        stream->touched = true;
        refused(stream->sink.chunk(stream->sink.ctx, loader::to_str(bytes_at(message, "t"))), *stream);
    } else if (op == "reply_event") {
        const auto stream = find(false);
        if (!stream) return;
        stream->touched = true;
        if (!stream->sink.event) return;
        const Json &e = message.at("e");
        const std::string id = e.at(2).get<std::string>(), name = e.at(3).get<std::string>();
        swh_reply_event event{};
        event.struct_size = sizeof event;
        event.type = e.at(0).get<uint32_t>();
        event.index = e.at(1).get<uint32_t>();
        event.id = loader::to_str(id);
        event.name = loader::to_str(name);
        event.text = loader::to_str(bytes_at(message, "t"));
        event.input_tokens = e.at(4).get<int64_t>();
        event.output_tokens = e.at(5).get<int64_t>();
        event.cached_input_tokens = e.at(6).get<int64_t>();
        event.reasoning_tokens = e.at(7).get<int64_t>();
        refused(stream->sink.event(stream->sink.ctx, &event), *stream);
    } else if (op == "metadata") {
        const auto stream = find(false);
        if (!stream) return;
        stream->touched = true;
        const std::string metadata = message.at("metadata").dump();
        stream->sink.metadata(stream->sink.ctx, loader::to_str(string_at(message, "mid")),
                              loader::to_str(metadata));
    } else if (op == "done") {
        const auto stream = find(true);
        if (!stream) return;
        stream->touched = true; // a start still waiting for its reply returns OK
        stream->sink.done(stream->sink.ctx, message.value("status", SWH_E_INTERNAL),
                          loader::to_str(string_at(message, "error")));
    } else if (op == "reply") {
        std::shared_ptr<Waiter> waiter;
        {
            std::lock_guard lock(mutex_);
            auto it = link.waiters.find(id_at(message, "rid"));
            if (it == link.waiters.end()) return; // a ping's or a cancel's
            waiter = std::move(it->second);
            link.waiters.erase(it);
            if (message.value("status", SWH_E_INTERNAL) == SWH_OK)
                failures_ = 0; // a good call ends the backoff
        }
        if (waiter->stream && message.value("status", SWH_E_INTERNAL) == SWH_OK) waiter->stream->acked = true;
        waiter->fulfil(std::move(message));
    } else if (link.stopping) {
        // After destroy the host table is gone: notices are dropped.
    } else if (!forward_notice(host_, message)) {
        throw std::runtime_error("unknown message '" + op + "'");
    }
}

} // namespace swh::isolation
