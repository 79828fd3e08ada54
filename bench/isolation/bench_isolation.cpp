// bench_isolation: what does `isolation: process` cost per middleware and storage call?
//
// The same plugin, loaded by the daemon's loader, called through the
// daemon's own wrapper (swh::loader::MiddlewareInstance::process, the call
// the middleware chain makes for every message):
//   (1) in process                                        (baseline)
//   (2) isolated: the stand-in library of host/isolation/ forwards the call
//       over a socketpair to a swarmhost-plugin-host child, which runs the
//       real plugin and sends its edits back (two JSON frames per call, more
//       when the plugin calls the host, e.g. metric_add)
// for two plugins: fixture_crash (tests/fixture_plugins; one set_content and
// one metric_add per call) and the real content_filter (redact one word).
// Plus the start of an isolated instance (spawn + dlopen + create), which is
// also what a restart after a crash costs.
//
// Storage: the real sqlite plugin through swh::loader::StorageInstance, in
// process vs isolated, each on its own database file:
//   - add_message and get_messages(limit 20) per call, one thread,
//     synchronous=normal (the fsync would be the same in both and hide the
//     difference);
//   - add_message from 4 threads at once, synchronous=full (the default):
//     in process the plugin's group commit lets concurrent writers share an
//     fsync; isolated, calls to one instance are serialised, so they cannot.
//
// Session types: the fixture session type (tests/fixture_plugins,
// "fixture_notes") through swh::loader::SessionTypeInstance::handle_route,
// the call the daemon makes for every routed request, in process vs
// isolated. Route "POST notes": read the count from the session's metadata,
// merge a patch, publish an event, respond 201; with an empty body and with
// a 64 KiB body (an upload's bytes cross as base64).
//
// Providers: the real echo plugin through swh::loader::ProviderInstance::start
// (the call the send path makes), streamed, in process vs isolated (the
// multiplexed channel of host/isolation/provider_process.hpp: one request
// frame, one reply frame, then one frame per chunk, the metadata and done):
//   - per request: a 2-chunk reply ("echo#1 hi"), start to done;
//   - per chunk: (time of a 1001-chunk reply - time of the 2-chunk one) / 999;
//   - 8 threads streaming at once over one instance (one child): replies/s.
// Echo answers inside start, so in process this is the host's own cost
// alone: the ratio is the channel's cost over nothing, not over an upstream.
//
// Prints medians of several runs and the ratio to the baseline measured in
// the same run. Speed is reported, never asserted.
#include "isolation/isolate.hpp"
#include "loader/host_services.hpp"
#include "loader/instances.hpp"
#include "loader/plugin_library.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;
using swh::Json;

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    const size_t n = v.size();
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

// The validated config the daemon would pass: `given` plus schema defaults.
Json with_defaults(const swh::loader::PluginLibrary &lib, Json given) {
    for (const auto &field : lib.schema())
        if (!given.contains(field.key) && field.default_value) given[field.key] = *field.default_value;
    return given;
}

struct Fixture {
    swh::Session session;
    swh::Message message;
    Json context = Json{{"user_context", Json::object()}, {"system_context", Json::object()}};
    Fixture() {
        session.id = "3f1c2a9e-0000-4000-8000-000000000001";
        session.user_id = "bench-user";
        session.provider = "echo";
        session.model = "echo-1";
        message.id = "3f1c2a9e-0000-4000-8000-000000000002";
        message.session_id = session.id;
        message.role = "user";
        message.content = "Please summarise the attached meeting notes; the secret word is darn.";
        message.metadata = Json{{"client", "bench"}};
    }
};

// ns per call of `calls` process() calls, median of `repeats` runs.
double ns_per_call(swh::loader::MiddlewareInstance &mw, const Fixture &f, int calls, int repeats) {
    std::vector<double> runs;
    for (int r = 0; r < repeats; ++r) {
        const auto start = Clock::now();
        for (int i = 0; i < calls; ++i) {
            auto outcome = mw.process(SWH_STAGE_USER, f.session, f.message, f.context);
            if (outcome.status != SWH_OK || !outcome.content) {
                std::fprintf(stderr, "process failed: %s\n", outcome.error.c_str());
                std::exit(1);
            }
        }
        runs.push_back(std::chrono::duration<double, std::nano>(Clock::now() - start).count() / calls);
    }
    return median(runs);
}

void bench_plugin(const char *label, const std::string &file, const Json &given, int calls, int repeats) {
    auto lib = swh::loader::PluginLibrary::load(file);
    const Json config = with_defaults(*lib, given);
    const Fixture f;
    swh::loader::MiddlewareInstance in_process(lib, "bench_in_process", config);
    swh::loader::MiddlewareInstance isolated(swh::isolation::isolate(lib, 5000), "bench_isolated", config);
    // Warm-up: page in both paths, let the child finish its start.
    ns_per_call(in_process, f, calls / 10 + 1, 1);
    ns_per_call(isolated, f, calls / 10 + 1, 1);
    const double base = ns_per_call(in_process, f, calls, repeats);
    const double iso = ns_per_call(isolated, f, calls, repeats);
    std::printf("%-16s %-12s %10d %12.2f %10s\n", label, "in_process", calls, base / 1000, "1.00x");
    std::printf("%-16s %-12s %10d %12.2f %9.1fx   (+%.1f us per call)\n", label, "process", calls, iso / 1000,
                iso / base, (iso - base) / 1000);
}

void bench_start(const std::string &file, int starts) {
    auto lib = swh::loader::PluginLibrary::load(file);
    const Json config = with_defaults(*lib, Json::object());
    auto proxy = swh::isolation::isolate(lib, 5000);
    std::vector<double> ms;
    for (int i = 0; i < starts; ++i) {
        const auto start = Clock::now();
        {
            swh::loader::MiddlewareInstance isolated(proxy, "bench_start", config);
        } // includes the stop: EOF, destroy in the child, reap
        ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - start).count());
    }
    std::printf(
        "start + stop of an isolated instance (spawn, dlopen, create, EOF, reap): median %.2f ms of %d\n",
        median(ms), starts);
}

// ---------------------------------------------------------------- storage

// Unique ids without the host's services: what matters is the call path.
std::string bench_id(uint64_t n) {
    char text[37];
    std::snprintf(text, sizeof text, "3f1c2a9e-%04x-4000-8000-%012llx",
                  static_cast<unsigned>((n >> 48) & 0xFFFF),
                  static_cast<unsigned long long>(n & 0xFFFFFFFFFFFFULL));
    return text;
}

struct StoreBench {
    std::shared_ptr<swh::loader::PluginLibrary> library;
    std::filesystem::path dir;
    std::atomic<uint64_t> next_id{1};

    swh::Session new_session(swh::loader::StorageInstance &store) {
        swh::Session session;
        session.id = bench_id(next_id++);
        session.user_id = "bench-user";
        session.provider = "echo";
        session.status = "active";
        session.created_at = session.last_activity = 1'700'000'000'000'000;
        session.metadata = Json{{"client", "bench"}};
        store.create_session(session);
        return session;
    }
    swh::Message message_for(const swh::Session &session) {
        swh::Message m;
        m.id = bench_id(next_id++);
        m.session_id = session.id;
        m.role = "user";
        m.content = "Please summarise the attached meeting notes; the secret word is darn.";
        m.timestamp = 1'700'000'000'000'000 + static_cast<int64_t>(next_id.load());
        m.metadata = Json{{"client", "bench"}};
        return m;
    }
    std::unique_ptr<swh::loader::StorageInstance> open(bool isolated, const std::string &name,
                                                       const char *synchronous) {
        Json config = with_defaults(
            *library, Json{{"path", (dir / (name + ".db")).string()}, {"synchronous", synchronous}});
        return std::make_unique<swh::loader::StorageInstance>(
            isolated ? swh::isolation::isolate(library, 5000) : library, name, config);
    }
};

template <class F> double ns_per(int calls, int repeats, F &&call) {
    std::vector<double> runs;
    for (int r = 0; r < repeats; ++r) {
        const auto start = Clock::now();
        for (int i = 0; i < calls; ++i)
            call();
        runs.push_back(std::chrono::duration<double, std::nano>(Clock::now() - start).count() / calls);
    }
    return median(runs);
}

void print_pair(const char *label, int calls, double base, double iso) {
    std::printf("%-24s %-12s %10d %12.2f %10s\n", label, "in_process", calls, base / 1000, "1.00x");
    std::printf("%-24s %-12s %10d %12.2f %9.1fx   (+%.1f us per call)\n", label, "process", calls, iso / 1000,
                iso / base, (iso - base) / 1000);
}

void bench_store_calls(StoreBench &bench, int calls, int repeats) {
    auto in_process = bench.open(false, "calls_in_process", "normal");
    auto isolated = bench.open(true, "calls_isolated", "normal");
    double add[2], get[2];
    int which = 0;
    for (auto *store : {in_process.get(), isolated.get()}) {
        const swh::Session writes = bench.new_session(*store);
        const swh::Session reads = bench.new_session(*store);
        for (int i = 0; i < 100; ++i)
            store->add_message(bench.message_for(reads));
        swh::MessageQuery query;
        query.session_id = reads.id;
        query.limit = 20;
        auto add_one = [&] { store->add_message(bench.message_for(writes)); };
        auto get_twenty = [&] {
            if (store->get_messages(query).size() != 20) {
                std::fprintf(stderr, "get_messages: expected 20 messages\n");
                std::exit(1);
            }
        };
        ns_per(calls / 10 + 1, 1, add_one); // warm-up
        ns_per(calls / 10 + 1, 1, get_twenty);
        add[which] = ns_per(calls, repeats, add_one);
        get[which] = ns_per(calls, repeats, get_twenty);
        ++which;
    }
    print_pair("add_message", calls, add[0], add[1]);
    print_pair("get_messages(limit 20)", calls, get[0], get[1]);
}

// add_message/s with `threads` writers at once, each on its own session.
double concurrent_adds(StoreBench &bench, swh::loader::StorageInstance &store, int threads, int per_thread) {
    std::vector<swh::Session> sessions;
    for (int t = 0; t < threads; ++t)
        sessions.push_back(bench.new_session(store));
    const auto start = Clock::now();
    std::vector<std::thread> writers;
    for (int t = 0; t < threads; ++t)
        writers.emplace_back([&, t] {
            for (int i = 0; i < per_thread; ++i)
                store.add_message(bench.message_for(sessions[static_cast<std::size_t>(t)]));
        });
    for (auto &w : writers)
        w.join();
    const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
    return threads * per_thread / seconds;
}

void bench_store_concurrency(StoreBench &bench, int threads, int per_thread, int repeats) {
    for (const char *synchronous : {"full", "normal"}) {
        auto in_process = bench.open(false, std::string("conc_in_process_") + synchronous, synchronous);
        auto isolated = bench.open(true, std::string("conc_isolated_") + synchronous, synchronous);
        std::vector<double> base, iso;
        concurrent_adds(bench, *in_process, threads, per_thread / 10 + 1); // warm-up
        concurrent_adds(bench, *isolated, threads, per_thread / 10 + 1);
        for (int r = 0; r < repeats; ++r) {
            base.push_back(concurrent_adds(bench, *in_process, threads, per_thread));
            iso.push_back(concurrent_adds(bench, *isolated, threads, per_thread));
        }
        const double b = median(base), i = median(iso);
        std::printf(
            "add_message, %d writers, synchronous=%-6s in_process %9.0f/s   process %9.0f/s   (%.2fx)\n",
            threads, synchronous, b, i, i / b);
    }
}

// ----------------------------------------------------------- session type

void bench_session_type(int calls, int repeats) {
    auto lib = swh::loader::PluginLibrary::load(SWH_BENCH_SESSION_TYPE_PLUGIN);
    const Json config = with_defaults(*lib, Json::object());
    swh::loader::SessionTypeInstance in_process(lib, "bench_in_process", config);
    swh::loader::SessionTypeInstance isolated(swh::isolation::isolate(lib, 5000), "bench_isolated", config);
    swh::Session session;
    session.id = "3f1c2a9e-0000-4000-8000-000000000003";
    session.user_id = "bench-user";
    session.type = "notes";
    session.metadata = Json{{"fixture_notes", {{"count", 41}}}};
    for (const std::size_t body_size : {std::size_t{0}, std::size_t{64} << 10}) {
        swh::loader::RouteCall call;
        call.route_index = 0; // POST notes
        call.caller_user_id = "bench-user";
        call.content_type = "application/octet-stream";
        call.path = "notes";
        call.body.assign(body_size, '\xA7'); // not UTF-8: bytes as an upload brings them
        double ns[2];
        int which = 0;
        for (auto *type : {&in_process, &isolated}) {
            auto route = [&] {
                if (type->handle_route(session, call).status != 201) {
                    std::fprintf(stderr, "handle_route: expected 201\n");
                    std::exit(1);
                }
            };
            ns_per(calls / 10 + 1, 1, route); // warm-up
            ns[which++] = ns_per(calls, repeats, route);
        }
        print_pair(body_size ? "handle_route, 64 KiB body" : "handle_route, no body", calls, ns[0], ns[1]);
    }
}

// --------------------------------------------------------------- provider

// One streamed reply, start to done; exits on a failure.
void stream_one(swh::loader::ProviderInstance &provider, const swh::Session &session,
                const std::vector<swh::Message> &history, std::size_t expect_chunks) {
    struct Wait {
        std::mutex mutex;
        std::condition_variable cv;
        bool done = false;
        swh_status status = SWH_OK;
        std::string error;
        std::size_t chunks = 0; // only the call's callbacks touch it before done
    } wait;
    swh::loader::ProviderRequest request;
    request.session = &session;
    request.messages = &history;
    request.stream = true;
    swh::loader::ProviderCallbacks callbacks;
    callbacks.on_chunk = [&](std::string_view) {
        ++wait.chunks;
        return true;
    };
    callbacks.on_metadata = [](std::string, Json) {};
    callbacks.on_done = [&](swh_status status, std::string error) {
        std::lock_guard lock(wait.mutex);
        wait.done = true;
        wait.status = status;
        wait.error = std::move(error);
        wait.cv.notify_all();
    };
    provider.start(request, std::move(callbacks));
    std::unique_lock lock(wait.mutex);
    wait.cv.wait(lock, [&] { return wait.done; });
    if (wait.status != SWH_OK || wait.chunks != expect_chunks) {
        std::fprintf(stderr, "provider call: status %d (%s), %zu chunks, expected %zu\n", wait.status,
                     wait.error.c_str(), wait.chunks, expect_chunks);
        std::exit(1);
    }
}

void bench_provider(int requests, int repeats) {
    auto lib = swh::loader::PluginLibrary::load(SWH_BENCH_ECHO_PLUGIN);
    const Json config = with_defaults(*lib, Json::object());
    swh::loader::ProviderInstance in_process(lib, "bench_in_process", config);
    swh::loader::ProviderInstance isolated(swh::isolation::isolate(lib, 5000), "bench_isolated", config);
    swh::Session session;
    session.id = "3f1c2a9e-0000-4000-8000-000000000004";
    session.user_id = "bench-user";
    session.provider = "echo";
    auto history_of = [&](const std::string &content) {
        swh::Message m;
        m.id = "3f1c2a9e-0000-4000-8000-000000000005";
        m.session_id = session.id;
        m.role = "user";
        m.content = content;
        return std::vector<swh::Message>{m};
    };
    const auto short_history = history_of("hi"); // "echo#1 hi": 2 chunks
    std::string words;
    for (int i = 0; i < 1000; ++i)
        words += (i ? " w" : "w") + std::to_string(i % 10);
    const auto long_history = history_of(words); // 1001 chunks
    const int long_requests = std::max(1, requests / 50);
    double short_ns[2], long_ns[2];
    int which = 0;
    for (auto *provider : {&in_process, &isolated}) {
        auto short_one = [&] { stream_one(*provider, session, short_history, 2); };
        auto long_one = [&] { stream_one(*provider, session, long_history, 1001); };
        ns_per(requests / 10 + 1, 1, short_one); // warm-up
        short_ns[which] = ns_per(requests, repeats, short_one);
        long_ns[which] = ns_per(long_requests, repeats, long_one);
        ++which;
    }
    print_pair("request, 2 chunks", requests, short_ns[0], short_ns[1]);
    print_pair("request, 1001 chunks", long_requests, long_ns[0], long_ns[1]);
    const double chunk_base = (long_ns[0] - short_ns[0]) / 999, chunk_iso = (long_ns[1] - short_ns[1]) / 999;
    std::printf("%-24s %-12s %10s %12.3f %10s\n", "per chunk", "in_process", "", chunk_base / 1000, "1.00x");
    std::printf("%-24s %-12s %10s %12.3f %9.1fx   (+%.2f us per chunk)\n", "per chunk", "process", "",
                chunk_iso / 1000, chunk_iso / chunk_base, (chunk_iso - chunk_base) / 1000);

    // Streams at once over one instance: in process they run side by side;
    // isolated they share one child (its main thread starts them one after
    // another, their frames interleave on one socket).
    constexpr int kThreads = 8;
    const int per_thread = std::max(1, requests / kThreads);
    double rate[2];
    which = 0;
    for (auto *provider : {&in_process, &isolated}) {
        std::vector<double> runs;
        for (int r = 0; r < repeats; ++r) {
            const auto start = Clock::now();
            std::vector<std::thread> threads;
            for (int t = 0; t < kThreads; ++t)
                threads.emplace_back([&] {
                    for (int i = 0; i < per_thread; ++i)
                        stream_one(*provider, session, short_history, 2);
                });
            for (auto &t : threads)
                t.join();
            runs.push_back(kThreads * per_thread /
                           std::chrono::duration<double>(Clock::now() - start).count());
        }
        rate[which++] = median(runs);
    }
    std::printf("2-chunk replies, %d threads at once: in_process %9.0f/s   process %9.0f/s   (%.2fx)\n",
                kThreads, rate[0], rate[1], rate[1] / rate[0]);
}

int arg_int(int argc, char **argv, const char *name, int fallback) {
    for (int i = 1; i + 1 < argc; ++i)
        if (std::string(argv[i]) == name) return std::atoi(argv[i + 1]);
    return fallback;
}

// A fresh folder for the bench databases (removed at the end).
std::filesystem::path make_dir() {
    std::string pattern = (std::filesystem::temp_directory_path() / "swh-bench-isolation-XXXXXX").string();
    if (!::mkdtemp(pattern.data())) throw std::runtime_error("mkdtemp failed");
    return pattern;
}

} // namespace

int main(int argc, char **argv) {
    spdlog::set_level(spdlog::level::warn);
    setenv("SWH_PLUGIN_HOST", SWH_BENCH_PLUGIN_HOST, 0); // 0: an explicit override wins
    const int calls = arg_int(argc, argv, "--calls", 20000);
    const int repeats = arg_int(argc, argv, "--repeats", 5);
    const bool provider_only = arg_int(argc, argv, "--provider-only", 0) != 0;
    try {
        if (provider_only) {
            std::printf("== provider (echo) streamed requests, median of %d runs (us/request, us/chunk)\n",
                        repeats);
            std::printf("%-24s %-12s %10s %12s %10s\n", "call", "isolation", "calls", "us", "vs in_process");
            bench_provider(arg_int(argc, argv, "--provider-calls", 5000), repeats);
            return 0;
        }
        std::printf("== middleware process() per call, median of %d runs (us/call)\n", repeats);
        std::printf("%-16s %-12s %10s %12s %10s\n", "plugin", "isolation", "calls", "us/call",
                    "vs in_process");
        bench_plugin("fixture_crash", SWH_BENCH_CRASH_PLUGIN, Json::object(), calls, repeats);
        bench_plugin("content_filter", SWH_BENCH_FILTER_PLUGIN,
                     Json{{"blocked_words", {"darn"}}, {"log_matches", false}}, calls, repeats);
        bench_start(SWH_BENCH_CRASH_PLUGIN, arg_int(argc, argv, "--starts", 20));

        StoreBench store{swh::loader::PluginLibrary::load(SWH_BENCH_SQLITE_PLUGIN), make_dir(), {}};
        std::printf(
            "\n== sqlite storage per call, one thread, synchronous=normal, median of %d runs (us/call)\n",
            repeats);
        std::printf("%-24s %-12s %10s %12s %10s\n", "call", "isolation", "calls", "us/call", "vs in_process");
        bench_store_calls(store, arg_int(argc, argv, "--store-calls", 5000), repeats);
        std::printf("\n== sqlite storage throughput, concurrent writers, median of %d runs\n", repeats);
        bench_store_concurrency(store, 4, arg_int(argc, argv, "--store-writes", 500), repeats);
        std::filesystem::remove_all(store.dir);

        std::printf(
            "\n== session type handle_route per call (fixture, POST notes), median of %d runs (us/call)\n",
            repeats);
        std::printf("%-24s %-12s %10s %12s %10s\n", "call", "isolation", "calls", "us/call", "vs in_process");
        bench_session_type(arg_int(argc, argv, "--route-calls", 5000), repeats);

        std::printf("\n== provider (echo) streamed requests, median of %d runs (us/request, us/chunk)\n",
                    repeats);
        std::printf("%-24s %-12s %10s %12s %10s\n", "call", "isolation", "calls", "us", "vs in_process");
        bench_provider(arg_int(argc, argv, "--provider-calls", 5000), repeats);
    } catch (const std::exception &e) {
        std::fprintf(stderr, "bench_isolation: %s\n", e.what());
        return 1;
    }
    return 0;
}
