// ABI glue of the "sqlite" storage plugin: descriptor, config schema and the
// swh_storage_v1 table. Every function catches at the edge (swarmhost/cpp/edge.hpp)
// and leaves the work to Store (sqlite_store.hpp).
#include "sqlite_store.hpp"
#include <swarmhost/cpp/edge.hpp>
#include <swarmhost/cpp/plugin.hpp>

#include <nlohmann/json.hpp>

#include <memory>
#include <string>
#include <utility>

namespace {

using swh::edge::ErrorSlot;
using swh::edge::Failure;
using swh::edge::guarded;
using swh::edge::HostLog;
using swh::sqlite::SessionRow;
using swh::sqlite::Store;
using swh::sqlite::StoreOptions;

struct Instance {
    ErrorSlot errors;
    std::unique_ptr<Store> store; // null when create failed
};

// Common prologue: a valid handle, a created store, exceptions caught.
template <class Body> swh_status call(void *handle, Body &&body) noexcept {
    if (handle == nullptr) return SWH_E_INVALID;
    auto &instance = *static_cast<Instance *>(handle);
    return guarded(instance.errors, [&]() -> swh_status {
        if (!instance.store) throw Failure(SWH_E_INVALID, "instance was not created successfully");
        return body(*instance.store);
    });
}

void require(bool ok, const char *what) {
    if (!ok) throw Failure(SWH_E_INVALID, std::string(what));
}

void check_sink(swh_status status) {
    if (status != SWH_OK)
        throw Failure(status, "result sink returned status " + std::to_string(status) + ", stopped");
}

void check_session(const swh_session *s) {
    require(SWH_HAS_MEMBER(s, swh_session, metadata_json), "session is NULL or its struct_size is too small");
}

std::string dump(const nlohmann::json &j) {
    return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

// The config schema, bound to StoreOptions: one row declares the key and
// fills the member at create (swarmhost/cpp/plugin.hpp).
constexpr auto kSchema = swh::cpp::schema(
    swh::cpp::setting<&StoreOptions::path>(
        "path", "\"./data/swarmhost.db\"",
        "Database file; parent directories are created (\":memory:\" = in-memory, for tests)"),
    swh::cpp::setting<&StoreOptions::busy_timeout_ms>(
        "busy_timeout_ms", "5000",
        "How long a statement waits for a lock held by another connection or process, in ms"),
    swh::cpp::setting<&StoreOptions::synchronous>("synchronous", "\"full\"",
                                                  "\"full\": an acknowledged write survives power loss; "
                                                  "\"normal\": faster, the last commits may be lost "
                                                  "on power loss"),
    swh::cpp::setting<&StoreOptions::pool_size>(
        "pool_size", "4", "Reader connections for concurrent reads (0 = reads share the writer connection)"));

// ---------------------------------------------------------------- table

swh_status sqlite_create(const swh_host_api *host, const swh_config *cfg, void **out_handle) noexcept {
    if (out_handle == nullptr) return SWH_E_INVALID;
    *out_handle = nullptr;
    std::unique_ptr<Instance> instance;
    try {
        instance = std::make_unique<Instance>();
    } catch (...) {
        return SWH_E_INTERNAL;
    }
    swh_status status = guarded(instance->errors, [&]() -> swh_status {
        StoreOptions options = kSchema.read(swh::cpp::Config(host, cfg));

        swh::sqlite::CommitObserver on_commit;
        if (SWH_HAS_MEMBER(host, swh_host_api, metric_add) && host->metric_add != nullptr) {
            on_commit = [host](size_t operations) {
                host->metric_add(host->host_ctx, swh::edge::to_str("swh_sqlite_commits_total"),
                                 swh_str{nullptr, 0}, 1.0);
                host->metric_add(host->host_ctx, swh::edge::to_str("swh_sqlite_committed_operations_total"),
                                 swh_str{nullptr, 0}, static_cast<double>(operations));
            };
        }
        instance->store = std::make_unique<Store>(std::move(options), HostLog(host), std::move(on_commit));
        return SWH_OK;
    });
    // Also on failure, so that the host can read last_error (then destroys).
    *out_handle = instance.release();
    return status;
}

void sqlite_destroy(void *handle) noexcept {
    std::unique_ptr<Instance> owned(static_cast<Instance *>(handle));
}

const char *sqlite_last_error(void *handle) noexcept {
    if (handle == nullptr) return "";
    return static_cast<Instance *>(handle)->errors.get();
}

swh_status sqlite_create_session(void *handle, const swh_session *session) noexcept {
    return call(handle, [&](Store &store) {
        check_session(session);
        store.create_session(*session);
        return SWH_OK;
    });
}

swh_status sqlite_get_session(void *handle, swh_str session_id, const swh_result_sink *sink) noexcept {
    return call(handle, [&](Store &store) {
        require(SWH_HAS_MEMBER(sink, swh_result_sink, session) && sink->session,
                "sink without session callback");
        auto id = swh::edge::view(session_id, "session_id");
        auto row = store.get_session(id);
        if (!row) throw Failure(SWH_E_NOT_FOUND, "session '" + std::string(id) + "' not found");
        swh_session s = row->view();
        check_sink(sink->session(sink->ctx, &s));
        return SWH_OK;
    });
}

swh_status sqlite_update_session(void *handle, const swh_session *session, uint32_t fields) noexcept {
    return call(handle, [&](Store &store) {
        check_session(session);
        store.update_session(*session, fields);
        return SWH_OK;
    });
}

swh_status sqlite_delete_session(void *handle, swh_str session_id) noexcept {
    return call(handle, [&](Store &store) {
        store.delete_session(swh::edge::view(session_id, "session_id"));
        return SWH_OK;
    });
}

swh_status sqlite_list_sessions(void *handle, const swh_session_filter *filter,
                                const swh_result_sink *sink) noexcept {
    return call(handle, [&](Store &store) {
        require(SWH_HAS_MEMBER(sink, swh_result_sink, session) && sink->session,
                "sink without session callback");
        std::string_view user_id, status;
        uint32_t limit = 0, offset = 0;
        if (filter != nullptr) { // NULL = no filter
            require(SWH_HAS_MEMBER(filter, swh_session_filter, offset), "filter struct_size is too small");
            user_id = swh::edge::view(filter->user_id, "filter.user_id");
            status = swh::edge::view(filter->status, "filter.status");
            limit = filter->limit;
            offset = filter->offset;
        }
        for (const SessionRow &row : store.list_sessions(user_id, status, limit, offset)) {
            swh_session s = row.view();
            check_sink(sink->session(sink->ctx, &s));
        }
        return SWH_OK;
    });
}

swh_status sqlite_add_message(void *handle, const swh_message *message) noexcept {
    return call(handle, [&](Store &store) {
        require(SWH_HAS_MEMBER(message, swh_message, provider_metadata_json),
                "message is NULL or its struct_size is too small");
        store.add_message(*message);
        return SWH_OK;
    });
}

swh_status sqlite_get_messages(void *handle, const swh_message_query *query,
                               const swh_result_sink *sink) noexcept {
    return call(handle, [&](Store &store) {
        require(SWH_HAS_MEMBER(query, swh_message_query, limit),
                "query is NULL or its struct_size is too small");
        require(SWH_HAS_MEMBER(sink, swh_result_sink, message) && sink->message,
                "sink without message callback");
        auto rows =
            store.get_messages(swh::edge::view(query->session_id, "query.session_id"),
                               swh::edge::view(query->role, "query.role"), query->since, query->limit);
        for (const auto &row : rows) {
            swh_message m = row.view();
            check_sink(sink->message(sink->ctx, &m));
        }
        return SWH_OK;
    });
}

swh_status sqlite_health_check(void *handle, const swh_result_sink *sink) noexcept {
    return call(handle, [&](Store &store) {
        require(SWH_HAS_MEMBER(sink, swh_result_sink, json) && sink->json, "sink without json callback");
        nlohmann::json report = {
            {"backend", "sqlite"}, {"sqlite_version", sqlite3_libversion()}, {"path", store.options().path}};
        swh_status status = SWH_OK;
        std::string error;
        try {
            auto info = store.health();
            report["status"] = "healthy";
            report["journal_mode"] = info.journal_mode;
            report["sessions"] = info.sessions;
            report["synchronous"] = store.options().synchronous;
            report["readers"] = store.reader_count();
        } catch (const Failure &e) {
            status = SWH_E_UNAVAILABLE;
            error = e.what();
            report["status"] = "unhealthy";
            report["error"] = error;
        }
        std::string text = dump(report);
        check_sink(sink->json(sink->ctx, swh::edge::to_str(text)));
        if (status != SWH_OK) throw Failure(status, "unhealthy: " + error);
        return SWH_OK;
    });
}

// ----------------------------------------------------------- descriptor

constexpr swh_storage_v1 kTable = {
    sizeof(swh_storage_v1), sqlite_create,      sqlite_destroy,        sqlite_last_error,
    sqlite_create_session,  sqlite_get_session, sqlite_update_session, sqlite_delete_session,
    sqlite_list_sessions,   sqlite_add_message, sqlite_get_messages,   sqlite_health_check,
};

constexpr swh_plugin_descriptor kDescriptor = {
    sizeof(swh_plugin_descriptor),
    SWH_ABI_VERSION_MAJOR,
    SWH_ABI_VERSION_MINOR,
    "sqlite",
    "0.1.0",
    "Sessions and messages in one SQLite file (WAL, group commit)",
    SWH_KIND_STORAGE,
    SWH_IFACE_STORAGE_V1,
    kSchema.fields.data(),
    kSchema.fields.size(),
    &kTable,
};

} // namespace

extern "C" SWH_EXPORT const swh_plugin_descriptor *swh_plugin_entry(void) {
    return &kDescriptor;
}
