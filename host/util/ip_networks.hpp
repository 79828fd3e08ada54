// A list of IP addresses and CIDR blocks, v4 and v6 ("10.0.0.0/8",
// "::1", "fd00::/8"), and whether an address falls in one of them
// (server.trusted_proxies).
#pragma once

#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/network_v4.hpp>
#include <boost/asio/ip/network_v6.hpp>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace swh {

// An address as text, "::ffff:10.1.2.3" (what a dual-stack socket reports
// for an IPv4 peer) as the IPv4 address; nullopt when it is none.
std::optional<boost::asio::ip::address> parse_ip_address(std::string_view text);

class IpNetworks {
  public:
    // Why `entry` is neither an address nor a CIDR block; nullopt when it is one.
    static std::optional<std::string> problem(std::string_view entry);
    // Throws std::invalid_argument naming the first bad entry.
    explicit IpNetworks(const std::vector<std::string> &entries = {});

    bool empty() const { return v4_.empty() && v6_.empty(); }
    bool contains(const boost::asio::ip::address &address) const;

  private:
    std::vector<boost::asio::ip::network_v4> v4_;
    std::vector<boost::asio::ip::network_v6> v6_;
};

} // namespace swh
