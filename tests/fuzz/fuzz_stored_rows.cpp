// libFuzzer target: rows read back from a store, as a tampered or damaged
// database hands them to the host through the storage ABI (swh_session,
// swh_message), and everything the host then does with them on the way to a
// client or a provider:
//   loader/abi_convert.cpp     from_abi(swh_session), from_abi(swh_message)
//   http/json_codec.cpp        to_json(Session), to_json(Message),
//                              append_json(FrozenMessage) (GET .../messages)
//   session/history_window.cpp history_window_of, estimate_tokens, fit_window
//                              (what a send replays to the provider)
//   conversation/items.cpp     items_of, output_of (Responses/Conversations)
//
// Input: fields split on 0x1e: session config, context, metadata; message
// role, content, metadata, provider metadata, structured content.
// from_abi may refuse a member that is not a JSON object with
// std::runtime_error (the host answers that read with an error, see
// tests/durability/test_tampered_rows.py); the views after it may refuse
// with ApiError. Anything else escaping, a crash, a sanitizer report, or a
// rendered message that is not valid JSON is a finding.
#include "conversation/items.hpp"
#include "http/json_codec.hpp"
#include "loader/abi_convert.hpp"
#include "model/errors.hpp"
#include "model/frozen_message.hpp"
#include "session/history_window.hpp"

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

using namespace swh;

namespace {

[[noreturn]] void finding(const std::string &what) {
    std::fprintf(stderr, "fuzz_stored_rows: %s\n", what.c_str());
    std::abort();
}

swh_str str(std::string_view s) {
    return {s.data(), s.size()};
}

std::vector<std::string_view> fields_of(std::string_view input, std::size_t count) {
    std::vector<std::string_view> out;
    while (out.size() + 1 < count) {
        const auto at = input.find('\x1e');
        if (at == std::string_view::npos) break;
        out.push_back(input.substr(0, at));
        input.remove_prefix(at + 1);
    }
    out.push_back(input);
    out.resize(count);
    return out;
}

// Runs `step`; ApiError is a refusal the host answers, anything else is a
// finding. Returns whether the step went through.
template <class F> bool host_step(const char *what, F &&step) {
    try {
        step();
        return true;
    } catch (const ApiError &) {
        return false;
    } catch (const std::exception &e) {
        finding(std::string(what) + ": " + e.what());
    }
}

void session_views(const std::vector<std::string_view> &f) {
    swh_session raw{};
    raw.struct_size = sizeof raw;
    raw.id = str("0123456789abcdef0123456789abcdef");
    raw.user_id = str("u");
    raw.provider = str("echo");
    raw.status = str("active");
    raw.config_json = str(f[0]);
    raw.context_json = str(f[1]);
    raw.metadata_json = str(f[2]);
    Session session;
    try {
        session = loader::from_abi(raw);
    } catch (const std::runtime_error &) {
        return; // refused as the plugin bug it is
    }
    host_step("to_json(Session)", [&] { (void)http::dump_json(http::to_json(session)); });
    host_step("history_window_of", [&] { (void)history_window_of(session); });
}

void message_views(const std::vector<std::string_view> &f) {
    swh_message raw{};
    raw.struct_size = sizeof raw;
    raw.id = str("m1");
    raw.session_id = str("0123456789abcdef0123456789abcdef");
    raw.role = str(f[3]);
    raw.content = str(f[4]);
    raw.metadata_json = str(f[5]);
    raw.provider_metadata_json = str(f[6]);
    raw.structured_json = str(f[7]);
    Message message;
    try {
        message = loader::from_abi(raw);
    } catch (const std::runtime_error &) {
        return;
    }
    host_step("to_json(Message)", [&] { (void)http::dump_json(http::to_json(message)); });
    host_step("append_json(FrozenMessage)", [&] {
        const MessageRef frozen = freeze(message);
        std::string out;
        http::append_json(out, *frozen);
        if (!nlohmann::json::accept(out)) finding("a stored message rendered as invalid JSON: " + out);
        HistoryWindow window;
        window.max_messages = 4;
        window.max_tokens = 64;
        (void)fit_window(std::vector<MessageRef>{frozen, frozen}, window);
    });
    host_step("estimate_tokens", [&] { (void)estimate_tokens(message); });
    host_step("items_of", [&] { (void)http::dump_json(conversation::items_of(message)); });
    if (message.role == "assistant")
        host_step("output_of", [&] {
            const Json output = conversation::output_of(message);
            (void)conversation::output_text_of(output);
            (void)http::dump_json(output);
        });
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const auto f = fields_of(std::string_view(reinterpret_cast<const char *>(data), size), 8);
    session_views(f);
    message_views(f);
    return 0;
}
