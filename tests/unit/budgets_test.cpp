// Budgets (host/limits/budgets.hpp): the manifest's `budgets:` block and its
// errors (file:line:col), the price arithmetic, the windows and which limit
// applies. The refusals themselves run through the real daemon
// (tests/integration/test_budgets.py).
#include "limits/budgets.hpp"
#include "manifest/manifest.hpp"
#include "test_support.hpp"

using swh::manifest::BudgetLimit;
using swh::manifest::ModelPrice;
using swh::manifest::parse_manifest;
using swh::test::manifest_errors;
using Lines = std::vector<std::string>;
namespace budgets = swh::budgets;

namespace {

const std::string kRequired =
    "plugin_dirs: [p]\nstorage: { plugin: sqlite }\nproviders: [ { plugin: echo } ]\n";

constexpr int64_t kNoon7Dec2026 = 1796644800; // 2026-12-07T12:00:00Z

} // namespace

TEST_CASE("budgets: the manifest block", "[budgets][manifest]") {
    const auto plain = parse_manifest(kRequired, "m.yaml");
    CHECK_FALSE(plain.budgets.configured);
    const auto m = parse_manifest(kRequired + R"(budgets:
  window: day
  prices:
    gpt-4o: { input_per_mtok: 2.5, output_per_mtok: 10 }
  keys:
    default: { tokens: 1000 }
    big: { tokens: 0, cost_usd: 12.5 }
  users: { alice: { cost_usd: 1 } }
  sessions: { default: { tokens: 500 } }
)",
                                  "m.yaml");
    CHECK(m.budgets.configured);
    CHECK(m.budgets.window == "day");
    REQUIRE(m.budgets.prices.count("gpt-4o") == 1);
    CHECK(m.budgets.prices.at("gpt-4o").input_per_mtok == 2.5);
    CHECK(m.budgets.prices.at("gpt-4o").output_per_mtok == 10);
    CHECK(m.budgets.keys.at("default").tokens == 1000);
    CHECK(m.budgets.keys.at("big").cost_usd == 12.5);
    CHECK(m.budgets.users.at("alice").cost_usd == 1);
    CHECK(m.budgets.sessions.at("default").tokens == 500);
}

TEST_CASE("budgets: manifest errors", "[budgets][manifest][errors]") {
    CHECK(manifest_errors(kRequired + R"(budgets: { window: week })") ==
          Lines{"m.yaml:4:20: budgets.window must be 'total', 'day' or 'month', got 'week'"});
    CHECK(manifest_errors(kRequired + R"(budgets: { sesions: {} })") ==
          Lines{"m.yaml:4:12: unknown key 'sesions' in budgets; did you mean 'sessions'?"});
    CHECK(manifest_errors(kRequired + R"(budgets: { keys: { k1: { token: 5 } } })") ==
          Lines{"m.yaml:4:26: unknown key 'token' in budgets.keys.k1; did you mean 'tokens'?"});
    CHECK(manifest_errors(kRequired + R"(budgets: { users: { bob: { tokens: -1 } } })") ==
          Lines{"m.yaml:4:36: expected a non-negative integer for 'tokens', got '-1'"});
    CHECK(manifest_errors(kRequired + R"(budgets: { prices: { m: { input_per_mtok: cheap } } })") ==
          Lines{"m.yaml:4:43: expected a non-negative number for 'input_per_mtok', got 'cheap'"});
    CHECK(manifest_errors(kRequired + R"(budgets: { sessions: { default: 5 } })") ==
          Lines{"m.yaml:4:33: expected a map like { tokens: 100000, cost_usd: 5 } for "
                "'budgets.sessions.default', got '5'"});
    CHECK(
        manifest_errors(kRequired + R"(budgets: [ 1 ])") ==
        Lines{"m.yaml:4:10: expected a map like { sessions: { default: { tokens: 100000 } } } for 'budgets', "
              "got a list"});
}

TEST_CASE("budgets: prices turn tokens into micro-dollars", "[budgets]") {
    const ModelPrice gpt4o{2.5, 10};
    // 1M input at $2.50 and 1M output at $10: $12.50.
    CHECK(budgets::cost_micro_usd(gpt4o, 1'000'000, 1'000'000) == 12'500'000);
    // 3 input, 7 output: 7.5 + 70 = 77.5 micro-dollars, rounded half away from zero.
    CHECK(budgets::cost_micro_usd(gpt4o, 3, 7) == 78);
    CHECK(budgets::cost_micro_usd(gpt4o, -1, 4) == 40); // an unknown count (-1) costs nothing
    CHECK(budgets::cost_micro_usd(ModelPrice{}, 1000, 1000) == 0);

    swh::manifest::BudgetSettings settings;
    settings.prices["gpt-4o"] = gpt4o;
    settings.prices["echo"] = ModelPrice{1, 1};
    CHECK(budgets::price_for(settings, "gpt-4o", "oa") == &settings.prices["gpt-4o"]);
    CHECK(budgets::price_for(settings, "other-model", "echo") == &settings.prices["echo"]); // by provider
    CHECK(budgets::price_for(settings, "", "oa") == nullptr);
}

TEST_CASE("budgets: windows are UTC calendar days and months", "[budgets]") {
    CHECK(budgets::window_id("total", kNoon7Dec2026) == "total");
    CHECK(budgets::window_id("day", kNoon7Dec2026) == "2026-12-07");
    CHECK(budgets::window_id("month", kNoon7Dec2026) == "2026-12");
    CHECK(budgets::seconds_left("total", kNoon7Dec2026) == -1);
    CHECK(budgets::seconds_left("day", kNoon7Dec2026) == 12 * 3600);
    // Until 2027-01-01T00:00:00Z: 24 days and 12 hours.
    CHECK(budgets::seconds_left("month", kNoon7Dec2026) == 24 * 86400 + 12 * 3600);
    CHECK(budgets::window_id("day", kNoon7Dec2026 + 12 * 3600) == "2026-12-08"); // midnight starts the next
}

TEST_CASE("budgets: which limit applies, and when it is spent", "[budgets]") {
    std::map<std::string, BudgetLimit> limits{{"default", {100, 0}}, {"vip", {0, 2.0}}};
    CHECK(budgets::limit_for(limits, "anyone").tokens == 100);
    CHECK(budgets::limit_for(limits, "vip").tokens == 0); // its own entry, not the default's
    CHECK(budgets::limit_for({}, "anyone").none());

    CHECK_FALSE(budgets::exhausted({100, 0}, {99, 0}));
    CHECK(budgets::exhausted({100, 0}, {100, 0})); // spent >= limit refuses the next request
    CHECK(budgets::exhausted({0, 2.0}, {1, 2'000'000}));
    CHECK_FALSE(budgets::exhausted({0, 2.0}, {1'000'000, 1'999'999}));
    CHECK_FALSE(budgets::exhausted({}, {1'000'000, 1'000'000})); // no limit
}
