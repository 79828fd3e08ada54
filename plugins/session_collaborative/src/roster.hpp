// The participant roster of one collaborative session: who takes part, with
// which permissions, since when. It is pure data (no ABI): parsed from the
// session's metadata on every call and written back as a whole, because the
// session is the only place the state lives (durable, shared by daemons).
#pragma once

#include <nlohmann/json.hpp>
#include <swarmhost/cpp/plugin.hpp>

#include <cstddef>
#include <cstdint>
#include <map>
#include <stdexcept>
#include <string>
#include <string_view>

namespace swh::collaborative {

using Json = nlohmann::json;

// The metadata key this type owns.
inline constexpr const char *kStateKey = "collaborative";

// An error with its HTTP answer (the SDK helper answers it from a route and
// maps it to a status elsewhere: 403 -> SWH_E_PERMISSION, ...).
using ApiError = swh::cpp::HttpError;

ApiError bad_request(const std::string &message);
ApiError forbidden(const std::string &message);
ApiError not_found(const std::string &message);
ApiError conflict(const std::string &message);

// Permissions as bits. They nest: admin includes write, write includes read,
// so a stored set is always closed (see close_permissions).
enum Permission : uint32_t { kRead = 1u, kWrite = 2u, kAdmin = 4u };
using PermissionSet = uint32_t;

// A JSON list of permission names -> a closed set. Throws bad_request naming
// `what` on anything but a non-empty list of "read" / "write" / "admin".
PermissionSet parse_permissions(const Json &list, std::string_view what);
PermissionSet close_permissions(PermissionSet set) noexcept;
// The canonical list: ["read"], ["read","write"] or ["read","write","admin"].
Json permission_names(PermissionSet set);
// "read" / "write" / "admin" -> its bit; 0 for anything else.
PermissionSet permission_bit(std::string_view name) noexcept;

struct Participant {
    PermissionSet permissions = 0;
    std::string joined_at; // ISO 8601 UTC with microseconds
};

class Roster {
  public:
    // The roster in a session's metadata JSON text. A session without the
    // key has nobody (everyone is refused); a malformed one throws
    // ApiError 500, so a damaged state fails closed.
    static Roster from_metadata(std::string_view metadata_json);

    const Participant *find(std::string_view user) const;
    bool allows(std::string_view user, Permission permission) const;
    std::size_t size() const noexcept { return participants_.size(); }
    std::size_t admin_count() const noexcept;

    void put(const std::string &user, Participant participant);
    void remove(const std::string &user);

    // {"user_id","permissions","joined_at"} of a present participant.
    Json participant_json(const std::string &user) const;
    // Every participant, oldest first (ties by user id).
    Json list_json() const;
    // {"collaborative":{"participants":{...}}}: the whole state, so a
    // top-level metadata merge replaces it (that is how removals persist).
    std::string metadata_patch() const;

  private:
    std::map<std::string, Participant, std::less<>> participants_;
};

// Microseconds since the epoch -> "2026-12-02T04:22:37.123456Z".
std::string iso_time(int64_t us);

} // namespace swh::collaborative
