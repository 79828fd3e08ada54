// Host-side collectors for what plugins hand back through the ABI's
// callback structs (result sinks, message editors), and the sized copy of a
// kind table. Shared by the instance wrappers of every kind.
#pragma once

#include "loader/abi_convert.hpp"
#include "loader/instances.hpp"

#include <algorithm>
#include <cstring>
#include <thread>

namespace swh::loader::detail {

// Collects what a plugin emits through a swh_result_sink. The callbacks
// copy, as the ABI promises, and never throw into plugin code.
struct Collector {
    std::vector<Session> sessions;
    std::vector<Message> messages;
    std::vector<std::string> json;
    std::string error; // set when the plugin emitted something malformed
    swh_result_sink sink{};

    Collector() {
        sink.struct_size = sizeof(swh_result_sink);
        sink.ctx = this;
        sink.session = [](void *ctx, const swh_session *s) noexcept -> swh_status {
            return static_cast<Collector *>(ctx)->guard(
                [&](Collector &c) { c.sessions.push_back(from_abi(*s)); });
        };
        sink.message = [](void *ctx, const swh_message *m) noexcept -> swh_status {
            return static_cast<Collector *>(ctx)->guard(
                [&](Collector &c) { c.messages.push_back(from_abi(*m)); });
        };
        sink.json = [](void *ctx, swh_str text) noexcept -> swh_status {
            return static_cast<Collector *>(ctx)->guard(
                [&](Collector &c) { c.json.push_back(to_string(text)); });
        };
    }
    Collector(const Collector &) = delete;
    Collector &operator=(const Collector &) = delete;

    template <class F> swh_status guard(F &&f) noexcept {
        try {
            if (!error.empty()) return SWH_E_INVALID;
            f(*this);
            return SWH_OK;
        } catch (const std::exception &e) {
            error = e.what();
            return SWH_E_INVALID;
        }
    }
};

// A copy of the plugin's kind table, sized by the plugin: members that an
// older plugin's smaller table lacks read as NULL ("not offered"), so no call
// site has to compare struct sizes.
template <class Table> Table table_of(const PluginLibrary &lib, uint32_t kind, const std::string &instance) {
    if (lib.kind() != kind)
        throw LoadError(lib.file() + ": plugin '" + lib.name() + "' is a " + kind_name(lib.kind()) +
                        " plugin, but instance '" + instance + "' needs a " + kind_name(kind) + " plugin");
    Table table{};
    std::memcpy(&table, lib.vtable(), std::min<std::size_t>(lib.vtable_size(), sizeof(Table)));
    table.struct_size = sizeof(Table);
    return table;
}

inline void check_collector(const Collector &c, const std::string &instance, const char *operation) {
    if (!c.error.empty())
        throw PluginError(SWH_E_INTERNAL,
                          instance + ": " + operation + " emitted malformed data: " + c.error);
}

// Collects a middleware's edits through swh_message_editor. Malformed
// metadata (not a JSON object) is recorded as a failure of the middleware.
struct EditCollector {
    MiddlewareOutcome outcome;
    std::thread::id owner = std::this_thread::get_id();
    swh_message_editor editor{};

    EditCollector() {
        editor.struct_size = sizeof editor;
        editor.ctx = this;
        editor.set_content = [](void *ctx, swh_str content) noexcept {
            self(ctx).guard([&](EditCollector &c) { c.outcome.content = to_string(content); });
        };
        editor.merge_metadata = [](void *ctx, swh_str json) noexcept {
            self(ctx).guard([&](EditCollector &c) {
                c.outcome.metadata_patch.update(parse_object(to_string(json), "metadata"));
            });
        };
        editor.reject = [](void *ctx, swh_str reason) noexcept {
            self(ctx).guard([&](EditCollector &c) { c.outcome.rejection = to_string(reason); });
        };
        editor.set_structured = [](void *ctx, swh_str json) noexcept {
            self(ctx).guard([&](EditCollector &c) {
                c.outcome.structured = parse_object(to_string(json), "structured content");
            });
        };
    }
    EditCollector(const EditCollector &) = delete;
    EditCollector &operator=(const EditCollector &) = delete;
    static EditCollector &self(void *ctx) { return *static_cast<EditCollector *>(ctx); }
    template <class F> void guard(F &&f) noexcept {
        if (std::this_thread::get_id() != owner) {
            // The ABI says editor callbacks run on the thread running
            // process; anything else races with the host reading the edits.
            if (outcome.error.empty())
                outcome.error = "editor callback from another thread (a plugin bug); ignored";
            return;
        }
        try {
            f(*this);
        } catch (const std::exception &e) {
            outcome.status = SWH_E_INTERNAL;
            outcome.error = std::string("malformed edit: ") + e.what();
        }
    }
};

} // namespace swh::loader::detail
