// Typo suggestions.
#include "manifest/config_schema.hpp"

#include <catch2/catch.hpp>

using swh::manifest::did_you_mean;
using swh::manifest::typo_hint;

TEST_CASE("did_you_mean: close matches", "[did_you_mean]") {
    const std::vector<std::string> keys{"name", "plugin", "config"};
    CHECK(did_you_mean("pluginn", keys) == "plugin"); // insertion
    CHECK(did_you_mean("plugn", keys) == "plugin");   // deletion
    CHECK(did_you_mean("plugon", keys) == "plugin");  // substitution
    CHECK(did_you_mean("pluign", keys) == "plugin");  // transposition counts as one edit
    CHECK(did_you_mean("providres", {"providers", "plugin_dirs"}) == "providers");
}

TEST_CASE("did_you_mean: the threshold is max(1, len/3)", "[did_you_mean]") {
    CHECK(did_you_mean("x", {"name"}).empty());
    CHECK(did_you_mean("lisen", {"listen"}) == "listen");                        // 1 edit, limit 1
    CHECK(did_you_mean("lstn", {"listen"}).empty());                             // 2 edits, limit 1
    CHECK(did_you_mean("worker_thred", {"worker_threads"}) == "worker_threads"); // 2 edits, limit 4
    CHECK(did_you_mean("request_timeout_secs", {"request_timeout_seconds"}) ==
          "request_timeout_seconds"); // 3, 6
    CHECK(did_you_mean("zzzzzz", {"path"}).empty());
}

TEST_CASE("did_you_mean: the closest candidate wins, ties keep the first", "[did_you_mean]") {
    CHECK(did_you_mean("mdel", {"mode", "model"}) == "model");
    CHECK(did_you_mean("cat", {"bat", "hat"}) == "bat");
    CHECK(did_you_mean("anything", {}).empty());
}

TEST_CASE("typo_hint", "[did_you_mean]") {
    CHECK(typo_hint("pth", {"path"}) == "; did you mean 'path'?");
    CHECK(typo_hint("zzz", {"a", "b"}) == " (allowed: a, b)");
    CHECK(typo_hint("zzz", {}) == " (none allowed)");
}
