// The client behind a load balancer (host/http/forwarded.hpp,
// host/util/ip_networks.hpp): X-Forwarded-For and Forwarded believed only
// from trusted proxies, read right to left, never a hop the client wrote.
#include "http/forwarded.hpp"
#include "util/ip_networks.hpp"

#include <catch2/catch.hpp>

using swh::IpNetworks;
using swh::http::client_address;

TEST_CASE("ip networks: addresses and CIDR blocks, v4 and v6", "[forwarded]") {
    const IpNetworks nets({"10.0.0.0/8", "192.168.1.7", "fd00::/8", "::1"});
    const auto in = [&](const char *a) { return nets.contains(*swh::parse_ip_address(a)); };
    CHECK(in("10.1.2.3"));
    CHECK(in("192.168.1.7"));
    CHECK_FALSE(in("192.168.1.8"));
    CHECK(in("fd12::5"));
    CHECK(in("::1"));
    CHECK_FALSE(in("fe80::1"));
    CHECK(in("::ffff:10.9.9.9")); // a dual-stack socket's IPv4 peer
    CHECK_FALSE(IpNetworks().contains(*swh::parse_ip_address("127.0.0.1")));

    CHECK_FALSE(IpNetworks::problem("10.0.0.0/8"));
    CHECK_FALSE(IpNetworks::problem("2001:db8::/32"));
    CHECK(IpNetworks::problem("10.0.0.0/33"));
    CHECK(IpNetworks::problem("10.0.0.1/8")); // host bits set: not a block
    CHECK(IpNetworks::problem("loadbalancer.local"));
    CHECK(IpNetworks::problem(""));
    CHECK_THROWS_AS(IpNetworks({"nope"}), std::invalid_argument);
}

TEST_CASE("forwarded: only a trusted peer's headers are read", "[forwarded]") {
    const IpNetworks lb({"127.0.0.1", "10.0.0.0/8"});
    // An untrusted peer: its headers are its own word, ignored.
    CHECK(client_address("203.0.113.9", "", "1.2.3.4", lb) == "203.0.113.9");
    // No trusted proxies configured: the peer, always.
    CHECK(client_address("127.0.0.1", "", "1.2.3.4", IpNetworks()) == "127.0.0.1");
    // A trusted peer without the header: the peer.
    CHECK(client_address("127.0.0.1", "", "", lb) == "127.0.0.1");
}

TEST_CASE("forwarded: X-Forwarded-For right to left, skipping trusted hops", "[forwarded]") {
    const IpNetworks lb({"127.0.0.1", "10.0.0.0/8"});
    CHECK(client_address("127.0.0.1", "", "198.51.100.7", lb) == "198.51.100.7");
    // Two proxies of ours: the first untrusted hop from the right.
    CHECK(client_address("127.0.0.1", "", "198.51.100.7, 10.0.0.5", lb) == "198.51.100.7");
    // A client that sends its own X-Forwarded-For cannot choose its address:
    // the proxy appended the real one on the right.
    CHECK(client_address("127.0.0.1", "", "6.6.6.6, 198.51.100.7", lb) == "198.51.100.7");
    // Garbage or "unknown": the last address known (the trusted hop).
    CHECK(client_address("127.0.0.1", "", "unknown", lb) == "127.0.0.1");
    CHECK(client_address("127.0.0.1", "", "198.51.100.7, garbage, 10.0.0.5", lb) == "10.0.0.5");
    // Every hop trusted: the leftmost.
    CHECK(client_address("127.0.0.1", "", "10.0.0.9,10.0.0.5", lb) == "10.0.0.9");
    CHECK(client_address("127.0.0.1", "", " 2001:db8::1 ", lb) == "2001:db8::1");
}

TEST_CASE("forwarded: RFC 7239 Forwarded wins over X-Forwarded-For", "[forwarded]") {
    const IpNetworks lb({"127.0.0.1"});
    CHECK(client_address("127.0.0.1", "for=198.51.100.7;proto=https", "1.1.1.1", lb) == "198.51.100.7");
    CHECK(client_address("127.0.0.1", "for=6.6.6.6, For=\"[2001:db8::7]:4711\"", "", lb) == "2001:db8::7");
    CHECK(client_address("127.0.0.1", "for=192.0.2.60:8080;by=127.0.0.1", "", lb) == "192.0.2.60");
    CHECK(client_address("127.0.0.1", "for=_hidden", "", lb) == "127.0.0.1");
    CHECK(client_address("127.0.0.1", "proto=https", "", lb) == "127.0.0.1");
}
