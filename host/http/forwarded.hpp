// Who the client is behind a load balancer: `Forwarded` (RFC 7239) and
// `X-Forwarded-For` are believed only from the proxies the manifest names
// (server.trusted_proxies), so the key-guessing cut-off and per-address
// limits count the real client, and nobody else can pick the address they
// are counted under by sending the header themselves.
#pragma once

#include "util/ip_networks.hpp"

#include <string>
#include <string_view>

namespace swh::http {

// The client's address for a request that came from `peer`. When `peer` is
// a trusted proxy, the hops the proxies appended are read right to left
// (`Forwarded`'s for= parameters when present, else X-Forwarded-For): the
// first one that is not itself a trusted proxy is the client, so a hop a
// client wrote itself on the left is never believed. Unparsable, obfuscated
// ("_hidden") or "unknown" hops stop the walk at the last address known.
// Otherwise `peer`, unchanged.
std::string client_address(std::string_view peer, std::string_view forwarded,
                           std::string_view x_forwarded_for, const IpNetworks &trusted);

} // namespace swh::http
