#include "http/forwarded.hpp"
#include "util/text.hpp"

namespace swh::http {

namespace net = boost::asio;

namespace {

// One hop as a proxy wrote it: X-Forwarded-For's "1.2.3.4" or "::1", or
// Forwarded's for= value: "1.2.3.4", "1.2.3.4:80", "\"[2001:db8::1]:443\"".
std::optional<net::ip::address> hop_address(std::string_view hop) {
    hop = trim_blanks(hop);
    if (hop.size() >= 2 && hop.front() == '"' && hop.back() == '"') hop = hop.substr(1, hop.size() - 2);
    if (!hop.empty() && hop.front() == '[') { // [v6] or [v6]:port
        const auto close = hop.find(']');
        if (close == std::string_view::npos) return std::nullopt;
        return parse_ip_address(hop.substr(1, close - 1));
    }
    if (const auto colon = hop.find(':');
        colon != std::string_view::npos && hop.find(':', colon + 1) == hop.npos)
        hop = hop.substr(0, colon); // v4:port (a bare v6 address has several colons)
    return parse_ip_address(hop);
}

std::vector<std::string_view> split(std::string_view s, char sep) {
    std::vector<std::string_view> out;
    std::size_t start = 0;
    for (std::size_t i = 0; i <= s.size(); ++i)
        if (i == s.size() || s[i] == sep) {
            out.push_back(s.substr(start, i - start));
            start = i + 1;
        }
    return out;
}

// The for= values of a Forwarded header, in order ("" for an element
// without one).
std::vector<std::string_view> forwarded_for(std::string_view header) {
    std::vector<std::string_view> hops;
    for (std::string_view element : split(header, ',')) {
        std::string_view value;
        for (std::string_view pair : split(element, ';')) {
            pair = trim_blanks(pair);
            if (pair.size() > 4 && (pair[0] == 'f' || pair[0] == 'F') && (pair[1] == 'o' || pair[1] == 'O') &&
                (pair[2] == 'r' || pair[2] == 'R') && pair[3] == '=')
                value = pair.substr(4);
        }
        hops.push_back(value);
    }
    return hops;
}

} // namespace

std::string client_address(std::string_view peer, std::string_view forwarded,
                           std::string_view x_forwarded_for, const IpNetworks &trusted) {
    if (trusted.empty()) return std::string(peer);
    const auto peer_address = parse_ip_address(peer);
    if (!peer_address || !trusted.contains(*peer_address)) return std::string(peer);
    const std::vector<std::string_view> hops =
        !trim_blanks(forwarded).empty() ? forwarded_for(forwarded) : split(x_forwarded_for, ',');
    net::ip::address client = *peer_address;
    for (auto it = hops.rbegin(); it != hops.rend(); ++it) {
        const auto hop = hop_address(*it);
        if (!hop) break; // garbage, "unknown" or an obfuscated name: keep the last address known
        client = *hop;
        if (!trusted.contains(client)) break;
    }
    return client.to_string();
}

} // namespace swh::http
