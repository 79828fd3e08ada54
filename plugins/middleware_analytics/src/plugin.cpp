// The "analytics" middleware: per message, content length,
// word-count complexity, rule-based intent and sentiment, written as JSON
// lines to a file and/or published as host events, plus host counters. It
// never changes the content; it may add an "analytics" metadata object. It
// counts tool calls per tool and tool results (ABI 1.3 structured content).
#include "analysis.hpp"

#include <swarmhost/cpp/plugin.hpp>

#include <nlohmann/json.hpp>

#include <chrono>
#include <condition_variable>
#include <deque>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>

namespace {

using swh::analytics::Lexicon;
using swh::cpp::Failure;
using Json = nlohmann::json;
using Words = std::vector<std::string>;

struct Settings {
    Words stages = {"user", "assistant"};
    std::string output_file;
    bool publish_events = false;
    bool metrics = true;
    bool add_metadata = true;
    int64_t complexity_words = 50;
    Words positive_words, negative_words;
};

constexpr auto kSchema = swh::cpp::schema(
    swh::cpp::setting<&Settings::stages>("stages", "[\"user\",\"assistant\"]",
                                         "Which messages to analyse: \"user\" and/or \"assistant\""),
    swh::cpp::setting<&Settings::output_file>("output_file", "\"\"",
                                              "Append one JSON line per analysed message to this file (\"\" "
                                              "= no file); parent folders are created"),
    swh::cpp::setting<&Settings::publish_events>(
        "publish_events", "false",
        "Publish each record as host event \"analytics.message\" (host->publish_event)"),
    swh::cpp::setting<&Settings::metrics>(
        "metrics", "true",
        "Add to host counters "
        "swarmhost_analytics_{messages,content_bytes,words,tool_calls,tool_results}_total "
        "(shown on GET /metrics)"),
    swh::cpp::setting<&Settings::add_metadata>(
        "add_metadata", "true",
        "Merge {\"analytics\": {content_length, word_count, complexity, intent, sentiment}} into the message "
        "metadata"),
    swh::cpp::setting<&Settings::complexity_words>(
        "complexity_words", "50",
        "Word count at which complexity reaches 1.0 (complexity = min(words / this, 1.0))"),
    swh::cpp::setting<&Settings::positive_words>(
        "positive_words",
        "[\"good\",\"great\",\"excellent\",\"love\",\"like\",\"thanks\",\"thank\",\"awesome\",\"happy\","
        "\"nice\","
        "\"helpful\",\"perfect\",\"wonderful\",\"amazing\",\"glad\"]",
        "Words counting +1 towards positive sentiment (ASCII case-insensitive)"),
    swh::cpp::setting<&Settings::negative_words>(
        "negative_words",
        "[\"bad\",\"terrible\",\"awful\",\"hate\",\"wrong\",\"broken\",\"useless\",\"angry\",\"sad\","
        "\"poor\","
        "\"worst\",\"horrible\",\"annoying\",\"fail\",\"failed\"]",
        "Words counting -1 towards sentiment; a preceding not/no/never flips a word's sign"));

std::string dump(const Json &j) {
    return j.dump(-1, ' ', false, Json::error_handler_t::replace);
}

// The label of a tool result whose call this instance did not see.
constexpr const char *kUnknownTool = "(unknown)";

// The tool calls of a message's structured content (ABI 1.3): (id, name) of
// each entry of "tool_calls"; empty for plain text or a host older than 1.3.
std::vector<std::pair<std::string, std::string>> tool_calls_of(std::string_view structured_json) {
    std::vector<std::pair<std::string, std::string>> out;
    if (structured_json.empty()) return out;
    const Json structured = Json::parse(structured_json, nullptr, false);
    if (!structured.is_object()) return out;
    auto calls = structured.find("tool_calls");
    if (calls == structured.end() || !calls->is_array()) return out;
    for (const Json &call : *calls) {
        if (!call.is_object()) continue;
        const auto text = [&](const char *key) {
            auto field = call.find(key);
            return field != call.end() && field->is_string() ? field->get<std::string>() : std::string();
        };
        const std::string name = text("name");
        out.emplace_back(text("id"), name.empty() ? kUnknownTool : name);
    }
    return out;
}

// "tool_call_id" of a role "tool" message's structured content, or "".
std::string tool_call_id_of(std::string_view structured_json) {
    if (structured_json.empty()) return "";
    const Json structured = Json::parse(structured_json, nullptr, false);
    if (!structured.is_object()) return "";
    auto id = structured.find("tool_call_id");
    return id != structured.end() && id->is_string() ? id->get<std::string>() : "";
}

// Which tool each recent call of a session was for, so that its result
// (which names only the call id) is counted for that tool. Bounded: a call
// is forgotten when its result arrives, or as the oldest of kLimit.
class CallNames {
  public:
    void remember(const std::string &session, const std::string &call_id, const std::string &name) {
        if (call_id.empty()) return;
        std::lock_guard lock(mutex_);
        Key key{session, call_id};
        names_[key] = {name, ++added_};
        order_.emplace_back(std::move(key), added_);
        while (order_.size() > kLimit) {
            // Only the entry this position was for: a call answered (and
            // taken) and then seen again has a later number.
            auto oldest = names_.find(order_.front().first);
            if (oldest != names_.end() && oldest->second.second == order_.front().second)
                names_.erase(oldest);
            order_.pop_front();
        }
    }
    // The tool of that call (forgotten afterwards), or kUnknownTool.
    std::string take(const std::string &session, const std::string &call_id) {
        std::lock_guard lock(mutex_);
        auto it = names_.find({session, call_id});
        if (it == names_.end()) return kUnknownTool;
        std::string name = std::move(it->second.first);
        names_.erase(it); // its place in order_ goes when it reaches the front
        return name;
    }

  private:
    using Key = std::pair<std::string, std::string>; // (session, call id)
    static constexpr std::size_t kLimit = 4096;
    std::mutex mutex_;
    std::map<Key, std::pair<std::string, uint64_t>> names_; // -> (tool, number)
    std::deque<std::pair<Key, uint64_t>> order_;
    uint64_t added_ = 0;
};

// The output_file, written in batches by a thread of its own: a write and
// a flush per message, on the request's thread, was most of what this
// plugin cost a send. A line reaches the file at most kLinger after
// `append` (sooner once kBatch bytes wait), and everything waiting is
// written when the instance is destroyed (reload, shutdown). A failed write
// fails the next `append`s: the stream stays bad, as it did when each call
// wrote its own line.
class LineWriter {
  public:
    explicit LineWriter(const std::filesystem::path &file) {
        out_.open(file, std::ios::app | std::ios::binary);
        if (!out_)
            throw Failure(SWH_E_INVALID,
                          "analytics: cannot open output_file '" + file.string() + "' for appending");
        thread_ = std::thread([this] { run(); });
    }
    ~LineWriter() {
        {
            std::lock_guard lock(mutex_);
            stopping_ = true;
        }
        wake_.notify_one();
        thread_.join();
    }
    LineWriter(const LineWriter &) = delete;
    LineWriter &operator=(const LineWriter &) = delete;

    // Lines never interleave: each is appended whole, under the lock.
    void append(const std::string &line) {
        std::lock_guard lock(mutex_);
        if (failed_) throw Failure(SWH_E_UNAVAILABLE, "analytics: writing the output_file failed");
        const bool first = waiting_.empty();
        waiting_ += line;
        waiting_ += '\n';
        if (first || waiting_.size() >= kBatch) wake_.notify_one();
    }

  private:
    static constexpr std::size_t kBatch = 64 * 1024;
    static constexpr std::chrono::milliseconds kLinger{20};

    void run() {
        std::unique_lock lock(mutex_);
        while (true) {
            wake_.wait(lock, [&] { return stopping_ || !waiting_.empty(); });
            // Let more lines join the batch (not when stopping: write at once).
            wake_.wait_for(lock, kLinger, [&] { return stopping_ || waiting_.size() >= kBatch; });
            if (!waiting_.empty()) {
                std::string batch;
                batch.swap(waiting_);
                lock.unlock();
                out_.write(batch.data(), static_cast<std::streamsize>(batch.size()));
                out_.flush();
                const bool ok = static_cast<bool>(out_);
                lock.lock();
                if (!ok) failed_ = true;
            }
            if (stopping_ && waiting_.empty()) return;
        }
    }

    std::ofstream out_; // the writer thread's only
    std::mutex mutex_;
    std::condition_variable wake_;
    std::string waiting_; // guarded by mutex_
    bool stopping_ = false, failed_ = false;
    std::thread thread_; // last: started once the rest is ready
};

class Analytics {
  public:
    Analytics(swh::cpp::Host host, const Settings &config) : host_(host) {
        for (const std::string &stage : config.stages) {
            if (stage == "user")
                stages_ |= SWH_STAGE_USER;
            else if (stage == "assistant")
                stages_ |= SWH_STAGE_ASSISTANT;
            else
                throw Failure(SWH_E_INVALID, "analytics: stages: unknown stage '" + stage + "'");
        }
        if (stages_ == 0) throw Failure(SWH_E_INVALID, "analytics: stages must name at least one stage");
        const int64_t complexity_words = config.complexity_words;
        if (complexity_words < 1) throw Failure(SWH_E_INVALID, "analytics: complexity_words must be >= 1");
        lexicon_.complexity_words = static_cast<std::size_t>(complexity_words);
        for (const auto &w : config.positive_words)
            lexicon_.positive.insert(lower(w));
        for (const auto &w : config.negative_words)
            lexicon_.negative.insert(lower(w));
        publish_ = config.publish_events;
        metrics_ = config.metrics;
        add_metadata_ = config.add_metadata;
        const swh_host_api *raw = host.raw();
        if (publish_ && !(SWH_HAS_MEMBER(raw, swh_host_api, publish_event) && raw->publish_event))
            throw Failure(SWH_E_INVALID,
                          "analytics: publish_events is on but the host offers no publish_event");
        if (metrics_ && !(SWH_HAS_MEMBER(raw, swh_host_api, metric_add) && raw->metric_add)) metrics_ = false;
        const std::string &path = config.output_file;
        if (!path.empty()) {
            const std::filesystem::path file(path);
            if (file.has_parent_path()) std::filesystem::create_directories(file.parent_path());
            out_ = std::make_unique<LineWriter>(file);
        }
    }

    uint32_t stages() const { return stages_; }

    void process(const swh::cpp::MiddlewareInput &input, swh::cpp::Editor &editor) {
        const swh::cpp::Message &m = input.message;
        const std::string role(m.role);
        const auto a = swh::analytics::analyse(m.content, lexicon_);
        Json record = {{"session_id", std::string(m.session_id)},
                       {"message_id", std::string(m.id)},
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
        // Tool calls (a reply) and tool results (role "tool"), from the
        // structured content a 1.3 host passes.
        Json tools = Json::array();
        for (const auto &[id, name] : tool_calls_of(m.structured_json)) {
            call_names_.remember(std::string(m.session_id), id, name);
            tools.push_back(name);
        }
        std::string result_of; // the tool a role "tool" message answers
        if (role == "tool") {
            const std::string call_id = tool_call_id_of(m.structured_json);
            result_of = call_names_.take(std::string(m.session_id), call_id);
            record["tool_call_id"] = call_id;
            record["tool_result"] = result_of;
        }
        if (!tools.empty()) record["tool_calls"] = tools;
        record["user_id"] = std::string(input.session.user_id);
        record["provider"] = std::string(input.session.provider);
        record["model"] = std::string(input.session.model);
        const Json context = Json::parse(input.context_json, nullptr, false);
        if (context.is_object() && context.contains("user_context") && context["user_context"].is_object() &&
            context["user_context"].contains("type"))
            record["user_type"] = context["user_context"]["type"];

        const std::string line = dump(record);
        if (out_) out_->append(line);
        if (publish_) host_.publish_event("analytics.message", line);
        if (metrics_) {
            const std::string labels =
                dump(Json{{"role", role}, {"intent", a.intent}, {"sentiment", a.sentiment}});
            const std::string role_label = dump(Json{{"role", role}});
            host_.metric_add("swarmhost_analytics_messages_total", 1, labels);
            host_.metric_add("swarmhost_analytics_content_bytes_total", static_cast<double>(a.content_length),
                             role_label);
            host_.metric_add("swarmhost_analytics_words_total", static_cast<double>(a.word_count),
                             role_label);
            for (const Json &tool : tools)
                host_.metric_add("swarmhost_analytics_tool_calls_total", 1, dump(Json{{"tool", tool}}));
            if (!result_of.empty())
                host_.metric_add("swarmhost_analytics_tool_results_total", 1,
                                 dump(Json{{"tool", result_of}}));
        }
        if (add_metadata_) {
            Json patch = {{"analytics",
                           {{"content_length", a.content_length},
                            {"word_count", a.word_count},
                            {"complexity", a.complexity},
                            {"intent", a.intent},
                            {"sentiment", a.sentiment}}}};
            if (!tools.empty()) patch["analytics"]["tool_calls"] = tools;
            if (!result_of.empty()) patch["analytics"]["tool_result"] = result_of;
            editor.merge_metadata(dump(patch));
        }
    }

  private:
    static std::string lower(std::string s) {
        for (char &c : s)
            if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
        return s;
    }

    swh::cpp::Host host_;
    uint32_t stages_ = 0;
    Lexicon lexicon_;
    bool publish_ = false, metrics_ = true, add_metadata_ = true;
    CallNames call_names_;
    std::unique_ptr<LineWriter> out_; // last: destroyed (and drained) first
};

} // namespace

SWH_CPP_MIDDLEWARE(
    Analytics, "analytics", "0.1.0",
    "Message length, complexity, rule-based intent and sentiment as JSON lines, host events and "
    "counters",
    kSchema)
