#include "util/json_parse.hpp"

#include <optional>
#include <simdjson.h>
#include <string>

namespace swh {

namespace {

using Json = nlohmann::json;
namespace dom = simdjson::dom;

// The tree of `element`; nullopt where nlohmann might read the text
// differently (then it parses the text itself).
std::optional<Json> convert(dom::element element) {
    switch (element.type()) {
    case dom::element_type::OBJECT: {
        Json out = Json::object();
        const dom::object object = element.get_object().value_unsafe();
        for (const dom::key_value_pair field : object) {
            auto value = convert(field.value);
            if (!value) return std::nullopt;
            // a repeated key: the last wins, as in nlohmann
            out.get_ref<Json::object_t &>().insert_or_assign(std::string(field.key), std::move(*value));
        }
        return out;
    }
    case dom::element_type::ARRAY: {
        Json out = Json::array();
        const dom::array array = element.get_array().value_unsafe();
        for (const dom::element item : array) {
            auto value = convert(item);
            if (!value) return std::nullopt;
            out.push_back(std::move(*value));
        }
        return out;
    }
    case dom::element_type::STRING:
        return Json(std::string(element.get_string().value_unsafe()));
    case dom::element_type::INT64: {
        // nlohmann keeps a non-negative integer as unsigned
        const int64_t value = element.get_int64().value_unsafe();
        return value >= 0 ? Json(static_cast<uint64_t>(value)) : Json(value);
    }
    case dom::element_type::UINT64:
        return Json(element.get_uint64().value_unsafe());
    case dom::element_type::DOUBLE:
        return Json(element.get_double().value_unsafe());
    case dom::element_type::BOOL:
        return Json(element.get_bool().value_unsafe());
    case dom::element_type::NULL_VALUE:
        return Json(nullptr);
    }
    return std::nullopt;
}

// Whether `text` may hold the number -0: nlohmann keeps it as a signed
// integer, simdjson as the integer 0, which nlohmann would keep unsigned.
// A "-0" counts when a number can start there (after ':', ',', '[' or at the
// start) and it is not the start of -0.5 or -0e1; one inside a string only
// costs the fast path. Dates ("2024-07-18") do not count.
bool may_hold_negative_zero(std::string_view text) {
    for (auto at = text.find("-0"); at != std::string_view::npos; at = text.find("-0", at + 2)) {
        const char next = at + 2 < text.size() ? text[at + 2] : '\0';
        if ((next >= '0' && next <= '9') || next == '.' || next == 'e' || next == 'E') continue;
        std::size_t before = at;
        while (before > 0 && (text[before - 1] == ' ' || text[before - 1] == '\t' ||
                              text[before - 1] == '\n' || text[before - 1] == '\r'))
            --before;
        if (before == 0 || text[before - 1] == ':' || text[before - 1] == ',' || text[before - 1] == '[')
            return true;
    }
    return false;
}

} // namespace

bool with_simdjson(std::string_view text, const std::function<void(const dom::element &)> &use) {
    // A parser allocates its buffers on its first parse: each thread keeps
    // one for the small texts of every request (a request body, a plugin's
    // metadata); a large text gets a parser of its own, so that no thread
    // keeps a large buffer (issue 17).
    constexpr std::size_t kReusedUpTo = 16 * 1024;
    thread_local dom::parser reused;
    std::optional<dom::parser> own;
    dom::parser &parser = text.size() <= kReusedUpTo ? reused : own.emplace();
    dom::element root;
    if (parser.parse(text.data(), text.size(), true).get(root) != simdjson::SUCCESS) return false;
    use(root);
    return true;
}

Json parse_json(std::string_view text) {
    if (may_hold_negative_zero(text)) return Json::parse(text, nullptr, /*allow_exceptions=*/false);
    std::optional<Json> tree;
    if (with_simdjson(text, [&tree](const dom::element &root) { tree = convert(root); }) && tree)
        return std::move(*tree);
    return Json::parse(text, nullptr, /*allow_exceptions=*/false);
}

} // namespace swh
