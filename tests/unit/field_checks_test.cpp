// The shared request-field checks (host/model/field_checks.hpp).
#include "model/field_checks.hpp"

#include <catch2/catch.hpp>

using swh::Json;

TEST_CASE("only_keys refuses an unknown key by name and lists the known ones in order", "[field_checks]") {
    const Json message = {{"role", "user"}, {"content", "hi"}, {"id", "x"}, {"name", nullptr}};
    // Known and ignored keys pass; a null value counts as absent.
    CHECK_NOTHROW(swh::fields::only_keys(message, "messages[0]", {"role", "content"}, {"id"}));
    try {
        swh::fields::only_keys(message, "messages[0]", {"role", "content"});
        FAIL("an unknown key passed");
    } catch (const swh::ApiError &e) {
        CHECK(std::string(e.what()) ==
              "field 'messages[0].id' is not supported here (expected one of: content, role)");
    }
}
