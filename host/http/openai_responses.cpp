#include "http/openai_responses.hpp"

#include "conversation/items.hpp"
#include "conversation/openai_ids.hpp"
#include "conversation/state.hpp"
#include "http/api.hpp"
#include "http/deadlines.hpp"
#include "http/json_codec.hpp"
#include "http/openai_responses_request.hpp"
#include "model/field_checks.hpp"
#include "util/clock.hpp"
#include "util/ids.hpp"

#include <set>
#include <spdlog/spdlog.h>

namespace swh::http::openai {

namespace cv = conversation;

namespace {

constexpr const char *kJson = "application/json";

const char *error_type(ErrorKind kind) {
    switch (kind) {
    case ErrorKind::Unauthorized:
        return "authentication_error";
    case ErrorKind::Forbidden:
        return "permission_error";
    case ErrorKind::RateLimited:
        return "rate_limit_error";
    case ErrorKind::BudgetExceeded:
        return "budget_exceeded";
    case ErrorKind::Upstream:
    case ErrorKind::Unavailable:
    case ErrorKind::Timeout:
    case ErrorKind::Internal:
        return "server_error";
    default:
        return "invalid_request_error";
    }
}

std::string not_found_response(const std::string &id) {
    return "Response with id '" + id + "' not found.";
}

// The session and reply a response id names, if the caller may see it.
struct FoundResponse {
    cv::StoredObject object;
    const Message *reply = nullptr;
};

FoundResponse find_response(cv::StateStore &store, const std::string &id, const Access &access,
                            const std::string &not_found) {
    const auto ref = cv::parse_response_id(id);
    if (!ref) throw ApiError(ErrorKind::NotFound, not_found);
    FoundResponse found{store.load(ref->session_id, access, std::nullopt, not_found), nullptr};
    found.reply = cv::find_message(found.object.messages, ref->message_id);
    if (!found.reply || !cv::is_response(*found.reply) ||
        cv::deleted_responses(found.object.session).count(ref->message_id))
        throw ApiError(ErrorKind::NotFound, not_found);
    return found;
}

Json usage_of(const Message &reply) {
    const TokenCounts counts = token_counts(reply);
    return {{"input_tokens", counts.input},
            {"input_tokens_details", {{"cached_tokens", counts.cached}}},
            {"output_tokens", counts.output},
            {"output_tokens_details", {{"reasoning_tokens", counts.reasoning}}},
            {"total_tokens", counts.total()}};
}

// What a response looks like at every stage: the request's envelope over
// OpenAI's defaults, then what the reply (if any) made of it.
Json response_object(const std::string &id, const Json &envelope, const Message *reply, const char *status) {
    Json response = {{"id", id},
                     {"object", "response"},
                     {"created_at", 0},
                     {"status", status},
                     {"background", false},
                     {"error", nullptr},
                     {"incomplete_details", nullptr},
                     {"instructions", nullptr},
                     {"max_output_tokens", nullptr},
                     {"model", ""},
                     {"output", Json::array()},
                     {"parallel_tool_calls", true},
                     {"previous_response_id", nullptr},
                     {"conversation", nullptr},
                     {"reasoning", {{"effort", nullptr}, {"summary", nullptr}}},
                     {"store", true},
                     {"temperature", 1.0},
                     {"text", {{"format", {{"type", "text"}}}}},
                     {"tool_choice", "auto"},
                     {"tools", Json::array()},
                     {"top_p", 1.0},
                     {"truncation", "disabled"},
                     {"usage", nullptr},
                     {"user", nullptr},
                     {"metadata", Json::object()}};
    for (const auto &[key, value] : envelope.items())
        response[key] = value;
    if (!reply) return response;
    response["output"] = cv::output_of(*reply);
    response["usage"] = usage_of(*reply);
    const std::string finish = finish_reason_of(*reply);
    if (finish == "length" || finish == "content_filter") {
        response["status"] = "incomplete";
        response["incomplete_details"] = {
            {"reason", finish == "length" ? "max_output_tokens" : "content_filter"}};
    }
    return response;
}

Json output_text_part(const std::string &text) {
    return {
        {"type", "output_text"}, {"text", text}, {"annotations", Json::array()}, {"logprobs", Json::array()}};
}

// Answers a response once it is stored (or, store:false, produced).
class WholeResponse : public SendObserver {
  public:
    WholeResponse(std::shared_ptr<Exchange> exchange, std::string id, Json envelope)
        : exchange_(std::move(exchange)), id_(std::move(id)), envelope_(std::move(envelope)) {}
    void on_user_stored(const Message &) override {}
    bool on_chunk(std::string_view) override { return !exchange_->client_gone(); }
    bool on_reply_event(const ReplyEvent &) override { return !exchange_->client_gone(); }
    void on_complete(const Message &, const Message &reply, double overhead_ms) override {
        char overhead[32];
        std::snprintf(overhead, sizeof overhead, "%.3f", overhead_ms);
        exchange_->respond(200, kJson, dump_json(response_object(id_, envelope_, &reply, "completed")),
                           {{"X-Swarmhost-Overhead-Ms", overhead}});
    }
    void on_error(const ApiError &error) override { respond_openai_error(*exchange_, error); }

  private:
    std::shared_ptr<Exchange> exchange_;
    std::string id_;
    Json envelope_;
};

// The Responses event stream (openai-node ResponseStreamEvent): created,
// in_progress, then per output item added → its parts' deltas → done, then
// completed (or failed). Every event carries `type` and a `sequence_number`.
class StreamedResponse : public SendObserver {
  public:
    StreamedResponse(std::shared_ptr<Exchange> exchange, std::string id, std::string reply_id, Json envelope,
                     std::chrono::milliseconds keepalive, std::shared_ptr<void> stream_slot)
        : exchange_(std::move(exchange)), id_(std::move(id)), reply_id_(std::move(reply_id)),
          envelope_(std::move(envelope)), keepalive_(keepalive), stream_slot_(std::move(stream_slot)) {}

    void on_user_stored(const Message &) override {
        exchange_->start_stream();
        exchange_->keep_alive(keepalive_);
        started_ = true;
        const Json pending = response_object(id_, envelope_, nullptr, "in_progress");
        emit("response.created", {{"response", pending}});
        emit("response.in_progress", {{"response", pending}});
    }
    bool on_chunk(std::string_view text) override {
        if (text_index_ < 0) open_text();
        text_ += text;
        return emit("response.output_text.delta", {{"item_id", cv::message_item_id(reply_id_)},
                                                   {"output_index", text_index_},
                                                   {"content_index", 0},
                                                   {"delta", text},
                                                   {"logprobs", Json::array()}});
    }
    bool on_reply_event(const ReplyEvent &event) override {
        if (event.type != ReplyEvent::Type::ToolCall) return !exchange_->client_gone();
        close_text();
        auto call = calls_.find(event.index);
        if (call == calls_.end()) {
            call = calls_.emplace(event.index, OpenCall{next_index_++, event.id, event.name, ""}).first;
            emit("response.output_item.added",
                 {{"output_index", call->second.output_index},
                  {"item", call_item(event.index, call->second, "in_progress")}});
        }
        if (event.text.empty()) return !exchange_->client_gone();
        call->second.arguments += event.text;
        return emit("response.function_call_arguments.delta",
                    {{"item_id", cv::call_item_id(reply_id_, event.index)},
                     {"output_index", call->second.output_index},
                     {"delta", event.text}});
    }
    void on_complete(const Message &, const Message &reply, double overhead_ms) override {
        close_text();
        for (auto &[index, call] : calls_) {
            const std::string item_id = cv::call_item_id(reply_id_, index);
            emit("response.function_call_arguments.done", {{"item_id", item_id},
                                                           {"output_index", call.output_index},
                                                           {"name", call.name},
                                                           {"arguments", call.arguments}});
            emit("response.output_item.done",
                 {{"output_index", call.output_index}, {"item", call_item(index, call, "completed")}});
        }
        Json response = response_object(id_, envelope_, &reply, "completed");
        // Items the stream never opened (an empty reply's message item).
        const Json &output = response["output"];
        for (int i = next_index_; i < static_cast<int>(output.size()); ++i) {
            emit("response.output_item.added", {{"output_index", i}, {"item", output[i]}});
            emit("response.output_item.done", {{"output_index", i}, {"item", output[i]}});
        }
        response["swarmhost"] = {{"gateway_overhead_ms", overhead_ms}};
        emit("response.completed", {{"response", response}});
        exchange_->end_stream();
    }
    void on_error(const ApiError &error) override {
        if (!started_) return respond_openai_error(*exchange_, error);
        Json failed = response_object(id_, envelope_, nullptr, "failed");
        failed["error"] = {{"code", error_code(error.kind())}, {"message", error.what()}};
        emit("response.failed", {{"response", failed}});
        exchange_->end_stream();
    }

  private:
    struct OpenCall {
        int output_index;
        std::string id, name, arguments;
    };

    bool emit(const char *type, Json data) {
        data["type"] = type;
        data["sequence_number"] = sequence_++;
        return exchange_->send_event(type, dump_json(data));
    }
    Json call_item(uint32_t index, const OpenCall &call, const char *status) const {
        return {{"id", cv::call_item_id(reply_id_, index)},
                {"type", "function_call"},
                {"status", status},
                {"call_id", call.id},
                {"name", call.name},
                {"arguments", std::string(status) == "completed" ? call.arguments : ""}};
    }
    Json text_item(const char *status, Json content) const {
        return {{"id", cv::message_item_id(reply_id_)},
                {"type", "message"},
                {"status", status},
                {"role", "assistant"},
                {"content", std::move(content)}};
    }
    void open_text() {
        text_index_ = next_index_++;
        emit("response.output_item.added",
             {{"output_index", text_index_}, {"item", text_item("in_progress", Json::array())}});
        emit("response.content_part.added", {{"item_id", cv::message_item_id(reply_id_)},
                                             {"output_index", text_index_},
                                             {"content_index", 0},
                                             {"part", output_text_part("")}});
    }
    void close_text() {
        if (text_index_ < 0 || text_closed_) return;
        text_closed_ = true;
        const std::string item_id = cv::message_item_id(reply_id_);
        emit("response.output_text.done", {{"item_id", item_id},
                                           {"output_index", text_index_},
                                           {"content_index", 0},
                                           {"text", text_},
                                           {"logprobs", Json::array()}});
        emit("response.content_part.done", {{"item_id", item_id},
                                            {"output_index", text_index_},
                                            {"content_index", 0},
                                            {"part", output_text_part(text_)}});
        emit("response.output_item.done",
             {{"output_index", text_index_},
              {"item", text_item("completed", Json::array({output_text_part(text_)}))}});
    }

    std::shared_ptr<Exchange> exchange_;
    std::string id_, reply_id_;
    Json envelope_;
    std::chrono::milliseconds keepalive_;
    std::shared_ptr<void> stream_slot_;
    bool started_ = false;
    int64_t sequence_ = 0;
    int next_index_ = 0;
    int text_index_ = -1;
    bool text_closed_ = false;
    std::string text_;
    std::map<uint32_t, OpenCall> calls_;
};

// Where a new response goes and what it continues.
struct Placement {
    std::vector<Message> history;                // what the provider sees before the new turns
    std::string session_id;                      // "" = store nothing
    std::string parent;                          // the reply it continues in that session ("" = none)
    Json conversation = nullptr;                 // {"id"} when appended to a conversation
    std::optional<cv::StoredObject> branch_from; // set: copy `history` into a new chain first
};

Placement place(cv::StateStore &store, const ResponsesRequest &request, const Access &access) {
    Placement placement;
    if (!request.previous_response_id.empty()) {
        FoundResponse found =
            find_response(store, request.previous_response_id, access,
                          "Previous response with id '" + request.previous_response_id + "' not found.");
        placement.history = cv::history_through(found.object, found.reply->id);
        placement.parent = found.reply->id;
        if (found.object.messages.back().id == found.reply->id)
            placement.session_id = found.object.session.id;
        else
            placement.branch_from = std::move(found.object); // an earlier point: the chain branches
    } else if (!request.conversation.empty()) {
        const std::string not_found = "Conversation with id '" + request.conversation + "' not found.";
        const auto session_id = cv::parse_conversation_id(request.conversation);
        if (!session_id) throw ApiError(ErrorKind::NotFound, not_found);
        cv::StoredObject object = store.load(*session_id, access, cv::Kind::Conversation, not_found);
        placement.history = cv::without_items(object.messages, cv::deleted_items(object.session));
        placement.session_id = object.session.id;
        placement.conversation = {{"id", request.conversation}};
    }
    return placement;
}

void run_create(ResponsesRequest request, std::shared_ptr<Exchange> exchange, const DoorContext &door) {
    cv::StateStore store(door.sessions);
    const Access &access = door.caller.access;
    Placement placement = place(store, request, access);
    // A tool result answers a call of the history or of this input; checked
    // before anything is stored.
    cv::check_call_ids(placement.history, request.input);

    CompletionParams params;
    params.received_at_us = exchange->received_at_us();
    std::tie(params.provider, params.model) = route_model(*door.sessions.pipeline(), request.model);
    const std::string reply_id = new_uuid();
    if (request.store) {
        if (placement.branch_from)
            placement.session_id =
                store.branch(*placement.branch_from, placement.history, access, request.previous_response_id)
                    .id;
        else if (placement.session_id.empty())
            placement.session_id =
                store.create(cv::Kind::Responses, access, params.provider, params.model).id;
        if (placement.branch_from) placement.parent.clear(); // the copies carry no marks
    } else {
        placement.session_id.clear(); // the history was read; nothing is written
    }
    // store:false still names the response (a session that does not exist:
    // retrieving it is a 404, as at OpenAI).
    const std::string id =
        cv::response_id(placement.session_id.empty() ? new_uuid() : placement.session_id, reply_id);
    Json envelope = request.envelope;
    envelope["created_at"] = now_us() / 1'000'000;
    envelope["model"] = request.model;
    envelope["previous_response_id"] =
        request.previous_response_id.empty() ? Json() : Json(request.previous_response_id);
    envelope["conversation"] = placement.conversation;

    params.messages = std::move(placement.history);
    params.new_turns = request.input.messages.size();
    for (Message &turn : request.input.messages)
        params.messages.push_back(std::move(turn));
    params.system_prompt = request.system_prompt();
    params.params = std::move(request.params);
    params.stream = request.stream;
    params.session_id = placement.session_id;
    params.access = access;
    params.reply_id = reply_id;
    params.turn_metadata = {{"openai", {{"response", reply_id}}}};
    params.reply_metadata = {{"openai", {{"response", envelope}, {"parent", placement.parent}}}};

    std::shared_ptr<SendObserver> observer;
    if (request.stream)
        observer =
            std::make_shared<StreamedResponse>(exchange, id, reply_id, envelope, door.keepalive,
                                               door.caller.stream_slot ? door.caller.stream_slot() : nullptr);
    else
        observer = std::make_shared<WholeResponse>(exchange, id, envelope);
    observer = under_deadline(std::move(observer), exchange);
    if (exchange->deadline_passed()) return; // passed while it waited for a worker: not started
    try {
        exchange->on_client_gone(door.sessions.complete(std::move(params), observer));
    } catch (const ApiError &e) {
        observer->on_error(e);
    }
}

uint32_t limit_of(const std::map<std::string, std::string> &query) {
    const auto it = query.find("limit");
    if (it == query.end()) return 20;
    try {
        std::size_t used = 0;
        const long value = std::stol(it->second, &used);
        if (used == it->second.size() && value >= 1 && value <= 100) return static_cast<uint32_t>(value);
    } catch (const std::exception &) {
    }
    fields::invalid("limit", "must be an integer from 1 to 100");
}

} // namespace

std::string openai_error_body(const ApiError &error) {
    const std::string param = fields::field_of(error.what());
    Json body{{"error",
               {{"message", error.what()},
                {"type", error_type(error.kind())},
                {"param", param.empty() ? Json() : Json(param)},
                {"code", error_code(error.kind())}}}};
    with_details(body["error"], error);
    return dump_json(body);
}

void respond_openai_error(Exchange &exchange, const ApiError &error) {
    // The headers every door's errors carry (Retry-After, x-should-retry).
    exchange.respond(http_status(error.kind()), kJson, openai_error_body(error), error_headers(error));
}

void openai_json(std::shared_ptr<Exchange> exchange, const PostBlocking &post, int status,
                 std::function<Json()> job) {
    post([exchange = std::move(exchange), status, job = std::move(job)] {
        try {
            exchange->respond(status, kJson, dump_json(job()));
        } catch (const ApiError &e) {
            respond_openai_error(*exchange, e);
        } catch (const std::exception &e) {
            spdlog::error("internal error: {}", e.what());
            respond_openai_error(*exchange, ApiError(ErrorKind::Internal, "internal error"));
        }
    });
}

Json list_page(const Json &items, const std::map<std::string, std::string> &query) {
    for (const auto &[key, value] : query)
        if (key != "order" && key != "after" && key != "limit" && key != "include")
            fields::invalid(key, "is not a query parameter of this list (order, after, limit)");
    if (query.count("include"))
        fields::invalid("include", "is not supported: items carry everything there is");
    const std::string order = query.count("order") ? query.at("order") : "desc";
    if (order != "asc" && order != "desc") fields::invalid("order", "must be \"asc\" or \"desc\"");
    const uint32_t limit = limit_of(query);
    Json ordered = items;
    if (order == "desc") std::reverse(ordered.begin(), ordered.end());
    std::size_t start = 0;
    if (const auto after = query.find("after"); after != query.end()) {
        while (start < ordered.size() && ordered[start]["id"] != after->second)
            ++start;
        if (start == ordered.size())
            fields::invalid("after", "names no item of this list: '" + after->second + "'");
        ++start;
    }
    Json data = Json::array();
    for (std::size_t i = start; i < ordered.size() && data.size() < limit; ++i)
        data.push_back(ordered[i]);
    const bool has_more = start + data.size() < ordered.size();
    return {{"object", "list"},
            {"data", data},
            {"first_id", data.empty() ? Json() : data.front()["id"]},
            {"last_id", data.empty() ? Json() : data.back()["id"]},
            {"has_more", has_more}};
}

void responses_create(const Request &request, std::shared_ptr<Exchange> exchange, const DoorContext &door) {
    ResponsesRequest decoded;
    try {
        decoded = decode_responses_request(parse_body(request.body));
    } catch (const ApiError &e) {
        return respond_openai_error(*exchange, e);
    }
    door.post([decoded = std::move(decoded), exchange, door]() mutable {
        try {
            run_create(std::move(decoded), exchange, door);
        } catch (const ApiError &e) {
            respond_openai_error(*exchange, e);
        } catch (const std::exception &e) {
            spdlog::error("response failed: {}", e.what());
            respond_openai_error(*exchange, ApiError(ErrorKind::Internal, "internal error"));
        }
    });
}

void responses_retrieve(const std::string &id, std::shared_ptr<Exchange> exchange, const DoorContext &door) {
    openai_json(exchange, door.post, 200, [id, door] {
        cv::StateStore store(door.sessions);
        const FoundResponse found = find_response(store, id, door.caller.access, not_found_response(id));
        return response_object(id, cv::envelope_of(*found.reply), found.reply, "completed");
    });
}

void responses_delete(const std::string &id, std::shared_ptr<Exchange> exchange, const DoorContext &door) {
    openai_json(exchange, door.post, 200, [id, door] {
        cv::StateStore store(door.sessions);
        const FoundResponse found = find_response(store, id, door.caller.access, not_found_response(id));
        const std::string gone = found.reply->id;
        std::set<std::string> deleted = cv::deleted_responses(found.object.session);
        deleted.insert(gone);
        const bool all_gone =
            found.object.kind == cv::Kind::Responses &&
            std::all_of(found.object.messages.begin(), found.object.messages.end(),
                        [&](const Message &m) { return !cv::is_response(m) || deleted.count(m.id); });
        // A chain whose every response is deleted leaves the store; otherwise
        // the response is marked deleted: its turns stay the history of the
        // responses that continued it.
        if (all_gone)
            store.remove(found.object.session.id);
        else
            store.update_marks(found.object.session.id, [&](Json &marks) {
                Json &list = marks["deleted_responses"];
                if (!list.is_array()) list = Json::array();
                list.push_back(gone);
            });
        return Json{{"id", id}, {"object", "response.deleted"}, {"deleted", true}};
    });
}

void responses_input_items(const std::string &id, const std::map<std::string, std::string> &query,
                           std::shared_ptr<Exchange> exchange, const DoorContext &door) {
    openai_json(exchange, door.post, 200, [id, query, door] {
        cv::StateStore store(door.sessions);
        const FoundResponse found = find_response(store, id, door.caller.access, not_found_response(id));
        const std::set<std::string> deleted = cv::deleted_items(found.object.session);
        Json items = Json::array();
        for (const Message &m : cv::inputs_of(found.object.messages, found.reply->id))
            for (Json &item : cv::items_of(m, deleted))
                items.push_back(std::move(item));
        return list_page(items, query);
    });
}

} // namespace swh::http::openai
