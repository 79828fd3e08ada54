// new_uuid writes its digits by hand (issue 17): it must still be an RFC 9562
// version 4 UUID in the canonical lower-case form, and fresh every call.
#include "util/ids.hpp"

#include <catch2/catch.hpp>
#include <regex>
#include <set>

TEST_CASE("new_uuid gives distinct canonical version 4 UUIDs", "[ids]") {
    const std::regex canonical("[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}");
    std::set<std::string> seen;
    std::set<char> digits_seen;
    for (int i = 0; i < 2000; ++i) {
        const std::string id = swh::new_uuid();
        REQUIRE(std::regex_match(id, canonical));
        seen.insert(id);
        digits_seen.insert(id.begin(), id.end());
    }
    CHECK(seen.size() == 2000);
    CHECK(digits_seen.size() == 17); // every hex digit shows up, and '-'
}
