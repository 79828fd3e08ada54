// swarmhost C++ plugin helper (header-only, C++20, optional).
//
// Write a class, get the C tables. The helper builds the kind's function
// table and the descriptor from an ordinary C++ class, turns every exception
// into a status plus last_error at the edge, hands you std::string_view
// instead of {ptr,len}, and fills your settings struct from the validated
// config through the schema rows that declare it. It adds no
// ABI: everything here compiles down to the C structs of <swarmhost/*.h>, and
// the plugin still exports only swh_plugin_entry.
//
//     #include <swarmhost/cpp/plugin.hpp>
//     struct Settings {
//         std::string suffix = "!";
//     };
//     constexpr auto kSchema = swh::cpp::schema(
//         swh::cpp::setting<&Settings::suffix>("suffix", "\"!\"", "Appended to every user message"));
//     class Shout {
//       public:
//         Shout(swh::cpp::Host host, const Settings &settings) : host_(host), settings_(settings) {}
//         uint32_t stages() const { return SWH_STAGE_USER; }
//         void process(const swh::cpp::MiddlewareInput &in, swh::cpp::Editor &edit) {
//             if (in.message.content.empty()) throw swh::cpp::Failure(SWH_E_INVALID, "empty");
//             edit.set_content(std::string(in.message.content) + settings_.suffix);
//         }
//       private:
//         swh::cpp::Host host_;
//         Settings settings_;
//     };
//     SWH_CPP_MIDDLEWARE(Shout, "shout", "0.1.0", "Appends a suffix", kSchema)
//
// The same idiom for every kind: SWH_CPP_MIDDLEWARE, SWH_CPP_HOOK,
// SWH_CPP_SESSION_TYPE here, SWH_CPP_STORAGE in storage_plugin.hpp.
// Class requirements per kind (checked at compile time, see the concepts):
//   every kind   Impl(swh::cpp::Host, const Settings &) for a schema(...) of
//                setting rows (Impl(swh::cpp::Host, const swh::cpp::Config &)
//                for a plain swh_config_field array or no_config) — may throw;
//                a Config is valid only inside the constructor.
//   middleware   uint32_t stages() const;                        [any-thread]
//                void|swh_status process(const MiddlewareInput &, Editor &);   [any-thread]
//                optional: void on_error(const MiddlewareInput &, swh_status, std::string_view);
//                optional streaming: std::unique_ptr<S> open_stream(const MiddlewareInput &),
//                  with S::chunk(std::string_view, Emitter &) and S::close(Emitter &)  [serial per stream]
//   hook         uint32_t events() const;                        [any-thread]
//                void|swh_status on_event(const Event &);        [serial][may-block]
//                optional: std::string render_metrics();         [any-thread]
//   session type std::span<const swh_route> routes() const;      [any-thread] (static storage)
//                void|swh_status handle(const RouteRequest &, Response &);  [any-thread][may-block]
//                optional: std::string on_session_created(const Session &);  JSON object merged
//                  into the new session's metadata ("" = nothing); throw Failure to refuse it
//                optional: void on_user_message(const SessionMessage &, Editor &);
//                  throw Failure(SWH_E_PERMISSION | SWH_E_INVALID, why) to refuse (403 | 400)
//                optional: void authorize(const Session &, std::string_view caller, std::string_view action);
//                  throw Failure(SWH_E_PERMISSION, why) to deny (403)
// ABI minor: the descriptor declares the lowest minor whose members the
// kind's table uses (middleware, hook, storage: 1.0; a session type with
// on_user_message or authorize: 1.2), not SWH_ABI_VERSION_MINOR, so older
// hosts still load the plugin. A class that calls later host members itself
// (or serves {name} route segments, 1.2) raises it:
//     static constexpr uint16_t abi_minor = 2;
// Members the helper reads only when the host has them do not raise it:
// Message::structured_json is empty and Editor::can_set_structured() false
// on a host older than 1.3.
// Threading: the helper adds no locking. Members tagged [any-thread] run
// concurrently on one instance; synchronise your own state.
#pragma once

#include <swarmhost/cpp/edge.hpp>
#include <swarmhost/cpp/utf8.hpp>

#include <array>
#include <chrono>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

namespace swh::cpp {

using edge::ErrorSlot;
using edge::Failure;

// {ptr,len} <-> std::string_view. `sv` tolerates a NULL pointer with len 0.
inline std::string_view sv(swh_str s) noexcept {
    return (s.ptr == nullptr || s.len == 0) ? std::string_view{} : std::string_view{s.ptr, s.len};
}
inline swh_str str(std::string_view s) noexcept {
    return swh_str{s.data(), s.size()};
}

// ------------------------------------------------------------------ host

// The host services table of one instance. Cheap to copy; valid from the
// constructor until the instance is destroyed. Every member is [any-thread]
// and a no-op (or a local fallback) when the host does not offer it.
class Host {
  public:
    Host() = default;
    explicit Host(const swh_host_api *api) noexcept : api_(api) {}

    void log(int32_t level, std::string_view message) const noexcept {
        if (offers(&swh_host_api::log, offsetof(swh_host_api, log)))
            api_->log(api_->host_ctx, level, str(message));
    }
    void debug(std::string_view m) const noexcept { log(SWH_LOG_DEBUG, m); }
    void info(std::string_view m) const noexcept { log(SWH_LOG_INFO, m); }
    void warn(std::string_view m) const noexcept { log(SWH_LOG_WARN, m); }
    void error(std::string_view m) const noexcept { log(SWH_LOG_ERROR, m); }

    swh_time_us now_us() const noexcept {
        if (offers(&swh_host_api::now_us, offsetof(swh_host_api, now_us)))
            return api_->now_us(api_->host_ctx);
        using namespace std::chrono;
        return duration_cast<microseconds>(system_clock::now().time_since_epoch()).count();
    }
    // A new UUIDv4 text from the host; throws Failure(SWH_E_UNSUPPORTED) when not offered.
    std::string new_id() const {
        if (!offers(&swh_host_api::new_id, offsetof(swh_host_api, new_id)))
            throw Failure(SWH_E_UNSUPPORTED, "host does not offer new_id");
        char out[37] = {};
        api_->new_id(api_->host_ctx, out);
        return std::string(out, 36);
    }
    void metric_add(std::string_view name, double value, std::string_view labels_json = {}) const noexcept {
        if (offers(&swh_host_api::metric_add, offsetof(swh_host_api, metric_add)))
            api_->metric_add(api_->host_ctx, str(name), str(labels_json), value);
    }
    void publish_event(std::string_view type, std::string_view payload_json) const noexcept {
        if (offers(&swh_host_api::publish_event, offsetof(swh_host_api, publish_event)))
            api_->publish_event(api_->host_ctx, str(type), str(payload_json));
    }
    // The raw table, for members this helper does not wrap (read_session).
    const swh_host_api *raw() const noexcept { return api_; }

  private:
    // True when the host's table is big enough to hold the member and sets it.
    template <class Fn> bool offers(Fn swh_host_api::*member, std::size_t offset) const noexcept {
        return api_ != nullptr && api_->struct_size >= offset + sizeof(Fn) && api_->*member != nullptr;
    }
    const swh_host_api *api_ = nullptr;
};

// ---------------------------------------------------------------- config

// Typed access to the instance's validated config (defaults applied by the
// host). Valid only during the constructor: copy what you keep.
//   get<T>(key)   T in {std::string, int64_t, int, double, bool, std::vector<std::string>};
//                 throws Failure(SWH_E_INVALID) naming the key on absence or a type mismatch.
//   find<T>(key)  std::nullopt when the key is absent.
//   json()        the whole config as JSON object text.
class Config {
  public:
    Config(const swh_host_api *host, const swh_config *cfg) : host_(host), cfg_(cfg) {
        if (host == nullptr) throw Failure(SWH_E_INVALID, "create: host table is NULL");
    }

    template <class T> T get(const char *key) const {
        std::optional<T> value = find<T>(key);
        if (!value) throw Failure(SWH_E_INVALID, std::string("config key '") + key + "' is missing");
        return std::move(*value);
    }

    template <class T> std::optional<T> find(const char *key) const {
        if constexpr (std::is_same_v<T, std::string>) {
            swh_str out{nullptr, 0};
            if (!fetch(&swh_host_api::config_string, offsetof(swh_host_api, config_string), key, "string",
                       &out))
                return std::nullopt;
            return std::string(sv(out));
        } else if constexpr (std::is_same_v<T, bool>) {
            int32_t out = 0;
            if (!fetch(&swh_host_api::config_bool, offsetof(swh_host_api, config_bool), key, "bool", &out))
                return std::nullopt;
            return out != 0;
        } else if constexpr (std::is_integral_v<T>) {
            int64_t out = 0;
            if (!fetch(&swh_host_api::config_int, offsetof(swh_host_api, config_int), key, "integer", &out))
                return std::nullopt;
            if (!std::in_range<T>(out))
                throw Failure(SWH_E_INVALID, std::string("config key '") + key + "' is out of range");
            return static_cast<T>(out);
        } else if constexpr (std::is_floating_point_v<T>) {
            double out = 0;
            if (!fetch(&swh_host_api::config_number, offsetof(swh_host_api, config_number), key, "number",
                       &out))
                return std::nullopt;
            return static_cast<T>(out);
        } else if constexpr (std::is_same_v<T, std::vector<std::string>>) {
            std::size_t count = 0;
            if (!fetch(&swh_host_api::config_list_size, offsetof(swh_host_api, config_list_size), key,
                       "string list", &count))
                return std::nullopt;
            require(&swh_host_api::config_list_string, offsetof(swh_host_api, config_list_string));
            std::vector<std::string> items;
            items.reserve(count);
            for (std::size_t i = 0; i < count; ++i) {
                swh_str item{nullptr, 0};
                check(host_->config_list_string(host_->host_ctx, cfg_, key, i, &item), key, "string list");
                items.emplace_back(sv(item));
            }
            return items;
        } else {
            static_assert(sizeof(T) == 0, "Config::get<T>: unsupported type");
        }
    }

    std::string json() const {
        require(&swh_host_api::config_json, offsetof(swh_host_api, config_json));
        swh_str out{nullptr, 0};
        check(host_->config_json(host_->host_ctx, cfg_, &out), "(whole config)", "json");
        return std::string(sv(out));
    }

  private:
    template <class Fn> void require(Fn swh_host_api::*member, std::size_t offset) const {
        if (host_->struct_size < offset + sizeof(Fn) || host_->*member == nullptr)
            throw Failure(SWH_E_UNSUPPORTED, "host does not offer this config accessor");
    }
    // false = key absent; throws on any other failure.
    template <class Fn, class Out>
    bool fetch(Fn swh_host_api::*member, std::size_t offset, const char *key, const char *type,
               Out *out) const {
        require(member, offset);
        const swh_status status = (host_->*member)(host_->host_ctx, cfg_, key, out);
        if (status == SWH_E_NOT_FOUND) return false;
        check(status, key, type);
        return true;
    }
    static void check(swh_status status, const char *key, const char *type) {
        if (status == SWH_OK) return;
        throw Failure(SWH_E_INVALID, std::string("config key '") + key + "' is not a " + type +
                                         " (host status " + std::to_string(status) + ")");
    }
    const swh_host_api *host_;
    const swh_config *cfg_;
};

// One config schema row: field("path", SWH_CFG_STRING, "\"./x.db\"", "Database file").
constexpr swh_config_field field(const char *key, uint32_t type, const char *default_json,
                                 const char *description, bool required = false) noexcept {
    return swh_config_field{sizeof(swh_config_field), key,          type,
                            required ? 1u : 0u,       default_json, description};
}

// ------------------------------------------------------ settings binding

// A config key is declared once: one row gives the key, its default, its
// description AND the member of the plugin's settings struct it fills; the
// SWH_CFG_* type comes from the member's C++ type. The rows are the schema
// the descriptor publishes (the host validates the config against it and
// applies the defaults) and the reader that fills the struct at create:
//
//     struct Settings { std::string suffix = "!"; int64_t limit = 10; };
//     constexpr auto kSchema = swh::cpp::schema(
//         swh::cpp::setting<&Settings::suffix>("suffix", "\"!\"", "Appended"),
//         swh::cpp::setting<&Settings::limit>("limit", "10", "At most this many"));
//     // the class: Impl(swh::cpp::Host, const Settings &)
//
// A key the host leaves absent (no default, not required) keeps the member's
// initializer. Checks the schema cannot express stay in the constructor.

// The SWH_CFG_* type of a member type and how to read it. Specialise it for a
// type of your own (json_config.hpp adds nlohmann::json as SWH_CFG_OBJECT).
template <class T> struct ConfigValue;

template <> struct ConfigValue<std::string> {
    static constexpr uint32_t type = SWH_CFG_STRING;
    static std::optional<std::string> find(const Config &c, const char *key) {
        return c.find<std::string>(key);
    }
};
template <> struct ConfigValue<bool> {
    static constexpr uint32_t type = SWH_CFG_BOOL;
    static std::optional<bool> find(const Config &c, const char *key) { return c.find<bool>(key); }
};
template <std::integral T> struct ConfigValue<T> {
    static constexpr uint32_t type = SWH_CFG_INT;
    static std::optional<T> find(const Config &c, const char *key) { return c.find<T>(key); }
};
template <std::floating_point T> struct ConfigValue<T> {
    static constexpr uint32_t type = SWH_CFG_NUMBER;
    static std::optional<T> find(const Config &c, const char *key) { return c.find<T>(key); }
};
template <> struct ConfigValue<std::vector<std::string>> {
    static constexpr uint32_t type = SWH_CFG_STRING_LIST;
    static std::optional<std::vector<std::string>> find(const Config &c, const char *key) {
        return c.find<std::vector<std::string>>(key);
    }
};

namespace detail {
template <class M> struct MemberOf;
template <class C, class T> struct MemberOf<T C::*> {
    using Class = C;
    using Type = T;
};
// The member a path of member pointers names: (s.*a).*b ...
template <auto Member, auto... Path> constexpr auto &member_at(auto &object) noexcept {
    if constexpr (sizeof...(Path) == 0)
        return object.*Member;
    else
        return member_at<Path...>(object.*Member);
}
template <auto Member, auto... Path> struct Last { using Type = typename Last<Path...>::Type; };
template <auto Member> struct Last<Member> { using Type = typename MemberOf<decltype(Member)>::Type; };
} // namespace detail

// One row: the schema field and the function that fills its member.
template <class S> struct Setting {
    swh_config_field field;
    void (*read)(const Config &, const char *key, S &out);
};

// setting<&Settings::member>(key, default_json, description[, required]);
// a member of a nested struct is a path: setting<&Settings::http, &Http::model>(...).
template <auto Member, auto... Path>
constexpr Setting<typename detail::MemberOf<decltype(Member)>::Class>
setting(const char *key, const char *default_json, const char *description, bool required = false) noexcept {
    using S = typename detail::MemberOf<decltype(Member)>::Class;
    using T = typename detail::Last<Member, Path...>::Type;
    return {field(key, ConfigValue<T>::type, default_json, description, required),
            [](const Config &config, const char *k, S &out) {
                if (auto value = ConfigValue<T>::find(config, k))
                    detail::member_at<Member, Path...>(out) = std::move(*value);
            }};
}

// The rows of one settings struct, in the order the schema lists them.
template <class S, std::size_t N> struct Schema {
    using Settings = S;
    std::array<swh_config_field, N> fields;
    std::array<void (*)(const Config &, const char *, S &), N> readers;

    // Fills the members whose keys `config` holds; the others keep their value.
    void apply(const Config &config, S &out) const {
        for (std::size_t i = 0; i < N; ++i)
            readers[i](config, fields[i].key, out);
    }
    S read(const Config &config) const {
        S out{};
        apply(config, out);
        return out;
    }
    // The row of `key`, or N.
    std::size_t find(std::string_view key) const noexcept {
        for (std::size_t i = 0; i < N; ++i)
            if (key == fields[i].key) return i;
        return N;
    }
};

namespace detail {
template <class Piece> struct Rows;
template <class S> struct Rows<Setting<S>> {
    using Settings = S;
    static constexpr std::size_t count = 1;
};
template <class S, std::size_t N> struct Rows<Schema<S, N>> {
    using Settings = S;
    static constexpr std::size_t count = N;
};
} // namespace detail

// schema(rows...): setting rows, or whole schemas of the same struct (shared
// rows written once, e.g. http_provider::endpoint_rows), in order.
template <class First, class... More>
constexpr auto schema(const First &first, const More &...more) noexcept {
    using S = typename detail::Rows<First>::Settings;
    static_assert((std::is_same_v<typename detail::Rows<More>::Settings, S> && ...),
                  "schema(): every row binds the same struct");
    Schema<S, (detail::Rows<First>::count + ... + detail::Rows<More>::count)> out{};
    std::size_t at = 0;
    auto add = [&]<class Piece>(const Piece &piece) {
        if constexpr (std::is_same_v<Piece, Setting<S>>) {
            out.fields[at] = piece.field;
            out.readers[at++] = piece.read;
        } else {
            for (std::size_t i = 0; i < piece.fields.size(); ++i, ++at) {
                out.fields[at] = piece.fields[i];
                out.readers[at] = piece.readers[i];
            }
        }
    };
    add(first);
    (add(more), ...);
    return out;
}

// An empty schema, for plugins without config: SWH_CPP_HOOK(X, ..., swh::cpp::no_config)
inline constexpr swh_config_field no_config[1] = {field("", 0, nullptr, nullptr)};

// ------------------------------------------------------------ data views

// Borrowed views of the ABI's data structs: valid only during the call that
// received them. Copy (std::string(view)) what you keep.
struct Message {
    std::string_view id, session_id, role, content, metadata_json, provider_message_id,
        provider_metadata_json;
    swh_time_us timestamp = 0;
    // ABI 1.3: the structured content (a JSON object text: "tool_calls" on
    // assistant replies, "tool_call_id" on role "tool" messages, "parts",
    // "reasoning"; see abi.h). Empty when the host is older than 1.3 or the
    // message is plain text; `content` always holds the text.
    std::string_view structured_json;

    static Message from(const swh_message *m) {
        if (!SWH_HAS_MEMBER(m, swh_message, provider_metadata_json))
            throw Failure(SWH_E_INVALID, "message is NULL or its struct_size is too small");
        Message out;
        out.id = sv(m->id);
        out.session_id = sv(m->session_id);
        out.role = sv(m->role);
        out.content = sv(m->content);
        out.metadata_json = sv(m->metadata_json);
        out.provider_message_id = sv(m->provider_message_id);
        out.provider_metadata_json = sv(m->provider_metadata_json);
        out.timestamp = m->timestamp;
        if (SWH_HAS_MEMBER(m, swh_message, structured_json)) out.structured_json = sv(m->structured_json);
        return out;
    }
};

struct Session {
    std::string_view id, user_id, provider, model, status, type, config_json, context_json, metadata_json;
    swh_time_us created_at = 0, last_activity = 0;
    uint64_t message_count = 0;

    static Session from(const swh_session *s) {
        if (!SWH_HAS_MEMBER(s, swh_session, metadata_json))
            throw Failure(SWH_E_INVALID, "session is NULL or its struct_size is too small");
        return {sv(s->id),          sv(s->user_id),      sv(s->provider),
                sv(s->model),       sv(s->status),       sv(s->type),
                sv(s->config_json), sv(s->context_json), sv(s->metadata_json),
                s->created_at,      s->last_activity,    s->message_count};
    }
};

struct MiddlewareInput {
    uint32_t stage = 0; // one SWH_STAGE_* bit
    Session session;
    Message message;
    std::string_view context_json;

    static MiddlewareInput from(const swh_middleware_input *in) {
        if (!SWH_HAS_MEMBER(in, swh_middleware_input, context_json))
            throw Failure(SWH_E_INVALID, "middleware input is NULL or its struct_size is too small");
        return {in->stage, Session::from(in->session), Message::from(in->message), sv(in->context_json)};
    }
};

struct Event {
    uint32_t type = 0; // one SWH_EVENT_* bit
    swh_time_us time = 0;
    Session session;
    std::optional<Message> message; // MESSAGE_SENT only
    std::string_view details_json;

    static Event from(const swh_event *e) {
        if (!SWH_HAS_MEMBER(e, swh_event, details_json))
            throw Failure(SWH_E_INVALID, "event is NULL or its struct_size is too small");
        Event out{e->type, e->time, Session::from(e->session), std::nullopt, sv(e->details_json)};
        if (e->message != nullptr) out.message = Message::from(e->message);
        return out;
    }
};

// The host's message editor for one `process` call (copies what it gets).
class Editor {
  public:
    explicit Editor(const swh_message_editor *raw) : raw_(raw) {
        if (!SWH_HAS_MEMBER(raw, swh_message_editor, reject))
            throw Failure(SWH_E_INVALID, "message editor is NULL or its struct_size is too small");
    }
    void set_content(std::string_view content) const noexcept { raw_->set_content(raw_->ctx, str(content)); }
    void merge_metadata(std::string_view json_object) const noexcept {
        raw_->merge_metadata(raw_->ctx, str(json_object));
    }
    // Refuse the message; the client gets HTTP 422 with `reason`.
    void reject(std::string_view reason) const noexcept { raw_->reject(raw_->ctx, str(reason)); }
    // ABI 1.3: whether the host's editor can replace the structured content.
    bool can_set_structured() const noexcept {
        return SWH_HAS_MEMBER(raw_, swh_message_editor, set_structured) && raw_->set_structured != nullptr;
    }
    // Replace the message's structured content (a JSON object text, e.g. the
    // message's structured_json with a tool call's arguments redacted).
    // Throws Failure(SWH_E_UNSUPPORTED) when the host's editor is older than
    // 1.3: check can_set_structured() first to take another way.
    void set_structured(std::string_view json_object) const {
        if (!can_set_structured())
            throw Failure(SWH_E_UNSUPPORTED, "host cannot replace structured content (ABI < 1.3)");
        raw_->set_structured(raw_->ctx, str(json_object));
    }

  private:
    const swh_message_editor *raw_;
};

// The host's chunk emitter for one streamed reply.
class Emitter {
  public:
    explicit Emitter(const swh_chunk_emitter *raw) : raw_(raw) {
        if (!SWH_HAS_MEMBER(raw, swh_chunk_emitter, merge_metadata))
            throw Failure(SWH_E_INVALID, "chunk emitter is NULL or its struct_size is too small");
    }
    void emit(std::string_view text) const noexcept { raw_->emit(raw_->ctx, str(text)); }
    void merge_metadata(std::string_view json_object) const noexcept {
        raw_->merge_metadata(raw_->ctx, str(json_object));
    }

  private:
    const swh_chunk_emitter *raw_;
};

// ---------------------------------------------------------- session types

// One route of a session type: route("POST", "participants/{user}").
constexpr swh_route route(const char *method, const char *path) noexcept {
    return swh_route{sizeof(swh_route), method, path};
}

// A failure with its HTTP answer. Thrown from a session type's handle(), the
// helper answers {"error":{"code":…,"message":…}} with `status` (the host's
// error shape); thrown elsewhere (on_user_message, authorize) it is a Failure
// whose swh_status matches the HTTP status (403 -> SWH_E_PERMISSION, …).
class HttpError : public Failure {
  public:
    HttpError(int status, std::string code, const std::string &message)
        : Failure(status_for(status), message), http_status_(status), code_(std::move(code)) {}
    int status() const noexcept { return http_status_; }
    const std::string &code() const noexcept { return code_; }
    // The JSON error body.
    std::string body() const {
        return "{\"error\":{\"code\":\"" + escape(code_) + "\",\"message\":\"" + escape(what()) + "\"}}";
    }

  private:
    static swh_status status_for(int http) noexcept {
        switch (http) {
        case 403:
            return SWH_E_PERMISSION;
        case 404:
            return SWH_E_NOT_FOUND;
        case 409:
            return SWH_E_CONFLICT;
        case 422:
            return SWH_E_REJECTED;
        case 429:
            return SWH_E_RATE_LIMITED;
        case 503:
            return SWH_E_UNAVAILABLE;
        default:
            return http >= 400 && http < 500 ? SWH_E_INVALID : SWH_E_INTERNAL;
        }
    }
    // A JSON string's contents; a byte that starts no well-formed UTF-8
    // sequence (a raw 0xFF echoed from a request) becomes U+FFFD, so the
    // body is always valid JSON.
    static std::string escape(std::string_view text) {
        std::string out;
        for (std::size_t i = 0; i < text.size();) {
            const char c = text[i];
            const std::size_t length = utf8_sequence_length(text, i);
            if (length == 0) {
                out += "\\ufffd";
                ++i;
                continue;
            }
            if (c == '"' || c == '\\') {
                out += '\\';
                out += c;
            } else if (static_cast<unsigned char>(c) < 0x20) {
                char hex[8];
                std::snprintf(hex, sizeof hex, "\\u%04x",
                              static_cast<unsigned>(static_cast<unsigned char>(c)));
                out += hex;
            } else {
                out.append(text.substr(i, length));
            }
            i += length;
        }
        return out;
    }
    int http_status_;
    std::string code_;
};

// A routed request (borrowed views, valid during handle()).
struct RouteRequest {
    uint32_t route_index = 0; // index into routes()
    Session session;
    std::string_view caller_user_id, query, content_type, body, path;
    std::vector<std::string_view> params; // the route's {name} segments, in order

    static RouteRequest from(const swh_route_request *r) {
        if (!SWH_HAS_MEMBER(r, swh_route_request, body))
            throw Failure(SWH_E_INVALID, "route request is NULL or its struct_size is too small");
        RouteRequest out{r->route_index,
                         Session::from(r->session),
                         sv(r->caller_user_id),
                         sv(r->query),
                         sv(r->content_type),
                         sv(r->body),
                         {},
                         {}};
        if (SWH_HAS_MEMBER(r, swh_route_request, path_param_count)) {
            out.path = sv(r->path);
            for (std::size_t i = 0; i < r->path_param_count && r->path_params != nullptr; ++i)
                out.params.push_back(sv(r->path_params[i]));
        }
        return out;
    }
};

// The host's answer channel for one routed request.
class Response {
  public:
    explicit Response(const swh_route_response *raw) : raw_(raw) {
        if (!SWH_HAS_MEMBER(raw, swh_route_response, respond))
            throw Failure(SWH_E_INVALID, "route response is NULL or its struct_size is too small");
    }
    void respond(uint32_t status, std::string_view content_type, std::string_view body) {
        raw_->respond(raw_->ctx, status, str(content_type), str(body));
        answered_ = true;
    }
    void json(uint32_t status, std::string_view json_text) { respond(status, "application/json", json_text); }
    // Stored atomically with this request before the answer goes out.
    void merge_session_metadata(std::string_view json_object) const {
        if (!SWH_HAS_MEMBER(raw_, swh_route_response, merge_session_metadata))
            throw Failure(SWH_E_UNSUPPORTED, "host cannot store session metadata (ABI < 1.2)");
        raw_->merge_session_metadata(raw_->ctx, str(json_object));
    }
    // Delivered to GET /v1/sessions/{id}/events listeners once stored.
    void publish(std::string_view type, std::string_view payload_json) const {
        if (!SWH_HAS_MEMBER(raw_, swh_route_response, publish))
            throw Failure(SWH_E_UNSUPPORTED, "host cannot publish session events (ABI < 1.2)");
        raw_->publish(raw_->ctx, str(type), str(payload_json));
    }
    bool answered() const noexcept { return answered_; }

  private:
    const swh_route_response *raw_;
    bool answered_ = false;
};

// A user message entering a session of this type.
struct SessionMessage {
    Session session;
    Message message;
    std::string_view caller_user_id;

    static SessionMessage from(const swh_session_message_input *in) {
        if (!SWH_HAS_MEMBER(in, swh_session_message_input, caller_user_id))
            throw Failure(SWH_E_INVALID, "session message input is NULL or its struct_size is too small");
        return {Session::from(in->session), Message::from(in->message), sv(in->caller_user_id)};
    }
};

// -------------------------------------------------------------- concepts

// The constructor is checked where the schema is known (detail::create).
template <class Impl>
concept MiddlewareImpl = requires(Impl &m, const Impl &c, const MiddlewareInput &in, Editor &e) {
    { c.stages() } -> std::convertible_to<uint32_t>;
    m.process(in, e);
};

template <class Impl>
concept HookImpl = requires(Impl &h, const Impl &c, const Event &ev) {
    { c.events() } -> std::convertible_to<uint32_t>;
    h.on_event(ev);
};

template <class Impl>
concept SessionTypeImpl = requires(Impl &t, const Impl &c, const RouteRequest &request, Response &response) {
    { c.routes() } -> std::convertible_to<std::span<const swh_route>>;
    t.handle(request, response);
};

// ------------------------------------------------------------- the edge

namespace detail {

// What the constructor gets besides the Host: the settings struct a bound
// schema fills, or the Config itself for a plain swh_config_field array.
template <std::size_t N> const Config &settings_of(const swh_config_field (&)[N], const Config &config) {
    return config;
}
template <class S, std::size_t N> S settings_of(const Schema<S, N> &schema, const Config &config) {
    return schema.read(config);
}

template <class Impl> struct Instance {
    ErrorSlot errors;
    std::unique_ptr<Impl> impl; // null when the constructor threw
};

// void -> SWH_OK; swh_status passes through.
template <class F> swh_status as_status(F &&f) {
    if constexpr (std::is_void_v<std::invoke_result_t<F>>) {
        std::forward<F>(f)();
        return SWH_OK;
    } else {
        return static_cast<swh_status>(std::forward<F>(f)());
    }
}

// Runs `body(impl)` with every exception turned into status + last_error.
template <class Impl, class Body> swh_status call(void *handle, Body &&body) noexcept {
    if (handle == nullptr) return SWH_E_INVALID;
    auto &instance = *static_cast<Instance<Impl> *>(handle);
    return edge::guarded(instance.errors, [&]() -> swh_status {
        if (!instance.impl) throw Failure(SWH_E_INVALID, "instance was not created successfully");
        return as_status([&] { return body(*instance.impl); });
    });
}

// create: the handle is handed out even on failure, so the host can read
// last_error; the host then calls destroy.
template <class Impl, const auto &Sch>
swh_status create(const swh_host_api *host, const swh_config *cfg, void **out) noexcept {
    static_assert(
        std::is_constructible_v<Impl, Host, decltype(settings_of(Sch, std::declval<const Config &>()))>,
        "the class needs Impl(swh::cpp::Host, const Settings &) for a schema of settings rows, or "
        "Impl(swh::cpp::Host, const swh::cpp::Config &) for a plain swh_config_field array");
    if (out == nullptr) return SWH_E_INVALID;
    *out = nullptr;
    Instance<Impl> *instance = new (std::nothrow) Instance<Impl>();
    if (instance == nullptr) return SWH_E_INTERNAL;
    *out = instance;
    return edge::guarded(instance->errors, [&]() -> swh_status {
        const Config config(host, cfg);
        instance->impl = std::make_unique<Impl>(Host(host), settings_of(Sch, config));
        return SWH_OK;
    });
}

template <class Impl> void destroy(void *handle) noexcept {
    // A destructor that throws is a bug; noexcept turns it into terminate
    // inside the plugin rather than undefined behaviour in the host.
    delete static_cast<Instance<Impl> *>(handle);
}

template <class Impl> const char *last_error(void *handle) noexcept {
    return handle == nullptr ? "" : static_cast<Instance<Impl> *>(handle)->errors.get();
}

// ---- middleware

template <class Impl> uint32_t mw_stages(void *handle) noexcept {
    auto *instance = static_cast<Instance<Impl> *>(handle);
    if (instance == nullptr || !instance->impl) return 0;
    try {
        return static_cast<uint32_t>(std::as_const(*instance->impl).stages());
    } catch (...) {
        return 0;
    }
}

template <class Impl>
swh_status mw_process(void *handle, const swh_middleware_input *input,
                      const swh_message_editor *editor) noexcept {
    return call<Impl>(handle, [&](Impl &impl) {
        const MiddlewareInput in = MiddlewareInput::from(input);
        Editor edit(editor);
        return as_status([&] { return impl.process(in, edit); });
    });
}

template <class Impl>
void mw_on_error(void *handle, const swh_middleware_input *input, swh_status status, swh_str error) noexcept {
    (void)call<Impl>(handle, [&](Impl &impl) {
        impl.on_error(MiddlewareInput::from(input), status, sv(error));
        return SWH_OK;
    });
}

template <class Impl>
concept StreamingMiddleware = requires(Impl &m, const MiddlewareInput &in) {
    {m.open_stream(in)};
    m.open_stream(in)->chunk(std::string_view{}, std::declval<Emitter &>());
    m.open_stream(in)->close(std::declval<Emitter &>());
};

template <class Impl>
using StreamOf = typename decltype(std::declval<Impl &>().open_stream(
    std::declval<const MiddlewareInput &>()))::element_type;

template <class Impl>
swh_status mw_stream_open(void *handle, const swh_middleware_input *input, void **out_stream) noexcept {
    if (out_stream == nullptr) return SWH_E_INVALID;
    *out_stream = nullptr;
    return call<Impl>(handle, [&](Impl &impl) {
        *out_stream = impl.open_stream(MiddlewareInput::from(input)).release();
        return SWH_OK;
    });
}

template <class Impl>
swh_status mw_stream_chunk(void *handle, void *stream, swh_str text, const swh_chunk_emitter *out) noexcept {
    return call<Impl>(handle, [&](Impl &) {
        Emitter emitter(out);
        return as_status([&] { return static_cast<StreamOf<Impl> *>(stream)->chunk(sv(text), emitter); });
    });
}

template <class Impl>
swh_status mw_stream_close(void *handle, void *stream, const swh_chunk_emitter *out) noexcept {
    // The stream state is freed whatever close does.
    std::unique_ptr<StreamOf<Impl>> owned(static_cast<StreamOf<Impl> *>(stream));
    return call<Impl>(handle, [&](Impl &) {
        Emitter emitter(out);
        return as_status([&] { return owned->close(emitter); });
    });
}

// ---- hook

template <class Impl> uint32_t hook_events(void *handle) noexcept {
    auto *instance = static_cast<Instance<Impl> *>(handle);
    if (instance == nullptr || !instance->impl) return 0;
    try {
        return static_cast<uint32_t>(std::as_const(*instance->impl).events());
    } catch (...) {
        return 0;
    }
}

template <class Impl> swh_status hook_on_event(void *handle, const swh_event *event) noexcept {
    return call<Impl>(handle, [&](Impl &impl) {
        const Event ev = Event::from(event);
        return as_status([&] { return impl.on_event(ev); });
    });
}

template <class Impl> swh_status hook_render_metrics(void *handle, const swh_result_sink *sink) noexcept {
    return call<Impl>(handle, [&](Impl &impl) -> swh_status {
        if (!SWH_HAS_MEMBER(sink, swh_result_sink, json) || sink->json == nullptr)
            throw Failure(SWH_E_INVALID, "result sink without json callback");
        const std::string text = impl.render_metrics();
        return sink->json(sink->ctx, str(text));
    });
}

// ---- session type

template <class Impl> swh_status st_routes(void *handle, const swh_route **out, size_t *count) noexcept {
    if (out == nullptr || count == nullptr) return SWH_E_INVALID;
    return call<Impl>(handle, [&](Impl &impl) {
        const std::span<const swh_route> routes = std::as_const(impl).routes();
        *out = routes.data();
        *count = routes.size();
        return SWH_OK;
    });
}

template <class Impl>
swh_status st_handle_route(void *handle, const swh_route_request *request,
                           const swh_route_response *response) noexcept {
    return call<Impl>(handle, [&](Impl &impl) {
        const RouteRequest in = RouteRequest::from(request);
        Response out(response);
        try {
            return as_status([&] { return impl.handle(in, out); });
        } catch (const HttpError &e) {
            if (out.answered()) throw; // answered already: report the failure instead
            out.json(static_cast<uint32_t>(e.status()), e.body());
            return SWH_OK;
        }
    });
}

template <class Impl>
swh_status st_on_session_created(void *handle, const swh_session *session,
                                 const swh_result_sink *sink) noexcept {
    return call<Impl>(handle, [&](Impl &impl) -> swh_status {
        const std::string patch = impl.on_session_created(Session::from(session));
        if (patch.empty()) return SWH_OK;
        if (!SWH_HAS_MEMBER(sink, swh_result_sink, json) || sink->json == nullptr)
            throw Failure(SWH_E_INVALID, "result sink without json callback");
        return sink->json(sink->ctx, str(patch));
    });
}

template <class Impl>
swh_status st_on_user_message(void *handle, const swh_session_message_input *input,
                              const swh_message_editor *editor) noexcept {
    return call<Impl>(handle, [&](Impl &impl) {
        const SessionMessage in = SessionMessage::from(input);
        Editor edit(editor);
        return as_status([&] { return impl.on_user_message(in, edit); });
    });
}

template <class Impl>
swh_status st_authorize(void *handle, const swh_session *session, swh_str caller, swh_str action) noexcept {
    return call<Impl>(handle, [&](Impl &impl) {
        return as_status([&] { return impl.authorize(Session::from(session), sv(caller), sv(action)); });
    });
}

} // namespace detail

// ------------------------------------------------------- table builders

// The minor a plugin declares: `table_minor`, the lowest its kind's table
// needs, or Impl::abi_minor when the class asks for more.
template <class Impl> constexpr uint16_t abi_minor(uint16_t table_minor) noexcept {
    if constexpr (requires { Impl::abi_minor; })
        return static_cast<uint16_t>(Impl::abi_minor) > table_minor ? static_cast<uint16_t>(Impl::abi_minor)
                                                                    : table_minor;
    else
        return table_minor;
}

namespace detail {
template <class Impl>
concept VetsUserMessages = requires(Impl &st, const SessionMessage &in, Editor &e) {
    st.on_user_message(in, e);
};
template <class Impl>
concept Authorizes = requires(Impl &st, const Session &s, std::string_view v) {
    st.authorize(s, v, v);
};
} // namespace detail

// Middleware and hook tables hold only 1.0 members.
template <class Impl> constexpr uint16_t middleware_minor() noexcept {
    return abi_minor<Impl>(0);
}
template <class Impl> constexpr uint16_t hook_minor() noexcept {
    return abi_minor<Impl>(0);
}
// on_user_message and authorize were added in 1.2 (session_type.h).
template <class Impl> constexpr uint16_t session_type_minor() noexcept {
    return abi_minor<Impl>(detail::VetsUserMessages<Impl> || detail::Authorizes<Impl> ? 2 : 0);
}

template <MiddlewareImpl Impl, const auto &Sch = no_config>
constexpr swh_middleware_v1 middleware_table() noexcept {
    swh_middleware_v1 t{};
    t.struct_size = sizeof(swh_middleware_v1);
    t.create = &detail::create<Impl, Sch>;
    t.destroy = &detail::destroy<Impl>;
    t.last_error = &detail::last_error<Impl>;
    t.stages = &detail::mw_stages<Impl>;
    t.process = &detail::mw_process<Impl>;
    if constexpr (requires(Impl & m, const MiddlewareInput &in) {
                      m.on_error(in, SWH_OK, std::string_view{});
                  })
        t.on_error = &detail::mw_on_error<Impl>;
    if constexpr (detail::StreamingMiddleware<Impl>) {
        t.stream_open = &detail::mw_stream_open<Impl>;
        t.stream_chunk = &detail::mw_stream_chunk<Impl>;
        t.stream_close = &detail::mw_stream_close<Impl>;
    }
    return t;
}

template <HookImpl Impl, const auto &Sch = no_config> constexpr swh_hook_v1 hook_table() noexcept {
    swh_hook_v1 t{};
    t.struct_size = sizeof(swh_hook_v1);
    t.create = &detail::create<Impl, Sch>;
    t.destroy = &detail::destroy<Impl>;
    t.last_error = &detail::last_error<Impl>;
    t.events = &detail::hook_events<Impl>;
    t.on_event = &detail::hook_on_event<Impl>;
    if constexpr (requires(Impl & h) {
                      { h.render_metrics() } -> std::convertible_to<std::string>;
                  })
        t.render_metrics = &detail::hook_render_metrics<Impl>;
    return t;
}

template <SessionTypeImpl Impl, const auto &Sch = no_config>
constexpr swh_session_type_v1 session_type_table() noexcept {
    swh_session_type_v1 t{};
    t.struct_size = sizeof(swh_session_type_v1);
    t.create = &detail::create<Impl, Sch>;
    t.destroy = &detail::destroy<Impl>;
    t.last_error = &detail::last_error<Impl>;
    t.routes = &detail::st_routes<Impl>;
    t.handle_route = &detail::st_handle_route<Impl>;
    if constexpr (requires(Impl & st, const Session &s) {
                      { st.on_session_created(s) } -> std::convertible_to<std::string>;
                  })
        t.on_session_created = &detail::st_on_session_created<Impl>;
    if constexpr (detail::VetsUserMessages<Impl>) t.on_user_message = &detail::st_on_user_message<Impl>;
    if constexpr (detail::Authorizes<Impl>) t.authorize = &detail::st_authorize<Impl>;
    return t;
}

// The descriptor `swh_plugin_entry` returns. `table` must be static;
// `abi_minor` is the lowest minor the plugin needs (see the top of this file).
constexpr swh_plugin_descriptor descriptor(uint32_t kind, const char *interface_id, uint16_t abi_minor,
                                           const char *name, const char *version, const char *description,
                                           const swh_config_field *schema, std::size_t field_count,
                                           const void *table) noexcept {
    return swh_plugin_descriptor{sizeof(swh_plugin_descriptor),
                                 SWH_ABI_VERSION_MAJOR,
                                 abi_minor,
                                 name,
                                 version,
                                 description,
                                 kind,
                                 interface_id,
                                 field_count == 0 ? nullptr : schema,
                                 field_count,
                                 table};
}

template <std::size_t N> constexpr std::size_t schema_size(const swh_config_field (&schema)[N]) noexcept {
    return (&schema[0] == &no_config[0]) ? 0 : N;
}
template <std::size_t N>
constexpr const swh_config_field *schema_fields(const swh_config_field (&schema)[N]) noexcept {
    return schema;
}
template <class S, std::size_t N> constexpr std::size_t schema_size(const Schema<S, N> &) noexcept {
    return N;
}
template <class S, std::size_t N>
constexpr const swh_config_field *schema_fields(const Schema<S, N> &schema) noexcept {
    return schema.fields.data();
}

} // namespace swh::cpp

// Define the kind table, the descriptor and the exported entry point of a
// plugin in one line. `schema` is a swh::cpp::schema(...) of setting rows, a
// plain swh_config_field array, or swh::cpp::no_config. Use once per shared
// object.
#define SWH_CPP_PLUGIN_ENTRY_(TABLE_TYPE, TABLE_EXPR, KIND, IFACE, MINOR, NAME, VERSION, DESCRIPTION,        \
                              SCHEMA)                                                                        \
    namespace swh_cpp_plugin_ {                                                                              \
    constexpr TABLE_TYPE kTable = TABLE_EXPR;                                                                \
    constexpr swh_plugin_descriptor kDescriptor =                                                            \
        ::swh::cpp::descriptor(KIND, IFACE, MINOR, NAME, VERSION, DESCRIPTION,                               \
                               ::swh::cpp::schema_fields(SCHEMA), ::swh::cpp::schema_size(SCHEMA), &kTable); \
    }                                                                                                        \
    extern "C" SWH_EXPORT const swh_plugin_descriptor *swh_plugin_entry(void) {                              \
        return &swh_cpp_plugin_::kDescriptor;                                                                \
    }

#define SWH_CPP_MIDDLEWARE(IMPL, NAME, VERSION, DESCRIPTION, SCHEMA)                                         \
    SWH_CPP_PLUGIN_ENTRY_(swh_middleware_v1, (::swh::cpp::middleware_table<IMPL, SCHEMA>()),                 \
                          SWH_KIND_MIDDLEWARE, SWH_IFACE_MIDDLEWARE_V1,                                      \
                          ::swh::cpp::middleware_minor<IMPL>(), NAME, VERSION, DESCRIPTION, SCHEMA)

#define SWH_CPP_HOOK(IMPL, NAME, VERSION, DESCRIPTION, SCHEMA)                                               \
    SWH_CPP_PLUGIN_ENTRY_(swh_hook_v1, (::swh::cpp::hook_table<IMPL, SCHEMA>()), SWH_KIND_HOOK,              \
                          SWH_IFACE_HOOK_V1, ::swh::cpp::hook_minor<IMPL>(), NAME, VERSION, DESCRIPTION,     \
                          SCHEMA)

#define SWH_CPP_SESSION_TYPE(IMPL, NAME, VERSION, DESCRIPTION, SCHEMA)                                       \
    SWH_CPP_PLUGIN_ENTRY_(swh_session_type_v1, (::swh::cpp::session_type_table<IMPL, SCHEMA>()),             \
                          SWH_KIND_SESSION_TYPE, SWH_IFACE_SESSION_TYPE_V1,                                  \
                          ::swh::cpp::session_type_minor<IMPL>(), NAME, VERSION, DESCRIPTION, SCHEMA)
