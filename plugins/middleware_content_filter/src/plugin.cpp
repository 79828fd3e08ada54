// ABI glue of the "content_filter" middleware: blocked words and regexes
// replaced by a replacement text (or the message rejected), on user and/or
// assistant messages, including streamed replies (see filter.hpp).
#include "filter.hpp"

#include <swarmhost/cpp/edge.hpp>
#include <swarmhost/middleware.h>

#include <nlohmann/json.hpp>

#include <memory>
#include <string>
#include <utility>

namespace {

using swh::content_filter::Filter;
using swh::content_filter::OptionError;
using swh::content_filter::Options;
using swh::edge::ErrorSlot;
using swh::edge::Failure;
using swh::edge::guarded;
using swh::edge::HostLog;
using swh::edge::to_str;
using swh::edge::view;
using Json = nlohmann::json;

constexpr const char *kName = "content_filter";

// The whole validated config (defaults applied by the host) as JSON.
Json read_config(const swh_host_api *host, const swh_config *cfg) {
    if (!SWH_HAS_MEMBER(host, swh_host_api, config_json) || host->config_json == nullptr)
        throw Failure(SWH_E_INVALID, "content_filter: the host offers no config_json");
    swh_str text{nullptr, 0};
    if (host->config_json(host->host_ctx, cfg, &text) != SWH_OK)
        throw Failure(SWH_E_INVALID, "content_filter: config_json failed");
    Json config = Json::parse(view(text, "config"), nullptr, false);
    if (!config.is_object()) throw Failure(SWH_E_INVALID, "content_filter: config is not a JSON object");
    return config;
}

uint32_t parse_stages(const Json &list) {
    uint32_t stages = 0;
    for (const auto &item : list) {
        const std::string stage = item.get<std::string>();
        if (stage == "user")
            stages |= SWH_STAGE_USER;
        else if (stage == "assistant")
            stages |= SWH_STAGE_ASSISTANT;
        else
            throw Failure(SWH_E_INVALID,
                          "content_filter: stages: unknown stage '" + stage + "' (user, assistant)");
    }
    if (stages == 0) throw Failure(SWH_E_INVALID, "content_filter: stages must name at least one stage");
    return stages;
}

std::string join(const std::set<std::string> &items) {
    std::string out;
    for (const auto &item : items)
        out += (out.empty() ? "'" : ", '") + item + "'";
    return out;
}

class ContentFilter {
  public:
    ContentFilter(const swh_host_api *host, const Json &config)
        : log_(host), filter_(options(config)), stages_(parse_stages(config.at("stages"))),
          reject_(action(config) == "reject"), reject_reason_(config.at("reject_reason").get<std::string>()),
          log_matches_(config.at("log_matches").get<bool>()) {}

    uint32_t stages() const { return stages_; }

    void process(const swh_middleware_input &input, const swh_message_editor &editor) const {
        const std::string_view content = view(input.message->content, "message.content");
        Filter::Result result = filter_.apply(content);
        if (result.matches > 0) {
            note(input, result.matches, result.patterns,
                 input.stage == SWH_STAGE_USER ? "user" : "assistant");
            if (reject_) {
                editor.reject(editor.ctx, to_str(reject_reason_));
                return;
            }
            editor.set_content(editor.ctx, to_str(result.text));
        }
        const std::string patch =
            Json{{"content_filtered", result.matches > 0}, {"content_filter_matches", result.matches}}.dump();
        editor.merge_metadata(editor.ctx, to_str(patch));
    }

    struct StreamState {
        explicit StreamState(const Filter &f) : stream(f) {}
        Filter::Stream stream;
        std::string session_id;
    };

    std::unique_ptr<StreamState> open(const swh_middleware_input &input) const {
        auto state = std::make_unique<StreamState>(filter_);
        if (SWH_HAS_MEMBER(input.session, swh_session, id))
            state->session_id = std::string(view(input.session->id, "session.id"));
        return state;
    }

    // Emits what is held back; in reject mode a matched reply then fails the
    // stream with SWH_E_REJECTED (a `fail: closed` entry refuses to store it).
    swh_status close(StreamState &state, const swh_chunk_emitter &out, ErrorSlot &errors) const {
        const std::string tail = state.stream.finish();
        if (!tail.empty()) out.emit(out.ctx, to_str(tail));
        const std::size_t matches = state.stream.matches();
        const std::string patch =
            Json{{"content_filtered", matches > 0}, {"content_filter_matches", matches}}.dump();
        out.merge_metadata(out.ctx, to_str(patch));
        if (matches == 0) return SWH_OK;
        note_stream(state, matches);
        if (reject_) {
            errors.set("content_filter: streamed reply contains blocked content (redacted on the stream): " +
                       reject_reason_);
            return SWH_E_REJECTED;
        }
        return SWH_OK;
    }

  private:
    static std::string action(const Json &config) {
        const std::string value = config.at("action").get<std::string>();
        if (value != "redact" && value != "reject")
            throw Failure(SWH_E_INVALID,
                          "content_filter: action must be 'redact' or 'reject', got '" + value + "'");
        return value;
    }

    static Filter options(const Json &config) {
        Options o;
        o.blocked_words = config.at("blocked_words").get<std::vector<std::string>>();
        o.regexes = config.at("regexes").get<std::vector<std::string>>();
        o.replacement = config.at("replacement").get<std::string>();
        o.case_insensitive = config.at("case_insensitive").get<bool>();
        const int64_t max_match = config.at("max_match_length").get<int64_t>();
        if (max_match < 1 || max_match > 4096)
            throw Failure(SWH_E_INVALID, "content_filter: max_match_length must be within 1..4096");
        o.max_match_length = static_cast<std::size_t>(max_match);
        const Json &replacements = config.at("replacements");
        for (const auto &[pattern, text] : replacements.items()) {
            if (!text.is_string())
                throw Failure(SWH_E_INVALID,
                              "content_filter: replacements['" + pattern + "'] must be a string");
            o.replacements[pattern] = text.get<std::string>();
        }
        try {
            return Filter(o);
        } catch (const OptionError &e) {
            throw Failure(SWH_E_INVALID, std::string("content_filter: ") + e.what());
        }
    }

    void note(const swh_middleware_input &input, std::size_t matches, const std::set<std::string> &patterns,
              const char *stage) const {
        if (!log_matches_) return;
        std::string session;
        if (SWH_HAS_MEMBER(input.session, swh_session, id))
            session = std::string(view(input.session->id, "id"));
        // The content itself is not logged: the log is no place for it.
        log_(SWH_LOG_WARN, "content filtered in session " + session + " (" + stage +
                               " message): " + std::to_string(matches) + " match(es) of " + join(patterns) +
                               (reject_ ? "; message rejected" : "; redacted"));
    }

    void note_stream(const StreamState &state, std::size_t matches) const {
        if (!log_matches_) return;
        log_(SWH_LOG_WARN, "content filtered in session " + state.session_id + " (streamed reply): " +
                               std::to_string(matches) + " match(es) of " + join(state.stream.patterns()) +
                               (reject_ ? "; redacted on the stream, reply rejected" : "; redacted"));
    }

    HostLog log_;
    Filter filter_;
    uint32_t stages_;
    bool reject_;
    std::string reject_reason_;
    bool log_matches_;
};

struct Instance {
    ErrorSlot errors;
    std::unique_ptr<ContentFilter> filter; // null when create failed
};

template <class Body> swh_status call(void *handle, Body &&body) noexcept {
    if (handle == nullptr) return SWH_E_INVALID;
    auto &instance = *static_cast<Instance *>(handle);
    return guarded(instance.errors, [&]() -> swh_status {
        if (!instance.filter)
            throw Failure(SWH_E_INVALID, "content_filter: instance was not created successfully");
        return body(*instance.filter, instance.errors);
    });
}

void require_input(const swh_middleware_input *input) {
    if (!SWH_HAS_MEMBER(input, swh_middleware_input, context_json) ||
        !SWH_HAS_MEMBER(input->message, swh_message, content))
        throw Failure(SWH_E_INVALID, "content_filter: input is NULL or too small");
}

// ---------------------------------------------------------------- table

swh_status cf_create(const swh_host_api *host, const swh_config *cfg, void **out_handle) noexcept {
    if (out_handle == nullptr) return SWH_E_INVALID;
    *out_handle = nullptr;
    Instance *instance = new (std::nothrow) Instance();
    if (instance == nullptr) return SWH_E_INTERNAL;
    *out_handle = instance; // also on failure: the host reads last_error, then destroys
    return guarded(instance->errors, [&]() -> swh_status {
        if (host == nullptr) throw Failure(SWH_E_INVALID, "content_filter: host table is NULL");
        instance->filter = std::make_unique<ContentFilter>(host, read_config(host, cfg));
        return SWH_OK;
    });
}

void cf_destroy(void *handle) noexcept {
    delete static_cast<Instance *>(handle);
}

const char *cf_last_error(void *handle) noexcept {
    return handle == nullptr ? "" : static_cast<Instance *>(handle)->errors.get();
}

uint32_t cf_stages(void *handle) noexcept {
    auto *instance = static_cast<Instance *>(handle);
    return instance != nullptr && instance->filter ? instance->filter->stages() : 0;
}

swh_status cf_process(void *handle, const swh_middleware_input *input,
                      const swh_message_editor *editor) noexcept {
    return call(handle, [&](ContentFilter &filter, ErrorSlot &) -> swh_status {
        require_input(input);
        if (!SWH_HAS_MEMBER(editor, swh_message_editor, reject) || !editor->set_content ||
            !editor->merge_metadata || !editor->reject)
            throw Failure(SWH_E_INVALID, "content_filter: editor is NULL, too small or lacks a callback");
        filter.process(*input, *editor);
        return SWH_OK;
    });
}

swh_status cf_stream_open(void *handle, const swh_middleware_input *input, void **out_stream) noexcept {
    return call(handle, [&](ContentFilter &filter, ErrorSlot &) -> swh_status {
        if (out_stream == nullptr) throw Failure(SWH_E_INVALID, "content_filter: out_stream is NULL");
        *out_stream = nullptr;
        if (input == nullptr) throw Failure(SWH_E_INVALID, "content_filter: input is NULL");
        *out_stream = filter.open(*input).release();
        return SWH_OK;
    });
}

bool usable(const swh_chunk_emitter *out) {
    return SWH_HAS_MEMBER(out, swh_chunk_emitter, merge_metadata) && out->emit && out->merge_metadata;
}

swh_status cf_stream_chunk(void *handle, void *stream, swh_str text, const swh_chunk_emitter *out) noexcept {
    return call(handle, [&](ContentFilter &, ErrorSlot &) -> swh_status {
        if (stream == nullptr || !usable(out))
            throw Failure(SWH_E_INVALID, "content_filter: bad stream call");
        auto &state = *static_cast<ContentFilter::StreamState *>(stream);
        const std::string passed = state.stream.push(view(text, "chunk"));
        if (!passed.empty()) out->emit(out->ctx, to_str(passed));
        return SWH_OK;
    });
}

swh_status cf_stream_close(void *handle, void *stream, const swh_chunk_emitter *out) noexcept {
    // The state is freed whatever happens below.
    std::unique_ptr<ContentFilter::StreamState> state(static_cast<ContentFilter::StreamState *>(stream));
    return call(handle, [&](ContentFilter &filter, ErrorSlot &errors) -> swh_status {
        if (!state || !usable(out)) throw Failure(SWH_E_INVALID, "content_filter: bad stream call");
        return filter.close(*state, *out, errors);
    });
}

// ----------------------------------------------------------- descriptor

constexpr swh_config_field kConfigSchema[] = {
    {sizeof(swh_config_field), "blocked_words", SWH_CFG_STRING_LIST, 0, "[]",
     "Words or phrases to replace (plain text, may contain spaces)"},
    {sizeof(swh_config_field), "regexes", SWH_CFG_STRING_LIST, 0, "[]",
     "ECMAScript regular expressions to replace; a match may be at most max_match_length bytes on streams"},
    {sizeof(swh_config_field), "replacement", SWH_CFG_STRING, 0, "\"[FILTERED]\"",
     "Text that replaces each match"},
    {sizeof(swh_config_field), "replacements", SWH_CFG_OBJECT, 0, "{}",
     "Per-pattern replacement text: {\"<word or regex as written>\": \"<text>\"}; others use replacement"},
    {sizeof(swh_config_field), "case_insensitive", SWH_CFG_BOOL, 0, "false",
     "Match words and regexes ignoring ASCII case"},
    {sizeof(swh_config_field), "stages", SWH_CFG_STRING_LIST, 0, "[\"user\"]",
     "Which messages to filter: \"user\" (before storing/sending upstream) and/or \"assistant\" (replies, "
     "streamed too)"},
    {sizeof(swh_config_field), "action", SWH_CFG_STRING, 0, "\"redact\"",
     "\"redact\" replaces matches; \"reject\" refuses a matching message (HTTP 422)"},
    {sizeof(swh_config_field), "reject_reason", SWH_CFG_STRING, 0, "\"message contains blocked content\"",
     "Reason given to the client when action is reject"},
    {sizeof(swh_config_field), "max_match_length", SWH_CFG_INT, 0, "64",
     "Longest text (bytes) a regex match may span; a stream holds back this much when regexes are set "
     "(1..4096)"},
    {sizeof(swh_config_field), "log_matches", SWH_CFG_BOOL, 0, "true",
     "Log a warning (session id, count, patterns; never the content) when something matched"},
};

constexpr swh_middleware_v1 kTable = {
    sizeof(swh_middleware_v1),
    cf_create,
    cf_destroy,
    cf_last_error,
    cf_stages,
    cf_process,
    nullptr,
    cf_stream_open,
    cf_stream_chunk,
    cf_stream_close,
};

constexpr swh_plugin_descriptor kDescriptor = {
    sizeof(swh_plugin_descriptor),
    SWH_ABI_VERSION_MAJOR,
    SWH_ABI_VERSION_MINOR,
    kName,
    "0.1.0",
    "Blocked words and regexes replaced (or rejected) on user and assistant messages, streamed replies "
    "included",
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
