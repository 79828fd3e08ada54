// libFuzzer target: the manifest loader on arbitrary text, and the same text
// read as a keys file (auth.keys_file).
//
// parse_manifest() promises (host/manifest/manifest.hpp) to throw
// ManifestError and nothing else; the daemon's `check` and `plugins`
// commands catch only that. Anything else escaping - or a crash, a hang, a
// sanitizer report - is a finding. A manifest that parses is then taken one
// step further, the way the daemon does: every plugin config is validated
// against a schema that has one field of every declared type.
#include "manifest/config_schema.hpp"
#include "manifest/manifest.hpp"

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>
#include <vector>

using namespace swh::manifest;

namespace {

[[noreturn]] void finding(const char *what) {
    std::fprintf(stderr,
                 "fuzz_manifest: parse_manifest or parse_keys_file let a non-ManifestError escape: %s\n",
                 what);
    std::abort();
}

const std::vector<ConfigField> &schema() {
    static const std::vector<ConfigField> fields = [] {
        std::vector<ConfigField> f(7);
        f[0] = {"path", ConfigType::String, false, nlohmann::json("./data/x.db"), "a string"};
        f[1] = {"port", ConfigType::Int, false, nlohmann::json(6379), "an integer"};
        f[2] = {"ratio", ConfigType::Number, false, nlohmann::json(0.5), "a number"};
        f[3] = {"enabled", ConfigType::Bool, false, std::nullopt, "a boolean"};
        f[4] = {"words", ConfigType::StringList, false, nlohmann::json::array(), "strings"};
        f[5] = {"params", ConfigType::Object, false, std::nullopt, "an object"};
        f[6] = {"required_key", ConfigType::String, true, std::nullopt, "required"};
        return f;
    }();
    return fields;
}

void validate(const PluginRef &ref) {
    std::vector<Diagnostic> diagnostics;
    nlohmann::json out = validate_config(ref.config, schema(), ref.plugin, ref.mark, diagnostics);
    (void)out.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    for (const auto &d : diagnostics)
        (void)d.str();
}

// Runs `parse` the way the daemon does: a ManifestError is an answer (its
// diagnostics are rendered); any other exception is a finding.
template <class Parse> void only_manifest_errors(Parse &&parse) {
    try {
        parse();
    } catch (const ManifestError &e) {
        for (const auto &d : e.diagnostics())
            (void)d.str();
    } catch (const std::exception &e) {
        finding(e.what());
    } catch (...) {
        finding("(not a std::exception)");
    }
}

void validate_all(const Manifest &m) {
    try {
        validate(m.storage);
        for (const auto &p : m.providers)
            validate(p);
        for (const auto &p : m.middleware)
            validate(p);
        for (const auto &p : m.hooks)
            validate(p);
        for (const auto &p : m.session_types)
            validate(p);
    } catch (const std::exception &e) {
        std::fprintf(stderr, "fuzz_manifest: validate_config threw: %s\n", e.what());
        std::abort();
    }
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const std::string text(reinterpret_cast<const char *>(data), size);
    // The same text as a keys file (auth.keys_file, re-read on every reload).
    only_manifest_errors([&] {
        for (const auto &key : parse_keys_file(text, "keys.yaml", "/nonexistent/fuzz-base"))
            (void)key.sha256.size();
    });
    only_manifest_errors([&] { validate_all(parse_manifest(text, "fuzz.yaml", "/nonexistent/fuzz-base")); });
    return 0;
}
