// nlohmann::json as a settings member: a schema row bound to a json member
// declares SWH_CFG_OBJECT and receives the key's object (header-only, part of
// the optional C++ layer of the SDK; needs nlohmann_json). Include it next to
// plugin.hpp when a plugin's settings hold an object:
//
//     struct Settings { nlohmann::json buckets = nlohmann::json::object(); };
//     constexpr auto kSchema = swh::cpp::schema(
//         swh::cpp::setting<&Settings::buckets>("buckets", "{}", "Histogram bounds"));
#pragma once

#include <swarmhost/cpp/plugin.hpp>

#include <nlohmann/json.hpp>

#include <optional>

namespace swh::cpp {

template <> struct ConfigValue<nlohmann::json> {
    static constexpr uint32_t type = SWH_CFG_OBJECT;
    // The host hands out a whole config as JSON only: the key is taken from it.
    static std::optional<nlohmann::json> find(const Config &config, const char *key) {
        nlohmann::json all = nlohmann::json::parse(config.json(), nullptr, false);
        if (!all.is_object()) throw Failure(SWH_E_INVALID, "config is not a JSON object");
        auto it = all.find(key);
        if (it == all.end() || it->is_null()) return std::nullopt;
        return std::move(*it);
    }
};

} // namespace swh::cpp
