// The loader against real shared objects: our plugins load with their
// schemas; each deliberately broken one is refused with a reason naming the
// file; a manifest that needs a broken plugin fails with file:line:col.
#include "loader/instances.hpp"
#include "manifest/manifest.hpp"
#include "pipeline/pipeline.hpp"

#include <catch2/catch.hpp>
#include <filesystem>

using namespace swh;
using Catch::Matchers::Contains;

namespace {

std::string plugin_file(const std::string &stem) {
    return std::string(SWH_TEST_PLUGIN_DIR) + "/" + stem + ".so";
}
std::string broken_file(const std::string &stem) {
    return std::string(SWH_TEST_BROKEN_DIR) + "/" + stem + ".so";
}

std::string load_error_of(const std::string &file) {
    try {
        loader::PluginLibrary::load(file);
    } catch (const loader::LoadError &e) {
        return e.what();
    }
    return "";
}

} // namespace

TEST_CASE("our plugins load with kind, version and declared schema") {
    auto sqlite = loader::PluginLibrary::load(plugin_file("swh_storage_sqlite"));
    CHECK(sqlite->name() == "sqlite");
    CHECK(sqlite->kind() == SWH_KIND_STORAGE);
    CHECK(sqlite->abi_major() == SWH_ABI_VERSION_MAJOR);
    CHECK_FALSE(sqlite->version().empty());
    bool has_path = false;
    for (const auto &field : sqlite->schema())
        if (field.key == "path")
            has_path = field.type == manifest::ConfigType::String && field.default_value.has_value();
    CHECK(has_path);

    auto echo = loader::PluginLibrary::load(plugin_file("swh_provider_echo"));
    CHECK(echo->name() == "echo");
    CHECK(echo->kind() == SWH_KIND_PROVIDER);
}

TEST_CASE("broken plugins are refused with the file and the reason") {
    CHECK_THAT(load_error_of(broken_file("not_a_plugin")),
               Contains("not_a_plugin.so") && Contains("no exported symbol swh_plugin_entry"));
    CHECK_THAT(load_error_of(broken_file("wrong_abi_major")),
               Contains("wrong_abi_major.so") && Contains("major versions differ"));
    CHECK_THAT(load_error_of(broken_file("newer_minor")),
               Contains("newer_minor.so") && Contains("upgrade swarmhost"));
    CHECK_THAT(load_error_of(broken_file("bad_kind_table")),
               Contains("bad_kind_table.so") && Contains("smaller than"));
    CHECK_THAT(load_error_of(broken_file("garbage")),
               Contains("garbage.so") && Contains("cannot load shared object"));
    CHECK_THAT(load_error_of(broken_file("does_not_exist")), Contains("cannot load shared object"));
}

TEST_CASE("a plugin whose create fails reports its own reason") {
    auto lib = loader::PluginLibrary::load(broken_file("failing_create"));
    try {
        loader::StorageInstance instance(lib, "store", Json::object());
        FAIL("create should have failed");
    } catch (const loader::LoadError &e) {
        CHECK_THAT(std::string(e.what()), Contains("failing_create.so") && Contains("instance 'store'") &&
                                              Contains("permission denied (simulated)"));
    }
}

TEST_CASE("a plugin of the wrong kind is refused for an instance") {
    auto echo = loader::PluginLibrary::load(plugin_file("swh_provider_echo"));
    CHECK_THROWS_WITH(loader::StorageInstance(echo, "store", Json::object()),
                      Contains("is a provider plugin") && Contains("needs a storage plugin"));
}

TEST_CASE("scanning a folder keeps the good plugins and remembers every failure") {
    loader::PluginRegistry registry;
    registry.scan({SWH_TEST_PLUGIN_DIR, SWH_TEST_BROKEN_DIR});
    CHECK(registry.find("sqlite") != nullptr);
    CHECK(registry.find("echo") != nullptr);
    CHECK(registry.find("failing_create") != nullptr); // loads fine; only create fails
    CHECK(registry.find("wrong_abi") == nullptr);
    std::vector<std::string> failed;
    for (const auto &f : registry.failures())
        failed.push_back(std::filesystem::path(f.file).filename().string());
    CHECK_THAT(failed, Catch::Matchers::VectorContains(std::string("not_a_plugin.so")));
    CHECK_THAT(failed, Catch::Matchers::VectorContains(std::string("wrong_abi_major.so")));
    CHECK_THAT(failed, Catch::Matchers::VectorContains(std::string("garbage.so")));
}

TEST_CASE("a manifest that needs a broken or missing plugin fails at its line") {
    const std::string yaml = "plugin_dirs: [\"" SWH_TEST_PLUGIN_DIR "\", \"" SWH_TEST_BROKEN_DIR "\"]\n"
                             "storage: { plugin: failing_create }\n"
                             "providers:\n"
                             "  - { name: a, plugin: echo }\n"
                             "  - { name: b, plugin: wrong_abi_major }\n"
                             "  - { name: c, plugin: ecko }\n";
    auto manifest = manifest::parse_manifest(yaml, "test.yaml");
    loader::PluginRegistry registry;
    registry.scan(manifest.plugin_dirs);
    try {
        build_pipeline(manifest, registry, loader::null_environment());
        FAIL("build_pipeline should have failed");
    } catch (const manifest::ManifestError &e) {
        const std::string text = e.what();
        CHECK_THAT(text, Contains("test.yaml:2:10") && Contains("permission denied (simulated)"));
        CHECK_THAT(text, Contains("test.yaml:5:5") && Contains("major versions differ"));
        CHECK_THAT(text, Contains("test.yaml:6:5") && Contains("did you mean 'echo'?"));
        CHECK(e.diagnostics().size() == 3);
    }
}

TEST_CASE("check_pipeline validates plugin configs without creating instances") {
    const std::string yaml = "plugin_dirs: [\"" SWH_TEST_PLUGIN_DIR "\"]\n"
                             "storage: { plugin: sqlite, config: { pth: x.db } }\n"
                             "providers: [ { name: echo, plugin: echo, config: { chunk_words: many } } ]\n";
    auto manifest = manifest::parse_manifest(yaml, "m.yaml");
    loader::PluginRegistry registry;
    registry.scan(manifest.plugin_dirs);
    try {
        check_pipeline(manifest, registry);
        FAIL("check_pipeline should have failed");
    } catch (const manifest::ManifestError &e) {
        const std::string text = e.what();
        CHECK_THAT(text, Contains("m.yaml:2:") && Contains("'pth'") && Contains("did you mean 'path'?"));
        CHECK_THAT(text, Contains("m.yaml:3:") && Contains("chunk_words"));
    }
    CHECK_FALSE(std::filesystem::exists("x.db"));
}
