// The "personalization" middleware: user-profile fields
// from the session context (user_context.profile) into the user message's
// metadata; on replies, a style prefix/suffix chosen by a profile field
// (streamed replies included: the prefix goes out before the first piece, the
// suffix after the last).
#include <swarmhost/cpp/json_config.hpp>
#include <swarmhost/cpp/plugin.hpp>

#include <nlohmann/json.hpp>

#include <map>
#include <memory>
#include <string>
#include <utility>

namespace {

using swh::cpp::Failure;
using Json = nlohmann::json;

struct Settings {
    std::vector<std::string> stages = {"user", "assistant"};
    Json profile_fields = Json::object();
    std::string style_field = "communication_style";
    Json styles = Json::object();
    std::string default_style;
};

constexpr auto kSchema = swh::cpp::schema(
    swh::cpp::setting<&Settings::stages>(
        "stages", "[\"user\",\"assistant\"]",
        "\"user\": copy profile fields into the user message metadata; \"assistant\": apply the style to "
        "replies"),
    swh::cpp::setting<&Settings::profile_fields>(
        "profile_fields",
        "{\"experience_level\":\"user_experience_level\",\"communication_style\":\"preferred_style\","
        "\"interests\":\"interests\"}",
        "Which user_context.profile fields to copy, as {\"<profile field>\": \"<metadata key>\"}; absent "
        "fields "
        "are skipped"),
    swh::cpp::setting<&Settings::style_field>("style_field", "\"communication_style\"",
                                              "The profile field whose value picks an entry of styles"),
    swh::cpp::setting<&Settings::styles>(
        "styles", "{}",
        "Reply rewrites per style: {\"<style>\": {\"prefix\": \"...\", \"suffix\": \"...\"}}"),
    swh::cpp::setting<&Settings::default_style>(
        "default_style", "\"\"",
        "Style used when the profile names none or an unknown one (\"\" = leave such replies unchanged)"));

struct Style {
    std::string prefix, suffix;
};

class Personalization {
  public:
    Personalization(swh::cpp::Host, const Settings &config) {
        for (const std::string &stage : config.stages) {
            if (stage == "user")
                stages_ |= SWH_STAGE_USER;
            else if (stage == "assistant")
                stages_ |= SWH_STAGE_ASSISTANT;
            else
                throw Failure(SWH_E_INVALID, "personalization: stages: unknown stage '" + stage + "'");
        }
        if (stages_ == 0)
            throw Failure(SWH_E_INVALID, "personalization: stages must name at least one stage");
        for (const auto &[field, key] : config.profile_fields.items()) {
            if (!key.is_string() || key.get<std::string>().empty())
                throw Failure(SWH_E_INVALID,
                              "personalization: profile_fields['" + field + "'] must be a non-empty string");
            fields_.emplace_back(field, key.get<std::string>());
        }
        style_field_ = config.style_field;
        default_style_ = config.default_style;
        for (const auto &[name, spec] : config.styles.items()) {
            if (!spec.is_object())
                throw Failure(SWH_E_INVALID, "personalization: styles['" + name + "'] must be an object");
            Style style;
            for (const auto &[key, value] : spec.items()) {
                if (!value.is_string() || (key != "prefix" && key != "suffix"))
                    throw Failure(SWH_E_INVALID, "personalization: styles['" + name +
                                                     "']: only string 'prefix' "
                                                     "and 'suffix' are allowed, got '" +
                                                     key + "'");
                (key == "prefix" ? style.prefix : style.suffix) = value.get<std::string>();
            }
            styles_.emplace(name, std::move(style));
        }
        if (!default_style_.empty() && !styles_.count(default_style_))
            throw Failure(SWH_E_INVALID,
                          "personalization: default_style '" + default_style_ + "' is not in styles");
    }

    uint32_t stages() const { return stages_; }

    void process(const swh::cpp::MiddlewareInput &input, swh::cpp::Editor &editor) const {
        const Json profile = profile_of(input);
        if (input.stage == SWH_STAGE_USER) {
            Json patch = Json::object();
            for (const auto &[field, key] : fields_)
                if (profile.contains(field)) patch[key] = profile[field];
            editor.merge_metadata(patch.dump());
            return;
        }
        const auto style = style_for(profile);
        if (!style) {
            editor.merge_metadata(R"({"personalized":false})");
            return;
        }
        const std::string content(input.message.content);
        editor.set_content(style->second.prefix + content + style->second.suffix);
        editor.merge_metadata(patch_for(style->first));
    }

    // Stream state: the chosen style and whether the prefix went out.
    struct StreamState {
        const Style *style = nullptr;
        std::string name;
        bool started = false;

        void chunk(std::string_view text, swh::cpp::Emitter &out) {
            if (style && !started) {
                started = true;
                out.emit(style->prefix + std::string(text));
                return;
            }
            if (!text.empty()) out.emit(text);
        }

        void close(swh::cpp::Emitter &out) {
            if (!style) {
                out.merge_metadata(R"({"personalized":false})");
                return;
            }
            std::string tail = started ? "" : style->prefix;
            tail += style->suffix;
            if (!tail.empty()) out.emit(tail);
            out.merge_metadata(patch_for(name));
        }
    };

    std::unique_ptr<StreamState> open_stream(const swh::cpp::MiddlewareInput &input) const {
        auto state = std::make_unique<StreamState>();
        if (const auto style = style_for(profile_of(input))) {
            state->name = style->first;
            state->style = &style->second;
        }
        return state;
    }

  private:
    static std::string patch_for(const std::string &style) {
        return Json{{"personalized", true}, {"personalization_style", style}}.dump();
    }

    // user_context.profile of the session (an empty object when absent).
    static Json profile_of(const swh::cpp::MiddlewareInput &input) {
        const Json context = Json::parse(input.context_json, nullptr, false);
        if (!context.is_object())
            throw Failure(SWH_E_INVALID, "personalization: context_json is not a JSON object");
        auto user = context.find("user_context");
        if (user == context.end() || !user->is_object()) return Json::object();
        auto profile = user->find("profile");
        return profile != user->end() && profile->is_object() ? *profile : Json::object();
    }

    const std::pair<const std::string, Style> *style_for(const Json &profile) const {
        std::string name;
        if (auto it = profile.find(style_field_); it != profile.end() && it->is_string())
            name = it->get<std::string>();
        auto found = styles_.find(name);
        if (found == styles_.end()) found = styles_.find(default_style_);
        return found == styles_.end() ? nullptr : &*found;
    }

    uint32_t stages_ = 0;
    std::vector<std::pair<std::string, std::string>> fields_; // profile field -> metadata key
    std::string style_field_, default_style_;
    std::map<std::string, Style> styles_;
};

} // namespace

SWH_CPP_MIDDLEWARE(Personalization, "personalization", "0.1.0",
                   "User-profile fields into message metadata; a style prefix/suffix on replies per profile",
                   kSchema)
