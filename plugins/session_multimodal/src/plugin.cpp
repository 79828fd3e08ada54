// The "multimodal" session type (the guide's MultiModalSession): sessions of
// this type take file uploads (images, PDFs, plain text) under
// /v1/sessions/{id}/attachments, and a user message may name uploaded files
// in metadata.attachment_ids. The plugin then lists them, with the absolute
// path of each stored file, in the message's metadata.attachments, which the
// provider plugins send upstream in their vendor's own format.
//
// Files are content-addressed (<attachments_dir>/<sha256>), their type is
// sniffed from the bytes, and the per-session record lives in the session's
// metadata under "multimodal" (so it is in whatever store the manifest names).
#include "sniff.hpp"
#include "store.hpp"
#include "upload.hpp"
#include <swarmhost/cpp/time.hpp>

#include <swarmhost/cpp/attachments.hpp>

#include <swarmhost/cpp/plugin.hpp>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <ctime>
#include <set>
#include <span>
#include <string>
#include <vector>

namespace {

using swh::cpp::Failure;
using swh::cpp::iso8601;
using swh::multimodal::HttpError;
using Json = nlohmann::json;

constexpr const char *kStateKey = "multimodal";

std::string dump(const Json &j) {
    return j.dump(-1, ' ', false, Json::error_handler_t::replace);
}

// This type's state in a session's metadata: {"attachments": {id: record}}.
// Missing or malformed parts read as empty.
Json state_of(std::string_view session_metadata_json) {
    Json meta = Json::parse(session_metadata_json, nullptr, false);
    Json state = meta.is_object() && meta.contains(kStateKey) && meta[kStateKey].is_object() ? meta[kStateKey]
                                                                                             : Json::object();
    if (!state.contains("attachments") || !state["attachments"].is_object())
        state["attachments"] = Json::object();
    return state;
}

// What clients see of one attachment (the record plus its id, never the path).
Json public_record(const std::string &id, const Json &record) {
    Json out = record;
    out["id"] = id;
    return out;
}

struct Settings {
    std::string attachments_dir = "./data/attachments";
    int64_t max_bytes = 4194304;
    std::vector<std::string> allowed_types{"image/png",  "image/jpeg",      "image/gif",
                                           "image/webp", "application/pdf", "text/plain"};
    int64_t max_attachments_per_message = 8;
};

// One row declares a key and fills its member at create.
constexpr auto kSchema = swh::cpp::schema(
    swh::cpp::setting<&Settings::attachments_dir>(
        "attachments_dir", "\"./data/attachments\"",
        "Folder of the uploaded files, stored as <dir>/<sha256 of the bytes> (created if missing; "
        "relative to the daemon's working folder)"),
    swh::cpp::setting<&Settings::max_bytes>(
        "max_bytes", "4194304",
        "Largest attachment in bytes (413 above it); raise server.max_body_bytes too"),
    swh::cpp::setting<&Settings::allowed_types>(
        "allowed_types",
        "[\"image/png\",\"image/jpeg\",\"image/gif\",\"image/webp\",\"application/pdf\",\"text/plain\"]",
        "Accepted content types, as sniffed from the bytes (415 for others)"),
    swh::cpp::setting<&Settings::max_attachments_per_message>(
        "max_attachments_per_message", "8",
        "Most attachment ids one message may name in metadata.attachment_ids"));

class MultiModal {
  public:
    MultiModal(swh::cpp::Host host, const Settings &settings)
        : host_(host), store_(settings.attachments_dir), max_bytes_(settings.max_bytes),
          allowed_(settings.allowed_types), max_per_message_(settings.max_attachments_per_message) {
        check_config();
    }

    std::span<const swh_route> routes() const { return kRoutes; }

    // An HttpError thrown here is answered by the SDK helper as a JSON error.
    void handle(const swh::cpp::RouteRequest &request, swh::cpp::Response &response) {
        switch (request.route_index) {
        case kUpload:
            return upload(request, response);
        case kList:
            return list(request, response);
        case kDownload:
            return download(request, response);
        default:
            throw Failure(SWH_E_NOT_FOUND, "multimodal: no such route");
        }
    }

    // A new session starts with an empty record, whatever metadata the
    // client sent under this type's key.
    std::string on_session_created(const swh::cpp::Session &) {
        return dump(Json{{kStateKey, {{"attachments", Json::object()}}}});
    }

    void on_user_message(const swh::cpp::SessionMessage &in, swh::cpp::Editor &editor) {
        const Json meta = Json::parse(in.message.metadata_json, nullptr, false);
        if (!meta.is_object() || !meta.contains("attachment_ids")) return;
        const Json &ids = meta["attachment_ids"];
        if (!ids.is_array())
            throw Failure(SWH_E_INVALID, "metadata.attachment_ids must be a list of attachment ids");
        if (ids.empty()) return;
        if (ids.size() > static_cast<std::size_t>(max_per_message_))
            throw Failure(SWH_E_INVALID, "at most " + std::to_string(max_per_message_) +
                                             " attachments per message (max_attachments_per_message), got " +
                                             std::to_string(ids.size()));
        const Json records = state_of(in.session.metadata_json)["attachments"];
        Json listed = Json::array();
        std::set<std::string> seen;
        for (const Json &id : ids) {
            if (!id.is_string()) throw Failure(SWH_E_INVALID, "metadata.attachment_ids must hold strings");
            const std::string &text = id.get_ref<const std::string &>();
            if (seen.insert(text).second) listed.push_back(attachment_for_message(records, text));
        }
        editor.merge_metadata(dump(Json{{"attachments", std::move(listed)}}));
    }

  private:
    enum RouteIndex : uint32_t { kUpload = 0, kList = 1, kDownload = 2 };
    static constexpr swh_route kRoutes[] = {swh::cpp::route("POST", "attachments"),
                                            swh::cpp::route("GET", "attachments"),
                                            swh::cpp::route("GET", "attachments/{attachment}")};

    void check_config() const {
        if (max_bytes_ < 1 ||
            static_cast<uint64_t>(max_bytes_) > swh::cpp::attachments::kProviderMaxAttachmentBytes)
            throw Failure(SWH_E_INVALID,
                          "multimodal: max_bytes must be between 1 and " +
                              std::to_string(swh::cpp::attachments::kProviderMaxAttachmentBytes) +
                              " (the most a provider sends)");
        if (max_per_message_ < 1)
            throw Failure(SWH_E_INVALID, "multimodal: max_attachments_per_message must be >= 1");
        for (const auto &type : allowed_) {
            const auto &known = swh::multimodal::kSniffableTypes;
            if (std::find(std::begin(known), std::end(known), type) == std::end(known))
                throw Failure(SWH_E_INVALID,
                              "multimodal: allowed_types: '" + type +
                                  "' is not a type the plugin can detect (image/png, image/jpeg, "
                                  "image/gif, image/webp, application/pdf, text/plain)");
        }
    }

    bool allowed(const std::string &type) const {
        return std::find(allowed_.begin(), allowed_.end(), type) != allowed_.end();
    }

    // The sniffed type of an upload, refused (415) when the client's label
    // disagrees or the manifest does not allow it.
    std::string vetted_type(const swh::multimodal::Upload &upload) const {
        const auto sniffed = swh::multimodal::sniff(upload.bytes);
        if (!sniffed)
            throw HttpError(
                415, "unsupported_media_type",
                "the content is none of the recognised types (PNG, JPEG, GIF, WEBP, PDF, UTF-8 text)");
        if (!swh::multimodal::is_unlabelled(upload.declared_type) && upload.declared_type != *sniffed)
            throw HttpError(415, "unsupported_media_type",
                            "declared type '" + upload.declared_type +
                                "' does not match the content, which is '" + *sniffed + "'");
        if (!allowed(*sniffed))
            throw HttpError(415, "unsupported_media_type",
                            "type '" + *sniffed +
                                "' is not allowed here (allowed_types: " + dump(Json(allowed_)) + ")");
        return *sniffed;
    }

    void upload(const swh::cpp::RouteRequest &request, swh::cpp::Response &response) {
        const auto upload = swh::multimodal::parse_upload(request.content_type, request.body,
                                                          static_cast<uint64_t>(max_bytes_));
        const std::string type = vetted_type(upload);
        const std::string id = store_.put(upload.bytes);
        Json state = state_of(request.session.metadata_json);
        if (state["attachments"].contains(id)) { // already in this session: nothing changes
            response.json(200, dump(public_record(id, state["attachments"][id])));
            return;
        }
        const Json record = {{"name", upload.name},
                             {"mime_type", type},
                             {"size", upload.bytes.size()},
                             {"uploaded_at", iso8601(host_.now_us())}};
        state["attachments"][id] = record;
        response.merge_session_metadata(dump(Json{{kStateKey, state}}));
        Json event = public_record(id, record);
        event["session_id"] = std::string(request.session.id);
        response.publish("attachment_added", dump(event));
        response.json(201, dump(public_record(id, record)));
    }

    void list(const swh::cpp::RouteRequest &request, swh::cpp::Response &response) const {
        const Json records = state_of(request.session.metadata_json)["attachments"];
        std::vector<Json> items;
        for (const auto &[id, record] : records.items())
            items.push_back(public_record(id, record));
        std::sort(items.begin(), items.end(), [](const Json &a, const Json &b) {
            return std::pair(a.value("uploaded_at", ""), a.value("id", "")) <
                   std::pair(b.value("uploaded_at", ""), b.value("id", ""));
        });
        response.json(200, dump(Json{{"attachments", items}}));
    }

    void download(const swh::cpp::RouteRequest &request, swh::cpp::Response &response) const {
        const std::string id = request.params.empty() ? std::string() : std::string(request.params[0]);
        const Json records = state_of(request.session.metadata_json)["attachments"];
        if (!records.contains(id) || !records[id].is_object())
            throw HttpError(404, "not_found", "no attachment '" + id + "' in this session");
        const auto bytes = store_.get(id);
        if (!bytes)
            throw HttpError(404, "not_found", "the file of attachment '" + id + "' is no longer stored");
        response.respond(200, records[id].value("mime_type", "application/octet-stream"), *bytes);
    }

    // One entry of a message's metadata.attachments: the session's record of
    // `id` plus the absolute path the providers read.
    Json attachment_for_message(const Json &records, const std::string &id) const {
        if (!swh::multimodal::is_attachment_id(id) || !records.contains(id) || !records[id].is_object())
            throw Failure(SWH_E_INVALID,
                          "unknown attachment id '" + id +
                              "' for this session (upload it first: POST /v1/sessions/{id}/attachments)");
        const std::filesystem::path path = store_.path_of(id);
        std::error_code ec;
        if (!std::filesystem::is_regular_file(path, ec))
            throw Failure(SWH_E_INVALID, "attachment '" + id + "' is no longer stored");
        const Json &record = records[id];
        return {{"id", id},
                {"name", record.value("name", "")},
                {"mime_type", record.value("mime_type", "")},
                {"size", record.value("size", Json(0))},
                {"path", path.string()}};
    }

    swh::cpp::Host host_;
    swh::multimodal::Store store_;
    int64_t max_bytes_;
    std::vector<std::string> allowed_;
    int64_t max_per_message_;
};

} // namespace

SWH_CPP_SESSION_TYPE(MultiModal, "multimodal", "0.1.0",
                     "Image, PDF and text attachments for sessions, sent to providers in their own format",
                     kSchema)
