#include "util/ip_networks.hpp"
#include "util/text.hpp"

#include <stdexcept>

namespace swh {

namespace net = boost::asio;

std::optional<net::ip::address> parse_ip_address(std::string_view text) {
    boost::system::error_code ec;
    const auto address = net::ip::make_address(std::string(text), ec);
    if (ec) return std::nullopt;
    // ::ffff:10.1.2.3 is the IPv4 client a dual-stack socket reports.
    if (address.is_v6() && address.to_v6().is_v4_mapped())
        return net::ip::make_address_v4(net::ip::v4_mapped, address.to_v6());
    return address;
}

std::optional<std::string> IpNetworks::problem(std::string_view entry) {
    boost::system::error_code ec;
    const std::string text(trim_blanks(entry));
    if (text.find('/') == std::string::npos) {
        if (!parse_ip_address(text)) return "'" + text + "' is not an IP address or CIDR block";
        return std::nullopt;
    }
    std::string canonical;
    if (text.find(':') == std::string::npos) {
        const auto block = net::ip::make_network_v4(text, ec);
        if (!ec && block != block.canonical()) canonical = block.canonical().to_string();
    } else {
        const auto block = net::ip::make_network_v6(text, ec);
        if (!ec && block != block.canonical()) canonical = block.canonical().to_string();
    }
    if (ec) return "'" + text + "' is not an IP address or CIDR block (like 10.0.0.0/8 or fd00::/8)";
    if (!canonical.empty())
        return "'" + text + "' has bits set past its prefix length (did you mean " + canonical + "?)";
    return std::nullopt;
}

IpNetworks::IpNetworks(const std::vector<std::string> &entries) {
    for (const std::string &entry : entries) {
        if (const auto why = problem(entry)) throw std::invalid_argument(*why);
        const std::string text(trim_blanks(entry));
        if (text.find('/') == std::string::npos) {
            const auto address = *parse_ip_address(text);
            if (address.is_v4())
                v4_.emplace_back(address.to_v4(), 32);
            else
                v6_.emplace_back(address.to_v6(), 128);
        } else if (text.find(':') == std::string::npos) {
            v4_.push_back(net::ip::make_network_v4(text).canonical());
        } else {
            v6_.push_back(net::ip::make_network_v6(text).canonical());
        }
    }
}

bool IpNetworks::contains(const net::ip::address &address) const {
    if (address.is_v4()) {
        const net::ip::network_v4 host(address.to_v4(), 32);
        for (const auto &net : v4_)
            if (host == net || host.is_subnet_of(net)) return true;
        return false;
    }
    const net::ip::network_v6 host(address.to_v6(), 128);
    for (const auto &net : v6_)
        if (host == net || host.is_subnet_of(net)) return true;
    return false;
}

} // namespace swh
