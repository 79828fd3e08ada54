// Session type "collaborative": the guide's CollaborativeSession. Several
// users share one session; each participant has read / write / admin
// permissions. The roster lives in the session's metadata under
// "collaborative" (see roster.hpp), so the instance itself holds only its
// config and needs no locking: the host serialises route calls of one
// session and hands each call the session as stored.
#include "roster.hpp"

#include <swarmhost/cpp/plugin.hpp>
#include <swarmhost/session_type.h>

#include <algorithm>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace {

using swh::collaborative::ApiError;
using swh::collaborative::bad_request;
using swh::collaborative::conflict;
using swh::collaborative::forbidden;
using swh::collaborative::Json;
using swh::collaborative::kAdmin;
using swh::collaborative::kRead;
using swh::collaborative::kWrite;
using swh::collaborative::not_found;
using swh::collaborative::Participant;
using swh::collaborative::Permission;
using swh::collaborative::PermissionSet;
using swh::collaborative::Roster;
using swh::cpp::Failure;

constexpr std::size_t kMaxUserIdBytes = 256;
constexpr int64_t kMaxParticipantsCeiling = 100000;

// Route table order = RouteRequest::route_index.
enum RouteIndex : uint32_t { kList, kAdd, kShow, kUpdate, kRemove };
constexpr swh_route kRoutes[] = {
    swh::cpp::route("GET", "participants"),           swh::cpp::route("POST", "participants"),
    swh::cpp::route("GET", "participants/{user}"),    swh::cpp::route("PATCH", "participants/{user}"),
    swh::cpp::route("DELETE", "participants/{user}"),
};

struct Settings {
    std::vector<std::string> default_permissions{"read", "write"};
    int64_t max_participants = 50;
};

// One row declares a key and fills its member at create.
constexpr auto kSchema = swh::cpp::schema(
    swh::cpp::setting<&Settings::default_permissions>(
        "default_permissions", R"(["read","write"])",
        "Permissions of a participant added without a permissions list: read, write, admin "
        "(admin includes write, write includes read)"),
    swh::cpp::setting<&Settings::max_participants>(
        "max_participants", "50", "Most participants a session may have, its creator included (1..100000)"));

const char *permission_name(Permission p) {
    return p == kAdmin ? "admin" : p == kWrite ? "write" : "read";
}

// Refuses `caller` unless it is a participant holding `needed`. The empty
// caller (no X-Swarmhost-User) is never anyone.
void require(const Roster &roster, std::string_view caller, Permission needed) {
    const std::string who(caller);
    if (caller.empty())
        throw forbidden("no caller identity: this collaborative session needs the X-Swarmhost-User header");
    const Participant *p = roster.find(caller);
    if (p == nullptr) throw forbidden("user '" + who + "' is not a participant of this session");
    if ((p->permissions & needed) == 0)
        throw forbidden("user '" + who + "' lacks the '" + permission_name(needed) + "' permission");
}

// The request body as a JSON object holding only `allowed` keys.
Json parse_body(std::string_view body, const std::vector<std::string> &allowed) {
    Json json = Json::parse(body, nullptr, false);
    if (json.is_discarded() || !json.is_object()) throw bad_request("the request body must be a JSON object");
    for (const auto &item : json.items()) {
        if (std::find(allowed.begin(), allowed.end(), item.key()) != allowed.end()) continue;
        std::string expected;
        for (const auto &key : allowed)
            expected += (expected.empty() ? "" : ", ") + key;
        throw bad_request("unknown field '" + item.key() + "' (expected one of: " + expected + ")");
    }
    return json;
}

// A user id must be addressable as one path segment (participants/{user}).
std::string valid_user_id(const Json &value) {
    if (!value.is_string()) throw bad_request("'user_id' must be a string");
    const std::string user = value.get<std::string>();
    if (user.empty() || user.size() > kMaxUserIdBytes)
        throw bad_request("'user_id' must be 1.." + std::to_string(kMaxUserIdBytes) + " bytes");
    const bool bad_char = std::any_of(user.begin(), user.end(), [](char c) {
        return c == '/' || static_cast<unsigned char>(c) < 0x20 || c == 0x7f;
    });
    if (bad_char) throw bad_request("'user_id' must not contain '/' or control characters");
    return user;
}

class Collaborative {
  public:
    Collaborative(swh::cpp::Host host, const Settings &settings)
        : host_(host), default_permissions_(check_default_permissions(settings.default_permissions)),
          max_participants_(check_max_participants(settings.max_participants)) {}

    std::span<const swh_route> routes() const { return kRoutes; }

    // An ApiError thrown here is answered by the SDK helper as a JSON error.
    void handle(const swh::cpp::RouteRequest &request, swh::cpp::Response &response) {
        dispatch(request, Roster::from_metadata(request.session.metadata_json), response);
    }

    // The creator is the first participant and its first admin.
    std::string on_session_created(const swh::cpp::Session &session) {
        if (session.user_id.empty())
            throw Failure(SWH_E_INVALID, "a collaborative session needs a user_id (its first admin)");
        Roster roster;
        const int64_t when = session.created_at != 0 ? session.created_at : host_.now_us();
        roster.put(std::string(session.user_id),
                   Participant{kRead | kWrite | kAdmin, swh::collaborative::iso_time(when)});
        return roster.metadata_patch();
    }

    // A refusal (ApiError 403) reaches the host as SWH_E_PERMISSION.
    void on_user_message(const swh::cpp::SessionMessage &in, swh::cpp::Editor &editor) {
        const Roster roster = Roster::from_metadata(in.session.metadata_json);
        require(roster, in.caller_user_id, kWrite);
        editor.merge_metadata(Json{
            {"participant_id", in.caller_user_id},
            {"collaborative_session", true},
            {"participant_count",
             roster.size()}}.dump());
    }

    void authorize(const swh::cpp::Session &session, std::string_view caller, std::string_view action) {
        const PermissionSet needed = swh::collaborative::permission_bit(action);
        // An action this type does not know is refused rather than waved through.
        if (needed == 0) throw Failure(SWH_E_PERMISSION, "unknown action '" + std::string(action) + "'");
        require(Roster::from_metadata(session.metadata_json), caller, static_cast<Permission>(needed));
    }

  private:
    static PermissionSet check_default_permissions(const std::vector<std::string> &names) {
        const Json list = names;
        try {
            return swh::collaborative::parse_permissions(list, "default_permissions");
        } catch (const ApiError &e) {
            throw Failure(SWH_E_INVALID, std::string("collaborative: ") + e.what());
        }
    }

    static int64_t check_max_participants(int64_t value) {
        if (value < 1 || value > kMaxParticipantsCeiling)
            throw Failure(SWH_E_INVALID, "collaborative: max_participants must be within 1.." +
                                             std::to_string(kMaxParticipantsCeiling));
        return value;
    }

    void dispatch(const swh::cpp::RouteRequest &request, const Roster &roster, swh::cpp::Response &response) {
        const std::string_view caller = request.caller_user_id;
        switch (request.route_index) {
        case kList:
            require(roster, caller, kRead);
            return list(request, roster, response);
        case kAdd:
            require(roster, caller, kAdmin);
            return add(request, roster, response);
        case kShow:
            require(roster, caller, kRead);
            return response.json(200, roster.participant_json(target(request, roster)).dump());
        case kUpdate:
            require(roster, caller, kAdmin);
            return update(request, roster, response);
        case kRemove:
            return remove(request, roster, response);
        default:
            throw ApiError(500, "internal", "unknown route index " + std::to_string(request.route_index));
        }
    }

    // The {user} of the path; 404 unless it is a participant.
    static std::string target(const swh::cpp::RouteRequest &request, const Roster &roster) {
        if (request.params.empty()) throw ApiError(500, "internal", "route without its {user} segment");
        std::string user(request.params.front());
        if (roster.find(user) == nullptr)
            throw not_found("user '" + user + "' is not a participant of this session");
        return user;
    }

    void list(const swh::cpp::RouteRequest &request, const Roster &roster,
              swh::cpp::Response &response) const {
        const Json body{{"session_id", request.session.id},
                        {"participants", roster.list_json()},
                        {"participant_count", roster.size()},
                        {"max_participants", max_participants_}};
        response.json(200, body.dump());
    }

    void add(const swh::cpp::RouteRequest &request, Roster roster, swh::cpp::Response &response) {
        const Json body = parse_body(request.body, {"user_id", "permissions"});
        auto user_field = body.find("user_id");
        if (user_field == body.end()) throw bad_request("missing field 'user_id'");
        const std::string user = valid_user_id(*user_field);
        auto perms_field = body.find("permissions");
        const PermissionSet perms = perms_field == body.end()
                                        ? default_permissions_
                                        : swh::collaborative::parse_permissions(*perms_field, "permissions");
        if (roster.find(user) != nullptr) throw conflict("user '" + user + "' is already a participant");
        if (static_cast<int64_t>(roster.size()) >= max_participants_)
            throw conflict("the session already has max_participants (" + std::to_string(max_participants_) +
                           ") participants");

        roster.put(user, Participant{perms, swh::collaborative::iso_time(host_.now_us())});
        response.merge_session_metadata(roster.metadata_patch());
        response.publish("participant_joined",
                         Json{{"user_id", user},
                              {"permissions", swh::collaborative::permission_names(perms)},
                              {"participant_count", roster.size()},
                              {"added_by", request.caller_user_id}}
                             .dump());
        Json answer = roster.participant_json(user);
        answer["participant_count"] = roster.size();
        response.json(201, answer.dump());
    }

    void update(const swh::cpp::RouteRequest &request, Roster roster, swh::cpp::Response &response) {
        const std::string user = target(request, roster);
        const Json body = parse_body(request.body, {"permissions"});
        auto perms_field = body.find("permissions");
        if (perms_field == body.end()) throw bad_request("missing field 'permissions'");
        const PermissionSet perms = swh::collaborative::parse_permissions(*perms_field, "permissions");
        Participant participant = *roster.find(user);
        const PermissionSet previous = participant.permissions;
        if ((previous & kAdmin) && !(perms & kAdmin) && roster.admin_count() == 1)
            throw conflict("user '" + user + "' is the last admin of this session; make another admin first");

        if (perms != previous) {
            participant.permissions = perms;
            roster.put(user, participant);
            response.merge_session_metadata(roster.metadata_patch());
            response.publish("participant_updated",
                             Json{{"user_id", user},
                                  {"permissions", swh::collaborative::permission_names(perms)},
                                  {"previous_permissions", swh::collaborative::permission_names(previous)},
                                  {"participant_count", roster.size()},
                                  {"updated_by", request.caller_user_id}}
                                 .dump());
        }
        Json answer = roster.participant_json(user);
        answer["participant_count"] = roster.size();
        response.json(200, answer.dump());
    }

    // An admin removes anyone; a participant may remove only themselves
    // (leaving). The last admin can do neither, so a session never ends up
    // with nobody able to manage it.
    void remove(const swh::cpp::RouteRequest &request, Roster roster, swh::cpp::Response &response) {
        const std::string_view caller = request.caller_user_id;
        require(roster, caller, kRead);
        const std::string user = target(request, roster);
        if (user != caller) require(roster, caller, kAdmin);
        if ((roster.find(user)->permissions & kAdmin) && roster.admin_count() == 1)
            throw conflict("user '" + user + "' is the last admin of this session; make another admin first");

        roster.remove(user);
        const Json answer{{"user_id", user}, {"participant_count", roster.size()}, {"removed_by", caller}};
        Json event = answer;
        event["revoke_access"] = Json::array({user}); // the host ends their open /events streams
        response.merge_session_metadata(roster.metadata_patch());
        response.publish("participant_left", event.dump());
        response.json(200, answer.dump());
    }

    swh::cpp::Host host_;
    PermissionSet default_permissions_;
    int64_t max_participants_;
};

} // namespace

SWH_CPP_SESSION_TYPE(
    Collaborative, "collaborative", "0.1.0",
    "Multi-user sessions: participants with read/write/admin permissions and live join/leave events", kSchema)
