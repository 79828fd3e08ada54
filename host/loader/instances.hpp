// Typed, RAII wrappers over plugin instances: the only place where host C++
// types meet the C ABI. Each wrapper owns its handle (destroy on
// destruction), keeps its library alive, turns statuses into PluginError and
// contains misbehaviour (statuses outside the enum).
#pragma once

#include "loader/host_services.hpp"
#include "loader/plugin_library.hpp"
#include "model/frozen_message.hpp"
#include "model/model.hpp"
#include "tracing/span.hpp"

#include <atomic>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace swh::loader {

class SessionAbi; // loader/abi_convert.hpp

// A plugin call failed; status() is the SWH_E_* code, what() the plugin's
// last_error prefixed with the instance name.
class PluginError : public std::runtime_error {
  public:
    PluginError(swh_status status, const std::string &message)
        : std::runtime_error(message), status_(status) {}
    swh_status status() const { return status_; }

  private:
    swh_status status_;
};

// Common part of every instance: the library, the name, the host table.
class InstanceBase {
  public:
    InstanceBase(const InstanceBase &) = delete;
    InstanceBase &operator=(const InstanceBase &) = delete;
    virtual ~InstanceBase();
    const std::string &name() const { return name_; }
    const PluginLibrary &library() const { return *library_; }
    const Json &config() const { return config_; }
    // The plugin's last_error for this thread, never throwing.
    std::string plugin_error() const;

  protected:
    InstanceBase(std::shared_ptr<PluginLibrary> library, std::string name, Json config, HostEnvironment &env);
    // Calls the kind's create with a host table bound to this instance.
    // Throws LoadError naming file, instance and the plugin's reason.
    void create_handle(swh_status (*create)(const swh_host_api *, const swh_config *, void **),
                       const char *(*last_error)(void *), void (*destroy)(void *));
    // Turns a non-OK status into PluginError (statuses outside the enum are
    // reported as a plugin bug).
    void check(swh_status status, const char *operation) const;
    // Runs one call into the plugin. A C++ exception thrown across the C
    // boundary (a plugin bug) is contained and becomes a PluginError.
    template <class F> auto contained(const char *operation, F &&call) const -> decltype(call()) {
        try {
            return call();
        } catch (const std::exception &e) {
            throw PluginError(SWH_E_INTERNAL, name_ + ": " + operation +
                                                  " threw an exception across the ABI boundary: " + e.what());
        } catch (...) {
            throw PluginError(SWH_E_INTERNAL,
                              name_ + ": " + operation + " threw an exception across the ABI boundary");
        }
    }

    std::shared_ptr<PluginLibrary> library_;
    std::string name_;
    Json config_;
    std::unique_ptr<HostServices> host_;
    void *handle_ = nullptr;
    const char *(*last_error_)(void *) = nullptr;
    void (*destroy_)(void *) = nullptr;
};

class StorageInstance : public InstanceBase {
  public:
    // Creates the plugin instance; throws LoadError if the kind is wrong or create fails.
    StorageInstance(std::shared_ptr<PluginLibrary> library, std::string name, Json config,
                    HostEnvironment &env = null_environment());
    void create_session(const Session &session);
    std::optional<Session> get_session(const std::string &id);
    void update_session(const Session &session, uint32_t fields); // SWH_SESSION_FIELD_*
    void delete_session(const std::string &id);                   // PluginError NOT_FOUND if absent
    std::vector<Session> list_sessions(const SessionFilter &filter);
    void add_message(const Message &message);
    void add_message(const FrozenMessage &message);               // its JSON already serialised
    std::vector<Message> get_messages(const MessageQuery &query); // NOT_FOUND if no session
    Json health_check();                                          // never throws

    // The event carrier (ABI 1.4), when the plugin offers one.
    struct EventPage {
        uint64_t first_seq = 0, last_seq = 0; // see swh_event_sink.range
        std::vector<std::pair<uint64_t, std::string>> events;
    };
    bool carries_events() const;
    uint64_t events_publish(const std::string &session_id, std::string_view payload);
    EventPage events_read(const std::string &session_id, uint64_t after_seq, uint32_t limit);
    // `watcher` stays valid until events_unwatch returns.
    void events_watch(const swh_event_watcher &watcher);
    void events_unwatch();

    // Shared limits (ABI 1.5), when the plugin offers them (storage.h).
    struct LeaseResult {
        bool taken = false; // false: the limit would be passed
        uint64_t held = 0;  // units the key's live leases hold
    };
    bool shares_limits() const;
    int64_t counter_add(const std::string &key, int64_t delta, uint32_t window_ms);
    LeaseResult lease_acquire(const std::string &key, const std::string &owner, uint64_t weight,
                              uint64_t limit, uint32_t ttl_ms);
    void lease_release(const std::string &key, const std::string &owner);

  private:
    swh_storage_v1 table_;
};

// What a provider reports while it answers one call. Called from any thread,
// never concurrently for one call; on_done exactly once.
struct ProviderCallbacks {
    std::function<bool(std::string_view text)> on_chunk; // false = stop (cancelled)
    std::function<void(std::string provider_message_id, Json provider_metadata)> on_metadata;
    std::function<void(swh_status status, std::string error)> on_done;
    // A tool call piece, thinking, finish reason or usage (ABI 1.3); false =
    // stop (cancelled). Empty = ignored.
    std::function<bool(const ReplyEvent &event)> on_event;
};

struct ProviderRequest {
    const Session *session = nullptr;
    const std::vector<Message> *messages = nullptr; // chronological, ends with the user message
    // Or the same as frozen messages (the send path's shared history), whose
    // JSON is passed as it is, not dumped again; used when set.
    const std::vector<MessageRef> *frozen = nullptr;
    std::string model, system_prompt, assistant_prefix;
    bool stream = false;
    Json params = Json::object(); // generation parameters, neutral form (swh_provider_request.params_json)
    // Set in an isolated provider's child (host/isolation/): the daemon's
    // provider span, made current while the plugin starts so that its
    // http_start requests carry it upstream. Nothing is recorded here: the
    // daemon's instance records the span.
    std::string upstream_traceparent;
};

class ProviderInstance : public InstanceBase {
  public:
    // Creates the plugin instance; throws LoadError if the kind is wrong or create fails.
    // `http_version` is what the host's HTTP client speaks to the upstreams
    // this instance reaches through host->http_start (manifest `http:`).
    ProviderInstance(std::shared_ptr<PluginLibrary> library, std::string name, Json config,
                     HostEnvironment &env = null_environment(),
                     HttpVersion http_version = HttpVersion::automatic);
    ~ProviderInstance() override;
    // Starts a call; returns its id. Throws PluginError if the plugin refuses
    // to start (then no callback runs).
    uint64_t start(const ProviderRequest &request, ProviderCallbacks callbacks);
    void cancel(uint64_t call_id);
    Json metadata(); // {} when the plugin does not offer it
    // The guide's update_provider_config: apply changed keys at run time
    // (calls already started finish on the old settings). PluginError
    // SWH_E_UNSUPPORTED when the plugin cannot.
    void update_config(const Json &changes);
    Json health_check(); // never throws

  private:
    struct Call;
    void call_finished();
    tracing::Span provider_span(const ProviderRequest &request) const;
    swh_provider_v1 table_;
    std::atomic<uint64_t> next_call_id_{1};
    // destroy must wait until every started call has reported done.
    std::mutex calls_mutex_;
    std::condition_variable calls_cv_;
    std::size_t open_calls_ = 0;
};

// What a middleware did to one message.
struct MiddlewareOutcome {
    swh_status status = SWH_OK;           // non-OK = the middleware failed
    std::string error;                    // its last_error / our reason
    std::optional<std::string> content;   // set_content
    std::optional<Json> structured;       // set_structured (ABI 1.3)
    Json metadata_patch = Json::object(); // merged merge_metadata calls
    std::optional<std::string> rejection; // reject(reason)
};

// Streamed text after one middleware; metadata it asked to record. A failed
// call still carries what the middleware emitted before it failed.
struct StreamOutput {
    std::string text;
    Json metadata_patch = Json::object();
    swh_status status = SWH_OK;
    std::string error;
};

class MiddlewareInstance : public InstanceBase {
  public:
    MiddlewareInstance(std::shared_ptr<PluginLibrary> library, std::string name, Json config,
                       HostEnvironment &env = null_environment());
    uint32_t stages() const { return stages_; }
    bool streams() const { return table_.stream_open && table_.stream_chunk && table_.stream_close; }
    // Never throws: failures come back in the outcome.
    MiddlewareOutcome process(uint32_t stage, const Session &session, const Message &message,
                              const Json &context);
    // The same with the session's ABI struct made by the caller: a chain
    // pass hands one session to every middleware, so it converts it once.
    MiddlewareOutcome process(uint32_t stage, const SessionAbi &session, const Message &message,
                              const Json &context);
    void on_error(uint32_t stage, const Session &session, const Message &message, const Json &context,
                  swh_status status, const std::string &error);

    // One streamed reply through this middleware. Never throws: a failure is
    // reported in the output (the chain decides what it means).
    class Stream {
      public:
        ~Stream();
        Stream(const Stream &) = delete;
        Stream &operator=(const Stream &) = delete;
        StreamOutput push(std::string_view text);
        StreamOutput close();

      private:
        friend class MiddlewareInstance;
        Stream(MiddlewareInstance &owner, void *state) : owner_(owner), state_(state) {}
        MiddlewareInstance &owner_;
        void *state_;
        bool closed_ = false;
    };
    std::unique_ptr<Stream> open_stream(const Session &session, const Message &message, const Json &context);

  private:
    // `prepared` when the caller converted the session, else `session`.
    MiddlewareOutcome process_with(uint32_t stage, const swh_session *prepared, const Session *session,
                                   const Message &message, const Json &context);
    swh_middleware_v1 table_;
    uint32_t stages_ = 0;
};

class HookInstance : public InstanceBase {
  public:
    HookInstance(std::shared_ptr<PluginLibrary> library, std::string name, Json config,
                 HostEnvironment &env = null_environment());
    uint32_t events() const { return events_; }
    // Throws PluginError on failure.
    void on_event(uint32_t type, int64_t time, const Session &session, const Message *message,
                  const Json &details);
    // The same with the event's ABI struct made by the caller (EventAbi): the
    // hook bus converts an event once for every hook that takes it.
    void on_event(const swh_event &event);
    // "" when the plugin renders none. Never throws.
    std::string render_metrics();

  private:
    swh_hook_v1 table_;
    uint32_t events_ = 0;
};

// One route a session type serves under /v1/sessions/{id}/.
struct RouteSpec {
    std::string method;
    std::string path;                  // as declared, e.g. "participants/{user}"
    std::vector<std::string> segments; // "{...}" segments match any one segment
};

// A routed request, as the host hands it to the plugin.
struct RouteCall {
    std::size_t route_index = 0;
    std::string caller_user_id, query, content_type, body, path;
    std::vector<std::string> params;
};

// What the plugin answered, and what it asked the host to store and publish.
struct RouteAnswer {
    bool answered = false;
    int status = 0;
    std::string content_type, body;
    std::optional<Json> metadata_patch; // set when merge_session_metadata was called
    std::vector<std::pair<std::string, Json>> events;
};

// What a session type did to a user message (on_user_message / on_message).
struct SessionTypeVerdict {
    swh_status status = SWH_OK; // SWH_E_PERMISSION, SWH_E_INVALID, ... = refused
    std::string error;
    MiddlewareOutcome edits;
};

class SessionTypeInstance : public InstanceBase {
  public:
    SessionTypeInstance(std::shared_ptr<PluginLibrary> library, std::string name, Json config,
                        HostEnvironment &env = null_environment());
    const std::vector<RouteSpec> &routes() const { return routes_; }
    // The JSON object to merge into a new session's metadata. Throws
    // PluginError when the plugin refuses the session.
    Json on_session_created(const Session &session);
    // Never throws: a refusal or failure is in the verdict.
    SessionTypeVerdict on_user_message(const Session &session, const Message &message,
                                       const std::string &caller_user_id);
    // Whether the plugin has an authorize entry (NULL lets everyone in on
    // its own sessions' behalf and so vouches for no one else).
    bool has_authorize() const { return table_.authorize != nullptr; }
    // SWH_OK or the refusal's status, with the reason in `error`.
    swh_status authorize(const Session &session, const std::string &caller_user_id, const std::string &action,
                         std::string &error);
    // Throws PluginError when the plugin fails without answering.
    RouteAnswer handle_route(const Session &session, const RouteCall &call);

  private:
    swh_session_type_v1 table_;
    std::vector<RouteSpec> routes_;
};

} // namespace swh::loader
