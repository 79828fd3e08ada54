#include "events/fleet_events.hpp"

#include <spdlog/spdlog.h>

namespace swh {

namespace {

std::string text_of(swh_str s) {
    return std::string(s.ptr ? s.ptr : "", s.len);
}

} // namespace

FleetEvents::FleetEvents(EventBus &bus, std::shared_ptr<loader::StorageInstance> carrier, Render render,
                         Metric metric, Settings settings)
    : bus_(bus), carrier_(std::move(carrier)), render_(std::move(render)), metric_(std::move(metric)),
      settings_(settings) {
    watcher_.struct_size = sizeof watcher_;
    watcher_.ctx = this;
    watcher_.wake = on_wake;
    watcher_.link = on_link;
    thread_ = std::thread([this] { run(); });
    EventBus::Fleet fleet;
    fleet.forward = [this](SessionEvent event) { push(Publish{std::move(event)}); };
    fleet.joined = [this](const std::string &session_id, uint64_t listener, std::optional<uint64_t> last) {
        push(Join{session_id, listener, last});
    };
    bus_.attach_fleet(std::move(fleet));
    try {
        carrier_->events_watch(watcher_);
    } catch (...) {
        bus_.detach_fleet();
        {
            std::lock_guard lock(mutex_);
            stopping_ = true;
        }
        ready_.notify_all();
        thread_.join();
        throw;
    }
}

FleetEvents::~FleetEvents() {
    bus_.detach_fleet();
    carrier_->events_unwatch(); // no wake or link callback after this
    {
        std::lock_guard lock(mutex_);
        stopping_ = true;
    }
    ready_.notify_all();
    thread_.join();
}

void FleetEvents::on_wake(void *ctx, swh_str session_id, uint64_t seq) {
    static_cast<FleetEvents *>(ctx)->push(Wake{text_of(session_id), seq});
}

void FleetEvents::on_link(void *ctx, swh_status status, swh_str reason) {
    auto &self = *static_cast<FleetEvents *>(ctx);
    if (status == SWH_OK) {
        spdlog::info("events: carrier '{}' is listening", self.carrier_->name());
        self.push(Resync{}); // wake-ups sent while the link was down are not replayed
        return;
    }
    spdlog::warn("events: carrier '{}' lost its listening link ({}); live events from other daemons wait "
                 "until it is back, then listeners catch up from the store",
                 self.carrier_->name(), text_of(reason));
    if (self.metric_) self.metric_("swarmhost_events_carrier_errors_total", R"({"operation":"listen"})", 1);
}

void FleetEvents::push(Job job) {
    {
        std::lock_guard lock(mutex_);
        if (stopping_) return;
        if (std::holds_alternative<Publish>(job)) {
            // A store that is down makes each publish wait for its timeout;
            // the queue must not grow without bound meanwhile.
            if (queued_publishes_ >= settings_.max_queue) {
                if (metric_) metric_("swarmhost_events_dropped_total", "", 1);
                spdlog::warn("events: {} events wait for the carrier; one of session {} was dropped",
                             queued_publishes_, std::get<Publish>(job).event.session_id);
                return;
            }
            ++queued_publishes_;
        }
        queue_.push_back(std::move(job));
    }
    ready_.notify_one();
}

void FleetEvents::run() {
    for (;;) {
        Job job;
        {
            std::unique_lock lock(mutex_);
            ready_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
            if (stopping_) return;
            job = std::move(queue_.front());
            queue_.pop_front();
            if (std::holds_alternative<Publish>(job)) --queued_publishes_;
        }
        try {
            std::visit([this](auto &j) { handle(j); }, job);
        } catch (const std::exception &e) {
            spdlog::error("events: {}", e.what());
        }
    }
}

void FleetEvents::failed(const char *operation, const std::string &why) {
    if (metric_)
        metric_("swarmhost_events_carrier_errors_total", std::string(R"({"operation":")") + operation + "\"}",
                1);
    if (!failing_)
        spdlog::error("events: carrier '{}' failed to {}: {} (said once until it works again)",
                      carrier_->name(), operation, why);
    failing_ = true;
}

// The message or session is already stored when its event is published, so
// an event the store cannot take loses no data; the session's local
// listeners are told to re-read it.
void FleetEvents::handle(Publish &job) {
    const SessionEvent &event = job.event;
    const std::string payload = Json{{"type", event.type}, {"data", render_(event)}}.dump(
        -1, ' ', false, Json::error_handler_t::replace);
    try {
        if (event.if_absent && event.message && holds_message_event(event.session_id, event.message->id))
            return;
        carrier_->events_publish(event.session_id, payload);
    } catch (const std::exception &e) {
        failed("publish", e.what());
        bus_.notify(
            missed(event.session_id, 0, std::string("the event carrier is unavailable: ") + e.what()));
        return;
    }
    if (failing_) spdlog::info("events: carrier '{}' works again", carrier_->name());
    failing_ = false;
    catch_up(event.session_id); // do not wait for our own wake-up to come round
}

// Whether the store's retained events of the session announce this message.
// Only a retry that found its first attempt's messages stored asks (the
// first attempt's daemon may have died before publishing), so the cost of
// reading the retained events is paid rarely. An event trimmed away already
// cannot be told from one never published: the message is announced again.
bool FleetEvents::holds_message_event(const std::string &session_id, const std::string &message_id) {
    uint64_t after = 0;
    for (;;) {
        auto page = carrier_->events_read(session_id, after, settings_.page);
        for (const auto &[seq, payload] : page.events) {
            after = seq;
            const Json body = Json::parse(payload, nullptr, false);
            if (!body.is_object() || body.value("type", "") != "message") continue;
            const auto data = body.find("data");
            if (data != body.end() && data->is_object() && data->value("id", "") == message_id) return true;
        }
        if (page.events.size() < settings_.page) return false;
    }
}

void FleetEvents::handle(Wake &job) {
    const auto low = bus_.low_water(job.session_id);
    if (!low || job.seq <= *low) return; // nobody here follows it, or everyone has it
    catch_up(job.session_id);
}

void FleetEvents::handle(Join &job) {
    if (!join(job)) unjoined_.push_back(std::move(job));
}

void FleetEvents::handle(Resync &) {
    std::deque<Join> waiting;
    waiting.swap(unjoined_);
    for (Join &j : waiting)
        if (!join(j)) unjoined_.push_back(std::move(j));
    for (const std::string &session_id : bus_.sessions())
        catch_up(session_id);
}

// Replays to a new listener what came after its Last-Event-ID (or nothing:
// it starts at the newest event), then starts it. The job keeps how far the
// replay got, so a retry after a failed read repeats nothing.
bool FleetEvents::join(Join &job) {
    const std::string &sid = job.session_id;
    uint64_t seen = job.last_event_id.value_or(0);
    try {
        if (!job.last_event_id) {
            seen = carrier_->events_read(sid, 0, 0).last_seq;
        } else {
            for (;;) {
                auto page = carrier_->events_read(sid, seen, settings_.page);
                if (page.last_seq < seen) { // the store never gave that id, or lost its numbering
                    bus_.deliver_to(sid, job.listener,
                                    missed(sid, seen, "the store does not know this event id"));
                    seen = 0; // what it holds now is news to this client
                    job.last_event_id = 0;
                    continue;
                }
                const uint64_t next = page.events.empty() ? page.last_seq + 1 : page.events.front().first;
                if (page.last_seq > seen && next > seen + 1)
                    bus_.deliver_to(sid, job.listener,
                                    missed(sid, seen, "events after this id are past the retention window"));
                for (const auto &[seq, payload] : page.events) {
                    bus_.deliver_to(sid, job.listener, decode(sid, seq, payload));
                    seen = seq;
                    job.last_event_id = seq;
                }
                if (page.events.size() < settings_.page) break;
            }
        }
    } catch (const std::exception &e) {
        failed("read", e.what());
        return false;
    }
    failing_ = false;
    SessionEvent ready;
    ready.session_id = sid;
    ready.type = "ready";
    ready.data = Json{{"session_id", sid}};
    bus_.deliver_to(sid, job.listener, ready);
    bus_.start(sid, job.listener, seen);
    // Events that arrived meanwhile are delivered by the next catch-up; make
    // it now rather than at the next event.
    catch_up(sid);
    return true;
}

// Delivers the events of one session that its least advanced listener has
// not seen, in order; each listener takes those it lacks.
void FleetEvents::catch_up(const std::string &session_id) {
    for (;;) {
        const auto low = bus_.low_water(session_id);
        if (!low) return;
        loader::StorageInstance::EventPage page;
        try {
            page = carrier_->events_read(session_id, *low, settings_.page);
        } catch (const std::exception &e) {
            failed("read", e.what());
            return;
        }
        failing_ = false;
        if (page.last_seq < *low) {
            // The store restarted its numbering (its data was lost or expired).
            bus_.skip_to(session_id, page.last_seq,
                         missed(session_id, *low, "the store lost this session's events"), true);
            continue;
        }
        const uint64_t next = page.events.empty() ? page.last_seq + 1 : page.events.front().first;
        if (next > *low + 1)
            bus_.skip_to(session_id, next - 1,
                         missed(session_id, *low, "events were trimmed before this daemon could read them"));
        for (const auto &[seq, payload] : page.events)
            bus_.deliver(decode(session_id, seq, payload));
        if (page.events.size() < settings_.page) return;
    }
}

SessionEvent FleetEvents::decode(const std::string &session_id, uint64_t seq,
                                 const std::string &payload) const {
    SessionEvent event;
    event.session_id = session_id;
    event.sequence = seq;
    event.id = std::to_string(seq);
    Json body = Json::parse(payload, nullptr, false);
    if (!body.is_object() || !body.contains("type") || !body["type"].is_string()) {
        // Not written by a swarmhost daemon: say so rather than guess.
        event.type = "events_missed";
        event.data = Json{{"session_id", session_id}, {"reason", "an event in the store was not readable"}};
        return event;
    }
    event.type = body["type"].get<std::string>();
    event.data = body.contains("data") ? std::move(body["data"]) : Json::object();
    return event;
}

SessionEvent FleetEvents::missed(const std::string &session_id, uint64_t after, std::string reason) const {
    SessionEvent event;
    event.session_id = session_id;
    event.type = "events_missed";
    event.data = Json{{"session_id", session_id}, {"after", after}, {"reason", std::move(reason)}};
    return event;
}

} // namespace swh
