// The child side of process isolation: swarmhost-plugin-host loads one
// plugin (storage, middleware, hook or session type), runs one instance of it
// through the same instance wrappers the daemon uses (host/loader/instances.hpp), and answers
// the daemon's requests on fd 3 (host/isolation/wire.hpp framing).
//
// The child answers log/now/new_id and the config accessors itself; log
// lines, metrics and events go to the daemon as messages, read_session is a
// request to the daemon (only from the thread running the call), and the
// HTTP client is the child's own.
//
// It also tries instances before the daemon loads them (isolation/trial.hpp):
// create, then destroy on EOF. For that alone it accepts a provider too, which
// it creates but serves no call of (providers are never isolated).
#pragma once

namespace swh::isolation {

// main() of swarmhost-plugin-host:
//   swarmhost-plugin-host --plugin FILE --sha256 HEX --kind N --log-level N
// Exits 0 when the daemon closes the connection, 2 on bad usage.
int run_plugin_host(int argc, char **argv);

} // namespace swh::isolation
