// Manifest parsing: the good shape, and every class of error with its exact
// file:line:col. YAML texts start on the line of R"( so line numbers read off
// directly; column comments count from 1.
#include "manifest/manifest.hpp"
#include "test_support.hpp"

#include <filesystem>

using swh::manifest::load_manifest;
using swh::manifest::ManifestError;
using swh::manifest::parse_manifest;
using swh::test::manifest_errors;
using swh::test::TempDir;
using Lines = std::vector<std::string>;
namespace fs = std::filesystem;

namespace {

// Appended to texts that test something other than the required keys.
const std::string kRequired =
    "plugin_dirs: [p]\nstorage: { plugin: sqlite }\nproviders: [ { plugin: echo } ]\n";

} // namespace

TEST_CASE("manifest: a full manifest loads with every field", "[manifest]") {
    const std::string path = std::string(SWH_UNIT_DATA_DIR) + "/full.yaml";
    const auto m = load_manifest(path);
    const fs::path data_dir = fs::absolute(SWH_UNIT_DATA_DIR);

    CHECK(m.path == path);
    CHECK(m.server.listen == "[::1]:9090");
    CHECK(m.server.io_threads == 2);
    CHECK(m.server.worker_threads == 4);
    CHECK(m.server.max_body_bytes == 2048);
    CHECK(m.server.request_timeout_seconds == 30);
    CHECK(m.server.shutdown_grace_seconds == 5);
    CHECK(m.server.mark.str() == path + ":4:3");

    REQUIRE(m.plugin_dirs.size() == 2);
    CHECK(m.plugin_dirs[0] == (data_dir / "../build/plugins").lexically_normal().string());
    CHECK(m.plugin_dirs[1] == "/opt/swarmhost/plugins");

    CHECK(m.storage.plugin == "sqlite");
    CHECK(m.storage.name == "sqlite");
    CHECK(m.storage.config["path"].as<std::string>() == "./data/swarmhost.db");
    CHECK(m.storage.mark.str() == path + ":11:10");

    CHECK(m.default_provider == "openai");
    REQUIRE(m.providers.size() == 2);
    CHECK(m.providers[0].name == "echo");
    CHECK(m.providers[0].fallback.empty());
    CHECK(m.providers[0].config.IsNull()); // no config given
    CHECK(m.providers[1].name == "openai");
    CHECK(m.providers[1].plugin == "openai");
    CHECK(m.providers[1].fallback == Lines{"echo"});
    CHECK(m.providers[1].config["api_key_env"].as<std::string>() == "OPENAI_API_KEY");

    REQUIRE(m.middleware.size() == 2);
    const auto &cf = m.middleware[0];
    CHECK(cf.name == "cf");
    CHECK(cf.plugin == "content_filter");
    CHECK(cf.priority == 100);
    CHECK(cf.when == nlohmann::json{{"user_type", "free"}, {"provider", "echo"}, {"model", "m"}});
    CHECK(cf.after.empty());
    CHECK(cf.fail == "closed");
    CHECK(cf.config["blocked_words"][0].as<std::string>() == "spam");
    const auto &personalization = m.middleware[1];
    CHECK(personalization.name == "personalization");
    CHECK(personalization.priority == -5);
    CHECK(personalization.when == nlohmann::json::object());
    CHECK(personalization.after == Lines{"cf"});
    CHECK(personalization.fail == "open");

    REQUIRE(m.hooks.size() == 2);
    CHECK(m.hooks[0].name == "metrics");
    CHECK(m.hooks[1].name == "nightly_backup");
    CHECK(m.hooks[1].plugin == "backup");
    CHECK(m.hooks[1].mark.str() == path + ":21:5");
    REQUIRE(m.session_types.size() == 1);
    CHECK(m.session_types[0].config["templates_dir"].as<std::string>() == "./configs/templates");
}

TEST_CASE("manifest: defaults for optional parts", "[manifest]") {
    const auto m = parse_manifest(kRequired, "m.yaml");
    CHECK(m.path == "m.yaml");
    CHECK(m.server.listen == "127.0.0.1:8080");
    CHECK(m.server.io_threads == 0);
    CHECK(m.server.max_body_bytes == 1024 * 1024);
    CHECK(m.server.request_timeout_seconds == 300);
    CHECK(m.server.shutdown_grace_seconds == 10);
    CHECK(m.server.responses_retention_seconds == 30 * 24 * 3600); // OpenAI's 30 days
    CHECK(m.storage.name == "sqlite");                             // name defaults to plugin
    CHECK(m.default_provider == "echo");                           // the first provider
    CHECK(m.plugin_dirs == Lines{"p"});                            // base_dir "." normalizes away
    CHECK(m.middleware.empty());
    CHECK(m.hooks.empty());
    CHECK(m.session_types.empty());
}

TEST_CASE("manifest: empty optional lists and config are accepted", "[manifest]") {
    const auto m = parse_manifest(kRequired + "middleware:\nhooks: []\nserver:\n", "m.yaml");
    CHECK(m.middleware.empty());
    CHECK(m.hooks.empty());
    CHECK(m.server.listen == "127.0.0.1:8080");
}

TEST_CASE("manifest: relative plugin_dirs resolve against the manifest's folder", "[manifest]") {
    TempDir tmp;
    const auto path = tmp.write("conf/m.yaml", "plugin_dirs: [ ../build/plugins, plugins, /abs/dir ]\n"
                                               "storage: { plugin: sqlite }\n"
                                               "providers: [ { plugin: echo } ]\n");
    const auto m = load_manifest(path);
    const fs::path root = fs::absolute(tmp.path());
    CHECK(m.plugin_dirs ==
          Lines{(root / "build/plugins").string(), (root / "conf/plugins").string(), "/abs/dir"});

    SECTION("parse_manifest uses base_dir") {
        const auto parsed =
            parse_manifest("plugin_dirs: [x, ../y]\nstorage: { plugin: s }\nproviders: [{plugin: e}]",
                           "m.yaml", "/base/conf");
        CHECK(parsed.plugin_dirs == Lines{"/base/conf/x", "/base/y"});
    }
}

TEST_CASE("manifest: wrong type for a string", "[manifest][errors]") {
    // col 20 is the '{' of the inner map
    CHECK(manifest_errors(R"(plugin_dirs: [p]
storage: { plugin: { x: 1 } }
providers: [ { plugin: echo } ])") == Lines{"m.yaml:2:20: expected a string for 'plugin', got a map"});
}

TEST_CASE("manifest: unknown key in an entry, with did-you-mean", "[manifest][errors]") {
    CHECK(manifest_errors(R"(plugin_dirs: [p]
storage: { plugin: sqlite }
providers:
  - { pluginn: echo })") ==
          Lines{"m.yaml:4:5: missing required key 'plugin' in providers[0] (expected the name "
                "of the plugin to load, e.g. plugin: echo)",
                "m.yaml:4:7: unknown key 'pluginn' in providers[0]; did you mean 'plugin'?"});
}

TEST_CASE("manifest: unknown key without a close match lists the allowed keys", "[manifest][errors]") {
    CHECK(manifest_errors(kRequired + "hooks: [ { plugin: metrics, zzz: 1 } ]") ==
          Lines{"m.yaml:4:29: unknown key 'zzz' in hooks[0] (allowed: name, plugin, config, sha256, "
                "isolation, isolation_timeout_ms, once_per_fleet)"});
}

TEST_CASE("manifest: missing required top-level keys", "[manifest][errors]") {
    CHECK(manifest_errors("plugin_dirs: [p]\nproviders: [ { plugin: echo } ]\n") ==
          Lines{"m.yaml:1:1: missing required key 'storage' (expected a map like { plugin: sqlite })"});
    CHECK(manifest_errors("plugin_dirs: [p]\nstorage: { plugin: sqlite }\n") ==
          Lines{"m.yaml:1:1: missing required key 'providers' (expected a list like [ { name: echo, plugin: "
                "echo } ])"});
    CHECK(manifest_errors("storage: { plugin: sqlite }\nproviders: [ { plugin: echo } ]\n") ==
          Lines{"m.yaml:1:1: missing required key 'plugin_dirs' (expected a list of folders like [ "
                "./build/plugins ])"});
}

TEST_CASE("manifest: plugin_dirs must be a non-empty list of strings", "[manifest][errors]") {
    const std::string rest = "\nstorage: { plugin: sqlite }\nproviders: [ { plugin: echo } ]\n";
    CHECK(manifest_errors("plugin_dirs: []" + rest) ==
          Lines{"m.yaml:1:14: expected a non-empty list of folders for 'plugin_dirs', got an empty list"});
    CHECK(manifest_errors("plugin_dirs: ./plugins" + rest) ==
          Lines{"m.yaml:1:14: expected a non-empty list of folders for 'plugin_dirs', got './plugins'"});
    CHECK(manifest_errors("plugin_dirs: [p, {x: 1}]" + rest) ==
          Lines{"m.yaml:1:18: expected a non-empty string for 'plugin_dirs[1]', got a map"});
}

TEST_CASE("manifest: providers must be a non-empty list of maps", "[manifest][errors]") {
    CHECK(manifest_errors("plugin_dirs: [p]\nstorage: { plugin: sqlite }\nproviders: []\n") ==
          Lines{"m.yaml:3:12: expected a non-empty list of providers for 'providers', got an empty list"});
    CHECK(manifest_errors(kRequired + "hooks: [metrics]") ==
          Lines{"m.yaml:4:9: expected a map like { plugin: NAME } for hooks[0], got 'metrics'"});
    CHECK(manifest_errors(kRequired + "session_types: { plugin: t }") ==
          Lines{"m.yaml:4:16: expected a list for 'session_types', got a map"});
}

TEST_CASE("manifest: config must be a map", "[manifest][errors]") {
    CHECK(
        manifest_errors(
            "plugin_dirs: [p]\nstorage: { plugin: sqlite }\nproviders: [ { plugin: echo, config: [1] } ]") ==
        Lines{"m.yaml:3:38: expected a map for 'config', got a list"});
}

TEST_CASE("manifest: duplicate provider names", "[manifest][errors]") {
    // The second entry's name comes from `plugin:` (col 15), the first from `name:` (col 13).
    CHECK(manifest_errors(R"(plugin_dirs: [p]
storage: { plugin: sqlite }
providers:
  - { name: echo, plugin: echo }
  - { plugin: echo })") ==
          Lines{"m.yaml:5:15: duplicate provider name 'echo' (first defined at m.yaml:4:13)"});
}

TEST_CASE("manifest: duplicate middleware names", "[manifest][errors]") {
    CHECK(manifest_errors(kRequired + "middleware: [ { plugin: a }, { plugin: b, name: a } ]") ==
          Lines{"m.yaml:4:49: duplicate middleware name 'a' (first defined at m.yaml:4:25)"});
}

TEST_CASE("manifest: duplicate YAML keys", "[manifest][errors]") {
    CHECK(manifest_errors(kRequired + "storage: { plugin: other }") ==
          Lines{"m.yaml:4:1: duplicate top-level key 'storage' (first given at m.yaml:2:1)"});
}

TEST_CASE("manifest: default_provider must be a provider", "[manifest][errors]") {
    CHECK(manifest_errors(R"(plugin_dirs: [p]
storage: { plugin: sqlite }
default_provider: ech
providers: [ { plugin: echo } ])") ==
          Lines{"m.yaml:3:19: default_provider 'ech' is not a defined provider; did you mean 'echo'?"});
    CHECK(manifest_errors(R"(plugin_dirs: [p]
storage: { plugin: sqlite }
default_provider: x
providers: [ { plugin: echo }, { plugin: openai } ])") ==
          Lines{"m.yaml:3:19: default_provider 'x' is not a defined provider (defined: echo, openai)"});
}

TEST_CASE("manifest: fallbacks must be providers", "[manifest][errors]") {
    CHECK(manifest_errors(R"(plugin_dirs: [p]
storage: { plugin: sqlite }
providers:
  - { name: echo, plugin: echo }
  - { name: openai, plugin: openai, fallback: [y] })") ==
          Lines{"m.yaml:5:48: fallback 'y' of provider 'openai' is not a defined provider (defined: echo, "
                "openai)"});
    CHECK(manifest_errors(R"(plugin_dirs: [p]
storage: { plugin: sqlite }
providers:
  - { name: openai, plugin: openai, fallback: [openai] })") ==
          Lines{"m.yaml:4:48: provider 'openai' lists itself as a fallback"});
}

TEST_CASE("manifest: when.provider must be a provider", "[manifest][errors]") {
    CHECK(manifest_errors(kRequired + "middleware:\n  - { plugin: a, when: { provider: eho } }") ==
          Lines{"m.yaml:5:36: when.provider 'eho' of middleware 'a' is not a defined provider; did you mean "
                "'echo'?"});
}

TEST_CASE("manifest: middleware after must name middleware", "[manifest][errors]") {
    CHECK(manifest_errors(kRequired + "middleware:\n  - { plugin: a, after: [zzz] }") ==
          Lines{"m.yaml:5:26: middleware 'a' lists unknown dependency 'zzz' in after (defined: a)"});
    CHECK(manifest_errors(kRequired + "middleware:\n  - { plugin: content_filter }\n  - { plugin: b, after: "
                                      "[content_filtr] }") ==
          Lines{"m.yaml:6:26: middleware 'b' lists unknown dependency 'content_filtr' in after; did you mean "
                "'content_filter'?"});
}

TEST_CASE("manifest: middleware dependency cycles", "[manifest][errors]") {
    SECTION("two entries: reported at the item that closes the cycle") {
        CHECK(manifest_errors(kRequired + R"(middleware:
  - { plugin: a, after: [b] }
  - { plugin: b, after: [a] })") == Lines{"m.yaml:6:26: middleware dependency cycle: a -> b -> a"});
    }
    SECTION("three entries") {
        CHECK(manifest_errors(kRequired + R"(middleware:
  - { plugin: a, after: [c] }
  - { plugin: b, after: [a] }
  - { plugin: c, after: [b] })") == Lines{"m.yaml:6:26: middleware dependency cycle: a -> c -> b -> a"});
    }
    SECTION("self") {
        CHECK(manifest_errors(kRequired + "middleware:\n  - { plugin: a, after: [a] }") ==
              Lines{"m.yaml:5:26: middleware dependency cycle: a -> a"});
    }
    SECTION("a diamond is not a cycle") {
        CHECK_NOTHROW(parse_manifest(kRequired + R"(middleware:
  - { plugin: a }
  - { plugin: b, after: [a] }
  - { plugin: c, after: [a] }
  - { plugin: d, after: [b, c] })",
                                     "m.yaml"));
    }
}

TEST_CASE("manifest: fail must be open or closed", "[manifest][errors]") {
    CHECK(manifest_errors(kRequired + "middleware:\n  - { plugin: a, fail: maybe }") ==
          Lines{"m.yaml:5:24: fail must be 'open' or 'closed', got 'maybe'"});
}

TEST_CASE("manifest: middleware priority must be an integer", "[manifest][errors]") {
    CHECK(manifest_errors(kRequired + "middleware:\n  - { plugin: a, priority: high }") ==
          Lines{"m.yaml:5:28: expected an integer for 'priority', got 'high'"});
}

TEST_CASE("manifest: when allows user_type, provider and model with string values", "[manifest][errors]") {
    CHECK(manifest_errors(kRequired + R"(middleware:
  - plugin: a
    when: { usertype: free, model: [x] })") ==
          Lines{"m.yaml:6:13: unknown key 'usertype' in middleware[0].when; did you mean 'user_type'?",
                "m.yaml:6:36: expected a string for 'model', got a list"});
    CHECK(manifest_errors(kRequired + "middleware: [ { plugin: a, when: free } ]") ==
          Lines{"m.yaml:4:34: expected a map like { user_type: free } for 'when', got 'free'"});
}

TEST_CASE("manifest: server settings", "[manifest][errors]") {
    CHECK(manifest_errors(R"(server:
  listn: x
  io_threads: -1
  worker_threads: many
  max_body_bytes: "10"
  request_timeout_seconds: 99999999999
  shutdown_grace_seconds: 1.5
)" + kRequired) ==
          Lines{"m.yaml:2:3: unknown key 'listn' in server; did you mean 'listen'?",
                "m.yaml:3:15: expected a non-negative integer for 'io_threads', got '-1'",
                "m.yaml:4:19: expected a non-negative integer for 'worker_threads', got 'many'",
                "m.yaml:5:19: expected a non-negative integer for 'max_body_bytes', got the quoted "
                "string '10'",
                "m.yaml:6:28: expected a non-negative integer of at most 2147483647 for "
                "'request_timeout_seconds', got '99999999999'",
                "m.yaml:7:27: expected a non-negative integer for 'shutdown_grace_seconds', got '1.5'"});
    CHECK(manifest_errors("server:\n  responses_retention_seconds: -5\n" + kRequired) ==
          Lines{"m.yaml:2:32: expected a non-negative integer for 'responses_retention_seconds', got '-5'"});
    CHECK(parse_manifest("server:\n  responses_retention_seconds: 0\n" + kRequired, "m.yaml")
              .server.responses_retention_seconds == 0);
    CHECK(manifest_errors("server: [1]\n" + kRequired) ==
          Lines{"m.yaml:1:9: expected a map like { listen: \"127.0.0.1:8080\" } for 'server', got a list"});
}

TEST_CASE("manifest: listen must be HOST:PORT", "[manifest][errors]") {
    const std::string bad = GENERATE("localhost", "127.0.0.1:", ":8080", "127.0.0.1:70000", "::1:8080",
                                     "[::1]8080", "[::1]", "127.0.0.1:80x", "127.0.0.1:-1", "[]:80");
    CAPTURE(bad);
    CHECK(manifest_errors("server: { listen: \"" + bad + "\" }\n" + kRequired) ==
          Lines{"m.yaml:1:19: listen must be HOST:PORT (IPv6 as [::1]:8080) with port 0..65535, got '" + bad +
                "'"});
}

TEST_CASE("manifest: valid listen addresses", "[manifest]") {
    const std::string good = GENERATE("[::1]:8080", "0.0.0.0:0", "localhost:65535", "[fe80::1%eth0]:80");
    CAPTURE(good);
    CHECK(parse_manifest("server: { listen: \"" + good + "\" }\n" + kRequired, "m.yaml").server.listen ==
          good);
}

TEST_CASE("manifest: top-level typos", "[manifest][errors]") {
    CHECK(manifest_errors(R"(plugin_dirs: [p]
storage: { plugin: sqlite }
providres: [ { plugin: echo } ])") ==
          Lines{"m.yaml:1:1: missing required key 'providers' (expected a list like [ { name: echo, plugin: "
                "echo } ])",
                "m.yaml:3:1: unknown top-level key 'providres'; did you mean 'providers'?"});
}

TEST_CASE("manifest: YAML syntax errors carry the parser's mark", "[manifest][errors]") {
    CHECK(manifest_errors("plugin_dirs: [p\n") ==
          Lines{"m.yaml:2:1: invalid YAML: end of sequence flow not found"});
}

TEST_CASE("manifest: the top level must be a non-empty map", "[manifest][errors]") {
    const std::string empty =
        "m.yaml:1:1: manifest is empty (expected a map with at least storage, providers and plugin_dirs)";
    CHECK(manifest_errors("") == Lines{empty});
    CHECK(manifest_errors("# just a comment\n") == Lines{empty});
    CHECK(manifest_errors("- a\n- b\n") == Lines{"m.yaml:1:1: expected a map at the top level, got a list"});
}

TEST_CASE("manifest: all problems are reported, in file order", "[manifest][errors]") {
    const auto errors = manifest_errors(R"(plugin_dirs: [p]
providers:
  - { plugin: echo, fallback: [nope] }
  - { plugin: echo }
middleware:
  - { plugin: a, fail: sometimes, after: [a] }
hooks: [ { plugn: x } ])");
    CHECK(errors ==
          Lines{"m.yaml:1:1: missing required key 'storage' (expected a map like { plugin: sqlite })",
                "m.yaml:3:32: fallback 'nope' of provider 'echo' is not a defined provider (defined: echo)",
                "m.yaml:4:15: duplicate provider name 'echo' (first defined at m.yaml:3:15)",
                "m.yaml:6:24: fail must be 'open' or 'closed', got 'sometimes'",
                "m.yaml:6:43: middleware dependency cycle: a -> a",
                "m.yaml:7:10: missing required key 'plugin' in hooks[0] (expected the name of the plugin "
                "to load, e.g. plugin: echo)",
                "m.yaml:7:12: unknown key 'plugn' in hooks[0]; did you mean 'plugin'?"});
}

TEST_CASE("manifest: what() lists every diagnostic, one per line", "[manifest][errors]") {
    try {
        parse_manifest("plugin_dirs: [p]\n", "m.yaml");
        FAIL("no error");
    } catch (const ManifestError &error) {
        CHECK(std::string(error.what()) ==
              "m.yaml:1:1: missing required key 'storage' (expected a map like { plugin: sqlite })\n"
              "m.yaml:1:1: missing required key 'providers' (expected a list like [ { name: echo, plugin: "
              "echo } ])");
    }
}

TEST_CASE("manifest: load_manifest file errors", "[manifest][errors]") {
    TempDir tmp;
    SECTION("missing file") {
        const std::string path = (tmp.path() / "nope.yaml").string();
        CHECK_THROWS_WITH(load_manifest(path), path + ": cannot open manifest: No such file or directory");
    }
    SECTION("a folder") {
        CHECK_THROWS_WITH(load_manifest(tmp.path().string()),
                          tmp.path().string() + ": cannot open manifest: Is a directory");
    }
    SECTION("empty file") {
        const auto path = tmp.write("empty.yaml", "");
        CHECK_THROWS_WITH(load_manifest(path), path + ":1:1: manifest is empty (expected a map with at least "
                                                      "storage, providers and plugin_dirs)");
    }
    SECTION("errors are labelled with the path as given") {
        const auto path = tmp.write("bad.yaml", kRequired + "providres: []\n");
        CHECK_THROWS_WITH(load_manifest(path),
                          path + ":4:1: unknown top-level key 'providres'; did you mean 'providers'?");
    }
}

TEST_CASE("manifest: auth sections", "[manifest][auth]") {
    const std::string hash(64, 'a');
    SECTION("absent or 'none' means no keys") {
        CHECK(parse_manifest(kRequired, "m.yaml").auth.mode == "none");
        CHECK(parse_manifest(kRequired + "auth: none\n", "m.yaml").auth.mode == "none");
    }
    SECTION("a map means api_keys, with keys and limits") {
        const auto m = parse_manifest(kRequired +
                                          "auth:\n  rate_per_second: 2.5\n  burst: 5\n  keys:\n"
                                          "    - { id: a, user: alice, sha256: " +
                                          hash + " }\n",
                                      "m.yaml");
        CHECK(m.auth.mode == "api_keys");
        REQUIRE(m.auth.keys.size() == 1);
        CHECK(m.auth.keys[0].user == "alice");
        CHECK(m.auth.keys[0].role == "user");
        CHECK(m.auth.rate_per_second == 2.5);
        CHECK(m.auth.burst == 5);
    }
    SECTION("keys with mode none would be ignored: refused") {
        CHECK(manifest_errors(kRequired + "auth: { mode: none, keys_file: k.yaml }") ==
              Lines{"m.yaml:4:7: auth.mode is 'none' but keys are given; they would be ignored (use mode: "
                    "api_keys, or drop them)"});
    }
    SECTION("api_keys without any key is refused") {
        CHECK(
            manifest_errors(kRequired + "auth: { mode: api_keys }") ==
            Lines{"m.yaml:4:7: auth.mode api_keys needs 'keys' or 'keys_file' (expected at least one key)"});
    }
}

TEST_CASE("manifest: a provider's http.version", "[manifest]") {
    const auto m = parse_manifest(R"(plugin_dirs: [p]
storage: { plugin: sqlite }
providers:
  - { name: a, plugin: openai, http: { version: "2-prior-knowledge" } }
  - { name: b, plugin: openai, http: { version: "1.1" } }
  - { name: c, plugin: openai, http: { version: "2" } }
  - { name: d, plugin: openai }
  - { name: e, plugin: openai, isolation: process, http: { version: "2" } })",
                                  "m.yaml");
    REQUIRE(m.providers.size() == 5);
    CHECK(m.providers[0].http_version == "2-prior-knowledge");
    CHECK(m.providers[1].http_version == "1.1");
    CHECK(m.providers[2].http_version == "2");
    CHECK(m.providers[3].http_version == "auto");
    // An isolated provider's child makes its requests with the same setting.
    CHECK(m.providers[4].isolation == "process");
    CHECK(m.providers[4].http_version == "2");
}

TEST_CASE("manifest: http.version errors point at the value", "[manifest][errors]") {
    const std::string head = "plugin_dirs: [p]\nstorage: { plugin: sqlite }\nproviders:\n";
    CHECK(manifest_errors(head + "  - { plugin: openai, http: { version: \"3\" } }") ==
          Lines{"m.yaml:4:40: http.version must be 'auto', '1.1', '2' or '2-prior-knowledge', got '3'"});
    CHECK(manifest_errors(head + "  - { plugin: openai, http: h2c }") ==
          Lines{"m.yaml:4:29: expected a map like { version: \"2-prior-knowledge\" } for 'http', got 'h2c'"});
    CHECK(manifest_errors(head + "  - { plugin: openai, http: { versoin: \"2\" } }") ==
          Lines{"m.yaml:4:31: unknown key 'versoin' in providers[0].http; did you mean 'version'?"});
    // Only providers reach upstreams through the host's client.
    CHECK(manifest_errors(kRequired + "hooks: [ { plugin: metrics, http: { version: \"2\" } } ]") ==
          Lines{"m.yaml:4:29: unknown key 'http' in hooks[0] (allowed: name, plugin, config, sha256, "
                "isolation, isolation_timeout_ms, once_per_fleet)"});
}

TEST_CASE("manifest: events carrier", "[manifest]") {
    CHECK(parse_manifest(kRequired, "m.yaml").events.carrier == "local");
    CHECK(parse_manifest(kRequired + "events: { carrier: storage }\n", "m.yaml").events.carrier == "storage");
    const auto m = parse_manifest(
        kRequired + "events: { carrier: plugin, plugin: redis, name: bus, config: { port: 7 } }\n", "m.yaml");
    CHECK(m.events.carrier == "plugin");
    CHECK(m.events.plugin.plugin == "redis");
    CHECK(m.events.plugin.name == "bus");
    CHECK(m.events.plugin.config["port"].as<int>() == 7);
}

TEST_CASE("manifest: events carrier errors", "[manifest][errors]") {
    CHECK(manifest_errors(kRequired + R"(events: { carrier: kafka })") ==
          Lines{"m.yaml:4:20: events.carrier must be 'local', 'storage' or 'plugin', got 'kafka'"});
    CHECK(manifest_errors(kRequired + R"(events: { carrier: storage, plugin: redis })") ==
          Lines{"m.yaml:4:29: events.plugin goes with carrier: plugin (carrier is 'storage')"});
    CHECK(
        manifest_errors(kRequired + R"(events: { carrier: plugin })") ==
        Lines{"m.yaml:4:9: missing required key 'plugin' in events (expected the name of the plugin to load, "
              "e.g. plugin: echo)"});
    CHECK(manifest_errors(kRequired + R"(events: { carier: storage })") ==
          Lines{"m.yaml:4:11: unknown key 'carier' in events; did you mean 'carrier'?"});
    CHECK(manifest_errors(
              "plugin_dirs: [p]\nstorage: { plugin: postgres, isolation: process }\nproviders: [ { plugin: "
              "echo } ]\nevents: { carrier: storage }") ==
          Lines{"m.yaml:4:20: events.carrier: storage needs the storage plugin in process (storage has "
                "isolation: "
                "process); use carrier: plugin for a carrier instance of its own"});
}

TEST_CASE("manifest: shared limits and once-per-fleet hooks", "[manifest]") {
    const auto plain = parse_manifest(kRequired, "m.yaml");
    CHECK(plain.limits.shared == "local");
    CHECK(plain.limits.lease_seconds == 30);
    const auto m = parse_manifest(
        kRequired + "limits: { shared: storage, lease_seconds: 5 }\n"
                    "hooks: [ { plugin: backup, once_per_fleet: true }, { plugin: metrics } ]\n",
        "m.yaml");
    CHECK(m.limits.shared == "storage");
    CHECK(m.limits.lease_seconds == 5);
    REQUIRE(m.hooks.size() == 2);
    CHECK(m.hooks[0].once_per_fleet);
    CHECK_FALSE(m.hooks[1].once_per_fleet);
}

TEST_CASE("manifest: shared limits errors", "[manifest][errors]") {
    CHECK(manifest_errors(kRequired + R"(limits: { shared: everywhere })") ==
          Lines{"m.yaml:4:19: limits.shared must be 'local' or 'storage', got 'everywhere'"});
    CHECK(manifest_errors(kRequired + R"(limits: { shared: storage, lease_seconds: 1 })") ==
          Lines{"m.yaml:4:43: expected an integer of at least 3 for 'lease_seconds', got '1'"});
    CHECK(manifest_errors(kRequired + R"(limits: { shard: storage })") ==
          Lines{"m.yaml:4:11: unknown key 'shard' in limits; did you mean 'shared'?"});
    CHECK(manifest_errors(kRequired + R"(hooks: [ { plugin: backup, once_per_fleet: yes } ])") ==
          Lines{"m.yaml:4:44: expected true or false for 'once_per_fleet', got 'yes'"});
    CHECK(
        manifest_errors(kRequired + R"(hooks: [ { plugin: backup, once_per_fleet: true } ])") ==
        Lines{
            "m.yaml:4:44: once_per_fleet of hook 'backup' needs limits: { shared: storage } (the claim that "
            "one daemon handles each event is kept in the store)"});
    CHECK(
        manifest_errors(kRequired + R"(session_types: [ { plugin: chat, once_per_fleet: true } ])") ==
        Lines{"m.yaml:4:34: unknown key 'once_per_fleet' in session_types[0] (allowed: name, plugin, config, "
              "sha256, isolation, isolation_timeout_ms)"});
    CHECK(
        manifest_errors("plugin_dirs: [p]\nstorage: { plugin: postgres, isolation: process }\nproviders: [ { "
                        "plugin: echo } ]\nlimits: { shared: storage }") ==
        Lines{
            "m.yaml:4:19: limits.shared: storage needs the storage plugin in process (storage has isolation: "
            "process)"});
}

TEST_CASE("manifest: server.deadlines", "[manifest]") {
    const auto defaults = parse_manifest(kRequired, "m.yaml").server;
    CHECK(defaults.deadlines.request_ms == 300000);
    CHECK(defaults.deadlines.stream_ms == 0);
    CHECK(defaults.deadlines.stream_idle_ms == 300000);
    CHECK(defaults.door_deadlines.empty());

    const auto m = parse_manifest(R"(server:
  deadlines:
    request_ms: 60000
    stream_ms: 0
    stream_idle_ms: 30000
    doors:
      chat_completions: { request_ms: 1000, stream_idle_ms: 5000 }
      conversations: { request_ms: 0 }
)" + kRequired,
                                  "m.yaml");
    CHECK(m.server.deadlines.request_ms == 60000);
    CHECK(m.server.deadlines.stream_idle_ms == 30000);
    REQUIRE(m.server.door_deadlines.size() == 2);
    const auto &chat = m.server.door_deadlines.at("chat_completions");
    CHECK(chat.request_ms == 1000);
    CHECK(!chat.stream_ms);
    CHECK(chat.stream_idle_ms == 5000);
    CHECK(chat.mark.str() == "m.yaml:7:7");
    CHECK(m.server.door_deadlines.at("conversations").request_ms == 0);
}

TEST_CASE("manifest: server.deadlines errors", "[manifest][errors]") {
    CHECK(
        manifest_errors(R"(server:
  deadlines:
    request_ms: -1
    stream_ms: soon
    stream_idel_ms: 5
    doors:
      chat_completion: { request_ms: 5 }
      messages: { request_ms: 99999999999, stream: 5 }
      conversations: { stream_idle_ms: 5 }
      responses: 5
)" + kRequired) ==
        Lines{"m.yaml:3:17: expected a non-negative integer for 'request_ms', got '-1'",
              "m.yaml:4:16: expected a non-negative integer for 'stream_ms', got 'soon'",
              "m.yaml:5:5: unknown key 'stream_idel_ms' in server.deadlines; did you mean 'stream_idle_ms'?",
              "m.yaml:7:7: unknown key 'chat_completion' in server.deadlines.doors; did you mean "
              "'chat_completions'?",
              "m.yaml:8:31: expected a non-negative integer of at most 2147483647 for 'request_ms', got "
              "'99999999999'",
              "m.yaml:8:44: unknown key 'stream' in server.deadlines.doors.messages (allowed: "
              "request_ms, stream_ms, stream_idle_ms)",
              "m.yaml:9:24: 'stream_idle_ms' in server.deadlines.doors.conversations: the door "
              "'conversations' never streams (only request_ms applies to it)",
              "m.yaml:10:18: expected a map like { request_ms: 60000 } for "
              "'server.deadlines.doors.responses', got '5'"});
    CHECK(manifest_errors("server:\n  deadlines: 5\n" + kRequired) ==
          Lines{"m.yaml:2:14: expected a map like { request_ms: 300000, stream_idle_ms: 300000 } for "
                "'server.deadlines', got '5'"});
    CHECK(manifest_errors("server:\n  deadlines:\n    doors: [chat_completions]\n" + kRequired) ==
          Lines{"m.yaml:3:12: expected a map like { chat_completions: { request_ms: 60000 } } for "
                "'server.deadlines.doors', got a list"});
}
