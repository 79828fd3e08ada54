// Every member of a session or message as JSON, times as integer
// microseconds: the lossless form two places share, the plugin-host wire
// (isolation/wire.hpp) and the export lines of `swarmhost export`
// (migrate/records.hpp). The HTTP API has its own shape (http/json_codec.hpp).
#pragma once

#include "model/model.hpp"

namespace swh {

Json full_json(const Session &session);
// With "structured" always present ({} for a plain text message).
Json full_json(const Message &message);

} // namespace swh
