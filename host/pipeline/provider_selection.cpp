#include "pipeline/provider_selection.hpp"

#include <algorithm>
#include <functional>

namespace swh {

namespace {

// Rendezvous hashing: each session ranks a group's members by hash(session,
// member). The top one is its sticky member; adding or removing a member
// moves only the sessions that ranked it first.
std::vector<std::string> ranked_members(std::vector<std::string> members, const std::string &session_id) {
    auto score = [&](const std::string &member) {
        return std::hash<std::string>{}(session_id + '\x1f' + member);
    };
    std::stable_sort(members.begin(), members.end(),
                     [&](const std::string &a, const std::string &b) { return score(a) > score(b); });
    return members;
}

} // namespace

std::vector<std::string> provider_chain(const Pipeline &pipeline, const std::string &target,
                                        const std::string &session_id) {
    std::vector<std::string> chain;
    auto add = [&](const std::string &name) {
        if (std::find(chain.begin(), chain.end(), name) == chain.end() && pipeline.provider(name))
            chain.push_back(name);
    };
    if (auto group = pipeline.groups.find(target); group != pipeline.groups.end()) {
        // The session's sticky member first, the rest of the group if it fails.
        for (const auto &member : ranked_members(group->second, session_id))
            add(member);
    } else {
        add(target);
    }
    const std::vector<std::string> primaries = chain;
    for (const auto &name : primaries)
        if (auto it = pipeline.fallbacks.find(name); it != pipeline.fallbacks.end())
            for (const auto &fallback : it->second)
                add(fallback);
    return chain;
}

} // namespace swh
