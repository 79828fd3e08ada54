// The "backup" lifecycle hook: a full JSON snapshot of a
// session (the row and every message, read through host->read_session) written
// to a folder on configurable triggers (created, every N messages, archived),
// atomically: temp file in the same folder, fsync, rename, fsync the folder.
// The messages of recently snapshotted sessions are kept serialized, so that
// a snapshot whose session has had no message this hook did not see reads
// only the session row (see MessageCache). A snapshot due while the hook runs
// behind (the row counts messages whose events are still queued) waits for
// those events, or for the queue to run empty (SWH_EVENT_QUEUE_IDLE).
#include <swarmhost/cpp/atomic_file.hpp>
#include <swarmhost/cpp/plugin.hpp>
#include <swarmhost/cpp/time.hpp>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <ctime>
#include <filesystem>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

namespace {

using swh::cpp::Failure;
using swh::cpp::iso8601;
using Json = nlohmann::json;
namespace fs = std::filesystem;

struct Settings {
    std::string dir;
    std::vector<std::string> triggers = {"archived", "every_10_messages"};
    bool keep_history = false;
    bool fsync = true;
    bool pretty = false;
    int64_t cache_mb = 64;
};

constexpr auto kSchema = swh::cpp::schema(
    swh::cpp::setting<&Settings::dir>("dir", nullptr, "Folder for the snapshots (created if missing)", true),
    swh::cpp::setting<&Settings::triggers>(
        "triggers", "[\"archived\",\"every_10_messages\"]",
        "When to snapshot: \"created\", \"archived\", \"every_<N>_messages\" (user and assistant messages "
        "count)"),
    swh::cpp::setting<&Settings::keep_history>(
        "keep_history", "false",
        "false: one file <dir>/<session id>.json, replaced each time; true: <dir>/<session id>/<time "
        "us>-<trigger>.json"),
    swh::cpp::setting<&Settings::fsync>(
        "fsync", "true",
        "fsync the file before the rename and the folder after it (durable against power loss)"),
    swh::cpp::setting<&Settings::pretty>("pretty", "false", "Indent the JSON (2 spaces)"),
    swh::cpp::setting<&Settings::cache_mb>(
        "cache_mb", "64",
        "Memory (MiB) for the serialized messages of recently snapshotted sessions: a snapshot of a session "
        "with no message this hook has not seen reads only the session row (0 = read every message each "
        "time)"));

std::string text_of(std::string_view s) {
    return std::string(s);
}

Json json_of(std::string_view s) {
    Json j = Json::parse(s, nullptr, false);
    return j.is_discarded() ? Json::object() : j;
}

Json session_json(const swh::cpp::Session &s) {
    return {{"id", text_of(s.id)},
            {"user_id", text_of(s.user_id)},
            {"provider", text_of(s.provider)},
            {"model", text_of(s.model)},
            {"status", text_of(s.status)},
            {"type", text_of(s.type)},
            {"created_at", iso8601(s.created_at)},
            {"last_activity", iso8601(s.last_activity)},
            {"message_count", s.message_count},
            {"config", json_of(s.config_json)},
            {"context", json_of(s.context_json)},
            {"metadata", json_of(s.metadata_json)}};
}

Json message_json(const swh::cpp::Message &m) {
    return {{"id", text_of(m.id)},
            {"session_id", text_of(m.session_id)},
            {"role", text_of(m.role)},
            {"content", text_of(m.content)},
            {"timestamp", iso8601(m.timestamp)},
            {"metadata", json_of(m.metadata_json)},
            {"provider_message_id", text_of(m.provider_message_id)},
            {"provider_metadata", json_of(m.provider_metadata_json)}};
}

std::string dump(const Json &j) {
    return j.dump(-1, ' ', false, Json::error_handler_t::replace);
}

// The messages of recently snapshotted sessions, each serialized as it goes
// into a snapshot, least recently snapshotted out first beyond `max_bytes`.
// An entry is filled by a full read and then follows the message_sent events
// of its session. It is used only when the store's row counts exactly as many
// messages as the entry holds: the store never removes a single message and
// counts each one it adds, and every message of an entry is in the store
// (read from it, or announced after it was stored), so equal counts mean the
// same messages. A message older than the newest one held (two sends raced;
// the store's order is its own), a count that differs, or a session created
// again under the same id (created_at) means a full read instead.
class MessageCache {
  public:
    explicit MessageCache(std::size_t max_bytes) : max_bytes_(max_bytes) {}

    struct Entry {
        swh_time_us created_at = 0;
        std::vector<std::string> texts; // in store order
        std::unordered_set<std::string> ids;
        swh_time_us newest = 0;
        std::size_t bytes = 0;
        std::list<std::string>::iterator lru;
        // False once a message came out of the store's order: `texts` is
        // dropped (a snapshot reads everything), `ids` still counts what
        // this hook knows to be stored.
        bool ordered = true;
    };

    bool enabled() const { return max_bytes_ > 0; }

    // The entry for a session whose row shows `created_at` and `count`, if it holds exactly that.
    const Entry *usable(const std::string &id, swh_time_us created_at, uint64_t count) {
        auto it = entries_.find(id);
        if (it == entries_.end()) return nullptr;
        if (!it->second.ordered || it->second.created_at != created_at || it->second.texts.size() != count)
            return nullptr;
        lru_.splice(lru_.begin(), lru_, it->second.lru);
        return &it->second;
    }

    // How many of the session's stored messages this hook knows (read, or
    // had the event of), if it follows the session.
    std::optional<uint64_t> known(const std::string &id, swh_time_us created_at) const {
        auto it = entries_.find(id);
        if (it == entries_.end() || it->second.created_at != created_at) return std::nullopt;
        return it->second.ids.size();
    }

    // After a full read: the session's messages as read, in store order.
    // Takes them (leaves `texts` empty) and returns the entry, unless they do
    // not fit (then `texts` is left as it was).
    const Entry *fill(const std::string &id, swh_time_us created_at, std::vector<std::string> &texts,
                      std::vector<std::string> &ids, swh_time_us newest) {
        forget(id);
        if (!enabled()) return nullptr;
        std::size_t bytes = 0;
        for (std::size_t i = 0; i < texts.size(); ++i)
            bytes += texts[i].size() + ids[i].size() + kPerMessage;
        if (bytes > max_bytes_) return nullptr;
        lru_.push_front(id);
        Entry &entry = entries_[id];
        entry.created_at = created_at;
        entry.texts = std::move(texts);
        entry.ids.insert(std::make_move_iterator(ids.begin()), std::make_move_iterator(ids.end()));
        entry.newest = newest;
        entry.bytes = bytes;
        entry.lru = lru_.begin();
        bytes_ += bytes;
        trim(); // never this entry: it fits, and is the most recent
        return &entry;
    }

    // A message_sent event (the message is stored): appended to the
    // session's entry if there is one.
    void seen(const swh::cpp::Message &m) {
        auto it = entries_.find(std::string(m.session_id));
        if (it == entries_.end()) return;
        Entry &entry = it->second;
        std::string id(m.id);
        if (entry.ids.count(id)) return; // read by the full read that filled the entry
        if (!entry.ordered || m.timestamp <= entry.newest) {
            // Out of the store's order: the next snapshot reads everything;
            // the entry goes on counting.
            const std::size_t bytes = id.size() + kPerMessage;
            if (entry.ordered) {
                entry.ordered = false;
                bytes_ -= entry.bytes;
                entry.texts = {};
                entry.bytes = entry.ids.size() * kPerMessage;
                bytes_ += entry.bytes;
            }
            entry.ids.insert(std::move(id));
            entry.bytes += bytes;
            bytes_ += bytes;
            trim();
            return;
        }
        std::string text = dump(message_json(m));
        const std::size_t bytes = text.size() + id.size() + kPerMessage;
        entry.texts.push_back(std::move(text));
        entry.ids.insert(std::move(id));
        entry.newest = m.timestamp;
        entry.bytes += bytes;
        bytes_ += bytes;
        trim();
    }

    void forget(const std::string &id) {
        auto it = entries_.find(id);
        if (it == entries_.end()) return;
        bytes_ -= it->second.bytes;
        lru_.erase(it->second.lru);
        entries_.erase(it);
    }

  private:
    static constexpr std::size_t kPerMessage = 64; // bookkeeping per message, roughly

    void trim() {
        while (bytes_ > max_bytes_ && !lru_.empty())
            forget(lru_.back());
    }

    std::size_t max_bytes_;
    std::size_t bytes_ = 0;
    std::unordered_map<std::string, Entry> entries_;
    std::list<std::string> lru_; // most recently used first
};

// File-name-safe form of a session id (ids are UUIDs; anything else is escaped).
std::string safe_name(const std::string &id) {
    std::string out;
    for (char c : id) {
        const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                        c == '-' || c == '_';
        if (ok) {
            out.push_back(c);
        } else {
            char buf[4];
            std::snprintf(buf, sizeof buf, "%%%02X", static_cast<unsigned char>(c));
            out += buf;
        }
    }
    return out.empty() ? "_" : out;
}

struct Collected {
    Json session;
    swh_time_us created_at = 0;
    uint64_t message_count = 0;
    std::vector<std::string> texts, ids; // the messages, serialized, and their ids
    swh_time_us newest = 0;
    bool have_session = false;
};

// The snapshot document: what `Json{...}.dump()` of it gives, with the
// messages already serialized (an object's keys are sorted, as nlohmann::json
// dumps them).
std::string document(const std::string &trigger, swh_time_us when, const Json &session,
                     const std::vector<std::string> &messages, bool pretty) {
    if (pretty) {
        Json list = Json::array();
        for (const std::string &text : messages)
            list.push_back(Json::parse(text));
        const Json doc = {{"format", "swarmhost.session_backup/1"},
                          {"trigger", trigger},
                          {"taken_at", iso8601(when)},
                          {"session", session},
                          {"messages", std::move(list)}};
        return doc.dump(2, ' ', false, Json::error_handler_t::replace) + "\n";
    }
    std::size_t size = 256;
    for (const std::string &text : messages)
        size += text.size() + 1;
    std::string out;
    out.reserve(size);
    out += R"({"format":"swarmhost.session_backup/1","messages":[)";
    for (std::size_t i = 0; i < messages.size(); ++i) {
        if (i > 0) out += ',';
        out += messages[i];
    }
    out += R"(],"session":)";
    out += dump(session);
    out += R"(,"taken_at":)";
    out += dump(iso8601(when));
    out += R"(,"trigger":)";
    out += dump(trigger);
    out += "}\n";
    return out;
}

class Backup {
  public:
    Backup(swh::cpp::Host host, const Settings &config)
        : host_(host.raw()), log_(host), cache_(cache_bytes(config.cache_mb)) {
        if (!(SWH_HAS_MEMBER(host_, swh_host_api, read_session) && host_->read_session))
            throw Failure(SWH_E_INVALID, "backup: the host offers no read_session");
        dir_ = config.dir;
        if (dir_.empty()) throw Failure(SWH_E_INVALID, "backup: dir must not be empty");
        for (const std::string &trigger : config.triggers) {
            if (trigger == "created")
                on_created_ = true;
            else if (trigger == "archived")
                on_archived_ = true;
            else if (!parse_every(trigger))
                throw Failure(SWH_E_INVALID, "backup: unknown trigger '" + trigger +
                                                 "' (created, archived, every_<N>_messages with N >= 1)");
        }
        keep_history_ = config.keep_history;
        sync_ = config.fsync;
        pretty_ = config.pretty;
        std::error_code ec;
        fs::create_directories(dir_, ec);
        if (ec || !fs::is_directory(dir_))
            throw Failure(SWH_E_INVALID,
                          "backup: cannot create dir '" + dir_.string() + "': " + ec.message());
    }

    uint32_t events() const {
        uint32_t mask = 0;
        if (on_created_) mask |= SWH_EVENT_SESSION_CREATED;
        if (on_archived_) mask |= SWH_EVENT_SESSION_ARCHIVED;
        if (every_ > 0)
            mask |= SWH_EVENT_MESSAGE_SENT | SWH_EVENT_SESSION_ARCHIVED | SWH_EVENT_SESSION_DELETED;
        // Deferred snapshots (see Pending) are taken at the latest when the queue runs empty.
        if (every_ > 0 && !keep_history_ && cache_.enabled()) mask |= SWH_EVENT_QUEUE_IDLE;
        return mask;
    }

    // [serial]: the host never calls this concurrently for one instance.
    void on_event(const swh::cpp::Event &event) {
        const std::string id = text_of(event.session.id);
        switch (event.type) {
        case SWH_EVENT_SESSION_CREATED:
            if (on_created_) snapshot(id, "created", event.time, &event.session);
            break;
        case SWH_EVENT_MESSAGE_SENT: {
            if (every_ == 0) break;
            if (event.message) cache_.seen(*event.message);
            const uint64_t n = ++counts_[id];
            if (n % every_ == 0) {
                // This snapshot writes the same file later than one put off.
                if (pending_.erase(id) > 0) count_superseded();
                snapshot(id, "every_" + std::to_string(every_) + "_messages", event.time, nullptr,
                         keep_history_ ? 0 : every_);
            } else if (auto it = pending_.find(id); it != pending_.end()) {
                const auto seen = cache_.known(id, it->second.created_at);
                if (!seen || *seen >= it->second.target) {
                    // The events it waited for are in: the messages are in the cache.
                    const std::string trigger = std::move(it->second.trigger);
                    pending_.erase(it);
                    snapshot(id, trigger, event.time, nullptr, every_ - n % every_);
                }
            }
            break;
        }
        case SWH_EVENT_SESSION_ARCHIVED:
            counts_.erase(id);
            if (pending_.erase(id) > 0) {
                // The archived snapshot is the newer file; without that
                // trigger the one put off is taken now.
                if (on_archived_)
                    count_superseded();
                else
                    take_pending(id, event.time);
            }
            if (on_archived_) snapshot(id, "archived", event.time);
            cache_.forget(id);
            break;
        case SWH_EVENT_SESSION_DELETED:
            counts_.erase(id);
            if (pending_.erase(id) > 0) count_superseded(); // nothing left to back up
            cache_.forget(id);
            break;
        case SWH_EVENT_QUEUE_IDLE:
            idle_delivered_ = true;
            take_all_pending(event.time);
            break;
        default:
            break;
        }
    }

    std::string render_metrics() const {
        std::lock_guard lock(stats_mutex_);
        std::string out = "# HELP swarmhost_backup_snapshots_total Session snapshots written, per trigger\n"
                          "# TYPE swarmhost_backup_snapshots_total counter\n";
        for (const auto &[trigger, n] : written_)
            out +=
                "swarmhost_backup_snapshots_total{trigger=\"" + trigger + "\"} " + std::to_string(n) + "\n";
        out += "# HELP swarmhost_backup_failures_total Snapshots that could not be written\n"
               "# TYPE swarmhost_backup_failures_total counter\n"
               "swarmhost_backup_failures_total " +
               std::to_string(failures_) + "\n";
        out += "# HELP swarmhost_backup_reads_total How snapshots read their session: \"row\" (the messages "
               "came from the hook's cache) or \"full\" (every message read from the store)\n"
               "# TYPE swarmhost_backup_reads_total counter\n"
               "swarmhost_backup_reads_total{kind=\"row\"} " +
               std::to_string(row_reads_) +
               "\n"
               "swarmhost_backup_reads_total{kind=\"full\"} " +
               std::to_string(full_reads_) + "\n";
        out += "# HELP swarmhost_backup_superseded_total Count-triggered snapshots skipped because a later "
               "one of the same session was already due (the hook was behind)\n"
               "# TYPE swarmhost_backup_superseded_total counter\n"
               "swarmhost_backup_superseded_total " +
               std::to_string(superseded_) + "\n";
        out +=
            "# HELP swarmhost_backup_deferred_total Count-triggered snapshots put off until the hook had the "
            "events of the messages the session row counted (or its queue ran empty)\n"
            "# TYPE swarmhost_backup_deferred_total counter\n"
            "swarmhost_backup_deferred_total " +
            std::to_string(deferred_) + "\n";
        return out;
    }

  private:
    // A count-triggered snapshot put off because the session row counted
    // messages this hook had not had the events of yet (it runs behind the
    // requests): reading them all from the store is what a snapshot costs
    // most. The events follow in the queue; when the hook has them (the
    // cache holds the messages), the snapshot reads only the row. Taken at
    // the latest when the queue runs empty (events that never come: another
    // daemon's messages, a door that stores without events, a dropped
    // event), then with a full read if it must. A later trigger of the same
    // session supersedes it.
    struct Pending {
        std::string trigger;
        swh_time_us created_at = 0;
        uint64_t target = 0; // the row's message count when it was put off
    };

    void count_superseded() {
        std::lock_guard lock(stats_mutex_);
        ++superseded_;
    }

    // A pending snapshot now, reading everything if the cache cannot answer.
    void take_pending(const std::string &id, int64_t when) {
        auto it = pending_.find(id);
        std::string trigger = "every_" + std::to_string(every_) + "_messages";
        if (it != pending_.end()) {
            trigger = std::move(it->second.trigger);
            pending_.erase(it);
        }
        snapshot(id, trigger, when);
    }

    // Every pending snapshot (the queue ran empty: nothing more is coming).
    // Each is tried; the first failure is reported after the others.
    void take_all_pending(int64_t when) {
        std::optional<Failure> first;
        while (!pending_.empty()) {
            const std::string id = pending_.begin()->first;
            try {
                take_pending(id, when);
            } catch (const Failure &e) {
                if (!first) first = e;
            } catch (const std::exception &e) {
                if (!first) first = Failure(SWH_E_INTERNAL, e.what());
            }
        }
        if (first) throw *first;
    }

    static std::size_t cache_bytes(int64_t mb) {
        if (mb < 0 || mb > 1024 * 1024)
            throw Failure(SWH_E_INVALID, "backup: cache_mb must be within 0..1048576");
        return static_cast<std::size_t>(mb) * 1024 * 1024;
    }

    // Reads the session through host->read_session into `c`: only the row
    // when `with_messages` is false (a sink without a message callback).
    swh_status read(const std::string &session_id, Collected &c, bool with_messages) {
        swh_result_sink sink{};
        sink.struct_size = sizeof sink;
        sink.ctx = &c;
        sink.session = [](void *ctx, const swh_session *s) noexcept -> swh_status {
            try {
                auto &col = *static_cast<Collected *>(ctx);
                const auto session = swh::cpp::Session::from(s);
                col.session = session_json(session);
                col.created_at = session.created_at;
                col.message_count = session.message_count;
                col.have_session = true;
                return SWH_OK;
            } catch (...) {
                return SWH_E_INTERNAL;
            }
        };
        if (with_messages)
            sink.message = [](void *ctx, const swh_message *m) noexcept -> swh_status {
                try {
                    auto &col = *static_cast<Collected *>(ctx);
                    const auto message = swh::cpp::Message::from(m);
                    col.texts.push_back(dump(message_json(message)));
                    col.ids.emplace_back(message.id);
                    col.newest = std::max(col.newest, message.timestamp);
                    return SWH_OK;
                } catch (...) {
                    return SWH_E_INTERNAL;
                }
            };
        return host_->read_session(host_->host_ctx, swh::cpp::str(session_id), &sink);
    }

    bool parse_every(const std::string &trigger) {
        const std::string head = "every_", tail = "_messages";
        if (trigger.size() <= head.size() + tail.size() || trigger.compare(0, head.size(), head) != 0 ||
            trigger.compare(trigger.size() - tail.size(), tail.size(), tail) != 0)
            return false;
        const std::string digits = trigger.substr(head.size(), trigger.size() - head.size() - tail.size());
        if (digits.empty() || digits.size() > 9 ||
            digits.find_first_not_of("0123456789") != std::string::npos)
            return false;
        const uint64_t n = std::stoull(digits);
        if (n == 0) return false;
        every_ = n;
        return true;
    }

    // `coming`: for a snapshot every N messages (not kept as history), how
    // many more events of the session bring its next trigger (N at a
    // trigger). Such a snapshot is superseded when the store holds that
    // many messages or more that this hook has not had the event of yet:
    // their events follow in its queue, and one of them triggers a later
    // snapshot of the same file. Skipping it is what lets a hook that fell
    // behind (sessions grown long, snapshots grown slow) catch up instead of
    // writing every stale snapshot while its queue fills memory. With fewer
    // such messages it is put off (Pending). What the hook has seen is known
    // only for a session it holds in its cache: otherwise nothing is
    // skipped or put off.
    void snapshot(const std::string &session_id, const std::string &trigger, int64_t when,
                  const swh::cpp::Session *fallback = nullptr, uint64_t coming = 0) {
        try {
            Collected c;
            swh_status status = SWH_E_UNSUPPORTED;
            const std::vector<std::string> *messages = nullptr;
            if (cache_.enabled()) {
                status = read(session_id, c, false);
                const auto seen = status == SWH_OK && c.have_session && coming > 0
                                      ? cache_.known(session_id, c.created_at)
                                      : std::nullopt;
                if (seen && c.message_count >= *seen + coming) {
                    count_superseded();
                    return;
                }
                if (status == SWH_OK && c.have_session) {
                    if (const auto *entry = cache_.usable(session_id, c.created_at, c.message_count)) {
                        messages = &entry->texts;
                        std::lock_guard lock(stats_mutex_);
                        ++row_reads_;
                    }
                }
                // Behind: the events of the messages the row counts beyond
                // `seen` are queued. Only once the host has shown that it
                // says when the queue runs empty (an older host never does).
                if (messages == nullptr && seen && c.message_count > *seen && idle_delivered_) {
                    pending_[session_id] = Pending{trigger, c.created_at, c.message_count};
                    std::lock_guard lock(stats_mutex_);
                    ++deferred_;
                    return;
                }
            }
            if (messages == nullptr && status != SWH_E_NOT_FOUND) {
                c = Collected{};
                status = read(session_id, c, true);
                if (status == SWH_OK && c.have_session) {
                    {
                        std::lock_guard lock(stats_mutex_);
                        ++full_reads_;
                    }
                    // Cached also when the read found more messages than the row counted
                    // (added between the two reads): each of them is in the store.
                    if (const auto *entry = cache_.fill(session_id, c.created_at, c.texts, c.ids, c.newest))
                        messages = &entry->texts;
                }
            }
            if (status == SWH_E_NOT_FOUND && fallback != nullptr) {
                // Deleted before this hook got to it (hooks run behind the
                // request path): keep the row as the event carried it.
                c = Collected{};
                c.session = session_json(*fallback);
                c.have_session = true;
                status = SWH_OK;
            }
            if (status != SWH_OK || !c.have_session)
                throw Failure(status == SWH_OK ? SWH_E_NOT_FOUND : status,
                              "backup: read_session " + session_id + " returned status " +
                                  std::to_string(status));
            const std::string text =
                document(trigger, when, c.session, messages != nullptr ? *messages : c.texts, pretty_);
            fs::path target;
            if (keep_history_) {
                const fs::path folder = dir_ / safe_name(session_id);
                fs::create_directories(folder);
                target = folder / (std::to_string(when) + "-" + trigger + ".json");
            } else {
                target = dir_ / (safe_name(session_id) + ".json");
            }
            swh::cpp::files::write_atomically(target, text, sync_, ++serial_, "backup");
            log_.debug("session " + session_id + " backed up to " + target.string() + " (" + trigger + ")");
            std::lock_guard lock(stats_mutex_);
            ++written_[trigger];
        } catch (...) {
            {
                std::lock_guard lock(stats_mutex_);
                ++failures_;
            }
            throw; // the host logs and counts the failed event
        }
    }

    const swh_host_api *host_;
    swh::cpp::Host log_;
    fs::path dir_;
    bool on_created_ = false, on_archived_ = false, keep_history_ = false, sync_ = true, pretty_ = false;
    uint64_t every_ = 0, serial_ = 0;
    std::map<std::string, uint64_t> counts_; // messages seen per session since it was created/loaded
    mutable std::mutex stats_mutex_;         // written_/failures_: on_event vs render_metrics
    std::map<std::string, uint64_t> written_;
    uint64_t failures_ = 0, row_reads_ = 0, full_reads_ = 0, superseded_ = 0,
             deferred_ = 0;                            // guarded by stats_mutex_
    MessageCache cache_;                               // [serial]: on_event only
    std::unordered_map<std::string, Pending> pending_; // [serial]: by session id
    bool idle_delivered_ = false;                      // [serial]: the host sends SWH_EVENT_QUEUE_IDLE
};

} // namespace

SWH_CPP_HOOK(Backup, "backup", "0.1.0",
             "Full JSON snapshots of sessions to a folder on created / every N messages / archived, written "
             "atomically",
             kSchema)
