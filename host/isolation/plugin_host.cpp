#include "isolation/plugin_host.hpp"

#include "isolation/child_process.hpp"
#include "isolation/wire.hpp"
#include "loader/abi_convert.hpp"
#include "loader/host_services.hpp"
#include "loader/instances.hpp"
#include "loader/plugin_platform.hpp"

#include <atomic>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <fcntl.h>
#include <map>
#include <mutex>
#include <optional>
#include <spdlog/sinks/base_sink.h>
#include <spdlog/spdlog.h>
#include <thread>
#include <unistd.h>
#include <vector>

namespace swh::isolation {

namespace {

struct Args {
    std::string plugin, sha256;
    uint32_t kind = 0;
    int log_level = SPDLOG_LEVEL_INFO;
};

std::optional<Args> parse_args(int argc, char **argv) {
    Args args;
    for (int i = 1; i + 1 < argc; i += 2) {
        const std::string key = argv[i], value = argv[i + 1];
        if (key == "--plugin")
            args.plugin = value;
        else if (key == "--sha256")
            args.sha256 = value;
        else if (key == "--kind")
            args.kind = static_cast<uint32_t>(std::strtoul(value.c_str(), nullptr, 10));
        else if (key == "--log-level")
            args.log_level = std::atoi(value.c_str());
        else if (key == "--instance")
            continue; // for ps and tests: which instance this child runs
        else
            return std::nullopt;
    }
    if (argc % 2 == 0 || args.plugin.empty() || args.sha256.empty()) return std::nullopt;
    return args;
}

// Our end of the socket. Sends come from any thread (log lines of plugin
// threads), so they are serialised; only the main thread receives.
class Channel {
  public:
    explicit Channel(int fd) : fd_(fd) {}
    bool send(const Json &message) {
        std::lock_guard lock(send_mutex_);
        return send_frame(fd_, message, std::nullopt) == IoStatus::ok;
    }
    IoStatus recv(Json &message) { return recv_frame(fd_, message, std::nullopt); }
    bool on_main_thread() const { return std::this_thread::get_id() == main_; }

  private:
    int fd_;
    std::mutex send_mutex_;
    std::thread::id main_ = std::this_thread::get_id();
};

// Every log line of the child (the plugin's, via the host table, and the
// instance wrappers') goes to the daemon, which logs it in its own format.
class ForwardSink : public spdlog::sinks::base_sink<std::mutex> {
  public:
    explicit ForwardSink(Channel &channel) : channel_(channel) {}

  protected:
    void sink_it_(const spdlog::details::log_msg &msg) override {
        channel_.send(Json{{"op", "log"},
                           {"level", static_cast<int>(msg.level)},
                           {"text", std::string(msg.payload.data(), msg.payload.size())}});
    }
    void flush_() override {}

  private:
    Channel &channel_;
};

// The host services the child cannot answer itself go to the daemon.
class ChildEnvironment : public loader::HostEnvironment {
  public:
    ChildEnvironment(Channel &channel, bool multiplexed) : channel_(channel), multiplexed_(multiplexed) {}
    void metric_add(std::string_view, std::string_view name, std::string_view labels_json,
                    double value) override {
        channel_.send(Json{{"op", "metric"}, {"name", name}, {"labels", labels_json}, {"value", value}});
    }
    void publish_event(std::string_view, std::string_view type, std::string_view payload_json) override {
        channel_.send(Json{{"op", "event"}, {"type", type}, {"payload", payload_json}});
    }
    // The daemon answers only while it waits for a call's reply, and only
    // the main thread reads: a read from another thread is refused.
    swh_status read_session(std::string_view session_id, const swh_result_sink *sink) override {
        // On a provider's multiplexed channel the next frame in may be any
        // request: no reply can be waited for in line.
        if (multiplexed_) return SWH_E_UNSUPPORTED;
        if (!channel_.on_main_thread()) return SWH_E_UNAVAILABLE;
        if (!channel_.send(Json{{"op", "read_session"}, {"session_id", session_id}}))
            return SWH_E_UNAVAILABLE;
        Json reply;
        if (channel_.recv(reply) != IoStatus::ok) return SWH_E_UNAVAILABLE;
        if (reply.value("op", std::string()) != "read_session_reply") return SWH_E_INTERNAL;
        for (const auto &s : reply.at("sessions")) {
            // Named: the ABI struct points into it (a temporary would dangle).
            const Session session = session_from_wire(s);
            const loader::SessionAbi abi(session);
            if (const swh_status st = sink->session(sink->ctx, abi.get()); st != SWH_OK) return st;
        }
        for (const auto &m : reply.at("messages")) {
            if (!sink->message) break; // the row only (abi.h, read_session)
            const Message message = message_from_wire(m);
            const loader::MessageAbi abi(message);
            if (const swh_status st = sink->message(sink->ctx, abi.get()); st != SWH_OK) return st;
        }
        return reply.value("status", SWH_E_INTERNAL);
    }

  private:
    Channel &channel_;
    bool multiplexed_;
};

Json failure(swh_status status, const std::string &error) {
    return Json{{"status", status}, {"error", error}};
}

Json stream_reply(const loader::StreamOutput &out, const std::string &error) {
    return Json{
        {"status", out.status}, {"error", error}, {"text", out.text}, {"metadata", out.metadata_patch}};
}

class PluginHost {
  public:
    PluginHost(Channel &channel, const Args &args)
        : channel_(channel), env_(channel, args.kind == SWH_KIND_PROVIDER), args_(args) {
        load();
    }

    // At EOF: the provider's open calls are cancelled, so that its destroy
    // (which waits for them) can run.
    void cancel_open_calls() {
        if (!provider_) return;
        std::vector<std::shared_ptr<OpenCall>> open;
        {
            std::lock_guard lock(calls_mutex_);
            for (const auto &[id, call] : calls_)
                open.push_back(call);
        }
        for (const auto &call : open) {
            call->cancelled = true;
            provider_->cancel(call->call_id);
        }
    }

    Json handle(const Json &request) {
        const std::string &op = request.at("op").get_ref<const std::string &>();
        try {
            if (op == "create") return create(request);
            if (op == "ping") return Json{{"status", SWH_OK}}; // the reply is the sign of life
            if (!has_instance()) return failure(SWH_E_UNAVAILABLE, "plugin host: no instance");
            if (storage_) {
                if (auto reply = storage_op(op, request)) return *reply;
            } else if (session_type_) {
                if (auto reply = session_type_op(op, request)) return *reply;
            } else if (provider_) {
                if (auto reply = provider_op(op, request)) return *reply;
            } else if (middleware_) {
                if (op == "process") return process(request);
                if (op == "on_error") return on_error(request);
                if (op == "stream_open") return stream_open(request);
                if (op == "stream_chunk" || op == "stream_close")
                    return stream_step(request, op == "stream_close");
            } else {
                if (op == "on_event") return on_event(request);
                if (op == "render_metrics")
                    return Json{{"status", SWH_OK}, {"text", hook_->render_metrics()}};
            }
            return failure(SWH_E_UNSUPPORTED, "plugin host: unknown operation '" + op + "'");
        } catch (const std::exception &e) {
            return failure(SWH_E_INTERNAL, std::string("plugin host: ") + op + ": " + e.what());
        }
    }

  private:
    // Hashes before dlopen, like the daemon: a file swapped since the daemon
    // loaded it is refused before any of its code runs.
    void load() {
        try {
            if (auto unsafe = loader::platform::unsafe_file_reason(args_.plugin); !unsafe.empty())
                throw loader::LoadError(unsafe);
            if (const auto now = loader::file_sha256(args_.plugin); now != args_.sha256)
                throw loader::LoadError(args_.plugin + ": changed since the daemon loaded it (sha256 " + now +
                                        ", expected " + args_.sha256 + ")");
            auto library = loader::PluginLibrary::load(args_.plugin);
            if (library->kind() != args_.kind)
                throw loader::LoadError(args_.plugin + ": is a " + loader::kind_name(library->kind()) +
                                        " plugin");
            library_ = std::move(library);
        } catch (const std::exception &e) {
            load_error_ = e.what();
        }
    }

    // The wrappers prefix errors with "<instance>: <operation> failed (...): ";
    // the daemon adds its own, so only the plugin's part goes back.
    std::string detail(std::string text) const {
        const std::string mine = instance_ + ": ";
        if (!text.starts_with(mine)) return text;
        text.erase(0, mine.size());
        const auto colon = text.find(": ");
        if (colon != std::string::npos &&
            text.find_first_not_of("abcdefghijklmnopqrstuvwxyz_ ()-", 0) >= colon)
            text.erase(0, colon + 2);
        return text;
    }

    bool has_instance() const { return middleware_ || hook_ || storage_ || session_type_ || provider_; }

    Json create(const Json &request) {
        instance_ = request.at("instance").get<std::string>();
        if (!library_) return failure(SWH_E_UNAVAILABLE, load_error_);
        if (has_instance()) return failure(SWH_E_CONFLICT, "plugin host: instance already created");
        const Json &config = request.at("config");
        uint32_t mask = 0;
        try {
            if (args_.kind == SWH_KIND_STORAGE) {
                storage_ = std::make_unique<loader::StorageInstance>(library_, instance_, config, env_);
            } else if (args_.kind == SWH_KIND_SESSION_TYPE) {
                session_type_ =
                    std::make_unique<loader::SessionTypeInstance>(library_, instance_, config, env_);
            } else if (args_.kind == SWH_KIND_MIDDLEWARE) {
                middleware_ = std::make_unique<loader::MiddlewareInstance>(library_, instance_, config, env_);
                mask = middleware_->stages();
            } else if (args_.kind == SWH_KIND_PROVIDER) {
                // The daemon's manifest `http:` for this instance: this
                // process's HTTP client makes the provider's requests.
                provider_ = std::make_unique<loader::ProviderInstance>(
                    library_, instance_, config, env_,
                    static_cast<HttpVersion>(request.value("http_version", 0)));
            } else {
                hook_ = std::make_unique<loader::HookInstance>(library_, instance_, config, env_);
                mask = hook_->events();
            }
        } catch (const loader::LoadError &e) {
            const std::string prefix = library_->file() + ": instance '" + instance_ + "' failed to start: ";
            std::string reason = e.what();
            if (reason.starts_with(prefix)) reason.erase(0, prefix.size());
            return failure(SWH_E_INVALID, reason);
        }
        return Json{{"status", SWH_OK}, {"mask", mask}};
    }

    // A storage operation through the daemon's own StorageInstance wrapper;
    // nullopt for an operation a store does not have. Results travel as
    // arrays in the order the plugin emitted them.
    std::optional<Json> storage_op(const std::string &op, const Json &request) {
        const Json ok{{"status", SWH_OK}};
        try {
            if (op == "create_session") {
                storage_->create_session(session_from_wire(request.at("session")));
                return ok;
            }
            if (op == "get_session") {
                const std::string &id = request.at("id").get_ref<const std::string &>();
                const auto session = storage_->get_session(id);
                if (!session) return failure(SWH_E_NOT_FOUND, "session '" + id + "' not found");
                return Json{{"status", SWH_OK}, {"sessions", Json::array({to_wire(*session)})}};
            }
            if (op == "update_session") {
                storage_->update_session(session_from_wire(request.at("session")),
                                         request.at("fields").get<uint32_t>());
                return ok;
            }
            if (op == "delete_session") {
                storage_->delete_session(request.at("id").get<std::string>());
                return ok;
            }
            if (op == "list_sessions") return list_sessions(request);
            if (op == "add_message") {
                storage_->add_message(message_from_wire(request.at("message")));
                return ok;
            }
            if (op == "get_messages") return get_messages(request);
            if (op == "health_check") return health_check();
        } catch (const loader::PluginError &e) {
            return failure(e.status(), detail(e.what()));
        }
        return std::nullopt;
    }

    Json list_sessions(const Json &request) {
        SessionFilter filter;
        filter.user_id = request.at("user_id").get<std::string>();
        filter.status = request.at("status").get<std::string>();
        filter.limit = request.at("limit").get<uint32_t>();
        filter.offset = request.at("offset").get<uint32_t>();
        Json sessions = Json::array();
        for (const auto &session : storage_->list_sessions(filter))
            sessions.push_back(to_wire(session));
        return Json{{"status", SWH_OK}, {"sessions", std::move(sessions)}};
    }

    Json get_messages(const Json &request) {
        MessageQuery query;
        query.session_id = request.at("session_id").get<std::string>();
        query.role = request.at("role").get<std::string>();
        query.since = request.at("since").get<int64_t>();
        query.limit = request.at("limit").get<uint32_t>();
        Json messages = Json::array();
        for (const auto &message : storage_->get_messages(query))
            messages.push_back(to_wire(message));
        return Json{{"status", SWH_OK}, {"messages", std::move(messages)}};
    }

    // The wrapper folds the plugin's status into the report ("unhealthy"
    // whenever it was not OK); the status goes back the same way.
    Json health_check() {
        const Json health = storage_->health_check();
        const bool unhealthy = health.value("status", Json()) == "unhealthy";
        const auto error = health.find("error");
        std::string reason = error != health.end() && error->is_string() ? error->get<std::string>() : "";
        if (unhealthy && reason.empty()) reason = "the store reports itself unhealthy";
        return Json{{"status", unhealthy ? SWH_E_UNAVAILABLE : SWH_OK},
                    {"error", unhealthy ? reason : std::string()},
                    {"json", Json::array({health.dump()})}};
    }

    // A session type operation through the daemon's own SessionTypeInstance
    // wrapper, which records what the plugin did through the response sink
    // or editor; nullopt for an operation a session type does not have.
    std::optional<Json> session_type_op(const std::string &op, const Json &request) {
        try {
            if (op == "routes") {
                Json routes = Json::array();
                for (const auto &route : session_type_->routes())
                    routes.push_back(Json{{"method", route.method}, {"path", route.path}});
                return Json{{"status", SWH_OK}, {"routes", std::move(routes)}};
            }
            if (op == "handle_route") return handle_route(request);
            if (op == "on_session_created") {
                const Json patch =
                    session_type_->on_session_created(session_from_wire(request.at("session")));
                return Json{{"status", SWH_OK}, {"metadata", patch}};
            }
            if (op == "on_user_message") return on_user_message(request);
            if (op == "authorize") {
                std::string error;
                const swh_status status = session_type_->authorize(
                    session_from_wire(request.at("session")), bytes_at(request, "caller"),
                    request.at("action").get<std::string>(), error);
                return status == SWH_OK ? Json{{"status", SWH_OK}} : failure(status, error);
            }
        } catch (const loader::PluginError &e) {
            return failure(e.status(), detail(e.what()));
        }
        return std::nullopt;
    }

    // The answer travels as recorded: the merged metadata patch, the events
    // in the order published, then the response (its bytes raw, wire.hpp).
    Json handle_route(const Json &request) {
        loader::RouteCall call;
        call.route_index = request.at("route_index").get<std::size_t>();
        call.caller_user_id = bytes_at(request, "caller");
        call.query = bytes_at(request, "query");
        call.content_type = bytes_at(request, "content_type");
        call.body = bytes_at(request, "body");
        call.path = bytes_at(request, "path");
        const auto params = request.at("params").get<std::size_t>();
        for (std::size_t i = 0; i < params; ++i)
            call.params.push_back(bytes_at(request, ("param" + std::to_string(i)).c_str()));
        const loader::RouteAnswer answer =
            session_type_->handle_route(session_from_wire(request.at("session")), call);
        Json events = Json::array();
        for (const auto &[type, payload] : answer.events)
            events.push_back(Json::array({type, payload}));
        Json reply{{"status", SWH_OK},
                   {"answered", answer.answered},
                   {"http_status", answer.status},
                   {"events", std::move(events)},
                   {kBytesKey, {{"content_type", answer.content_type}, {"body", answer.body}}}};
        if (answer.metadata_patch) reply["metadata"] = *answer.metadata_patch;
        return reply;
    }

    // The verdict with its edits; a refusal's error is the plugin's own text.
    Json on_user_message(const Json &request) {
        const loader::SessionTypeVerdict verdict = session_type_->on_user_message(
            session_from_wire(request.at("session")), message_from_wire(request.at("message")),
            bytes_at(request, "caller"));
        Json reply{{"status", verdict.status}, {"metadata", verdict.edits.metadata_patch}};
        if (verdict.status != SWH_OK) reply["error"] = verdict.error;
        if (verdict.edits.content) reply["content"] = *verdict.edits.content;
        if (verdict.edits.rejection) reply["rejection"] = *verdict.edits.rejection;
        return reply;
    }

    Json process(const Json &request) {
        const auto outcome = middleware_->process(
            request.at("stage").get<uint32_t>(), session_from_wire(request.at("session")),
            message_from_wire(request.at("message")), request.at("context"));
        Json reply{{"status", outcome.status}, {"metadata", outcome.metadata_patch}};
        if (outcome.status != SWH_OK) reply["error"] = outcome.error;
        if (outcome.content) reply["content"] = *outcome.content;
        if (outcome.structured) reply["structured"] = *outcome.structured;
        if (outcome.rejection) reply["rejection"] = *outcome.rejection;
        return reply;
    }

    Json on_error(const Json &request) {
        middleware_->on_error(request.at("stage").get<uint32_t>(), session_from_wire(request.at("session")),
                              message_from_wire(request.at("message")), request.at("context"),
                              request.at("status").get<swh_status>(), request.at("error").get<std::string>());
        return Json{{"status", SWH_OK}};
    }

    // A provider operation; nullopt for one a provider does not have.
    std::optional<Json> provider_op(const std::string &op, const Json &request) {
        try {
            if (op == "provider_start") return provider_start(request);
            if (op == "provider_cancel") {
                std::shared_ptr<OpenCall> call;
                {
                    std::lock_guard lock(calls_mutex_);
                    auto it = calls_.find(request.at("id").get<uint64_t>());
                    if (it != calls_.end()) call = it->second;
                }
                if (call) {
                    call->cancelled = true;
                    provider_->cancel(call->call_id);
                }
                return Json{{"status", SWH_OK}};
            }
            if (op == "get_metadata") return Json{{"status", SWH_OK}, {"json", provider_->metadata()}};
            if (op == "update_config") {
                provider_->update_config(request.at("changes"));
                return Json{{"status", SWH_OK}};
            }
            if (op == "health_check") {
                // The wrapper folds the plugin's status into the report.
                const Json health = provider_->health_check();
                const bool unhealthy = health.value("status", Json()) == "unhealthy";
                return Json{
                    {"status", unhealthy ? SWH_E_UNAVAILABLE : SWH_OK},
                    {"error", unhealthy ? health.value("error", std::string("unhealthy")) : std::string()},
                    {"json", health}};
            }
        } catch (const loader::PluginError &e) {
            return failure(e.status(), detail(e.what()));
        }
        return std::nullopt;
    }

    // Starts one call. Its frames go out from whichever thread the plugin
    // reports on (the channel serialises them); done is always the last.
    Json provider_start(const Json &request) {
        const uint64_t id = request.at("id").get<uint64_t>();
        std::optional<Session> session;
        if (!request.at("session").is_null()) session = session_from_wire(request.at("session"));
        std::vector<Message> messages;
        for (const auto &m : request.at("messages"))
            messages.push_back(message_from_wire(m));
        loader::ProviderRequest call_request;
        call_request.session = session ? &*session : nullptr;
        call_request.messages = &messages;
        call_request.model = request.at("model").get<std::string>();
        call_request.system_prompt = request.at("system_prompt").get<std::string>();
        call_request.assistant_prefix = request.at("assistant_prefix").get<std::string>();
        call_request.stream = request.at("stream").get<bool>();
        call_request.params = request.value("params", Json::object());
        call_request.upstream_traceparent = request.value("traceparent", std::string());

        auto call = std::make_shared<OpenCall>();
        {
            std::lock_guard lock(calls_mutex_);
            calls_[id] = call;
        }
        Channel &channel = channel_;
        loader::ProviderCallbacks callbacks;
        callbacks.on_chunk = [&channel, call, id](std::string_view text) {
            if (call->cancelled) return false;
            return channel.send(Json{{"op", "chunk"}, {"id", id}, {kBytesKey, {{"t", std::string(text)}}}}) &&
                   !call->cancelled;
        };
        callbacks.on_metadata = [&channel, id](std::string provider_message_id, Json metadata) {
            channel.send(Json{{"op", "metadata"},
                              {"id", id},
                              {"mid", std::move(provider_message_id)},
                              {"metadata", std::move(metadata)}});
        };
        callbacks.on_event = [&channel, call, id](const ReplyEvent &event) {
            if (call->cancelled) return false;
            const Json fields = Json::array(
                {static_cast<uint32_t>(event.type) + SWH_REPLY_TOOL_CALL, event.index, event.id, event.name,
                 event.input_tokens, event.output_tokens, event.cached_input_tokens, event.reasoning_tokens});
            return channel.send(Json{
                       {"op", "reply_event"}, {"id", id}, {"e", fields}, {kBytesKey, {{"t", event.text}}}}) &&
                   !call->cancelled;
        };
        callbacks.on_done = [this, &channel, id](swh_status status, std::string error) {
            {
                std::lock_guard lock(calls_mutex_);
                calls_.erase(id);
            }
            channel.send(Json{{"op", "done"}, {"id", id}, {"status", status}, {"error", std::move(error)}});
        };
        try {
            call->call_id = provider_->start(call_request, std::move(callbacks));
        } catch (const loader::PluginError &e) {
            std::lock_guard lock(calls_mutex_);
            calls_.erase(id);
            return failure(e.status(), detail(e.what()));
        }
        return Json{{"status", SWH_OK}};
    }

    Json stream_open(const Json &request) {
        try {
            streams_[request.at("id").get<uint64_t>()] =
                middleware_->open_stream(session_from_wire(request.at("session")),
                                         message_from_wire(request.at("message")), request.at("context"));
        } catch (const loader::PluginError &e) {
            return failure(e.status(), detail(e.what()));
        }
        return Json{{"status", SWH_OK}};
    }

    Json stream_step(const Json &request, bool closing) {
        auto it = streams_.find(request.at("id").get<uint64_t>());
        if (it == streams_.end()) return failure(SWH_E_INVALID, "plugin host: unknown stream");
        const loader::StreamOutput out =
            closing ? it->second->close()
                    : it->second->push(request.at("text").get_ref<const std::string &>());
        if (closing) streams_.erase(it);
        return stream_reply(out, detail(out.error));
    }

    Json on_event(const Json &request) {
        const Json &message = request.at("message");
        std::optional<Message> msg;
        if (!message.is_null()) msg = message_from_wire(message);
        try {
            hook_->on_event(request.at("type").get<uint32_t>(), request.at("time").get<int64_t>(),
                            session_from_wire(request.at("session")), msg ? &*msg : nullptr,
                            request.at("details"));
        } catch (const loader::PluginError &e) {
            return failure(e.status(), detail(e.what()));
        }
        return Json{{"status", SWH_OK}};
    }

    // A provider call open in this child, by the daemon's call id.
    struct OpenCall {
        uint64_t call_id = 0; // the wrapper's, for cancel
        std::atomic<bool> cancelled{false};
    };

    Channel &channel_;
    ChildEnvironment env_;
    Args args_;
    std::shared_ptr<loader::PluginLibrary> library_;
    std::string load_error_, instance_;
    std::unique_ptr<loader::MiddlewareInstance> middleware_;
    std::unique_ptr<loader::HookInstance> hook_;
    std::unique_ptr<loader::StorageInstance> storage_;
    std::unique_ptr<loader::SessionTypeInstance> session_type_;
    std::unique_ptr<loader::ProviderInstance> provider_;
    // After middleware_: streams are closed before their instance goes.
    std::map<uint64_t, std::unique_ptr<loader::MiddlewareInstance::Stream>> streams_;
    std::mutex calls_mutex_; // done comes from the plugin's threads
    std::map<uint64_t, std::shared_ptr<OpenCall>> calls_;
};

// A daemon killed with SIGKILL cannot stop us, and a hung plugin never
// reads the EOF: notice being orphaned and leave.
void leave_when_orphaned() {
    const pid_t parent = ::getppid();
    std::thread([parent] {
        while (::getppid() == parent)
            std::this_thread::sleep_for(std::chrono::milliseconds(500));
        std::_Exit(0);
    }).detach();
}

} // namespace

int run_plugin_host(int argc, char **argv) {
    const auto args = parse_args(argc, argv);
    if (!args) {
        std::fprintf(stderr, "usage: swarmhost-plugin-host --plugin FILE --sha256 HEX --kind N --log-level N "
                             "[--instance NAME]\n"
                             "(started by the swarmhost daemon for plugins with `isolation: process`)\n");
        return 2;
    }
    if (::fcntl(kChildSocketFd, F_GETFD) < 0) {
        std::fprintf(stderr,
                     "swarmhost-plugin-host: fd %d is not open; the swarmhost daemon starts this program\n",
                     kChildSocketFd);
        return 2;
    }
    std::signal(SIGPIPE, SIG_IGN); // a plugin writing to a closed pipe gets EPIPE, as in the daemon
    Channel channel(kChildSocketFd);
    auto logger = std::make_shared<spdlog::logger>("plugin-host", std::make_shared<ForwardSink>(channel));
    logger->set_level(static_cast<spdlog::level::level_enum>(std::clamp(args->log_level, 0, 6)));
    spdlog::set_default_logger(logger);
    leave_when_orphaned();
    {
        PluginHost host(channel, *args);
        for (;;) {
            Json request;
            if (channel.recv(request) != IoStatus::ok) break; // the daemon closed: destroy and leave
            Json reply = host.handle(request);
            reply["op"] = "reply";
            // A provider's requests are answered by id (several are open at once).
            const auto rid = request.find("rid");
            if (rid != request.end()) reply["rid"] = *rid;
            if (channel.send(reply)) continue;
            // A reply over the frame limit is refused before a byte is sent:
            // the daemon gets that failure instead of a dead child.
            const Json refused{{"op", "reply"},
                               {"status", SWH_E_INTERNAL},
                               {"error", "plugin host: the reply to '" + request.value("op", std::string()) +
                                             "' did not fit in one frame"}};
            Json tagged = refused;
            if (rid != request.end()) tagged["rid"] = *rid;
            if (!channel.send(tagged)) break;
        }
        host.cancel_open_calls();
    }
    // The channel goes out of scope next: no log line may reach it after.
    spdlog::set_default_logger(std::make_shared<spdlog::logger>("plugin-host"));
    return 0;
}

} // namespace swh::isolation
