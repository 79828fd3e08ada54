// The guide's MiddlewareChain: middleware instances ordered by their `after`
// dependencies and, among those free to run, by priority (higher first);
// `when` conditions; failure isolation (fail open by default, fail closed on
// request); a streamed variant for assistant replies.
#pragma once

#include "loader/instances.hpp"
#include "model/model.hpp"

#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace swh {

struct MiddlewareSpec {
    std::unique_ptr<loader::MiddlewareInstance> instance;
    int priority = 0;
    Json when = Json::object(); // user_type / provider / model
    std::vector<std::string> after;
    bool fail_closed = false;
};

// The result of one pass of the chain over one message.
struct ChainResult {
    Message message;                      // as the chain left it
    std::vector<std::string> processed;   // names that ran, in order
    std::optional<std::string> rejection; // "<name>: reason" when refused
    // The refusal is a fail-closed middleware that failed (crashed, timed
    // out, errored), not one that said no: the server's fault, so 503.
    bool failed = false;
};

class MiddlewareChain {
  public:
    MiddlewareChain() = default;
    explicit MiddlewareChain(std::vector<MiddlewareSpec> specs);

    bool empty() const { return specs_.empty(); }
    // Runs the whole-message pass for `stage` (SWH_STAGE_USER/ASSISTANT).
    // Records `processed_middleware` in the message metadata.
    ChainResult run(uint32_t stage, const Session &session, Message message) const;

    // A streamed reply through the assistant-stage middleware that stream.
    class Stream {
      public:
        // Text to pass on to the client (possibly empty while held back).
        std::string push(std::string_view text);
        // Flushes everything held back.
        std::string close();
        // Metadata the stream middleware recorded + processed_middleware.
        const Json &metadata() const { return metadata_; }
        const std::vector<std::string> &processed() const { return processed_; }

      private:
        friend class MiddlewareChain;
        struct Stage {
            const MiddlewareSpec *spec;
            std::unique_ptr<loader::MiddlewareInstance::Stream> stream;
            bool failed = false;
        };
        std::string feed(std::string text, bool closing);
        // Fail open: log, tell the middleware, pass text on unfiltered from
        // now on. Fail closed: throws ApiError(Rejected).
        void stage_failed(Stage &stage, const loader::StreamOutput &out);
        std::vector<Stage> stages_;
        Json metadata_ = Json::object();
        std::vector<std::string> processed_;
        Session session_;
        Message draft_;
    };
    // Opens streams for every assistant-stage middleware that implements
    // streaming and whose conditions hold. Throws ApiError(Rejected) when a
    // fail-closed middleware cannot open its stream.
    std::unique_ptr<Stream> open_stream(const Session &session, const Message &draft) const;
    // Assistant-stage middleware without stream support, run on the complete
    // streamed reply before it is stored; stream middleware run too when the
    // reply has tool calls, on the reply without its (already judged) text.
    ChainResult run_after_stream(const Session &session, Message message) const;

    const std::vector<MiddlewareSpec> &ordered() const { return specs_; }

  private:
    ChainResult run_filtered(uint32_t stage, const Session &session, Message message,
                             bool skip_streaming) const;
    std::vector<MiddlewareSpec> specs_; // in execution order
};

// Whether a middleware's `when` holds for this session (the guide's
// _check_conditions: user_type from user_context.type, provider, model).
bool conditions_hold(const Json &when, const Session &session);

} // namespace swh
