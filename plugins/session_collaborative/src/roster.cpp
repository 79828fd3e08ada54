#include "roster.hpp"

#include <algorithm>
#include <array>
#include <cstdio>
#include <ctime>
#include <utility>
#include <vector>

namespace swh::collaborative {

namespace {

struct NamedPermission {
    const char *name;
    Permission bit;
};
constexpr std::array<NamedPermission, 3> kPermissions{
    {{"read", kRead}, {"write", kWrite}, {"admin", kAdmin}}};

ApiError corrupt(const std::string &why) {
    return ApiError(500, "internal", "the session's collaborative state is malformed: " + why);
}

// A stored participant entry; anything unexpected means the state was
// damaged (e.g. by a metadata PATCH), and the caller fails closed.
Participant parse_participant(const std::string &user, const Json &entry) {
    if (!entry.is_object()) throw corrupt("participant '" + user + "' is not an object");
    auto perms = entry.find("permissions");
    auto joined = entry.find("joined_at");
    if (perms == entry.end() || joined == entry.end() || !joined->is_string())
        throw corrupt("participant '" + user + "' lacks permissions or joined_at");
    try {
        return Participant{parse_permissions(*perms, "permissions"), joined->get<std::string>()};
    } catch (const ApiError &e) {
        throw corrupt("participant '" + user + "': " + e.what());
    }
}

} // namespace

ApiError bad_request(const std::string &message) {
    return ApiError(400, "invalid_request", message);
}
ApiError forbidden(const std::string &message) {
    return ApiError(403, "forbidden", message);
}
ApiError not_found(const std::string &message) {
    return ApiError(404, "not_found", message);
}
ApiError conflict(const std::string &message) {
    return ApiError(409, "conflict", message);
}

PermissionSet permission_bit(std::string_view name) noexcept {
    for (const auto &p : kPermissions)
        if (name == p.name) return p.bit;
    return 0;
}

PermissionSet close_permissions(PermissionSet set) noexcept {
    if (set & kAdmin) set |= kWrite;
    if (set & kWrite) set |= kRead;
    return set;
}

PermissionSet parse_permissions(const Json &list, std::string_view what) {
    const std::string field(what);
    if (!list.is_array()) throw bad_request("'" + field + "' must be a list of strings");
    if (list.empty()) throw bad_request("'" + field + "' must name at least one permission");
    PermissionSet set = 0;
    for (const auto &item : list) {
        if (!item.is_string()) throw bad_request("'" + field + "' must be a list of strings");
        const std::string name = item.get<std::string>();
        const PermissionSet bit = permission_bit(name);
        if (bit == 0)
            throw bad_request("unknown permission '" + name + "' in '" + field +
                              "' (expected one of: read, write, admin)");
        set |= bit;
    }
    return close_permissions(set);
}

Json permission_names(PermissionSet set) {
    Json names = Json::array();
    for (const auto &p : kPermissions)
        if (set & p.bit) names.push_back(p.name);
    return names;
}

Roster Roster::from_metadata(std::string_view metadata_json) {
    Roster roster;
    if (metadata_json.empty()) return roster;
    const Json metadata = Json::parse(metadata_json, nullptr, false);
    if (!metadata.is_object()) throw corrupt("session metadata is not a JSON object");
    auto state = metadata.find(kStateKey);
    if (state == metadata.end()) return roster;
    if (!state->is_object()) throw corrupt("'collaborative' is not an object");
    auto participants = state->find("participants");
    if (participants == state->end()) return roster;
    if (!participants->is_object()) throw corrupt("'participants' is not an object");
    for (const auto &[user, entry] : participants->items())
        roster.participants_.emplace(user, parse_participant(user, entry));
    return roster;
}

const Participant *Roster::find(std::string_view user) const {
    auto it = participants_.find(user);
    return it == participants_.end() ? nullptr : &it->second;
}

bool Roster::allows(std::string_view user, Permission permission) const {
    if (user.empty()) return false;
    const Participant *p = find(user);
    return p != nullptr && (p->permissions & permission) != 0;
}

std::size_t Roster::admin_count() const noexcept {
    return static_cast<std::size_t>(
        std::count_if(participants_.begin(), participants_.end(),
                      [](const auto &kv) { return (kv.second.permissions & kAdmin) != 0; }));
}

void Roster::put(const std::string &user, Participant participant) {
    participants_[user] = std::move(participant);
}

void Roster::remove(const std::string &user) {
    participants_.erase(user);
}

Json Roster::participant_json(const std::string &user) const {
    const Participant &p = participants_.at(user);
    return Json{
        {"user_id", user}, {"permissions", permission_names(p.permissions)}, {"joined_at", p.joined_at}};
}

Json Roster::list_json() const {
    // ISO times of one format sort chronologically as text.
    std::vector<std::pair<std::string, std::string>> order; // (joined_at, user)
    for (const auto &[user, p] : participants_)
        order.emplace_back(p.joined_at, user);
    std::sort(order.begin(), order.end());
    Json list = Json::array();
    for (const auto &entry : order)
        list.push_back(participant_json(entry.second));
    return list;
}

std::string Roster::metadata_patch() const {
    Json participants = Json::object();
    for (const auto &[user, p] : participants_)
        participants[user] =
            Json{{"permissions", permission_names(p.permissions)}, {"joined_at", p.joined_at}};
    return Json{{kStateKey, Json{{"participants", std::move(participants)}}}}.dump();
}

std::string iso_time(int64_t us) {
    const std::time_t seconds = static_cast<std::time_t>(us / 1000000);
    const long micros = static_cast<long>(us % 1000000);
    std::tm utc{};
    gmtime_r(&seconds, &utc);
    std::array<char, 32> date{};
    std::strftime(date.data(), date.size(), "%Y-%m-%dT%H:%M:%S", &utc);
    std::array<char, 48> out{};
    std::snprintf(out.data(), out.size(), "%s.%06ldZ", date.data(), micros);
    return std::string(out.data());
}

} // namespace swh::collaborative
