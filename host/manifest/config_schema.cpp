// Validation of a plugin's `config:` node against its declared schema, and the
// YAML -> JSON conversion that hands plugins typed values.
#include "manifest/config_schema.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <map>
#include <string_view>

namespace swh::manifest {

namespace {

using json = nlohmann::json;

// Plain = unquoted and untagged. Only plain scalars can be numbers or
// booleans; quoting is how YAML says "this is a string".
bool is_plain(const YAML::Node &node) {
    return node.IsScalar() && node.Tag() == "?";
}

bool is_digit(char c) {
    return c >= '0' && c <= '9';
}

// The text of a plain scalar that starts like a number after an optional sign,
// with a leading '+' dropped because from_chars rejects it. Screening here
// also keeps from_chars' "inf"/"nan" spellings out.
std::optional<std::string_view> numeric_text(const YAML::Node &node, bool allow_dot) {
    if (!is_plain(node)) return std::nullopt;
    const std::string_view full = node.Scalar();
    const bool plus = full.starts_with('+'), minus = full.starts_with('-');
    const std::string_view body = full.substr(plus || minus ? 1 : 0);
    if (body.empty() || !(is_digit(body.front()) || (allow_dot && body.front() == '.'))) return std::nullopt;
    return plus ? body : full;
}

// `yaml11` also accepts yes/no/on/off: wanted where a bool is declared, but not
// when guessing types inside free-form objects (`country: no` stays a string).
std::optional<bool> plain_bool(const YAML::Node &node, bool yaml11) {
    if (!is_plain(node)) return std::nullopt;
    static constexpr std::array<std::string_view, 3> core_true{"true", "True", "TRUE"};
    static constexpr std::array<std::string_view, 3> core_false{"false", "False", "FALSE"};
    static constexpr std::array<std::string_view, 6> more_true{"yes", "Yes", "YES", "on", "On", "ON"};
    static constexpr std::array<std::string_view, 6> more_false{"no", "No", "NO", "off", "Off", "OFF"};
    const std::string_view text = node.Scalar();
    auto in = [&](const auto &words) { return std::find(words.begin(), words.end(), text) != words.end(); };
    if (in(core_true) || (yaml11 && in(more_true))) return true;
    if (in(core_false) || (yaml11 && in(more_false))) return false;
    return std::nullopt;
}

// Integers first, so `10` stays an integer in JSON; then decimal floats.
// No inf/nan: JSON cannot carry them.
std::optional<json> plain_number(const YAML::Node &node) {
    if (const auto integer = plain_int(node)) return json(*integer);
    const auto text = numeric_text(node, true);
    if (!text) return std::nullopt;
    double value = 0;
    const auto [end, error] = std::from_chars(text->data(), text->data() + text->size(), value);
    if (error != std::errc() || end != text->data() + text->size() || !std::isfinite(value))
        return std::nullopt;
    return json(value);
}

json loose_json(const YAML::Node &node);

// Inside `object` fields nothing is declared, so scalars get YAML 1.2 core typing.
json loose_scalar(const YAML::Node &node) {
    if (const auto number = plain_number(node)) return *number;
    if (const auto flag = plain_bool(node, false)) return *flag;
    return node.Scalar();
}

json loose_json(const YAML::Node &node) {
    if (node.IsMap()) {
        json object = json::object();
        for (const auto &item : node)
            object[item.first.IsScalar() ? item.first.Scalar() : YAML::Dump(item.first)] =
                loose_json(item.second);
        return object;
    }
    if (node.IsSequence()) {
        json array = json::array();
        for (const auto &item : node)
            array.push_back(loose_json(item));
        return array;
    }
    if (node.IsScalar()) return loose_scalar(node);
    return nullptr;
}

std::string with_article(ConfigType type) {
    const std::string name = to_string(type);
    const bool vowel = std::string_view("aeiou").find(name.front()) != std::string_view::npos;
    return (vowel ? "an " : "a ") + name;
}

std::vector<std::string> keys_of(const std::vector<ConfigField> &schema) {
    std::vector<std::string> keys;
    for (const auto &field : schema)
        keys.push_back(field.key);
    return keys;
}

// Walks one config map, collecting diagnostics; one instance per validate_config call.
class ConfigReader {
  public:
    ConfigReader(const std::vector<ConfigField> &schema, const std::string &plugin, const SourceMark &base,
                 std::vector<Diagnostic> &diagnostics)
        : schema_(schema), plugin_(plugin), base_(base), diagnostics_(diagnostics) {}

    json read(const YAML::Node &config) {
        json out = json::object();
        const bool given = config.IsDefined() && !config.IsNull();
        if (given && !config.IsMap()) {
            error(base_,
                  "expected a map for the config of plugin '" + plugin_ + "', got " + describe(config));
            fill_defaults(out);
            return out; // "missing key" errors would only repeat the problem
        }
        if (given)
            for (const auto &item : config)
                read_entry(item.first, item.second, out);
        fill_defaults(out);
        report_missing(out);
        return out;
    }

  private:
    const std::vector<ConfigField> &schema_;
    const std::string &plugin_;
    SourceMark base_;
    std::vector<Diagnostic> &diagnostics_;
    std::map<std::string, SourceMark> seen_; // key -> where first given

    void error(const SourceMark &mark, std::string message) {
        diagnostics_.push_back({mark, std::move(message)});
    }

    std::string for_key(const std::string &key) const {
        return " for '" + key + "' of plugin '" + plugin_ + "'";
    }

    const ConfigField *find(const std::string &key) const {
        const auto it =
            std::find_if(schema_.begin(), schema_.end(), [&](const auto &f) { return f.key == key; });
        return it == schema_.end() ? nullptr : &*it;
    }

    void read_entry(const YAML::Node &key, const YAML::Node &value, json &out) {
        const SourceMark key_mark = mark_of(key, base_);
        if (!key.IsScalar()) {
            error(key_mark,
                  "expected a string key in the config of plugin '" + plugin_ + "', got " + describe(key));
            return;
        }
        const std::string &name = key.Scalar();
        if (const auto [it, fresh] = seen_.emplace(name, key_mark); !fresh) {
            error(key_mark, "duplicate key '" + name + "' for plugin '" + plugin_ + "' (first given at " +
                                it->second.str() + ")");
            return;
        }
        const ConfigField *field = find(name);
        if (field == nullptr) {
            error(key_mark, "unknown key '" + name + "' for plugin '" + plugin_ + "'" +
                                typo_hint(name, keys_of(schema_)));
            return;
        }
        // An empty value's own mark points at the next line; the key is where the user looks.
        const SourceMark value_mark = value.IsNull() ? key_mark : mark_of(value, key_mark);
        if (auto converted = convert(*field, value, value_mark)) out[name] = std::move(*converted);
    }

    std::optional<json> convert(const ConfigField &field, const YAML::Node &value, const SourceMark &mark) {
        std::optional<json> result;
        switch (field.type) {
        case ConfigType::String:
            if (value.IsScalar()) result = value.Scalar(); // YAML scalars are text: `123` is "123"
            break;
        case ConfigType::Int:
            if (const auto integer = plain_int(value)) result = *integer;
            break;
        case ConfigType::Number:
            result = plain_number(value);
            break;
        case ConfigType::Bool:
            if (const auto flag = plain_bool(value, true)) result = *flag;
            break;
        case ConfigType::StringList:
            return string_list(field, value, mark); // reports per item
        case ConfigType::Object:
            if (value.IsMap()) result = loose_json(value);
            break;
        }
        if (!result)
            error(mark,
                  "expected " + with_article(field.type) + for_key(field.key) + ", got " + describe(value));
        return result;
    }

    std::optional<json> string_list(const ConfigField &field, const YAML::Node &value,
                                    const SourceMark &mark) {
        if (!value.IsSequence()) {
            error(mark, "expected a list of strings" + for_key(field.key) + ", got " + describe(value));
            return std::nullopt;
        }
        json list = json::array();
        for (std::size_t i = 0; i < value.size(); ++i) {
            const YAML::Node item = value[i];
            if (item.IsScalar()) {
                list.push_back(item.Scalar());
                continue;
            }
            error(mark_of(item, mark), "expected a string" +
                                           for_key(field.key + "[" + std::to_string(i) + "]") + ", got " +
                                           describe(item));
        }
        return list;
    }

    void fill_defaults(json &out) const {
        for (const auto &field : schema_)
            if (!out.contains(field.key) && !seen_.contains(field.key) && field.default_value)
                out[field.key] = *field.default_value;
    }

    void report_missing(const json &out) {
        for (const auto &field : schema_) {
            if (!field.required || out.contains(field.key) || seen_.contains(field.key)) continue;
            const std::string detail = field.description.empty() ? "" : ": " + field.description;
            error(base_, "missing required key '" + field.key + "' for plugin '" + plugin_ + "' (expected " +
                             to_string(field.type) + detail + ")");
        }
    }
};

} // namespace

const char *to_string(ConfigType type) {
    switch (type) {
    case ConfigType::String:
        return "string";
    case ConfigType::Int:
        return "integer";
    case ConfigType::Number:
        return "number";
    case ConfigType::Bool:
        return "boolean";
    case ConfigType::StringList:
        return "list of strings";
    case ConfigType::Object:
        return "map";
    }
    return "unknown type";
}

std::optional<std::int64_t> plain_int(const YAML::Node &node) {
    const auto text = numeric_text(node, false);
    if (!text) return std::nullopt;
    std::int64_t value = 0;
    const auto [end, error] = std::from_chars(text->data(), text->data() + text->size(), value);
    if (error != std::errc() || end != text->data() + text->size()) return std::nullopt;
    return value;
}

nlohmann::json validate_config(const YAML::Node &config, const std::vector<ConfigField> &schema,
                               const std::string &plugin_name, const SourceMark &where,
                               std::vector<Diagnostic> &diagnostics) {
    // An empty `config:` has its mark on the following line; `where` is more useful then.
    const bool has_node = config.IsDefined() && !config.IsNull();
    ConfigReader reader(schema, plugin_name, has_node ? mark_of(config, where) : where, diagnostics);
    return reader.read(config);
}

} // namespace swh::manifest
