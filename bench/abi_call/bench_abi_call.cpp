// bench_abi_call: what does crossing the plugin ABI cost?
//
// Part 1 (call overhead): N calls of a no-op `on_event(handle, &event)`
//   (1) direct C++ call to a noinline no-op in this binary   (baseline)
//   (2) indirect call through a function pointer in this binary
//   (3) the real thing: table->on_event of swh_bench_noop.so, loaded through
//       swh::loader::PluginLibrary (the daemon's loader)
//   (4) typed path: what a typed hook wrapper would do per event — build the
//       ABI structs from host model objects (SessionAbi + MessageAbi, as
//       StorageInstance does), call, check the status. No HookInstance exists
//       in host/loader yet, so this mirrors the StorageInstance call shape.
//
// Part 2 (storage): one durable message append (update session counter +
// insert message, one transaction per message, WAL, the same synchronous
// mode) through
//   (a) the sqlite C API directly, same schema and pragmas   (baseline)
//   (b) the plugin's raw ABI table (table->add_message)
//   (c) swh::loader::StorageInstance::add_message (the daemon's path)
// for synchronous=FULL (the plugin's default: fsync per commit) and
// synchronous=NORMAL (no fsync on commit in WAL; shows the CPU overhead).
//
// Everything prints ratios to the baseline measured in the same run. Speed is
// reported, never asserted.
#include "loader/abi_convert.hpp"
#include "loader/host_services.hpp"
#include "loader/instances.hpp"
#include "loader/plugin_library.hpp"

#include "sqlite_schema.h" // generated: the sqlite plugin's schema

#include <spdlog/spdlog.h>
#include <sqlite3.h>
#include <swarmhost/swarmhost.h>

#include <algorithm>
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <functional>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <unistd.h>
#include <vector>

namespace {

// ---------------------------------------------------------------- barriers
// The benchmark::DoNotOptimize idiom: the compiler must assume the value is
// read (and may be modified) by the asm, so nothing is hoisted or elided.
// Register operands for small trivially copyable values (pointers, ints),
// memory operands otherwise (GCC rejects "+r,m" alternatives for some types).
template <class T> inline __attribute__((always_inline)) void do_not_optimize(T &value) {
    if constexpr (std::is_trivially_copyable_v<T> && sizeof(T) <= sizeof(void *))
        asm volatile("" : "+r"(value) : : "memory");
    else
        asm volatile("" : "+m"(value) : : "memory");
}

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point start) {
    return std::chrono::duration<double>(Clock::now() - start).count();
}

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    const size_t n = v.size();
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

// ------------------------------------------------------ part 1: call cost

// Same signature as swh_hook_v1::on_event. noinline + an asm statement that
// "uses" the arguments: the call can be neither inlined nor removed (GCC's
// IPA would otherwise notice a pure no-op and delete the call).
extern "C" __attribute__((noinline)) swh_status direct_on_event(void *handle, const swh_event *event) {
    asm volatile("" : : "r"(handle), "r"(event) : "memory");
    return SWH_OK;
}

using OnEvent = swh_status (*)(void *, const swh_event *);

template <class Call> double time_calls(uint64_t n, Call &&call) {
    const auto start = Clock::now();
    for (uint64_t i = 0; i < n; ++i)
        call();
    return seconds_since(start) * 1e9 / static_cast<double>(n);
}

struct CallResult {
    const char *name;
    double ns;
    uint64_t n;
};

void bench_calls(const std::string &noop_path, uint64_t n, int repeats) {
    auto library = swh::loader::PluginLibrary::load(noop_path);
    if (library->kind() != SWH_KIND_HOOK) throw std::runtime_error(noop_path + ": not a hook plugin");
    const auto *table = static_cast<const swh_hook_v1 *>(library->vtable());
    swh::loader::HostServices host("bench_noop", swh::loader::null_environment());
    swh::Json cfg_json = swh::Json::object();
    swh_config cfg{&cfg_json, cfg_json.dump()};
    void *handle = nullptr;
    host.begin_create(&cfg); // as the host does: config reads are refused outside create
    const swh_status created = table->create(host.api(), &cfg, &handle);
    host.end_create();
    if (created != SWH_OK || !handle) throw std::runtime_error("create failed");

    // A realistic MESSAGE_SENT event, as the host's model objects and as ABI structs.
    swh::Session session;
    session.id = "0b6f3c1e-6f2a-4c55-9a55-0d6b7f0c2a11";
    session.user_id = "bench-user";
    session.provider = "echo";
    session.model = "echo-1";
    session.created_at = session.last_activity = 1'700'000'000'000'000;
    session.message_count = 2;
    swh::Message message;
    message.id = "5a8d2b44-0c3e-4f0e-8c1d-2e9a7b6c5d40";
    message.session_id = session.id;
    message.role = "user";
    message.content = "hello world";
    message.timestamp = session.last_activity;
    swh::loader::SessionAbi session_abi(session);
    swh::loader::MessageAbi message_abi(message);
    swh_event event{};
    event.struct_size = sizeof event;
    event.type = SWH_EVENT_MESSAGE_SENT;
    event.time = message.timestamp;
    event.session = session_abi.get();
    event.message = message_abi.get();
    event.details_json = swh::loader::to_str("{}");

    OnEvent local_pointer = &direct_on_event;
    const uint64_t n_typed = std::max<uint64_t>(1, n / 100); // ~100x slower; keep the run short

    auto direct = [&] {
        void *h = handle;
        const swh_event *e = &event;
        do_not_optimize(h);
        do_not_optimize(e);
        swh_status r = direct_on_event(h, e);
        do_not_optimize(r);
    };
    auto local_indirect = [&] {
        void *h = handle;
        const swh_event *e = &event;
        do_not_optimize(h);
        do_not_optimize(e);
        do_not_optimize(local_pointer); // the compiler cannot devirtualise
        swh_status r = local_pointer(h, e);
        do_not_optimize(r);
    };
    auto plugin = [&] {
        void *h = handle;
        const swh_event *e = &event;
        do_not_optimize(h);
        do_not_optimize(e);
        swh_status r = table->on_event(h, e); // re-loads table->on_event each time, like the host
        do_not_optimize(r);
    };
    auto typed = [&] {
        swh::loader::SessionAbi s(session);
        swh::loader::MessageAbi m(message);
        swh_event ev{};
        ev.struct_size = sizeof ev;
        ev.type = SWH_EVENT_MESSAGE_SENT;
        ev.time = message.timestamp;
        ev.session = s.get();
        ev.message = m.get();
        ev.details_json = swh::loader::to_str("{}");
        const swh_event *e = &ev;
        do_not_optimize(e);
        swh_status r = table->on_event(handle, e);
        if (r != SWH_OK) throw std::runtime_error("on_event failed");
        do_not_optimize(r);
    };

    // Warm up, then interleave the variants so drift (other jobs on the
    // machine, frequency changes) hits all of them alike; report medians.
    time_calls(n / 10, direct);
    time_calls(n / 10, plugin);
    std::vector<double> t_direct, t_local, t_plugin, t_typed;
    for (int r = 0; r < repeats; ++r) {
        t_direct.push_back(time_calls(n, direct));
        t_local.push_back(time_calls(n, local_indirect));
        t_plugin.push_back(time_calls(n, plugin));
        t_typed.push_back(time_calls(n_typed, typed));
    }
    table->destroy(handle);

    const double base = median(t_direct);
    std::printf("== ABI call overhead: no-op on_event(handle, &event), median of %d runs\n", repeats);
    std::printf("%-58s %12s %8s %12s\n", "variant", "calls", "ns/call", "vs direct");
    const CallResult rows[] = {
        {"(1) direct C++ call, noinline no-op [baseline]", base, n},
        {"(2) function pointer, same binary", median(t_local), n},
        {"(3) plugin table->on_event (swh_bench_noop.so)", median(t_plugin), n},
        {"(4) typed path: SessionAbi+MessageAbi, call, check", median(t_typed), n_typed},
    };
    for (const auto &row : rows)
        std::printf("%-58s %12" PRIu64 " %8.2f %11.2fx\n", row.name, row.n, row.ns, row.ns / base);
    std::printf("   plugin call minus direct call: %+.2f ns/call\n\n", median(t_plugin) - base);
    std::printf("SUMMARY abi direct_ns=%.3f fnptr_ns=%.3f plugin_ns=%.3f typed_ns=%.2f ratio_fnptr=%.3f "
                "ratio_plugin=%.3f ratio_typed=%.2f\n\n",
                base, median(t_local), median(t_plugin), median(t_typed), median(t_local) / base,
                median(t_plugin) / base, median(t_typed) / base);
}

// ----------------------------------------------------- part 2: storage

// The sqlite plugin's own schema (generated from its source by bench/CMakeLists.txt),
// so the native loop does the same index maintenance.
constexpr const char *kSchema = kSqlitePluginSchema;

const char *kSessionId = "0b6f3c1e-6f2a-4c55-9a55-0d6b7f0c2a11";

// A UUID-shaped, unique, 36-character id (same length as the host's ids).
std::string make_id(uint64_t tag, uint64_t i) {
    char buf[40];
    std::snprintf(buf, sizeof buf, "%08" PRIx64 "-0000-4000-8000-%012" PRIx64, tag & 0xffffffffu, i);
    return buf;
}

int64_t now_us() {
    return std::chrono::duration_cast<std::chrono::microseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

void check_rc(sqlite3 *db, int rc, const char *what) {
    if (rc != SQLITE_OK && rc != SQLITE_DONE && rc != SQLITE_ROW)
        throw std::runtime_error(std::string(what) + ": " + sqlite3_errmsg(db));
}

// Each runner appends messages for ~`seconds` and returns µs/message.
class NativeRunner {
  public:
    NativeRunner(const std::string &path, const std::string &sync) {
        check_rc(db_,
                 sqlite3_open_v2(path.c_str(), &db_,
                                 SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr),
                 "open");
        exec("PRAGMA journal_mode = WAL;");
        exec(("PRAGMA synchronous = " + sync + ";").c_str());
        exec("PRAGMA foreign_keys = ON;");
        exec(kSchema);
        sqlite3_stmt *s = nullptr;
        check_rc(db_,
                 sqlite3_prepare_v2(db_,
                                    "INSERT INTO sessions (id, user_id, provider, created_at, last_activity) "
                                    "VALUES (?1, 'bench-user', 'echo', ?2, ?2)",
                                    -1, &s, nullptr),
                 "prepare");
        sqlite3_bind_text(s, 1, kSessionId, -1, SQLITE_STATIC);
        sqlite3_bind_int64(s, 2, now_us());
        check_rc(db_, sqlite3_step(s), "insert session");
        sqlite3_finalize(s);
        prepare(&begin_, "BEGIN IMMEDIATE");
        prepare(&commit_, "COMMIT");
        prepare(&bump_,
                "UPDATE sessions SET message_count = message_count + 1, last_activity = ?2 WHERE id = ?1");
        prepare(&insert_, "INSERT INTO messages (id, session_id, role, content, timestamp, metadata, "
                          "provider_message_id, provider_metadata) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)");
    }
    ~NativeRunner() {
        for (auto *s : {begin_, commit_, bump_, insert_})
            sqlite3_finalize(s);
        sqlite3_close(db_);
    }
    void append(const std::string &id) {
        const int64_t ts = now_us();
        run(begin_);
        sqlite3_bind_text(bump_, 1, kSessionId, -1, SQLITE_STATIC);
        sqlite3_bind_int64(bump_, 2, ts);
        run(bump_);
        if (sqlite3_changes(db_) != 1) throw std::runtime_error("session not found");
        sqlite3_bind_text(insert_, 1, id.data(), static_cast<int>(id.size()), SQLITE_STATIC);
        sqlite3_bind_text(insert_, 2, kSessionId, -1, SQLITE_STATIC);
        sqlite3_bind_text(insert_, 3, "user", -1, SQLITE_STATIC);
        sqlite3_bind_text(insert_, 4, "hello world", -1, SQLITE_STATIC);
        sqlite3_bind_int64(insert_, 5, ts);
        sqlite3_bind_text(insert_, 6, "{}", -1, SQLITE_STATIC);
        sqlite3_bind_text(insert_, 7, "", -1, SQLITE_STATIC);
        sqlite3_bind_text(insert_, 8, "{}", -1, SQLITE_STATIC);
        run(insert_);
        run(commit_);
    }

  private:
    void exec(const char *sql) { check_rc(db_, sqlite3_exec(db_, sql, nullptr, nullptr, nullptr), sql); }
    void prepare(sqlite3_stmt **s, const char *sql) {
        check_rc(db_, sqlite3_prepare_v2(db_, sql, -1, s, nullptr), sql);
    }
    void run(sqlite3_stmt *s) {
        int rc = sqlite3_step(s);
        sqlite3_reset(s);
        check_rc(db_, rc, sqlite3_sql(s));
    }
    sqlite3 *db_ = nullptr;
    sqlite3_stmt *begin_ = nullptr, *commit_ = nullptr, *bump_ = nullptr, *insert_ = nullptr;
};

swh::Json storage_config(const std::string &path, const std::string &sync) {
    return swh::Json{{"path", path}, {"busy_timeout_ms", 5000}, {"synchronous", sync}, {"pool_size", 4}};
}

swh::Session bench_session() {
    swh::Session s;
    s.id = kSessionId;
    s.user_id = "bench-user";
    s.provider = "echo";
    s.created_at = s.last_activity = now_us();
    return s;
}

swh::Message bench_message(const std::string &id) {
    swh::Message m;
    m.id = id;
    m.session_id = kSessionId;
    m.role = "user";
    m.content = "hello world";
    m.timestamp = now_us();
    return m;
}

// The plugin's table called directly, with a handle made the way the host
// makes one (its HostServices table), skipping the StorageInstance wrapper.
class RawTableRunner {
  public:
    RawTableRunner(std::shared_ptr<swh::loader::PluginLibrary> lib, const std::string &path,
                   const std::string &sync)
        : lib_(std::move(lib)), table_(static_cast<const swh_storage_v1 *>(lib_->vtable())),
          host_("bench_raw", swh::loader::null_environment()), config_(storage_config(path, sync)) {
        swh_config cfg{&config_, config_.dump()};
        host_.begin_create(&cfg); // as the host does: config reads are refused outside create
        const swh_status created = table_->create(host_.api(), &cfg, &handle_);
        host_.end_create();
        if (created != SWH_OK)
            throw std::runtime_error(std::string("create: ") + (handle_ ? table_->last_error(handle_) : ""));
        const swh::Session session = bench_session(); // SessionAbi borrows its strings
        swh::loader::SessionAbi s(session);
        if (table_->create_session(handle_, s.get()) != SWH_OK)
            throw std::runtime_error(std::string("create_session: ") + table_->last_error(handle_));
    }
    ~RawTableRunner() { table_->destroy(handle_); }
    void append(const std::string &id) {
        const int64_t ts = now_us();
        swh_message m{};
        m.struct_size = sizeof m;
        m.id = swh::loader::to_str(id);
        m.session_id = swh::loader::to_str(kSessionId);
        m.role = swh::loader::to_str("user");
        m.content = swh::loader::to_str("hello world");
        m.timestamp = ts;
        m.metadata_json = swh::loader::to_str("{}");
        m.provider_message_id = swh::loader::to_str("");
        m.provider_metadata_json = swh::loader::to_str("{}");
        if (table_->add_message(handle_, &m) != SWH_OK)
            throw std::runtime_error(std::string("add_message: ") + table_->last_error(handle_));
    }

  private:
    std::shared_ptr<swh::loader::PluginLibrary> lib_;
    const swh_storage_v1 *table_;
    swh::loader::HostServices host_;
    swh::Json config_;
    void *handle_ = nullptr;
};

class InstanceRunner {
  public:
    InstanceRunner(std::shared_ptr<swh::loader::PluginLibrary> lib, const std::string &path,
                   const std::string &sync)
        : storage_(std::move(lib), "bench_sqlite", storage_config(path, sync)) {
        storage_.create_session(bench_session());
    }
    void append(const std::string &id) { storage_.add_message(bench_message(id)); }

  private:
    swh::loader::StorageInstance storage_;
};

// Appends for ~`seconds` (at most max_messages); returns us/message. Ids
// are unique per runner (tag) across calls; making one (a snprintf) costs
// ~0.1 us, the same for every runner.
template <class Runner>
double time_appends(Runner &runner, uint64_t tag, uint64_t &counter, double seconds, uint64_t max_messages) {
    const auto start = Clock::now();
    uint64_t done = 0;
    while (done < max_messages) {
        runner.append(make_id(tag, counter + done));
        ++done;
        if ((done & 3) == 0 && seconds_since(start) >= seconds) break;
    }
    const double elapsed = seconds_since(start);
    counter += done;
    return elapsed * 1e6 / static_cast<double>(done);
}

void bench_storage(const std::string &sqlite_plugin, const std::string &dir, const std::string &sync,
                   double seconds, int repeats) {
    auto lib = swh::loader::PluginLibrary::load(sqlite_plugin);
    const std::string base = dir + "/abi_" + sync;
    for (const char *suffix : {"_native.db", "_raw.db", "_inst.db"})
        for (const char *extra : {"", "-wal", "-shm"})
            std::filesystem::remove(base + suffix + extra);

    NativeRunner native(base + "_native.db", sync);
    RawTableRunner raw(lib, base + "_raw.db", sync);
    InstanceRunner inst(lib, base + "_inst.db", sync);

    // This VM's fsync latency swings by 10x within seconds (other jobs
    // writing to the same disk), so the runners take turns in short slices
    // and each result is its total time over its total messages: a slow
    // phase of the disk hits all three alike.
    constexpr double kSlice = 0.05;
    const uint64_t cap = sync == "full" ? 100'000 : 2'000'000;
    uint64_t c_native = 0, c_raw = 0, c_inst = 0;
    // warm-up (statement caches, WAL file creation)
    time_appends(native, 1, c_native, 0.1, cap);
    time_appends(raw, 2, c_raw, 0.1, cap);
    time_appends(inst, 3, c_inst, 0.1, cap);
    uint64_t n_native = 0, n_raw = 0, n_inst = 0; // measured messages
    double s_native = 0, s_raw = 0, s_inst = 0;   // measured seconds
    auto slice = [&](auto &runner, uint64_t tag, uint64_t &count, uint64_t &measured, double &spent) {
        const uint64_t before = count;
        const double us = time_appends(runner, tag, count, kSlice, cap);
        measured += count - before;
        spent += us * static_cast<double>(count - before) / 1e6;
    };
    const int slices = std::max(1, static_cast<int>(seconds * repeats / kSlice));
    for (int i = 0; i < slices; ++i) {
        switch (i % 3) { // rotate who goes first
        case 0:
            slice(native, 1, c_native, n_native, s_native);
            slice(raw, 2, c_raw, n_raw, s_raw);
            slice(inst, 3, c_inst, n_inst, s_inst);
            break;
        case 1:
            slice(raw, 2, c_raw, n_raw, s_raw);
            slice(inst, 3, c_inst, n_inst, s_inst);
            slice(native, 1, c_native, n_native, s_native);
            break;
        default:
            slice(inst, 3, c_inst, n_inst, s_inst);
            slice(native, 1, c_native, n_native, s_native);
            slice(raw, 2, c_raw, n_raw, s_raw);
            break;
        }
    }
    std::vector<double> t_native{s_native * 1e6 / static_cast<double>(n_native)};
    std::vector<double> t_raw{s_raw * 1e6 / static_cast<double>(n_raw)};
    std::vector<double> t_inst{s_inst * 1e6 / static_cast<double>(n_inst)};
    const double b = median(t_native);
    std::printf("== storage add_message, synchronous=%s, WAL, 1 thread, one transaction per message, "
                "%d interleaved slices of %.2fs per variant\n",
                sync.c_str(), slices, kSlice);
    std::printf("%-58s %12s %8s %10s %10s\n", "variant", "messages", "us/msg", "msgs/s", "vs native");
    auto row = [&](const char *name, double us, uint64_t count) {
        std::printf("%-58s %12" PRIu64 " %8.1f %10.0f %9.2fx\n", name, count, us, 1e6 / us, us / b);
    };
    row("(a) sqlite3 C API: BEGIN; UPDATE; INSERT; COMMIT [baseline]", b, n_native);
    row("(b) plugin table->add_message (raw ABI)", median(t_raw), n_raw);
    row("(c) StorageInstance::add_message (daemon path)", median(t_inst), n_inst);
    std::printf("   ABI+plugin cost over native: %+.1f us/msg (raw table), %+.1f us/msg (StorageInstance)\n",
                median(t_raw) - b, median(t_inst) - b);
    std::printf("SUMMARY storage_%s native_us=%.2f raw_us=%.2f instance_us=%.2f ratio_raw=%.3f "
                "ratio_instance=%.3f\n\n",
                sync.c_str(), b, median(t_raw), median(t_inst), median(t_raw) / b, median(t_inst) / b);
}

std::string arg_value(int argc, char **argv, const char *name, const std::string &fallback) {
    for (int i = 1; i + 1 < argc; ++i)
        if (std::strcmp(argv[i], name) == 0) return argv[i + 1];
    return fallback;
}

} // namespace

int main(int argc, char **argv) {
    if (argc > 1 && (std::strcmp(argv[1], "-h") == 0 || std::strcmp(argv[1], "--help") == 0)) {
        std::printf(
            "usage: bench_abi_call [--calls N] [--repeats R] [--seconds S] [--dir TMPDIR]\n"
            "                      [--noop-plugin FILE] [--sqlite-plugin FILE] [--only calls|storage]\n");
        return 0;
    }
    spdlog::set_level(spdlog::level::warn); // the plugin's "opened ..." info lines
    const uint64_t calls = std::stoull(arg_value(argc, argv, "--calls", "50000000"));
    const int repeats = std::stoi(arg_value(argc, argv, "--repeats", "3"));
    const double seconds = std::stod(arg_value(argc, argv, "--seconds", "1.5"));
    const std::string only = arg_value(argc, argv, "--only", "");
    const std::string noop = arg_value(argc, argv, "--noop-plugin", SWH_BENCH_NOOP_PLUGIN);
    const std::string sqlite_plugin = arg_value(argc, argv, "--sqlite-plugin", SWH_BENCH_SQLITE_PLUGIN);
    std::string dir = arg_value(argc, argv, "--dir", "");
    bool own_dir = false;
    try {
        if (dir.empty()) {
            char tmpl[] = "/tmp/swh-bench-abi.XXXXXX";
            if (!mkdtemp(tmpl)) throw std::runtime_error("mkdtemp failed");
            dir = tmpl;
            own_dir = true;
        }
        if (only.empty() || only == "calls") bench_calls(noop, calls, repeats);
        if (only.empty() || only == "storage") {
            std::printf("(database files in %s)\n", dir.c_str());
            bench_storage(sqlite_plugin, dir, "full", seconds, repeats);
            bench_storage(sqlite_plugin, dir, "normal", seconds, repeats);
        }
    } catch (const std::exception &e) {
        std::fprintf(stderr, "bench_abi_call: %s\n", e.what());
        if (own_dir) std::filesystem::remove_all(dir);
        return 1;
    }
    if (own_dir) std::filesystem::remove_all(dir);
    return 0;
}
