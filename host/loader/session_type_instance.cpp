// SessionTypeInstance: the host side of swh_session_type_v1 (ABI 1.2).
#include "loader/collectors.hpp"
#include "loader/instances.hpp"
#include "util/text.hpp"

#include <spdlog/spdlog.h>

namespace swh::loader {

using detail::check_collector;
using detail::Collector;
using detail::EditCollector;
using detail::table_of;

namespace {

std::vector<std::string> split_segments(const std::string &path) {
    const std::vector<std::string_view> pieces = split_pieces(path, '/');
    return {pieces.begin(), pieces.end()};
}

// The host's own session sub-paths; a plugin route may not shadow them.
bool reserved(const std::string &first_segment) {
    return first_segment == "messages" || first_segment == "archive" || first_segment == "events";
}

std::vector<RouteSpec> read_routes(const swh_route *routes, std::size_t count, const std::string &where) {
    std::vector<RouteSpec> specs;
    if (count == 0) return specs;
    if (routes == nullptr) throw LoadError(where + ": routes() returned NULL with a non-zero count");
    const std::size_t stride = routes[0].struct_size;
    if (stride < offsetof(swh_route, path) + sizeof(const char *))
        throw LoadError(where + ": routes[0].struct_size is too small");
    const auto *bytes = reinterpret_cast<const unsigned char *>(routes);
    for (std::size_t i = 0; i < count; ++i) {
        const auto *route = reinterpret_cast<const swh_route *>(bytes + i * stride);
        if (!route->method || !route->path || !*route->method || !*route->path || route->path[0] == '/')
            throw LoadError(where + ": route " + std::to_string(i) +
                            " needs a method and a path without a leading '/'");
        RouteSpec spec{route->method, route->path, split_segments(route->path)};
        for (const auto &segment : spec.segments)
            if (segment.empty()) throw LoadError(where + ": route '" + spec.path + "' has an empty segment");
        if (reserved(spec.segments.front()))
            throw LoadError(where + ": route '" + spec.path + "' takes the host's own path '" +
                            spec.segments.front() + "'");
        specs.push_back(std::move(spec));
    }
    return specs;
}

// The swh_route_response a plugin answers through; records everything.
struct ResponseCollector {
    RouteAnswer answer;
    std::string error; // a malformed call (a plugin bug)
    std::thread::id owner = std::this_thread::get_id();
    swh_route_response response{};

    ResponseCollector() {
        response.struct_size = sizeof response;
        response.ctx = this;
        response.respond = [](void *ctx, uint32_t status, swh_str content_type, swh_str body) noexcept {
            self(ctx).guard([&](ResponseCollector &c) {
                if (c.answer.answered) throw std::runtime_error("respond called twice");
                if (status < 100 || status > 599)
                    throw std::runtime_error("respond with HTTP status " + std::to_string(status));
                c.answer.answered = true;
                c.answer.status = static_cast<int>(status);
                c.answer.content_type = to_string(content_type);
                c.answer.body = to_string(body);
            });
        };
        response.merge_session_metadata = [](void *ctx, swh_str json) noexcept {
            self(ctx).guard([&](ResponseCollector &c) {
                if (!c.answer.metadata_patch) c.answer.metadata_patch = Json::object();
                c.answer.metadata_patch->update(parse_object(to_string(json), "session metadata"));
            });
        };
        response.publish = [](void *ctx, swh_str type, swh_str payload) noexcept {
            self(ctx).guard([&](ResponseCollector &c) {
                std::string name = to_string(type);
                if (name.empty()) throw std::runtime_error("publish with an empty event type");
                c.answer.events.emplace_back(std::move(name),
                                             parse_object(to_string(payload), "event payload"));
            });
        };
    }
    ResponseCollector(const ResponseCollector &) = delete;
    ResponseCollector &operator=(const ResponseCollector &) = delete;
    static ResponseCollector &self(void *ctx) { return *static_cast<ResponseCollector *>(ctx); }
    template <class F> void guard(F &&f) noexcept {
        if (std::this_thread::get_id() != owner) {
            if (error.empty()) error = "route response callback from another thread (a plugin bug); ignored";
            return;
        }
        try {
            f(*this);
        } catch (const std::exception &e) {
            if (error.empty()) error = e.what();
        }
    }
};

bool known_status(swh_status status) {
    return status >= SWH_OK && status <= SWH_STATUS_LAST;
}

} // namespace

SessionTypeInstance::SessionTypeInstance(std::shared_ptr<PluginLibrary> library, std::string name,
                                         Json config, HostEnvironment &env)
    : InstanceBase(std::move(library), std::move(name), std::move(config), env),
      table_(table_of<swh_session_type_v1>(*library_, SWH_KIND_SESSION_TYPE, name_)) {
    if (!table_.routes || !table_.handle_route)
        throw LoadError(library_->file() + ": session type table lacks routes/handle_route");
    create_handle(table_.create, table_.last_error, table_.destroy);
    const swh_route *routes = nullptr;
    std::size_t count = 0;
    const swh_status status = contained("routes", [&] { return table_.routes(handle_, &routes, &count); });
    const std::string where = library_->file() + ": session type '" + name_ + "'";
    if (status != SWH_OK) throw LoadError(where + ": routes() failed: " + plugin_error());
    routes_ = read_routes(routes, count, where);
}

Json SessionTypeInstance::on_session_created(const Session &session) {
    if (!table_.on_session_created) return Json::object();
    Collector c;
    SessionAbi abi(session);
    const swh_status status = contained(
        "on_session_created", [&] { return table_.on_session_created(handle_, abi.get(), &c.sink); });
    check_collector(c, name_, "on_session_created");
    check(status, "on_session_created");
    Json patch = Json::object();
    for (const auto &text : c.json)
        patch.update(parse_object(text, "session metadata"));
    return patch;
}

SessionTypeVerdict SessionTypeInstance::on_user_message(const Session &session, const Message &message,
                                                        const std::string &caller_user_id) {
    SessionTypeVerdict verdict;
    if (!table_.on_user_message && !table_.on_message) return verdict;
    EditCollector edits;
    try {
        SessionAbi session_abi(session);
        MessageAbi message_abi(message);
        swh_status status;
        if (table_.on_user_message) {
            swh_session_message_input input{};
            input.struct_size = sizeof input;
            input.session = session_abi.get();
            input.message = message_abi.get();
            input.caller_user_id = to_str(caller_user_id);
            status = contained("on_user_message",
                               [&] { return table_.on_user_message(handle_, &input, &edits.editor); });
        } else {
            status = contained("on_message", [&] {
                return table_.on_message(handle_, session_abi.get(), message_abi.get(), &edits.editor);
            });
        }
        if (!known_status(status)) {
            verdict.status = SWH_E_INTERNAL;
            verdict.error = name_ + ": on_user_message returned status " + std::to_string(status) +
                            " outside the ABI's range";
        } else if (status != SWH_OK) {
            verdict.status = status;
            verdict.error = plugin_error();
            if (verdict.error.empty()) verdict.error = name_ + " refused the message";
        } else if (!edits.outcome.error.empty()) {
            verdict.status = SWH_E_INTERNAL;
            verdict.error = name_ + ": " + edits.outcome.error;
        }
    } catch (const std::exception &e) {
        verdict.status = SWH_E_INTERNAL;
        verdict.error = e.what();
    }
    verdict.edits = std::move(edits.outcome);
    return verdict;
}

swh_status SessionTypeInstance::authorize(const Session &session, const std::string &caller_user_id,
                                          const std::string &action, std::string &error) {
    if (!table_.authorize) return SWH_OK;
    SessionAbi abi(session);
    swh_status status;
    try {
        status = contained("authorize", [&] {
            return table_.authorize(handle_, abi.get(), to_str(caller_user_id), to_str(action));
        });
    } catch (const PluginError &e) {
        error = e.what();
        return e.status();
    }
    if (status == SWH_OK) return SWH_OK;
    if (!known_status(status)) {
        error = name_ + ": authorize returned status " + std::to_string(status) + " outside the ABI's range";
        return SWH_E_INTERNAL;
    }
    error = plugin_error();
    if (error.empty()) error = "'" + caller_user_id + "' may not " + action + " this session";
    return status;
}

RouteAnswer SessionTypeInstance::handle_route(const Session &session, const RouteCall &call) {
    SessionAbi session_abi(session);
    std::vector<swh_str> params;
    params.reserve(call.params.size());
    for (const auto &p : call.params)
        params.push_back(to_str(p));
    swh_route_request request{};
    request.struct_size = sizeof request;
    request.route_index = static_cast<uint32_t>(call.route_index);
    request.session = session_abi.get();
    request.caller_user_id = to_str(call.caller_user_id);
    request.query = to_str(call.query);
    request.content_type = to_str(call.content_type);
    request.body = to_str(call.body);
    request.path = to_str(call.path);
    request.path_params = params.empty() ? nullptr : params.data();
    request.path_param_count = params.size();
    ResponseCollector out;
    const swh_status status =
        contained("handle_route", [&] { return table_.handle_route(handle_, &request, &out.response); });
    if (!out.error.empty()) throw PluginError(SWH_E_INTERNAL, name_ + ": handle_route: " + out.error);
    if (!out.answer.answered) {
        if (status == SWH_OK)
            throw PluginError(SWH_E_INTERNAL, name_ + ": handle_route returned OK without answering");
        check(status, "handle_route");
    }
    if (status != SWH_OK && known_status(status))
        spdlog::debug("[{}] handle_route answered {} and returned status {}", name_, out.answer.status,
                      status);
    return std::move(out.answer);
}

} // namespace swh::loader
