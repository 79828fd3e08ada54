// ABI glue of the "analytics" middleware: per message, content length,
// word-count complexity, rule-based intent and sentiment, written as JSON
// lines to a file and/or published as host events, plus host counters. It
// never changes the content; it may add an "analytics" metadata object.
#include "analysis.hpp"

#include <swarmhost/cpp/edge.hpp>
#include <swarmhost/middleware.h>

#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <memory>
#include <mutex>
#include <string>

namespace {

using swh::analytics::Lexicon;
using swh::edge::ErrorSlot;
using swh::edge::Failure;
using swh::edge::guarded;
using swh::edge::to_str;
using swh::edge::view;
using Json = nlohmann::json;

Json read_config(const swh_host_api *host, const swh_config *cfg) {
    if (!SWH_HAS_MEMBER(host, swh_host_api, config_json) || host->config_json == nullptr)
        throw Failure(SWH_E_INVALID, "analytics: the host offers no config_json");
    swh_str text{nullptr, 0};
    if (host->config_json(host->host_ctx, cfg, &text) != SWH_OK)
        throw Failure(SWH_E_INVALID, "analytics: config_json failed");
    Json config = Json::parse(view(text, "config"), nullptr, false);
    if (!config.is_object()) throw Failure(SWH_E_INVALID, "analytics: config is not a JSON object");
    return config;
}

std::string dump(const Json &j) {
    return j.dump(-1, ' ', false, Json::error_handler_t::replace);
}

std::string text_of(swh_str s) {
    return s.ptr == nullptr ? std::string() : std::string(s.ptr, s.len);
}

class Analytics {
  public:
    Analytics(const swh_host_api *host, const Json &config) : host_(host) {
        for (const auto &item : config.at("stages")) {
            const std::string stage = item.get<std::string>();
            if (stage == "user")
                stages_ |= SWH_STAGE_USER;
            else if (stage == "assistant")
                stages_ |= SWH_STAGE_ASSISTANT;
            else
                throw Failure(SWH_E_INVALID, "analytics: stages: unknown stage '" + stage + "'");
        }
        if (stages_ == 0) throw Failure(SWH_E_INVALID, "analytics: stages must name at least one stage");
        const int64_t complexity_words = config.at("complexity_words").get<int64_t>();
        if (complexity_words < 1) throw Failure(SWH_E_INVALID, "analytics: complexity_words must be >= 1");
        lexicon_.complexity_words = static_cast<std::size_t>(complexity_words);
        for (const auto &w : config.at("positive_words"))
            lexicon_.positive.insert(lower(w.get<std::string>()));
        for (const auto &w : config.at("negative_words"))
            lexicon_.negative.insert(lower(w.get<std::string>()));
        publish_ = config.at("publish_events").get<bool>();
        metrics_ = config.at("metrics").get<bool>();
        add_metadata_ = config.at("add_metadata").get<bool>();
        if (publish_ && !(SWH_HAS_MEMBER(host, swh_host_api, publish_event) && host->publish_event))
            throw Failure(SWH_E_INVALID,
                          "analytics: publish_events is on but the host offers no publish_event");
        if (metrics_ && !(SWH_HAS_MEMBER(host, swh_host_api, metric_add) && host->metric_add))
            metrics_ = false;
        const std::string path = config.at("output_file").get<std::string>();
        if (!path.empty()) {
            const std::filesystem::path file(path);
            if (file.has_parent_path()) std::filesystem::create_directories(file.parent_path());
            out_.open(file, std::ios::app | std::ios::binary);
            if (!out_)
                throw Failure(SWH_E_INVALID,
                              "analytics: cannot open output_file '" + path + "' for appending");
        }
    }

    uint32_t stages() const { return stages_; }

    void process(const swh_middleware_input &input, const swh_message_editor &editor) {
        const swh_message &m = *input.message;
        const std::string role = text_of(m.role);
        const auto a = swh::analytics::analyse(view(m.content, "message.content"), lexicon_);
        Json record = {{"session_id", text_of(m.session_id)},
                       {"message_id", text_of(m.id)},
                       {"role", role},
                       {"stage", input.stage == SWH_STAGE_USER ? "user" : "assistant"},
                       {"timestamp", m.timestamp},
                       {"content_length", a.content_length},
                       {"characters", a.characters},
                       {"word_count", a.word_count},
                       {"complexity", a.complexity},
                       {"intent", a.intent},
                       {"sentiment", a.sentiment},
                       {"sentiment_score", a.sentiment_score}};
        if (SWH_HAS_MEMBER(input.session, swh_session, model)) {
            record["user_id"] = text_of(input.session->user_id);
            record["provider"] = text_of(input.session->provider);
            record["model"] = text_of(input.session->model);
        }
        const Json context = Json::parse(view(input.context_json, "context_json"), nullptr, false);
        if (context.is_object() && context.contains("user_context") && context["user_context"].is_object() &&
            context["user_context"].contains("type"))
            record["user_type"] = context["user_context"]["type"];

        const std::string line = dump(record);
        if (out_.is_open()) {
            std::lock_guard lock(file_mutex_);
            out_ << line << '\n';
            out_.flush();
            if (!out_) throw Failure(SWH_E_UNAVAILABLE, "analytics: writing the output_file failed");
        }
        if (publish_) host_->publish_event(host_->host_ctx, to_str("analytics.message"), to_str(line));
        if (metrics_) {
            const std::string labels =
                dump(Json{{"role", role}, {"intent", a.intent}, {"sentiment", a.sentiment}});
            const std::string role_label = dump(Json{{"role", role}});
            host_->metric_add(host_->host_ctx, to_str("swarmhost_analytics_messages_total"), to_str(labels),
                              1);
            host_->metric_add(host_->host_ctx, to_str("swarmhost_analytics_content_bytes_total"),
                              to_str(role_label), static_cast<double>(a.content_length));
            host_->metric_add(host_->host_ctx, to_str("swarmhost_analytics_words_total"), to_str(role_label),
                              static_cast<double>(a.word_count));
        }
        if (add_metadata_) {
            const Json patch = {{"analytics",
                                 {{"content_length", a.content_length},
                                  {"word_count", a.word_count},
                                  {"complexity", a.complexity},
                                  {"intent", a.intent},
                                  {"sentiment", a.sentiment}}}};
            editor.merge_metadata(editor.ctx, to_str(dump(patch)));
        }
    }

  private:
    static std::string lower(std::string s) {
        for (char &c : s)
            if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
        return s;
    }

    const swh_host_api *host_;
    uint32_t stages_ = 0;
    Lexicon lexicon_;
    bool publish_ = false, metrics_ = true, add_metadata_ = true;
    std::mutex file_mutex_;
    std::ofstream out_;
};

struct Instance {
    ErrorSlot errors;
    std::unique_ptr<Analytics> impl;
};

swh_status a_create(const swh_host_api *host, const swh_config *cfg, void **out_handle) noexcept {
    if (out_handle == nullptr) return SWH_E_INVALID;
    Instance *instance = new (std::nothrow) Instance();
    *out_handle = instance;
    if (instance == nullptr) return SWH_E_INTERNAL;
    return guarded(instance->errors, [&]() -> swh_status {
        if (host == nullptr) throw Failure(SWH_E_INVALID, "analytics: host table is NULL");
        instance->impl = std::make_unique<Analytics>(host, read_config(host, cfg));
        return SWH_OK;
    });
}

void a_destroy(void *handle) noexcept {
    delete static_cast<Instance *>(handle);
}

const char *a_last_error(void *handle) noexcept {
    return handle == nullptr ? "" : static_cast<Instance *>(handle)->errors.get();
}

uint32_t a_stages(void *handle) noexcept {
    auto *instance = static_cast<Instance *>(handle);
    return instance != nullptr && instance->impl ? instance->impl->stages() : 0;
}

swh_status a_process(void *handle, const swh_middleware_input *input,
                     const swh_message_editor *editor) noexcept {
    if (handle == nullptr) return SWH_E_INVALID;
    auto &instance = *static_cast<Instance *>(handle);
    return guarded(instance.errors, [&]() -> swh_status {
        if (!instance.impl) throw Failure(SWH_E_INVALID, "analytics: instance was not created successfully");
        if (!SWH_HAS_MEMBER(input, swh_middleware_input, context_json) ||
            !SWH_HAS_MEMBER(input->message, swh_message, content))
            throw Failure(SWH_E_INVALID, "analytics: input is NULL or too small");
        if (!SWH_HAS_MEMBER(editor, swh_message_editor, merge_metadata) || !editor->merge_metadata)
            throw Failure(SWH_E_INVALID, "analytics: editor is NULL, too small or lacks merge_metadata");
        instance.impl->process(*input, *editor);
        return SWH_OK;
    });
}

constexpr swh_config_field kConfigSchema[] = {
    {sizeof(swh_config_field), "stages", SWH_CFG_STRING_LIST, 0, "[\"user\",\"assistant\"]",
     "Which messages to analyse: \"user\" and/or \"assistant\""},
    {sizeof(swh_config_field), "output_file", SWH_CFG_STRING, 0, "\"\"",
     "Append one JSON line per analysed message to this file (\"\" = no file); parent folders are created"},
    {sizeof(swh_config_field), "publish_events", SWH_CFG_BOOL, 0, "false",
     "Publish each record as host event \"analytics.message\" (host->publish_event)"},
    {sizeof(swh_config_field), "metrics", SWH_CFG_BOOL, 0, "true",
     "Add to host counters swarmhost_analytics_{messages,content_bytes,words}_total (shown on GET /metrics)"},
    {sizeof(swh_config_field), "add_metadata", SWH_CFG_BOOL, 0, "true",
     "Merge {\"analytics\": {content_length, word_count, complexity, intent, sentiment}} into the message "
     "metadata"},
    {sizeof(swh_config_field), "complexity_words", SWH_CFG_INT, 0, "50",
     "Word count at which complexity reaches 1.0 (complexity = min(words / this, 1.0))"},
    {sizeof(swh_config_field), "positive_words", SWH_CFG_STRING_LIST, 0,
     "[\"good\",\"great\",\"excellent\",\"love\",\"like\",\"thanks\",\"thank\",\"awesome\",\"happy\","
     "\"nice\","
     "\"helpful\",\"perfect\",\"wonderful\",\"amazing\",\"glad\"]",
     "Words counting +1 towards positive sentiment (ASCII case-insensitive)"},
    {sizeof(swh_config_field), "negative_words", SWH_CFG_STRING_LIST, 0,
     "[\"bad\",\"terrible\",\"awful\",\"hate\",\"wrong\",\"broken\",\"useless\",\"angry\",\"sad\",\"poor\","
     "\"worst\",\"horrible\",\"annoying\",\"fail\",\"failed\"]",
     "Words counting -1 towards sentiment; a preceding not/no/never flips a word's sign"},
};

constexpr swh_middleware_v1 kTable = {
    sizeof(swh_middleware_v1),
    a_create,
    a_destroy,
    a_last_error,
    a_stages,
    a_process,
    nullptr,
    nullptr,
    nullptr,
    nullptr,
};

constexpr swh_plugin_descriptor kDescriptor = {
    sizeof(swh_plugin_descriptor),
    SWH_ABI_VERSION_MAJOR,
    SWH_ABI_VERSION_MINOR,
    "analytics",
    "0.1.0",
    "Message length, complexity, rule-based intent and sentiment as JSON lines, host events and counters",
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
