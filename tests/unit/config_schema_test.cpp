// validate_config: typing, defaults and located diagnostics for plugin configs.
#include "manifest/config_schema.hpp"
#include "test_support.hpp"

using namespace swh::manifest;
using json = nlohmann::json;
using Lines = std::vector<std::string>;

namespace {

std::vector<ConfigField> sqlite_schema() {
    return {
        {"path", ConfigType::String, true, std::nullopt, "path of the SQLite file"},
        {"busy_timeout_ms", ConfigType::Int, false, json(5000), "how long to wait for locks"},
        {"ratio", ConfigType::Number, false, json(0.5), ""},
        {"wal", ConfigType::Bool, false, json(true), ""},
        {"blocked_words", ConfigType::StringList, false, json::array(), ""},
        {"options", ConfigType::Object, false, std::nullopt, ""},
        {"label", ConfigType::String, false, std::nullopt, ""},
    };
}

struct Result {
    json config;
    Lines errors;
};

// Validates the `config:` key of `text` (absent key = no config given) as
// plugin 'sqlite'; `where` is m.yaml:9:9 so its use is visible.
Result validate(const std::string &text, const std::vector<ConfigField> &schema = sqlite_schema()) {
    const YAML::Node root = YAML::Load(text);
    const YAML::Node config = root.IsMap() ? root["config"] : YAML::Node();
    std::vector<Diagnostic> diagnostics;
    json value = validate_config(config, schema, "sqlite", SourceMark{"m.yaml", 9, 9}, diagnostics);
    for (auto &diagnostic : diagnostics)
        diagnostic.mark.file = "m.yaml"; // marks take where.file
    return {std::move(value), swh::test::lines_of(diagnostics)};
}

} // namespace

TEST_CASE("config: defaults are filled in, keys without one stay absent", "[config]") {
    const auto result = validate("config:\n  path: ./db\n");
    CHECK(result.errors.empty());
    CHECK(result.config == json{{"path", "./db"},
                                {"busy_timeout_ms", 5000},
                                {"ratio", 0.5},
                                {"wal", true},
                                {"blocked_words", json::array()}});
}

TEST_CASE("config: given values are converted by declared type", "[config]") {
    const auto result = validate(R"(config:
  path: 123
  busy_timeout_ms: -20
  ratio: 10
  wal: yes
  blocked_words: [spam, 42]
  options: { a: 1, b: 2.5, c: true, d: no, e: "7", f: [x, null], g: { h: ~ } }
  label: 'quoted')");
    CHECK(result.errors.empty());
    const json &c = result.config;
    CHECK(c["path"] == "123"); // YAML scalars are text
    CHECK(c["busy_timeout_ms"] == -20);
    CHECK(c["busy_timeout_ms"].is_number_integer());
    CHECK(c["ratio"].is_number_integer()); // a number given as 10 stays an integer
    CHECK(c["ratio"] == 10);
    CHECK(c["wal"] == true);
    CHECK(c["blocked_words"] == json{"spam", "42"});
    CHECK(c["options"] ==
          json::parse(R"({"a":1,"b":2.5,"c":true,"d":"no","e":"7","f":["x",null],"g":{"h":null}})"));
    CHECK(c["label"] == "quoted");
}

TEST_CASE("config: numbers", "[config]") {
    CHECK(validate("config: { path: p, ratio: 1.5e3 }").config["ratio"] == 1500.0);
    CHECK(validate("config: { path: p, ratio: .5 }").config["ratio"] == 0.5);
    CHECK(validate("config: { path: p, ratio: -0.25 }").config["ratio"] == -0.25);
    CHECK(validate("config: { path: p, busy_timeout_ms: +3 }").config["busy_timeout_ms"] == 3);
    CHECK(validate("config: { path: p, ratio: .inf }").errors ==
          Lines{"m.yaml:1:27: expected a number for 'ratio' of plugin 'sqlite', got '.inf'"});
}

TEST_CASE("config: YAML booleans", "[config]") {
    const auto [text, expected] = GENERATE(table<std::string, bool>({{"true", true},
                                                                     {"True", true},
                                                                     {"TRUE", true},
                                                                     {"yes", true},
                                                                     {"Yes", true},
                                                                     {"on", true},
                                                                     {"ON", true},
                                                                     {"false", false},
                                                                     {"no", false},
                                                                     {"Off", false}}));
    CAPTURE(text);
    const auto result = validate("config: { path: p, wal: " + text + " }");
    CHECK(result.errors.empty());
    CHECK(result.config["wal"] == expected);
}

TEST_CASE("config: wrong types are located at the value", "[config]") {
    const auto result = validate(R"(config:
  path: { x: 1 }
  busy_timeout_ms: 1.5
  ratio: fast
  wal: maybe
  blocked_words: spam
  options: [1]
  label:)");
    CHECK(result.errors ==
          Lines{"m.yaml:2:9: expected a string for 'path' of plugin 'sqlite', got a map",
                "m.yaml:3:20: expected an integer for 'busy_timeout_ms' of plugin 'sqlite', got '1.5'",
                "m.yaml:4:10: expected a number for 'ratio' of plugin 'sqlite', got 'fast'",
                "m.yaml:5:8: expected a boolean for 'wal' of plugin 'sqlite', got 'maybe'",
                "m.yaml:6:18: expected a list of strings for 'blocked_words' of plugin 'sqlite', got 'spam'",
                "m.yaml:7:12: expected a map for 'options' of plugin 'sqlite', got a list",
                "m.yaml:8:3: expected a string for 'label' of plugin 'sqlite', got null"});
    // Invalid values neither appear nor fall back to their defaults.
    CHECK(result.config == json::object());
}

TEST_CASE("config: quoted scalars are strings, not numbers or booleans", "[config]") {
    CHECK(validate("config: { path: p, busy_timeout_ms: \"10\" }").errors ==
          Lines{"m.yaml:1:37: expected an integer for 'busy_timeout_ms' of plugin 'sqlite', got the quoted "
                "string '10'"});
    CHECK(
        validate("config: { path: p, wal: 'true' }").errors ==
        Lines{"m.yaml:1:25: expected a boolean for 'wal' of plugin 'sqlite', got the quoted string 'true'"});
}

TEST_CASE("config: each bad list item is reported", "[config]") {
    const auto result = validate("config:\n  path: p\n  blocked_words: [spam, { a: 1 }, [x]]\n");
    CHECK(result.errors ==
          Lines{"m.yaml:3:25: expected a string for 'blocked_words[1]' of plugin 'sqlite', got a map",
                "m.yaml:3:35: expected a string for 'blocked_words[2]' of plugin 'sqlite', got a list"});
}

TEST_CASE("config: unknown keys", "[config]") {
    CHECK(validate("config:\n  pth: x\n").errors ==
          Lines{"m.yaml:2:3: unknown key 'pth' for plugin 'sqlite'; did you mean 'path'?",
                "m.yaml:2:3: missing required key 'path' for plugin 'sqlite' (expected string: path of the "
                "SQLite file)"});
    CHECK(
        validate("config:\n  path: p\n  zzzzzz: 1\n").errors ==
        Lines{"m.yaml:3:3: unknown key 'zzzzzz' for plugin 'sqlite' (allowed: path, busy_timeout_ms, ratio, "
              "wal, blocked_words, options, label)"});
    CHECK(validate("config: { verbose: true }", {}).errors ==
          Lines{"m.yaml:1:11: unknown key 'verbose' for plugin 'sqlite' (none allowed)"});
}

TEST_CASE("config: missing required keys", "[config]") {
    const std::string missing_path =
        "missing required key 'path' for plugin 'sqlite' (expected string: path of the SQLite file)";
    SECTION("no config at all: reported at `where`") {
        const auto result = validate("other: 1\n");
        CHECK(result.errors == Lines{"m.yaml:9:9: " + missing_path});
        CHECK(result.config["busy_timeout_ms"] == 5000);
    }
    SECTION("empty config: reported at `where`") {
        CHECK(validate("config:\n").errors == Lines{"m.yaml:9:9: " + missing_path});
    }
    SECTION("a config map: reported at the map") {
        CHECK(validate("config:\n  wal: true\n").errors == Lines{"m.yaml:2:3: " + missing_path});
    }
    SECTION("without a description") {
        const std::vector<ConfigField> schema{{"port", ConfigType::Int, true, std::nullopt, ""}};
        CHECK(validate("config: {}", schema).errors ==
              Lines{"m.yaml:1:9: missing required key 'port' for plugin 'sqlite' (expected integer)"});
    }
}

TEST_CASE("config: the config itself must be a map", "[config]") {
    const auto result = validate("config: [1]\n");
    CHECK(result.errors == Lines{"m.yaml:1:9: expected a map for the config of plugin 'sqlite', got a list"});
    CHECK(result.config["wal"] == true);
}

TEST_CASE("config: duplicate keys", "[config]") {
    CHECK(validate("config:\n  path: a\n  path: b\n").errors ==
          Lines{"m.yaml:3:3: duplicate key 'path' for plugin 'sqlite' (first given at m.yaml:2:3)"});
}

TEST_CASE("config: diagnostics are appended, and marks use where.file", "[config]") {
    std::vector<Diagnostic> diagnostics{{SourceMark{"earlier.yaml", 1, 1}, "earlier problem"}};
    const YAML::Node root = YAML::Load("config:\n  pth: x\n");
    validate_config(root["config"], sqlite_schema(), "db", SourceMark{"conf/main.yaml", 5, 3}, diagnostics);
    CHECK(
        swh::test::lines_of(diagnostics) ==
        Lines{"earlier.yaml:1:1: earlier problem",
              "conf/main.yaml:2:3: unknown key 'pth' for plugin 'db'; did you mean 'path'?",
              "conf/main.yaml:2:3: missing required key 'path' for plugin 'db' (expected string: path of the "
              "SQLite file)"});
}

TEST_CASE("config: type names", "[config]") {
    CHECK(std::string(to_string(ConfigType::String)) == "string");
    CHECK(std::string(to_string(ConfigType::Int)) == "integer");
    CHECK(std::string(to_string(ConfigType::Number)) == "number");
    CHECK(std::string(to_string(ConfigType::Bool)) == "boolean");
    CHECK(std::string(to_string(ConfigType::StringList)) == "list of strings");
    CHECK(std::string(to_string(ConfigType::Object)) == "map");
}

TEST_CASE("config: plain_int", "[config]") {
    CHECK(plain_int(YAML::Load("42")) == 42);
    CHECK(plain_int(YAML::Load("-3")) == -3);
    CHECK(plain_int(YAML::Load("+7")) == 7);
    CHECK(plain_int(YAML::Load("\"42\"")) == std::nullopt);
    CHECK(plain_int(YAML::Load("1.0")) == std::nullopt);
    CHECK(plain_int(YAML::Load("99999999999999999999")) == std::nullopt);
    CHECK(plain_int(YAML::Load("+-1")) == std::nullopt);
    CHECK(plain_int(YAML::Load("{a: 1}")) == std::nullopt);
}
