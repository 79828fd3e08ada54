// ABI glue and logic of the "personalization" middleware: user-profile fields
// from the session context (user_context.profile) into the user message's
// metadata; on replies, a style prefix/suffix chosen by a profile field
// (streamed replies included: the prefix goes out before the first piece, the
// suffix after the last).
#include <swarmhost/cpp/edge.hpp>
#include <swarmhost/middleware.h>

#include <nlohmann/json.hpp>

#include <map>
#include <memory>
#include <string>
#include <utility>

namespace {

using swh::edge::ErrorSlot;
using swh::edge::Failure;
using swh::edge::guarded;
using swh::edge::to_str;
using swh::edge::view;
using Json = nlohmann::json;

Json read_config(const swh_host_api *host, const swh_config *cfg) {
    if (!SWH_HAS_MEMBER(host, swh_host_api, config_json) || host->config_json == nullptr)
        throw Failure(SWH_E_INVALID, "personalization: the host offers no config_json");
    swh_str text{nullptr, 0};
    if (host->config_json(host->host_ctx, cfg, &text) != SWH_OK)
        throw Failure(SWH_E_INVALID, "personalization: config_json failed");
    Json config = Json::parse(view(text, "config"), nullptr, false);
    if (!config.is_object()) throw Failure(SWH_E_INVALID, "personalization: config is not a JSON object");
    return config;
}

struct Style {
    std::string prefix, suffix;
};

class Personalization {
  public:
    explicit Personalization(const Json &config) {
        for (const auto &item : config.at("stages")) {
            const std::string stage = item.get<std::string>();
            if (stage == "user")
                stages_ |= SWH_STAGE_USER;
            else if (stage == "assistant")
                stages_ |= SWH_STAGE_ASSISTANT;
            else
                throw Failure(SWH_E_INVALID, "personalization: stages: unknown stage '" + stage + "'");
        }
        if (stages_ == 0)
            throw Failure(SWH_E_INVALID, "personalization: stages must name at least one stage");
        for (const auto &[field, key] : config.at("profile_fields").items()) {
            if (!key.is_string() || key.get<std::string>().empty())
                throw Failure(SWH_E_INVALID,
                              "personalization: profile_fields['" + field + "'] must be a non-empty string");
            fields_.emplace_back(field, key.get<std::string>());
        }
        style_field_ = config.at("style_field").get<std::string>();
        default_style_ = config.at("default_style").get<std::string>();
        for (const auto &[name, spec] : config.at("styles").items()) {
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

    void process(const swh_middleware_input &input, const swh_message_editor &editor) const {
        const Json profile = profile_of(input);
        if (input.stage == SWH_STAGE_USER) {
            Json patch = Json::object();
            for (const auto &[field, key] : fields_)
                if (profile.contains(field)) patch[key] = profile[field];
            editor.merge_metadata(editor.ctx, to_str(patch.dump()));
            return;
        }
        const auto style = style_for(profile);
        if (!style) {
            editor.merge_metadata(editor.ctx, to_str(R"({"personalized":false})"));
            return;
        }
        const std::string content(view(input.message->content, "message.content"));
        editor.set_content(editor.ctx, to_str(style->second.prefix + content + style->second.suffix));
        editor.merge_metadata(editor.ctx, to_str(patch_for(style->first)));
    }

    // Stream state: the chosen style and whether the prefix went out.
    struct StreamState {
        const Style *style = nullptr;
        std::string name;
        bool started = false;
    };

    std::unique_ptr<StreamState> open(const swh_middleware_input &input) const {
        auto state = std::make_unique<StreamState>();
        if (const auto style = style_for(profile_of(input))) {
            state->name = style->first;
            state->style = &style->second;
        }
        return state;
    }

    void chunk(StreamState &state, std::string_view text, const swh_chunk_emitter &out) const {
        if (state.style && !state.started) {
            state.started = true;
            out.emit(out.ctx, to_str(state.style->prefix + std::string(text)));
            return;
        }
        if (!text.empty()) out.emit(out.ctx, to_str(text));
    }

    void close(StreamState &state, const swh_chunk_emitter &out) const {
        if (!state.style) {
            out.merge_metadata(out.ctx, to_str(R"({"personalized":false})"));
            return;
        }
        std::string tail = state.started ? "" : state.style->prefix;
        tail += state.style->suffix;
        if (!tail.empty()) out.emit(out.ctx, to_str(tail));
        out.merge_metadata(out.ctx, to_str(patch_for(state.name)));
    }

  private:
    static std::string patch_for(const std::string &style) {
        return Json{{"personalized", true}, {"personalization_style", style}}.dump();
    }

    // user_context.profile of the session (an empty object when absent).
    static Json profile_of(const swh_middleware_input &input) {
        const Json context = Json::parse(view(input.context_json, "context_json"), nullptr, false);
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

struct Instance {
    ErrorSlot errors;
    std::unique_ptr<Personalization> impl;
};

template <class Body> swh_status call(void *handle, Body &&body) noexcept {
    if (handle == nullptr) return SWH_E_INVALID;
    auto &instance = *static_cast<Instance *>(handle);
    return guarded(instance.errors, [&]() -> swh_status {
        if (!instance.impl)
            throw Failure(SWH_E_INVALID, "personalization: instance was not created successfully");
        body(*instance.impl);
        return SWH_OK;
    });
}

bool usable(const swh_chunk_emitter *out) {
    return SWH_HAS_MEMBER(out, swh_chunk_emitter, merge_metadata) && out->emit && out->merge_metadata;
}

swh_status p_create(const swh_host_api *host, const swh_config *cfg, void **out_handle) noexcept {
    if (out_handle == nullptr) return SWH_E_INVALID;
    Instance *instance = new (std::nothrow) Instance();
    *out_handle = instance;
    if (instance == nullptr) return SWH_E_INTERNAL;
    return guarded(instance->errors, [&]() -> swh_status {
        if (host == nullptr) throw Failure(SWH_E_INVALID, "personalization: host table is NULL");
        instance->impl = std::make_unique<Personalization>(read_config(host, cfg));
        return SWH_OK;
    });
}

void p_destroy(void *handle) noexcept {
    delete static_cast<Instance *>(handle);
}

const char *p_last_error(void *handle) noexcept {
    return handle == nullptr ? "" : static_cast<Instance *>(handle)->errors.get();
}

uint32_t p_stages(void *handle) noexcept {
    auto *instance = static_cast<Instance *>(handle);
    return instance != nullptr && instance->impl ? instance->impl->stages() : 0;
}

swh_status p_process(void *handle, const swh_middleware_input *input,
                     const swh_message_editor *editor) noexcept {
    return call(handle, [&](Personalization &p) {
        if (!SWH_HAS_MEMBER(input, swh_middleware_input, context_json) ||
            !SWH_HAS_MEMBER(input->message, swh_message, content))
            throw Failure(SWH_E_INVALID, "personalization: input is NULL or too small");
        if (!SWH_HAS_MEMBER(editor, swh_message_editor, reject) || !editor->set_content ||
            !editor->merge_metadata)
            throw Failure(SWH_E_INVALID, "personalization: editor is NULL, too small or lacks a callback");
        p.process(*input, *editor);
    });
}

swh_status p_stream_open(void *handle, const swh_middleware_input *input, void **out_stream) noexcept {
    return call(handle, [&](Personalization &p) {
        if (out_stream == nullptr) throw Failure(SWH_E_INVALID, "personalization: out_stream is NULL");
        *out_stream = nullptr;
        if (!SWH_HAS_MEMBER(input, swh_middleware_input, context_json))
            throw Failure(SWH_E_INVALID, "personalization: input is NULL or too small");
        *out_stream = p.open(*input).release();
    });
}

swh_status p_stream_chunk(void *handle, void *stream, swh_str text, const swh_chunk_emitter *out) noexcept {
    return call(handle, [&](Personalization &p) {
        if (stream == nullptr || !usable(out))
            throw Failure(SWH_E_INVALID, "personalization: bad stream call");
        p.chunk(*static_cast<Personalization::StreamState *>(stream), view(text, "chunk"), *out);
    });
}

swh_status p_stream_close(void *handle, void *stream, const swh_chunk_emitter *out) noexcept {
    std::unique_ptr<Personalization::StreamState> state(static_cast<Personalization::StreamState *>(stream));
    return call(handle, [&](Personalization &p) {
        if (!state || !usable(out)) throw Failure(SWH_E_INVALID, "personalization: bad stream call");
        p.close(*state, *out);
    });
}

constexpr swh_config_field kConfigSchema[] = {
    {sizeof(swh_config_field), "stages", SWH_CFG_STRING_LIST, 0, "[\"user\",\"assistant\"]",
     "\"user\": copy profile fields into the user message metadata; \"assistant\": apply the style to "
     "replies"},
    {sizeof(swh_config_field), "profile_fields", SWH_CFG_OBJECT, 0,
     "{\"experience_level\":\"user_experience_level\",\"communication_style\":\"preferred_style\","
     "\"interests\":\"interests\"}",
     "Which user_context.profile fields to copy, as {\"<profile field>\": \"<metadata key>\"}; absent fields "
     "are skipped"},
    {sizeof(swh_config_field), "style_field", SWH_CFG_STRING, 0, "\"communication_style\"",
     "The profile field whose value picks an entry of styles"},
    {sizeof(swh_config_field), "styles", SWH_CFG_OBJECT, 0, "{}",
     "Reply rewrites per style: {\"<style>\": {\"prefix\": \"...\", \"suffix\": \"...\"}}"},
    {sizeof(swh_config_field), "default_style", SWH_CFG_STRING, 0, "\"\"",
     "Style used when the profile names none or an unknown one (\"\" = leave such replies unchanged)"},
};

constexpr swh_middleware_v1 kTable = {
    sizeof(swh_middleware_v1),
    p_create,
    p_destroy,
    p_last_error,
    p_stages,
    p_process,
    nullptr,
    p_stream_open,
    p_stream_chunk,
    p_stream_close,
};

constexpr swh_plugin_descriptor kDescriptor = {
    sizeof(swh_plugin_descriptor),
    SWH_ABI_VERSION_MAJOR,
    SWH_ABI_VERSION_MINOR,
    "personalization",
    "0.1.0",
    "User-profile fields into message metadata; a style prefix/suffix on replies per profile",
    SWH_KIND_MIDDLEWARE,
    SWH_IFACE_MIDDLEWARE_V1,
    kConfigSchema,
    sizeof(kConfigSchema) / sizeof(kConfigSchema[0]),
    &kTable,
};

} // namespace

extern "C" SWH_EXPORT const swh_plugin_descriptor *swh_plugin_entry(void) {
    return &kDescriptor;
}
