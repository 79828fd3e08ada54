// The settings binding and JSON (header-only, part of the optional C++ layer
// of the SDK; needs nlohmann_json). Include it next to plugin.hpp for:
//
// * nlohmann::json as a settings member: a schema row bound to a json member
//   declares SWH_CFG_OBJECT and receives the key's object:
//
//     struct Settings { nlohmann::json buckets = nlohmann::json::object(); };
//     constexpr auto kSchema = swh::cpp::schema(
//         swh::cpp::setting<&Settings::buckets>("buckets", "{}", "Histogram bounds"));
//
// * apply_json: a JSON object of changed keys applied to a settings struct
//   through the same rows (a provider's update_config), so a key is still
//   declared once:
//
//     Settings next = current;
//     swh::cpp::apply_json(kSchema, changes, next, "echo");  // throws Failure
#pragma once

#include <swarmhost/cpp/plugin.hpp>

#include <nlohmann/json.hpp>

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

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

namespace detail {

// The host's config accessors over a JSON object the plugin holds, with the
// host's contract (SWH_E_NOT_FOUND when absent, SWH_E_INVALID on a type
// mismatch), so that a Config reads it like a config at create.
class JsonConfigSource {
  public:
    explicit JsonConfigSource(const nlohmann::json &object) : object_(object), text_(object.dump()) {
        api_.struct_size = sizeof(swh_host_api);
        api_.host_ctx = this;
        api_.config_string = [](void *ctx, const swh_config *, const char *key, swh_str *out) noexcept {
            return take(ctx, key, &nlohmann::json::is_string, [&](const nlohmann::json &v) {
                const auto &text = v.get_ref<const std::string &>();
                *out = swh_str{text.data(), text.size()};
            });
        };
        api_.config_int = [](void *ctx, const swh_config *, const char *key, int64_t *out) noexcept {
            return take(ctx, key, &nlohmann::json::is_number_integer,
                        [&](const nlohmann::json &v) { *out = v.get<int64_t>(); });
        };
        api_.config_number = [](void *ctx, const swh_config *, const char *key, double *out) noexcept {
            return take(ctx, key, &nlohmann::json::is_number,
                        [&](const nlohmann::json &v) { *out = v.get<double>(); });
        };
        api_.config_bool = [](void *ctx, const swh_config *, const char *key, int32_t *out) noexcept {
            return take(ctx, key, &nlohmann::json::is_boolean,
                        [&](const nlohmann::json &v) { *out = v.get<bool>() ? 1 : 0; });
        };
        api_.config_list_size = [](void *ctx, const swh_config *, const char *key, size_t *out) noexcept {
            return take(ctx, key, &nlohmann::json::is_array,
                        [&](const nlohmann::json &v) { *out = v.size(); });
        };
        api_.config_list_string = [](void *ctx, const swh_config *, const char *key, size_t index,
                                     swh_str *out) noexcept {
            const nlohmann::json *v = lookup(ctx, key);
            if (v == nullptr) return SWH_E_NOT_FOUND;
            if (!v->is_array() || index >= v->size() || !(*v)[index].is_string()) return SWH_E_INVALID;
            const auto &text = (*v)[index].get_ref<const std::string &>();
            *out = swh_str{text.data(), text.size()};
            return SWH_OK;
        };
        api_.config_json = [](void *ctx, const swh_config *, swh_str *out) noexcept {
            const std::string &text = static_cast<JsonConfigSource *>(ctx)->text_;
            *out = swh_str{text.data(), text.size()};
            return SWH_OK;
        };
    }
    JsonConfigSource(const JsonConfigSource &) = delete;
    JsonConfigSource &operator=(const JsonConfigSource &) = delete;

    Config config() const { return Config(&api_, nullptr); }

  private:
    static const nlohmann::json *lookup(void *ctx, const char *key) noexcept {
        const nlohmann::json &object = static_cast<JsonConfigSource *>(ctx)->object_;
        auto it = object.find(key);
        return it == object.end() ? nullptr : &*it;
    }
    template <class Put>
    static swh_status take(void *ctx, const char *key, bool (nlohmann::json::*is)() const noexcept,
                           Put &&put) noexcept {
        const nlohmann::json *v = lookup(ctx, key);
        if (v == nullptr) return SWH_E_NOT_FOUND;
        if (!((*v).*is)()) return SWH_E_INVALID;
        put(*v);
        return SWH_OK;
    }

    const nlohmann::json &object_;
    std::string text_;
    swh_host_api api_{};
};

// Whether `value` has the JSON type of a schema row; else what it must be.
inline const char *mismatch(uint32_t type, const nlohmann::json &value) {
    switch (type) {
    case SWH_CFG_STRING:
        return value.is_string() ? nullptr : "must be a string";
    case SWH_CFG_INT:
        return value.is_number_integer() ? nullptr : "must be an integer";
    case SWH_CFG_NUMBER:
        return value.is_number() ? nullptr : "must be a number";
    case SWH_CFG_BOOL:
        return value.is_boolean() ? nullptr : "must be true or false";
    case SWH_CFG_STRING_LIST:
        if (value.is_array()) {
            for (const auto &item : value)
                if (!item.is_string()) return "must be a list of strings";
            return nullptr;
        }
        return "must be a list of strings";
    case SWH_CFG_OBJECT:
        return value.is_object() ? nullptr : "must be a JSON object";
    default:
        return "has a type this SDK cannot read";
    }
}

} // namespace detail

// Applies a JSON object of changed keys to `settings` through the schema
// rows: every key must be a row of the schema, every value of the row's
// type; null puts the row's declared default back. All or nothing: on a
// Failure (SWH_E_INVALID, "<who>: ..." when `who` is given) `settings` is
// untouched. Checks the schema cannot express stay with the caller.
template <class S, std::size_t N>
void apply_json(const Schema<S, N> &schema, const nlohmann::json &changes, S &settings,
                std::string_view who = {}) {
    const std::string prefix = who.empty() ? std::string() : std::string(who) + ": ";
    auto invalid = [&](const std::string &what) { throw Failure(SWH_E_INVALID, prefix + what); };
    if (!changes.is_object()) invalid("config changes must be a JSON object");
    for (const auto &[key, value] : changes.items()) {
        if (schema.find(key) < N) continue;
        std::string known;
        for (const swh_config_field &f : schema.fields)
            known += (known.empty() ? "" : ", ") + std::string(f.key);
        invalid("unknown config key '" + key + "' (known: " + known + ")");
    }
    nlohmann::json given = nlohmann::json::object();
    for (const auto &[key, value] : changes.items()) {
        const swh_config_field &f = schema.fields[schema.find(key)];
        nlohmann::json v = value;
        if (v.is_null()) {
            if (f.default_json == nullptr) invalid("config '" + key + "' has no default to put back");
            v = nlohmann::json::parse(f.default_json);
        }
        if (const char *what = detail::mismatch(f.type, v)) invalid("config '" + key + "' " + what);
        given[key] = std::move(v);
    }
    const detail::JsonConfigSource source(given);
    S next = settings;
    schema.apply(source.config(), next);
    settings = std::move(next);
}

} // namespace swh::cpp
