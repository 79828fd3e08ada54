// swarmhost — the daemon's command line: `swarmhost <command> [options]`.
// Each command has its own options (`swarmhost <command> --help`), refuses
// any other, and exits non-zero on every error: 2 for a usage error, 1 when
// the work failed (the command's own codes are in its --help).
#include "daemon/daemon.hpp"
#include "daemon/scaffold.hpp"
#include "migrate/export_import.hpp"
#include "migrate/migrate.hpp"
#include "util/logging.hpp"

#include <swarmhost/abi.h>

#include <boost/program_options.hpp>
#include <cstdlib>
#include <functional>
#include <iostream>
#ifdef SWH_ALLOCATOR_MIMALLOC
#include <mimalloc.h>
#endif

namespace po = boost::program_options;

namespace {

constexpr int kUsageError = 2;

constexpr const char *kUsage = R"(usage: swarmhost <command> [options]
       swarmhost <command> --help     that command's options

commands:
  serve       run the daemon:                 swarmhost serve -c configs/default.yaml [--listen 127.0.0.1:8080]
  check       validate a manifest:            swarmhost check configs/default.yaml [--try-create]
  plugins     list plugins and schemas:       swarmhost plugins -c configs/default.yaml | --plugin-dir DIR
  new-plugin  scaffold an out-of-tree plugin: swarmhost new-plugin --kind middleware|hook --name my_filter
  migrate     copy every session to another store, resumable, verified:
                                              swarmhost migrate --from A.yaml --to B.yaml
  export      sessions as JSON lines:         swarmhost export -c A.yaml [--out FILE|-]
  import      JSON lines into a store:        swarmhost import -c B.yaml [--in FILE|-]

  -h, --help      this help
  -V, --version   print the version

Exit status: 0 done; 1 the command failed (a bad manifest, a store error, a
difference found); 2 a usage error (unknown command or option, missing
argument).
)";

// One subcommand: what it says in --help, its options, and what it runs.
struct Command {
    const char *name;
    const char *usage; // first lines of its --help
    std::function<void(po::options_description &)> options;
    bool takes_manifest_positional; // `swarmhost check FILE` as well as -c FILE
    std::function<int(const po::variables_map &)> run;
    // The copy commands log only warnings by default: their output is the
    // progress and the summary, and a plugin's start-up chatter is noise there.
    const char *default_log_level = "info";
};

std::string text_of(const po::variables_map &vm, const char *key) {
    return vm.count(key) ? vm[key].as<std::string>() : "";
}

std::vector<std::string> plugin_dirs_of(const po::variables_map &vm) {
    return vm.count("plugin-dir") ? vm["plugin-dir"].as<std::vector<std::string>>()
                                  : std::vector<std::string>{};
}

// The manifest of -c or of the positional argument.
std::string manifest_of(const po::variables_map &vm) {
    if (vm.count("config")) return vm["config"].as<std::string>();
    return text_of(vm, "manifest");
}

void add_manifest(po::options_description &options) {
    options.add_options()("config,c", po::value<std::string>()->value_name("FILE"), "manifest file (YAML)");
}

void add_plugin_dirs(po::options_description &options) {
    options.add_options()("plugin-dir", po::value<std::vector<std::string>>()->composing()->value_name("DIR"),
                          "extra plugin folder (repeatable)");
}

void add_quiet(po::options_description &options) {
    options.add_options()("quiet,q", "no progress on stderr (a bar on a terminal, plain lines otherwise)");
}

int missing(const char *command, const char *what) {
    std::cerr << "swarmhost " << command << ": " << what << " (swarmhost " << command << " --help)\n";
    return kUsageError;
}

int run_serve(const po::variables_map &vm) {
    swh::daemon::ServeOptions serve;
    serve.manifest_path = manifest_of(vm);
    if (serve.manifest_path.empty())
        return missing("serve", "give a manifest with -c FILE (try configs/default.yaml)");
    serve.listen_override = text_of(vm, "listen");
    serve.extra_plugin_dirs = plugin_dirs_of(vm);
    return swh::daemon::serve(serve);
}

int run_check(const po::variables_map &vm) {
    const std::string manifest = manifest_of(vm);
    if (manifest.empty()) return missing("check", "give a manifest file");
    return swh::daemon::check(manifest, plugin_dirs_of(vm), vm.count("try-create") > 0);
}

int run_plugins(const po::variables_map &vm) {
    const std::string manifest = manifest_of(vm);
    if (manifest.empty() && plugin_dirs_of(vm).empty())
        return missing("plugins", "give -c MANIFEST or --plugin-dir DIR");
    return swh::daemon::list_plugins(manifest, plugin_dirs_of(vm));
}

int run_new_plugin(const po::variables_map &vm) {
    swh::daemon::ScaffoldOptions scaffold;
    scaffold.kind = text_of(vm, "kind");
    scaffold.name = text_of(vm, "name");
    scaffold.lang = text_of(vm, "lang");
    scaffold.dir = text_of(vm, "dir");
    if (const auto dirs = plugin_dirs_of(vm); !dirs.empty()) scaffold.host_plugin_dir = dirs.front();
    return swh::daemon::new_plugin(scaffold, std::cout, std::cerr);
}

int run_migrate(const po::variables_map &vm) {
    swh::migrate::MigrateOptions options;
    options.from = text_of(vm, "from");
    options.to = text_of(vm, "to");
    if (options.from.empty() || options.to.empty())
        return missing("migrate", "give --from A.yaml and --to B.yaml");
    options.extra_plugin_dirs = plugin_dirs_of(vm);
    options.quiet = vm.count("quiet") > 0;
    return swh::migrate::migrate(options, std::cout, std::cerr);
}

int run_export(const po::variables_map &vm) {
    swh::migrate::ExportOptions options;
    options.manifest = manifest_of(vm);
    if (options.manifest.empty()) return missing("export", "give the manifest of the store with -c FILE");
    options.out = text_of(vm, "out");
    options.extra_plugin_dirs = plugin_dirs_of(vm);
    options.quiet = vm.count("quiet") > 0;
    return swh::migrate::export_sessions(options, std::cout, std::cerr);
}

int run_import(const po::variables_map &vm) {
    swh::migrate::ImportOptions options;
    options.manifest = manifest_of(vm);
    if (options.manifest.empty()) return missing("import", "give the manifest of the store with -c FILE");
    options.in = text_of(vm, "in");
    options.extra_plugin_dirs = plugin_dirs_of(vm);
    options.quiet = vm.count("quiet") > 0;
    return swh::migrate::import_sessions(options, std::cin, std::cerr);
}

std::vector<Command> commands() {
    return {
        {"serve",
         "usage: swarmhost serve -c MANIFEST [--listen HOST:PORT]\n\nRun the daemon until SIGTERM/SIGINT "
         "(SIGHUP reloads the manifest).\nExit status: 0 stopped cleanly, 1 could not start, 2 usage.",
         [](po::options_description &o) {
             add_manifest(o);
             o.add_options()("listen,l", po::value<std::string>()->value_name("HOST:PORT"),
                             "listen here instead of the manifest's server.listen");
             add_plugin_dirs(o);
         },
         true, run_serve},
        {"check",
         "usage: swarmhost check MANIFEST [--try-create]\n\nValidate a manifest: YAML, plugins, their "
         "config schemas; errors as file:line:col.\nExit status: 0 valid, 1 not, 2 usage.",
         [](po::options_description &o) {
             add_manifest(o);
             o.add_options()("try-create", "also create and destroy each plugin instance, each in a child "
                                           "process, and name any that crashes, hangs or fails");
             add_plugin_dirs(o);
         },
         true, run_check},
        {"plugins",
         "usage: swarmhost plugins -c MANIFEST | --plugin-dir DIR\n\nList the plugins found, with "
         "their config schemas.\nExit status: 0 some found, 1 none or a bad manifest, 2 usage.",
         [](po::options_description &o) {
             add_manifest(o);
             add_plugin_dirs(o);
         },
         true, run_plugins},
        {"new-plugin",
         "usage: swarmhost new-plugin --kind middleware|hook --name NAME [--lang c|cpp] [--dir OUT]\n\n"
         "Scaffold an out-of-tree plugin that builds against the installed SDK.\n"
         "Exit status: 0 written, 1 failed, 2 usage.",
         [](po::options_description &o) {
             o.add_options()("kind", po::value<std::string>(), "middleware | hook") //
                 ("name", po::value<std::string>(), "plugin name, [a-z][a-z0-9_]*") //
                 ("lang", po::value<std::string>()->default_value("c"), "c | cpp")  //
                 ("dir", po::value<std::string>(), "output folder (default ./<kind>_<name>)");
             add_plugin_dirs(o);
         },
         false, run_new_plugin},
        {"migrate",
         "usage: swarmhost migrate --from A.yaml --to B.yaml\n\n"
         "Copy every session and message of A's store into B's, keeping ids, times,\n"
         "status and metadata (only the storage sections of the manifests are used).\n"
         "Run it again after an interrupt: it resumes without duplicates. Ends by\n"
         "comparing both stores.\n"
         "Exit status: 0 copied and verified; 1 a store failed, a session conflicts\n"
         "with the target's or the stores differ; 2 usage. (docs/migration.md)",
         [](po::options_description &o) {
             o.add_options()("from", po::value<std::string>()->value_name("A.yaml"),
                             "manifest of the source store")(
                 "to", po::value<std::string>()->value_name("B.yaml"), "manifest of the target store");
             add_quiet(o);
             add_plugin_dirs(o);
         },
         false, run_migrate, "warn"},
        {"export",
         "usage: swarmhost export -c MANIFEST [--out FILE|-]\n\nWrite every session of the store as JSON "
         "lines, one session with its messages\nper line, oldest first. A file appears only when "
         "complete.\nExit status: 0 written, 1 failed, 2 usage. (docs/migration.md)",
         [](po::options_description &o) {
             add_manifest(o);
             o.add_options()("out,o", po::value<std::string>()->default_value("-")->value_name("FILE"),
                             "where to write; - = stdout");
             add_quiet(o);
             add_plugin_dirs(o);
         },
         true, run_export, "warn"},
        {"import",
         "usage: swarmhost import -c MANIFEST [--in FILE|-]\n\nWrite the sessions of an export into the "
         "store, keeping ids and times.\nSessions already there are skipped, half-imported ones "
         "completed.\nExit status: 0 all imported; 1 a bad line, a conflict or a store error (the\n"
         "good lines are imported); 2 usage. (docs/migration.md)",
         [](po::options_description &o) {
             add_manifest(o);
             o.add_options()("in,i", po::value<std::string>()->default_value("-")->value_name("FILE"),
                             "what to read; - = stdin");
             add_quiet(o);
             add_plugin_dirs(o);
         },
         true, run_import, "warn"},
    };
}

// Options every command has.
void add_common(po::options_description &options, const char *default_log_level) {
    options.add_options()("help,h", "show this help")("log-json", "log one JSON object per line")(
        "log-level", po::value<std::string>()->default_value(default_log_level),
        "trace|debug|info|warn|error");
}
int run_command(const Command &command, int argc, char **argv) {
    po::options_description options(std::string("options of swarmhost ") + command.name);
    command.options(options);
    add_common(options, command.default_log_level);
    po::options_description all;
    all.add(options);
    po::positional_options_description positional;
    if (command.takes_manifest_positional) {
        all.add_options()("manifest", po::value<std::string>());
        positional.add("manifest", 1);
    }
    po::variables_map vm;
    try {
        // No abbreviations (--lis for --listen): a script's typo is refused, not guessed.
        const int style = po::command_line_style::default_style & ~po::command_line_style::allow_guessing;
        po::store(po::command_line_parser(argc, argv).options(all).positional(positional).style(style).run(),
                  vm);
        po::notify(vm);
    } catch (const po::error &e) {
        std::cerr << "swarmhost " << command.name << ": " << e.what() << " (swarmhost " << command.name
                  << " --help)\n";
        return kUsageError;
    }
    if (vm.count("help")) {
        std::cout << command.usage << "\n\n" << options;
        return 0;
    }
    swh::setup_logging(vm.count("log-json") > 0, vm["log-level"].as<std::string>());
    try {
        return command.run(vm);
    } catch (const std::exception &e) { // a last resort: a failure is an exit code, never a crash
        std::cerr << "swarmhost " << command.name << ": " << e.what() << "\n";
        return 1;
    }
}

// Which malloc this process runs on, and whether it really is the one that
// serves malloc() (a link that lost it would leave glibc's silently).
std::string allocator_line() {
#ifdef SWH_ALLOCATOR_MIMALLOC
    const int version = mi_version();
    void *probe = std::malloc(64);
    const bool serves_malloc = mi_is_in_heap_region(probe);
    std::free(probe);
    return "allocator: mimalloc " + std::to_string(version / 100) + "." + std::to_string(version / 10 % 10) +
           "." + std::to_string(version % 10) + (serves_malloc ? "" : " (linked, but NOT serving malloc)");
#else
    return "allocator: system";
#endif
}

} // namespace

int main(int argc, char **argv) {
    const std::string first = argc > 1 ? argv[1] : "";
    if (first == "--help" || first == "-h" || first == "help") {
        std::cout << kUsage;
        return 0;
    }
    if (first == "--version" || first == "-V") {
        std::cout << "swarmhost " << SWH_VERSION << " (plugin ABI " << SWH_ABI_VERSION_MAJOR << "."
                  << SWH_ABI_VERSION_MINOR << ")\n"
                  << allocator_line() << "\n";
        return 0;
    }
    if (first.empty()) {
        std::cerr << kUsage;
        return kUsageError;
    }
    for (const Command &command : commands())
        if (first == command.name) return run_command(command, argc - 1, argv + 1);
    if (first.front() == '-')
        std::cerr << "swarmhost: '" << first << "' before the command: options go after it, e.g. "
                  << "swarmhost serve --log-level debug -c FILE\n\n"
                  << kUsage;
    else
        std::cerr << "swarmhost: unknown command '" << first << "'\n\n" << kUsage;
    return kUsageError;
}
