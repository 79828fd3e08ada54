// Test fixture middleware "fixture_mw": appends " [<tag>]" to the content, so
// the order of a chain shows in the text, and misbehaves on request: fails
// with a status, returns a status outside the ABI's range, merges metadata
// that is not JSON, or rejects. Its on_error bumps a host counter
// swarmhost_fixture_on_error_total{tag} so tests can see it was called.
// Never built into build/plugins: see CMakeLists.txt.
#include <swarmhost/cpp/edge.hpp>
#include <swarmhost/middleware.h>

#include <nlohmann/json.hpp>

#include <memory>
#include <string>

namespace {

using swh::edge::ErrorSlot;
using swh::edge::Failure;
using swh::edge::guarded;
using swh::edge::HostLog;
using swh::edge::to_str;
using swh::edge::view;
using Json = nlohmann::json;

struct Fixture {
    const swh_host_api *host = nullptr;
    std::string tag, mode, fail_on;
    uint32_t stages = 0;
};

struct Instance {
    ErrorSlot errors;
    std::unique_ptr<Fixture> impl;
};

swh_status f_create(const swh_host_api *host, const swh_config *cfg, void **out_handle) noexcept {
    if (out_handle == nullptr) return SWH_E_INVALID;
    Instance *instance = new (std::nothrow) Instance();
    *out_handle = instance;
    if (instance == nullptr) return SWH_E_INTERNAL;
    return guarded(instance->errors, [&]() -> swh_status {
        swh_str text{nullptr, 0};
        if (host == nullptr || host->config_json == nullptr ||
            host->config_json(host->host_ctx, cfg, &text) != SWH_OK)
            throw Failure(SWH_E_INVALID, "fixture_mw: no config");
        const Json config = Json::parse(view(text, "config"));
        auto f = std::make_unique<Fixture>();
        f->host = host;
        f->tag = config.at("tag").get<std::string>();
        f->mode = config.at("mode").get<std::string>();
        f->fail_on = config.at("fail_on").get<std::string>();
        for (const auto &s : config.at("stages"))
            f->stages |= s.get<std::string>() == "assistant" ? SWH_STAGE_ASSISTANT : SWH_STAGE_USER;
        if (f->mode != "ok" && f->mode != "fail" && f->mode != "garbage_status" &&
            f->mode != "garbage_metadata" && f->mode != "reject" && f->mode != "throw")
            throw Failure(SWH_E_INVALID, "fixture_mw: unknown mode '" + f->mode + "'");
        instance->impl = std::move(f);
        return SWH_OK;
    });
}

void f_destroy(void *handle) noexcept {
    delete static_cast<Instance *>(handle);
}

const char *f_last_error(void *handle) noexcept {
    return handle == nullptr ? "" : static_cast<Instance *>(handle)->errors.get();
}

uint32_t f_stages(void *handle) noexcept {
    auto *instance = static_cast<Instance *>(handle);
    return instance && instance->impl ? instance->impl->stages : 0;
}

swh_status f_process(void *handle, const swh_middleware_input *input,
                     const swh_message_editor *editor) noexcept {
    auto &instance = *static_cast<Instance *>(handle);
    return guarded(instance.errors, [&]() -> swh_status {
        const Fixture &f = *instance.impl;
        const std::string content(view(input->message->content, "content"));
        const bool misbehave = f.fail_on.empty() || content.find(f.fail_on) != std::string::npos;
        if (misbehave) {
            if (f.mode == "fail")
                throw Failure(SWH_E_UNAVAILABLE, "fixture_mw " + f.tag + ": deliberate failure");
            if (f.mode == "throw") throw std::runtime_error("fixture_mw " + f.tag + ": deliberate exception");
            if (f.mode == "garbage_status") return 4242;
            if (f.mode == "garbage_metadata") {
                editor->set_content(editor->ctx, to_str(content + " [" + f.tag + "-garbage]"));
                editor->merge_metadata(editor->ctx, to_str("{this is not json"));
                return SWH_OK;
            }
            if (f.mode == "reject") {
                editor->reject(editor->ctx, to_str("fixture_mw " + f.tag + " says no"));
                return SWH_OK;
            }
        }
        editor->set_content(editor->ctx, to_str(content + " [" + f.tag + "]"));
        editor->merge_metadata(editor->ctx, to_str(Json{{"fixture_" + f.tag, true}}.dump()));
        return SWH_OK;
    });
}

void f_on_error(void *handle, const swh_middleware_input *input, swh_status status, swh_str error) noexcept {
    try {
        auto &instance = *static_cast<Instance *>(handle);
        const Fixture &f = *instance.impl;
        const std::string labels = Json{{"tag", f.tag}}.dump();
        f.host->metric_add(f.host->host_ctx, to_str("swarmhost_fixture_on_error_total"), to_str(labels), 1);
        HostLog(f.host)(SWH_LOG_INFO, "fixture_mw " + f.tag + ": on_error(status " + std::to_string(status) +
                                          ") for session " + std::string(view(input->session->id, "id")) +
                                          ": " + std::string(view(error, "error")));
    } catch (...) {
    }
}

constexpr swh_config_field kConfigSchema[] = {
    {sizeof(swh_config_field), "tag", SWH_CFG_STRING, 1, nullptr, "Appended to the content as \" [<tag>]\""},
    {sizeof(swh_config_field), "mode", SWH_CFG_STRING, 0, "\"ok\"",
     "ok | fail | throw | garbage_status | garbage_metadata | reject"},
    {sizeof(swh_config_field), "fail_on", SWH_CFG_STRING, 0, "\"\"",
     "Misbehave (mode) only when the content contains this (\"\" = always)"},
    {sizeof(swh_config_field), "stages", SWH_CFG_STRING_LIST, 0, "[\"user\"]", "user and/or assistant"},
};

constexpr swh_middleware_v1 kTable = {
    sizeof(swh_middleware_v1),
    f_create,
    f_destroy,
    f_last_error,
    f_stages,
    f_process,
    f_on_error,
    nullptr,
    nullptr,
    nullptr,
};

constexpr swh_plugin_descriptor kDescriptor = {
    sizeof(swh_plugin_descriptor),
    SWH_ABI_VERSION_MAJOR,
    SWH_ABI_VERSION_MINOR,
    "fixture_mw",
    "0.0.1",
    "Test fixture: tags content, fails or returns garbage on request",
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
