#include "pipeline/middleware_chain.hpp"

#include "loader/abi_convert.hpp"
#include "model/errors.hpp"

#include <algorithm>
#include <set>
#include <spdlog/spdlog.h>

namespace swh {

namespace {

// Kahn's algorithm: a middleware runs after everything in its `after` list;
// among the ready ones the highest priority goes first, then manifest order.
// (The manifest loader has already rejected unknown names and cycles.)
std::vector<MiddlewareSpec> execution_order(std::vector<MiddlewareSpec> specs) {
    std::vector<MiddlewareSpec> ordered;
    std::set<std::string> placed;
    std::vector<bool> done(specs.size(), false);
    while (ordered.size() < specs.size()) {
        std::optional<std::size_t> best;
        for (std::size_t i = 0; i < specs.size(); ++i) {
            if (done[i]) continue;
            const bool ready = std::all_of(specs[i].after.begin(), specs[i].after.end(),
                                           [&](const std::string &dep) { return placed.count(dep) > 0; });
            if (ready && (!best || specs[i].priority > specs[*best].priority)) best = i;
        }
        if (!best) throw std::logic_error("middleware dependency cycle reached the chain");
        done[*best] = true;
        placed.insert(specs[*best].instance->name());
        ordered.push_back(std::move(specs[*best]));
    }
    return ordered;
}

bool deps_ran(const MiddlewareSpec &spec, const std::vector<std::string> &processed) {
    return std::all_of(spec.after.begin(), spec.after.end(), [&](const std::string &dep) {
        return std::find(processed.begin(), processed.end(), dep) != processed.end();
    });
}

Json context_for(const Session &session, const std::vector<std::string> &processed) {
    Json context = session.context;
    context["system_context"]["processed_middleware"] = processed;
    return context;
}

} // namespace

bool conditions_hold(const Json &when, const Session &session) {
    for (const auto &[key, expected] : when.items()) {
        std::string actual;
        if (key == "user_type") {
            const Json &user =
                session.context.contains("user_context") ? session.context["user_context"] : Json();
            actual = user.is_object() && user.contains("type") && user["type"].is_string()
                         ? user["type"].get<std::string>()
                         : "";
        } else if (key == "provider") {
            actual = session.provider;
        } else if (key == "model") {
            actual = session.model;
        }
        if (!expected.is_string() || actual != expected.get<std::string>()) return false;
    }
    return true;
}

MiddlewareChain::MiddlewareChain(std::vector<MiddlewareSpec> specs)
    : specs_(execution_order(std::move(specs))) {}

ChainResult MiddlewareChain::run(uint32_t stage, const Session &session, Message message) const {
    return run_filtered(stage, session, std::move(message), false);
}

ChainResult MiddlewareChain::run_after_stream(const Session &session, Message message) const {
    return run_filtered(SWH_STAGE_ASSISTANT, session, std::move(message), true);
}

ChainResult MiddlewareChain::run_filtered(uint32_t stage, const Session &session, Message message,
                                          bool skip_streaming) const {
    ChainResult result;
    // The session is the same for every middleware of the pass: converted
    // to the ABI once, when the first one runs.
    std::optional<loader::SessionAbi> session_abi;
    if (auto it = message.metadata.find("processed_middleware");
        it != message.metadata.end() && it->is_array())
        result.processed = it->get<std::vector<std::string>>();
    for (const auto &spec : specs_) {
        auto &mw = *spec.instance;
        if (!(mw.stages() & stage)) continue;
        // A stream middleware has judged the streamed text already; the tool
        // calls of the reply it has not seen, so it judges them now, on the
        // message without its text (whose edits would be ignored anyway).
        const bool text_judged = skip_streaming && mw.streams();
        if (text_judged && !message.structured.contains("tool_calls")) continue;
        if (!conditions_hold(spec.when, session)) continue;
        if (!deps_ran(spec, result.processed)) {
            spdlog::debug("session {}: middleware '{}' skipped: a dependency did not run", session.id,
                          mw.name());
            continue;
        }
        const Json context = context_for(session, result.processed);
        Message tools_only;
        if (text_judged) {
            tools_only = message;
            tools_only.content.clear();
        }
        loader::MiddlewareOutcome outcome;
        try {
            if (!session_abi) session_abi.emplace(session);
            outcome = mw.process(stage, *session_abi, text_judged ? tools_only : message, context);
        } catch (const std::exception &e) { // the conversion (process itself never throws)
            outcome.status = SWH_E_INTERNAL;
            outcome.error = e.what();
        }
        if (outcome.status != SWH_OK) {
            spdlog::error("session {}: middleware '{}' failed ({}): {}", session.id, mw.name(),
                          outcome.status, outcome.error);
            try {
                mw.on_error(stage, session, message, context, outcome.status, outcome.error);
            } catch (const std::exception &e) {
                spdlog::error("session {}: middleware '{}' on_error failed: {}", session.id, mw.name(),
                              e.what());
            }
            if (spec.fail_closed) {
                result.rejection = mw.name() + " failed and is fail-closed: " + outcome.error;
                result.failed = true;
                break;
            }
            continue; // fail open: keep the last good message
        }
        if (outcome.rejection) {
            result.rejection = mw.name() + ": " + *outcome.rejection;
            break;
        }
        if (outcome.content && !text_judged) message.content = std::move(*outcome.content);
        if (outcome.structured) message.structured = std::move(*outcome.structured);
        if (!text_judged) {
            message.metadata.update(outcome.metadata_patch);
        } else {
            // What the middleware recorded on the stream (about the text)
            // stands; the tool-call pass only adds keys.
            for (const auto &[key, value] : outcome.metadata_patch.items())
                if (!message.metadata.contains(key)) message.metadata[key] = value;
        }
        result.processed.push_back(mw.name());
    }
    message.metadata["processed_middleware"] = result.processed;
    result.message = std::move(message);
    return result;
}

std::unique_ptr<MiddlewareChain::Stream> MiddlewareChain::open_stream(const Session &session,
                                                                      const Message &draft) const {
    auto stream = std::unique_ptr<Stream>(new Stream());
    stream->session_ = session;
    stream->draft_ = draft;
    for (const auto &spec : specs_) {
        auto &mw = *spec.instance;
        if (!(mw.stages() & SWH_STAGE_ASSISTANT) || !mw.streams()) continue;
        if (!conditions_hold(spec.when, session) || !deps_ran(spec, stream->processed_)) continue;
        try {
            stream->stages_.push_back(
                {&spec, mw.open_stream(session, draft, context_for(session, stream->processed_))});
            stream->processed_.push_back(mw.name());
        } catch (const loader::PluginError &e) {
            spdlog::error("session {}: middleware '{}' could not open a stream: {}", session.id, mw.name(),
                          e.what());
            if (spec.fail_closed)
                throw ApiError(ErrorKind::Unavailable,
                               "middleware " + mw.name() + " failed and is fail-closed");
        }
    }
    return stream;
}

void MiddlewareChain::Stream::stage_failed(Stage &stage, const loader::StreamOutput &out) {
    auto &mw = *stage.spec->instance;
    spdlog::error("session {}: middleware '{}' failed mid-stream: {}", session_.id, mw.name(), out.error);
    try {
        mw.on_error(SWH_STAGE_ASSISTANT, session_, draft_, context_for(session_, processed_), out.status,
                    out.error);
    } catch (const std::exception &e) {
        spdlog::error("session {}: middleware '{}' on_error failed: {}", session_.id, mw.name(), e.what());
    }
    // A fail-closed filter refusing the reply (SWH_E_REJECTED) is a policy
    // decision, 422; any other failure of a fail-closed stage is the server's, 503.
    if (stage.spec->fail_closed && out.status == SWH_E_REJECTED)
        throw ApiError(ErrorKind::Rejected, "reply rejected by middleware " + mw.name() + ": " + out.error);
    if (stage.spec->fail_closed)
        throw ApiError(ErrorKind::Unavailable, "middleware " + mw.name() + " failed and is fail-closed");
    stage.failed = true;
    processed_.erase(std::remove(processed_.begin(), processed_.end(), mw.name()), processed_.end());
}

// Passes `text` through every stage in order; each stage's output is the
// next one's input. When closing, each stage is closed after its last input
// and what it held back goes on down the chain.
std::string MiddlewareChain::Stream::feed(std::string text, bool closing) {
    for (Stage &stage : stages_) {
        if (stage.failed) continue; // failed open earlier: text passes unfiltered
        if (!text.empty()) {
            loader::StreamOutput out = stage.stream->push(text);
            metadata_.update(out.metadata_patch);
            if (out.status != SWH_OK) {
                stage_failed(stage, out);
                // Nothing of this piece is lost: what it emitted, or else the piece.
                if (out.text.empty()) out.text = std::move(text);
            }
            text = std::move(out.text);
        }
        if (closing && !stage.failed) {
            loader::StreamOutput out = stage.stream->close();
            metadata_.update(out.metadata_patch);
            if (out.status != SWH_OK) stage_failed(stage, out); // keeps what it emitted before failing
            text += out.text;
        }
    }
    return text;
}

std::string MiddlewareChain::Stream::push(std::string_view text) {
    return feed(std::string(text), false);
}

std::string MiddlewareChain::Stream::close() {
    std::string out = feed("", true);
    metadata_["processed_middleware"] = processed_;
    return out;
}

} // namespace swh
