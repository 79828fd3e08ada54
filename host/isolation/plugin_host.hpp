// The child side of process isolation: swarmhost-plugin-host loads one
// plugin (storage, middleware, hook, session type or provider), runs one instance of it
// through the same instance wrappers the daemon uses (host/loader/instances.hpp), and answers
// the daemon's requests on fd 3 (host/isolation/wire.hpp framing).
//
// The child answers log/now/new_id and the config accessors itself; log
// lines, metrics and events go to the daemon as messages, read_session is a
// request to the daemon (only from the thread running the call), and the
// HTTP client is the child's own.
//
// A provider's calls stream (isolation/provider_process.hpp): `provider_start`
// is answered once the plugin's start returned, and the call's chunks,
// reply events, metadata and done follow as frames tagged with the call's
// id, sent from whatever thread the plugin reports on (its HTTP callbacks
// run on this process's own HTTP client), interleaved with other calls'.
// The main thread keeps reading requests meanwhile (cancel, ping...).
//
// It also tries instances before the daemon loads them (isolation/trial.hpp):
// create, then destroy on EOF.
#pragma once

namespace swh::isolation {

// main() of swarmhost-plugin-host:
//   swarmhost-plugin-host --plugin FILE --sha256 HEX --kind N --log-level N [--instance NAME]
// Exits 0 when the daemon closes the connection, 2 on bad usage.
int run_plugin_host(int argc, char **argv);

} // namespace swh::isolation
