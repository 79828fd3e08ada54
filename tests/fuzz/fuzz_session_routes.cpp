// libFuzzer target: the routes of the collaborative and the templated session
// types (plugins/session_collaborative, plugins/session_templated), called
// through their C ABI tables as the host calls them, with the host's own
// services table (host/loader/host_services.cpp).
//
// What an attacker or a damaged store controls is fuzzed together: the
// session's stored metadata (the roster / the workflow state live there, so
// a tampered row arrives here), the request body, the caller and the {user}
// path segment. Up to three requests run in a row on one session, each
// answer's metadata patch merged in as the host stores it, so the fuzzer
// reaches states that need an earlier request (a participant added, then
// updated).
//
// Input layout: byte 0 bit 0 picks the type; the rest is split on 0x1e into
// the stored metadata and up to three requests; a request is its route byte,
// then caller 0x1f {user} 0x1f body.
// Findings: a crash, a sanitizer report, an answer that breaks the ABI's
// promises (respond not called exactly once after SWH_OK, a status outside
// 100..599, a JSON answer, metadata patch or event payload that is not JSON).
#include "loader/host_services.hpp"

#include <nlohmann/json.hpp>
#include <swarmhost/swarmhost.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

extern "C" const swh_plugin_descriptor *swh_collaborative_entry(void);
extern "C" const swh_plugin_descriptor *swh_templated_entry(void);

namespace {

using Json = nlohmann::json;

[[noreturn]] void finding(const std::string &what) {
    std::fprintf(stderr, "fuzz_session_routes: %s\n", what.c_str());
    std::abort();
}

swh_str str(std::string_view s) {
    return {s.data(), s.size()};
}

Json must_be_object(swh_str text, const char *what) {
    Json j = Json::parse(std::string_view(text.ptr, text.len), nullptr, false);
    if (j.is_discarded() || !j.is_object())
        finding(std::string(what) + " is not a JSON object: " + std::string(text.ptr, text.len));
    return j;
}

// The answer side of one call, checked as the host would take it.
struct Answer {
    int responds = 0;
    Json metadata_patch = Json::object();

    static void respond(void *ctx, uint32_t status, swh_str content_type, swh_str body) {
        auto &self = *static_cast<Answer *>(ctx);
        ++self.responds;
        if (status < 100 || status > 599) finding("status " + std::to_string(status));
        if (std::string_view(content_type.ptr, content_type.len).starts_with("application/json") &&
            !Json::accept(std::string_view(body.ptr, body.len)))
            finding("a JSON answer that does not parse: " + std::string(body.ptr, body.len));
    }
    static void merge(void *ctx, swh_str json_object) {
        auto &self = *static_cast<Answer *>(ctx);
        self.metadata_patch.update(must_be_object(json_object, "a metadata patch"));
    }
    static void publish(void *, swh_str type, swh_str payload) {
        if (type.len == 0) finding("an event without a type");
        must_be_object(payload, "an event payload");
    }
};

// One instance of a session type, created once with the host's services.
class Instance {
  public:
    Instance(const swh_plugin_descriptor *descriptor, Json config)
        : services_(descriptor->name, swh::loader::null_environment()), config_(std::move(config)) {
        table_ = static_cast<const swh_session_type_v1 *>(descriptor->vtable);
        swh_config cfg{&config_, {}};
        services_.begin_create(&cfg);
        const swh_status status = table_->create(services_.api(), &cfg, &handle_);
        services_.end_create();
        if (status != SWH_OK) finding(std::string("create failed for ") + descriptor->name);
        const swh_route *routes = nullptr;
        if (table_->routes(handle_, &routes, &route_count_) != SWH_OK) finding("routes failed");
    }
    ~Instance() { table_->destroy(handle_); }
    Instance(const Instance &) = delete;
    Instance &operator=(const Instance &) = delete;

    // Runs one request on `metadata` and merges its patch in.
    void call(Json &metadata, std::string_view request) const {
        const uint32_t route = request.empty() ? 0 : static_cast<uint8_t>(request[0]) % (route_count_ + 1);
        if (!request.empty()) request.remove_prefix(1);
        const std::vector<std::string_view> parts = split(request, '\x1f', 3);
        const std::string_view caller = parts[0], user = parts.size() > 1 ? parts[1] : "",
                               body = parts.size() > 2 ? parts[2] : "";

        // As the host stores it: its JSON is valid UTF-8 (a damaged row that
        // is not never reaches a plugin: from_abi refuses it).
        const std::string metadata_text = metadata.dump(-1, ' ', false, Json::error_handler_t::replace);
        swh_session session{};
        session.struct_size = sizeof session;
        session.id = str("0123456789abcdef0123456789abcdef");
        session.user_id = str("owner");
        session.status = str(SWH_SESSION_ACTIVE);
        session.config_json = str("{}");
        session.context_json = str("{}");
        session.metadata_json = str(metadata_text);

        const swh_str params[] = {str(user)};
        swh_route_request req{};
        req.struct_size = sizeof req;
        req.route_index = route; // one past the table: the plugin must refuse it, not crash
        req.session = &session;
        req.caller_user_id = str(caller);
        req.content_type = str("application/json");
        req.body = str(body);
        req.path_params = params;
        req.path_param_count = 1;

        Answer answer;
        swh_route_response res{sizeof res, &answer, &Answer::respond, &Answer::merge, &Answer::publish};
        const swh_status status = table_->handle_route(handle_, &req, &res);
        if (status == SWH_OK && answer.responds != 1)
            finding("SWH_OK with respond called " + std::to_string(answer.responds) + " times");
        if (answer.responds > 1) finding("respond called more than once");
        if (status != SWH_OK && table_->last_error(handle_) == nullptr)
            finding("a failure without last_error");
        if (status == SWH_OK) metadata.update(answer.metadata_patch);
    }

    static std::vector<std::string_view> split(std::string_view s, char sep, std::size_t most) {
        std::vector<std::string_view> out;
        while (out.size() + 1 < most) {
            const auto at = s.find(sep);
            if (at == std::string_view::npos) break;
            out.push_back(s.substr(0, at));
            s.remove_prefix(at + 1);
        }
        out.push_back(s);
        return out;
    }

  private:
    swh::loader::HostServices services_;
    Json config_;
    const swh_session_type_v1 *table_ = nullptr;
    void *handle_ = nullptr;
    std::size_t route_count_ = 0;
};

const Instance &collaborative() {
    static const Instance instance(swh_collaborative_entry(), Json::object());
    return instance;
}
const Instance &templated() {
    static const Instance instance(swh_templated_entry(), Json{{"templates_dir", SWH_FUZZ_TEMPLATES_DIR}});
    return instance;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    const Instance &type = (data[0] & 1) ? templated() : collaborative();
    const std::vector<std::string_view> parts =
        Instance::split(std::string_view(reinterpret_cast<const char *>(data + 1), size - 1), '\x1e', 4);

    // The stored metadata as the store hands it back: a JSON object, or
    // whatever a damaged row holds (the host passes the text through).
    Json metadata = Json::parse(parts[0], nullptr, false);
    if (metadata.is_discarded() || !metadata.is_object()) metadata = Json{{"damaged", std::string(parts[0])}};
    for (std::size_t i = 1; i < parts.size(); ++i)
        type.call(metadata, parts[i]);
    return 0;
}
