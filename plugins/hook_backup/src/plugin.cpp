// The "backup" lifecycle hook: a full JSON snapshot of a
// session (the row and every message, read through host->read_session) written
// to a folder on configurable triggers (created, every N messages, archived),
// atomically: temp file in the same folder, fsync, rename, fsync the folder.
#include <swarmhost/cpp/plugin.hpp>
#include <swarmhost/cpp/time.hpp>

#include <nlohmann/json.hpp>

#include <cerrno>
#include <cstring>
#include <ctime>
#include <fcntl.h>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <unistd.h>

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
    swh::cpp::setting<&Settings::pretty>("pretty", "false", "Indent the JSON (2 spaces)"));

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

void write_all(int fd, const std::string &data, const std::string &path) {
    std::size_t done = 0;
    while (done < data.size()) {
        const ssize_t n = ::write(fd, data.data() + done, data.size() - done);
        if (n < 0) {
            if (errno == EINTR) continue;
            throw Failure(SWH_E_UNAVAILABLE, "backup: write " + path + ": " + std::strerror(errno));
        }
        done += static_cast<std::size_t>(n);
    }
}

// temp file in the target folder -> fsync -> rename over the target -> fsync folder.
void atomic_write(const fs::path &target, const std::string &data, bool sync, uint64_t serial) {
    const fs::path tmp = target.parent_path() / ("." + target.filename().string() + ".tmp-" +
                                                 std::to_string(::getpid()) + "-" + std::to_string(serial));
    const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        throw Failure(SWH_E_UNAVAILABLE, "backup: create " + tmp.string() + ": " + std::strerror(errno));
    try {
        write_all(fd, data, tmp.string());
        if (sync && ::fsync(fd) != 0)
            throw Failure(SWH_E_UNAVAILABLE, "backup: fsync " + tmp.string() + ": " + std::strerror(errno));
    } catch (...) {
        ::close(fd);
        ::unlink(tmp.c_str());
        throw;
    }
    if (::close(fd) != 0) {
        ::unlink(tmp.c_str());
        throw Failure(SWH_E_UNAVAILABLE, "backup: close " + tmp.string() + ": " + std::strerror(errno));
    }
    if (::rename(tmp.c_str(), target.c_str()) != 0) {
        const int err = errno;
        ::unlink(tmp.c_str());
        throw Failure(SWH_E_UNAVAILABLE, "backup: rename to " + target.string() + ": " + std::strerror(err));
    }
    if (sync) {
        const int dir = ::open(target.parent_path().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dir >= 0) {
            ::fsync(dir);
            ::close(dir);
        }
    }
}

struct Collected {
    Json session;
    Json messages = Json::array();
    bool have_session = false;
};

class Backup {
  public:
    Backup(swh::cpp::Host host, const Settings &config) : host_(host.raw()), log_(host) {
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
            const uint64_t n = ++counts_[id];
            if (n % every_ == 0) snapshot(id, "every_" + std::to_string(every_) + "_messages", event.time);
            break;
        }
        case SWH_EVENT_SESSION_ARCHIVED:
            counts_.erase(id);
            if (on_archived_) snapshot(id, "archived", event.time);
            break;
        case SWH_EVENT_SESSION_DELETED:
            counts_.erase(id);
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
        return out;
    }

  private:
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

    void snapshot(const std::string &session_id, const std::string &trigger, int64_t when,
                  const swh::cpp::Session *fallback = nullptr) {
        try {
            Collected c;
            swh_result_sink sink{};
            sink.struct_size = sizeof sink;
            sink.ctx = &c;
            sink.session = [](void *ctx, const swh_session *s) noexcept -> swh_status {
                try {
                    auto &col = *static_cast<Collected *>(ctx);
                    col.session = session_json(swh::cpp::Session::from(s));
                    col.have_session = true;
                    return SWH_OK;
                } catch (...) {
                    return SWH_E_INTERNAL;
                }
            };
            sink.message = [](void *ctx, const swh_message *m) noexcept -> swh_status {
                try {
                    static_cast<Collected *>(ctx)->messages.push_back(
                        message_json(swh::cpp::Message::from(m)));
                    return SWH_OK;
                } catch (...) {
                    return SWH_E_INTERNAL;
                }
            };
            swh_status status = host_->read_session(host_->host_ctx, swh::cpp::str(session_id), &sink);
            if (status == SWH_E_NOT_FOUND && fallback != nullptr) {
                // Deleted before this hook got to it (hooks run behind the
                // request path): keep the row as the event carried it.
                c.session = session_json(*fallback);
                c.have_session = true;
                c.messages = Json::array();
                status = SWH_OK;
            }
            if (status != SWH_OK || !c.have_session)
                throw Failure(status == SWH_OK ? SWH_E_NOT_FOUND : status,
                              "backup: read_session " + session_id + " returned status " +
                                  std::to_string(status));
            const Json doc = {{"format", "swarmhost.session_backup/1"},
                              {"trigger", trigger},
                              {"taken_at", iso8601(when)},
                              {"session", std::move(c.session)},
                              {"messages", std::move(c.messages)}};
            const std::string text =
                doc.dump(pretty_ ? 2 : -1, ' ', false, Json::error_handler_t::replace) + "\n";
            fs::path target;
            if (keep_history_) {
                const fs::path folder = dir_ / safe_name(session_id);
                fs::create_directories(folder);
                target = folder / (std::to_string(when) + "-" + trigger + ".json");
            } else {
                target = dir_ / (safe_name(session_id) + ".json");
            }
            atomic_write(target, text, sync_, ++serial_);
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
    uint64_t failures_ = 0;
};

} // namespace

SWH_CPP_HOOK(Backup, "backup", "0.1.0",
             "Full JSON snapshots of sessions to a folder on created / every N messages / archived, written "
             "atomically",
             kSchema)
