// The "content_filter" middleware: blocked words and regexes
// replaced by a replacement text (or the message rejected), on user and/or
// assistant messages, including streamed replies (see filter.hpp); a
// reply's tool-call arguments and tool results (ABI 1.3) too.
#include "filter.hpp"
#include "tool_arguments.hpp"

#include <swarmhost/cpp/json_config.hpp>
#include <swarmhost/cpp/plugin.hpp>

#include <nlohmann/json.hpp>

#include <memory>
#include <optional>
#include <string>
#include <utility>

namespace {

using swh::content_filter::Filter;
using swh::content_filter::OptionError;
using swh::content_filter::Options;
using swh::cpp::Failure;
using Json = nlohmann::json;
using OrderedJson = nlohmann::ordered_json; // a rewritten structured object keeps its key order
using Words = std::vector<std::string>;

struct Settings {
    Words blocked_words, regexes;
    std::string replacement = "[FILTERED]";
    Json replacements = Json::object();
    bool case_insensitive = false;
    Words stages = {"user"};
    std::string action = "redact";
    std::string reject_reason = "message contains blocked content";
    int64_t max_match_length = 64;
    bool log_matches = true;
    bool check_tool_arguments = true;
    bool check_tool_results = true;
};

constexpr auto kSchema = swh::cpp::schema(
    swh::cpp::setting<&Settings::blocked_words>(
        "blocked_words", "[]", "Words or phrases to replace (plain text, may contain spaces)"),
    swh::cpp::setting<&Settings::regexes>("regexes", "[]",
                                          "ECMAScript regular expressions to replace; a match may be at most "
                                          "max_match_length bytes on streams"),
    swh::cpp::setting<&Settings::replacement>("replacement", "\"[FILTERED]\"",
                                              "Text that replaces each match"),
    swh::cpp::setting<&Settings::replacements>(
        "replacements", "{}",
        "Per-pattern replacement text: {\"<word or regex as written>\": \"<text>\"}; others use replacement"),
    swh::cpp::setting<&Settings::case_insensitive>("case_insensitive", "false",
                                                   "Match words and regexes ignoring ASCII case"),
    swh::cpp::setting<&Settings::stages>(
        "stages", "[\"user\"]",
        "Which messages to filter: \"user\" (before storing/sending upstream) and/or \"assistant\" (replies, "
        "streamed too)"),
    swh::cpp::setting<&Settings::action>(
        "action", "\"redact\"",
        "\"redact\" replaces matches; \"reject\" refuses a matching message (HTTP 422)"),
    swh::cpp::setting<&Settings::reject_reason>("reject_reason", "\"message contains blocked content\"",
                                                "Reason given to the client when action is reject"),
    swh::cpp::setting<&Settings::max_match_length>(
        "max_match_length", "64",
        "Longest text (bytes) a regex match may span; a stream holds back this much when regexes are set "
        "(1..4096)"),
    swh::cpp::setting<&Settings::log_matches>(
        "log_matches", "true",
        "Log a warning (session id, count, patterns; never the content) when something matched"),
    swh::cpp::setting<&Settings::check_tool_arguments>(
        "check_tool_arguments", "true",
        "Filter the string values of a reply's tool-call arguments too (assistant stage, ABI 1.3); redaction "
        "keeps valid JSON valid"),
    swh::cpp::setting<&Settings::check_tool_results>(
        "check_tool_results", "true",
        "Filter tool results (role \"tool\" messages, user stage) like user text; false lets them pass "
        "unchecked"));

uint32_t parse_stages(const Words &list) {
    uint32_t stages = 0;
    for (const std::string &stage : list) {
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
    ContentFilter(swh::cpp::Host host, const Settings &config)
        : log_(host), filter_(options(config)), stages_(parse_stages(config.stages)),
          reject_(action(config) == "reject"), reject_reason_(config.reject_reason),
          log_matches_(config.log_matches), check_tool_arguments_(config.check_tool_arguments),
          check_tool_results_(config.check_tool_results) {}

    uint32_t stages() const { return stages_; }

    void process(const swh::cpp::MiddlewareInput &input, swh::cpp::Editor &editor) const {
        const bool tool_result = input.message.role == "tool";
        if (tool_result && !check_tool_results_) return; // passes unchecked (and unmarked)
        Filter::Result result = filter_.apply(input.message.content);
        ToolCalls tools;
        if (input.stage == SWH_STAGE_ASSISTANT && check_tool_arguments_)
            tools = check_tool_calls(input.message.structured_json);
        const std::size_t matches = result.matches + tools.matches;
        if (matches > 0) {
            std::set<std::string> patterns = result.patterns;
            patterns.insert(tools.patterns.begin(), tools.patterns.end());
            std::string what = input.stage == SWH_STAGE_USER ? (tool_result ? "tool result" : "user message")
                                                             : "assistant message";
            if (tools.matches > 0) what += ", tool arguments of " + join(tools.names);
            // A host that passes tool calls but cannot take them back edited
            // (none ships; set_structured came with structured_json in 1.3)
            // gets the reply refused rather than passed unredacted.
            const bool redactable = tools.matches == 0 || editor.can_set_structured();
            note(input, matches, patterns, what, reject_ || !redactable);
            if (reject_ || !redactable) {
                editor.reject(reject_reason_);
                return;
            }
            if (result.matches > 0) editor.set_content(result.text);
            if (tools.matches > 0) editor.set_structured(*tools.structured);
        }
        Json patch = {{"content_filtered", matches > 0}, {"content_filter_matches", matches}};
        if (tools.calls > 0) patch["content_filter_tool_argument_matches"] = tools.matches;
        editor.merge_metadata(patch.dump());
    }

    // One streamed reply: what passes the filter goes out as it comes.
    class StreamState {
      public:
        StreamState(const ContentFilter &owner, std::string_view session_id)
            : owner_(owner), stream_(owner.filter_), session_id_(session_id) {}

        void chunk(std::string_view text, swh::cpp::Emitter &out) {
            const std::string passed = stream_.push(text);
            if (!passed.empty()) out.emit(passed);
        }

        // Emits what is held back; in reject mode a matched reply then fails
        // the stream with SWH_E_REJECTED (a `fail: closed` entry refuses to store it).
        void close(swh::cpp::Emitter &out) {
            const std::string tail = stream_.finish();
            if (!tail.empty()) out.emit(tail);
            const std::size_t matches = stream_.matches();
            const std::string patch =
                Json{{"content_filtered", matches > 0}, {"content_filter_matches", matches}}.dump();
            out.merge_metadata(patch);
            if (matches == 0) return;
            owner_.note_stream(*this, matches);
            if (owner_.reject_)
                throw Failure(
                    SWH_E_REJECTED,
                    "content_filter: streamed reply contains blocked content (redacted on the stream): " +
                        owner_.reject_reason_);
        }

      private:
        friend class ContentFilter;
        const ContentFilter &owner_;
        Filter::Stream stream_;
        std::string session_id_;
    };

    std::unique_ptr<StreamState> open_stream(const swh::cpp::MiddlewareInput &input) const {
        return std::make_unique<StreamState>(*this, input.session.id);
    }

  private:
    // What the filter found in a reply's tool calls.
    struct ToolCalls {
        std::size_t calls = 0; // tool calls checked
        std::size_t matches = 0;
        std::set<std::string> patterns;
        std::set<std::string> names;           // tools whose arguments matched
        std::optional<std::string> structured; // the structured content, redacted (when matches > 0)
    };

    // Every call's `arguments` text of structured_json's "tool_calls",
    // filtered; the rest of the structured object is kept as it is.
    ToolCalls check_tool_calls(std::string_view structured_json) const {
        ToolCalls out;
        if (structured_json.empty()) return out;
        OrderedJson structured = OrderedJson::parse(structured_json, nullptr, false);
        if (!structured.is_object()) return out;
        auto calls = structured.find("tool_calls");
        if (calls == structured.end() || !calls->is_array()) return out;
        for (OrderedJson &call : *calls) {
            if (!call.is_object()) continue;
            auto arguments = call.find("arguments");
            if (arguments == call.end() || !arguments->is_string()) continue;
            ++out.calls;
            auto result =
                swh::content_filter::filter_arguments(filter_, arguments->get_ref<const std::string &>());
            if (result.matches == 0) continue;
            *arguments = std::move(result.text);
            out.matches += result.matches;
            out.patterns.insert(result.patterns.begin(), result.patterns.end());
            auto name = call.find("name");
            out.names.insert(name != call.end() && name->is_string() ? name->get<std::string>() : "?");
        }
        if (out.matches > 0)
            out.structured = structured.dump(-1, ' ', false, OrderedJson::error_handler_t::replace);
        return out;
    }

    static std::string action(const Settings &config) {
        const std::string &value = config.action;
        if (value != "redact" && value != "reject")
            throw Failure(SWH_E_INVALID,
                          "content_filter: action must be 'redact' or 'reject', got '" + value + "'");
        return value;
    }

    static Filter options(const Settings &config) {
        Options o;
        o.blocked_words = config.blocked_words;
        o.regexes = config.regexes;
        o.replacement = config.replacement;
        o.case_insensitive = config.case_insensitive;
        const int64_t max_match = config.max_match_length;
        if (max_match < 1 || max_match > 4096)
            throw Failure(SWH_E_INVALID, "content_filter: max_match_length must be within 1..4096");
        o.max_match_length = static_cast<std::size_t>(max_match);
        const Json &replacements = config.replacements;
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

    void note(const swh::cpp::MiddlewareInput &input, std::size_t matches,
              const std::set<std::string> &patterns, const std::string &what, bool rejected) const {
        if (!log_matches_) return;
        const std::string session(input.session.id);
        // The content itself is not logged: the log is no place for it.
        log_.warn("content filtered in session " + session + " (" + what + "): " + std::to_string(matches) +
                  " match(es) of " + join(patterns) + (rejected ? "; message rejected" : "; redacted"));
    }

    void note_stream(const StreamState &state, std::size_t matches) const {
        if (!log_matches_) return;
        log_.warn("content filtered in session " + state.session_id_ + " (streamed reply): " +
                  std::to_string(matches) + " match(es) of " + join(state.stream_.patterns()) +
                  (reject_ ? "; redacted on the stream, reply rejected" : "; redacted"));
    }

    swh::cpp::Host log_;
    Filter filter_;
    uint32_t stages_;
    bool reject_;
    std::string reject_reason_;
    bool log_matches_;
    bool check_tool_arguments_;
    bool check_tool_results_;
};

} // namespace

SWH_CPP_MIDDLEWARE(
    ContentFilter, "content_filter", "0.1.0",
    "Blocked words and regexes replaced (or rejected) on user and assistant messages, streamed "
    "replies included",
    kSchema)
