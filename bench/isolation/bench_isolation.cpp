// bench_isolation: what does `isolation: process` cost per middleware call?
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
// Prints medians of several runs and the ratio to the baseline measured in
// the same run. Speed is reported, never asserted.
#include "isolation/isolate.hpp"
#include "loader/host_services.hpp"
#include "loader/instances.hpp"
#include "loader/plugin_library.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
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

int arg_int(int argc, char **argv, const char *name, int fallback) {
    for (int i = 1; i + 1 < argc; ++i)
        if (std::string(argv[i]) == name) return std::atoi(argv[i + 1]);
    return fallback;
}

} // namespace

int main(int argc, char **argv) {
    spdlog::set_level(spdlog::level::warn);
    setenv("SWH_PLUGIN_HOST", SWH_BENCH_PLUGIN_HOST, 0); // 0: an explicit override wins
    const int calls = arg_int(argc, argv, "--calls", 20000);
    const int repeats = arg_int(argc, argv, "--repeats", 5);
    try {
        std::printf("== middleware process() per call, median of %d runs (us/call)\n", repeats);
        std::printf("%-16s %-12s %10s %12s %10s\n", "plugin", "isolation", "calls", "us/call",
                    "vs in_process");
        bench_plugin("fixture_crash", SWH_BENCH_CRASH_PLUGIN, Json::object(), calls, repeats);
        bench_plugin("content_filter", SWH_BENCH_FILTER_PLUGIN,
                     Json{{"blocked_words", {"darn"}}, {"log_matches", false}}, calls, repeats);
        bench_start(SWH_BENCH_CRASH_PLUGIN, arg_int(argc, argv, "--starts", 20));
    } catch (const std::exception &e) {
        std::fprintf(stderr, "bench_isolation: %s\n", e.what());
        return 1;
    }
    return 0;
}
