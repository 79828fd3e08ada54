// A plugin's declared config schema (swh_config_field, copied into C++) and
// validation of a manifest `config:` node against it.
#pragma once

#include "manifest/manifest.hpp"

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

namespace swh::manifest {

enum class ConfigType { String = 1, Int = 2, Number = 3, Bool = 4, StringList = 5, Object = 6 };

const char *to_string(ConfigType type); // "string", "integer", ...

struct ConfigField {
    std::string key;
    ConfigType type = ConfigType::String;
    bool required = false;
    std::optional<nlohmann::json> default_value; // parsed default_json
    std::string description;
};

// Validate `config` (a YAML map, or null/undefined for "none given") against
// `schema`. Returns the config as JSON with defaults filled in. Appends
// located diagnostics for unknown keys (with did-you-mean), wrong types and
// missing required keys; `where` is used when `config` has no mark of its own.
nlohmann::json validate_config(const YAML::Node &config, const std::vector<ConfigField> &schema,
                               const std::string &plugin_name, const SourceMark &where,
                               std::vector<Diagnostic> &diagnostics);

// The closest candidate to `word` by edit distance, if it is close enough to
// be a plausible typo ("did you mean 'path'?"); empty if none.
std::string did_you_mean(const std::string &word, const std::vector<std::string> &candidates);

// The tail of an "unknown key" message: "; did you mean 'x'?" when there is a
// close candidate, else " (allowed: a, b, c)" (or " (none allowed)").
std::string typo_hint(const std::string &word, const std::vector<std::string> &candidates);

// The value of a plain (unquoted) decimal integer scalar such as `42` or `-3`;
// nullopt for anything else. A quoted "42" is a string in YAML, not a number.
std::optional<std::int64_t> plain_int(const YAML::Node &node);

} // namespace swh::manifest
