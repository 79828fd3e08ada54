// swarmhost — the daemon's command line. Subcommands:
//   serve   -c MANIFEST [--listen HOST:PORT]   run the daemon
//   check   MANIFEST [--try-create]            validate a manifest, exit 0/1
//   plugins [-c MANIFEST] [--plugin-dir DIR]   list plugins with their schemas
//   new-plugin --kind K --name N [--lang c|cpp] [--dir OUT]   scaffold a plugin
#include "daemon/daemon.hpp"
#include "daemon/scaffold.hpp"
#include "util/logging.hpp"

#include <swarmhost/abi.h>

#include <boost/program_options.hpp>
#include <iostream>

namespace po = boost::program_options;

namespace {

constexpr const char *kUsage = R"(usage: swarmhost <command> [options]

commands:
  serve    run the daemon:            swarmhost serve -c configs/default.yaml [--listen 127.0.0.1:8080]
  check    validate a manifest:       swarmhost check configs/default.yaml [--try-create]
  plugins  list plugins and schemas:  swarmhost plugins -c configs/default.yaml | --plugin-dir DIR
  new-plugin  scaffold an out-of-tree plugin:
           swarmhost new-plugin --kind middleware|hook --name my_filter [--lang c|cpp] [--dir OUT]

options)";

po::options_description make_options() {
    po::options_description options;
    options.add_options()                                                                         //
        ("help,h", "show this help")                                                              //
        ("version,V", "print the version")                                                        //
        ("config,c", po::value<std::string>(), "manifest file (YAML)")                            //
        ("listen,l", po::value<std::string>(), "HOST:PORT to listen on; overrides server.listen") //
        ("plugin-dir", po::value<std::vector<std::string>>()->composing(),
         "extra plugin folder (repeatable)") //
        ("try-create", "check: also create and destroy each plugin instance, each in a child process, "
                       "and name any that crashes, hangs or fails")                                   //
        ("log-json", "log one JSON object per line")                                                  //
        ("log-level", po::value<std::string>()->default_value("info"), "trace|debug|info|warn|error") //
        ("kind", po::value<std::string>(), "new-plugin: middleware | hook")                           //
        ("name", po::value<std::string>(), "new-plugin: plugin name, [a-z][a-z0-9_]*")                //
        ("lang", po::value<std::string>()->default_value("c"), "new-plugin: c | cpp")                 //
        ("dir", po::value<std::string>(), "new-plugin: output folder (default ./<kind>_<name>)");
    return options;
}

} // namespace

int main(int argc, char **argv) {
    auto options = make_options();
    po::options_description hidden;
    hidden.add_options()("command", po::value<std::string>())("args", po::value<std::vector<std::string>>());
    po::options_description all;
    all.add(options).add(hidden);
    po::positional_options_description positional;
    positional.add("command", 1).add("args", -1);

    po::variables_map vm;
    try {
        po::store(po::command_line_parser(argc, argv).options(all).positional(positional).run(), vm);
        po::notify(vm);
    } catch (const po::error &e) {
        std::cerr << "swarmhost: " << e.what() << "\n\n" << kUsage << options;
        return 2;
    }
    if (vm.count("help")) {
        std::cout << kUsage << options;
        return 0;
    }
    if (vm.count("version")) {
        std::cout << "swarmhost " << SWH_VERSION << " (plugin ABI " << SWH_ABI_VERSION_MAJOR << "."
                  << SWH_ABI_VERSION_MINOR << ")\n";
        return 0;
    }
    if (!vm.count("command")) {
        std::cerr << kUsage << options;
        return 2;
    }
    swh::setup_logging(vm.count("log-json") > 0, vm["log-level"].as<std::string>());

    const std::string command = vm["command"].as<std::string>();
    const auto args =
        vm.count("args") ? vm["args"].as<std::vector<std::string>>() : std::vector<std::string>{};
    const std::string config =
        vm.count("config") ? vm["config"].as<std::string>() : (args.empty() ? "" : args[0]);
    const auto plugin_dirs =
        vm.count("plugin-dir") ? vm["plugin-dir"].as<std::vector<std::string>>() : std::vector<std::string>{};

    if (command == "serve") {
        if (config.empty()) {
            std::cerr << "swarmhost serve: give a manifest with -c FILE (try configs/default.yaml)\n";
            return 2;
        }
        swh::daemon::ServeOptions serve;
        serve.manifest_path = config;
        serve.listen_override = vm.count("listen") ? vm["listen"].as<std::string>() : "";
        serve.extra_plugin_dirs = plugin_dirs;
        return swh::daemon::serve(serve);
    }
    if (command == "check") {
        if (config.empty()) {
            std::cerr << "swarmhost check: give a manifest file\n";
            return 2;
        }
        return swh::daemon::check(config, plugin_dirs, vm.count("try-create") > 0);
    }
    if (command == "plugins") {
        if (config.empty() && plugin_dirs.empty()) {
            std::cerr << "swarmhost plugins: give -c MANIFEST or --plugin-dir DIR\n";
            return 2;
        }
        return swh::daemon::list_plugins(config, plugin_dirs);
    }
    if (command == "new-plugin") {
        swh::daemon::ScaffoldOptions scaffold;
        scaffold.kind = vm.count("kind") ? vm["kind"].as<std::string>() : "";
        scaffold.name = vm.count("name") ? vm["name"].as<std::string>() : "";
        scaffold.lang = vm["lang"].as<std::string>();
        scaffold.dir = vm.count("dir") ? vm["dir"].as<std::string>() : "";
        if (!plugin_dirs.empty()) scaffold.host_plugin_dir = plugin_dirs.front();
        return swh::daemon::new_plugin(scaffold, std::cout, std::cerr);
    }
    std::cerr << "swarmhost: unknown command '" << command << "'\n\n" << kUsage << options;
    return 2;
}
