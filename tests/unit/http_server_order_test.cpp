// The HTTP server writes an exchange's bytes in the order the exchange was
// answered, whichever threads answered it: a stream begun on the
// connection's own I/O lane and continued from another thread (an upstream
// client's, as an inline stateless completion does) gets its head first.
#include "http/server.hpp"

#include <catch2/catch.hpp>

#include <boost/asio/connect.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>

#include <string>
#include <thread>

namespace net = boost::asio;
using net::ip::tcp;

namespace {

constexpr int kEvents = 50;

// Starts the stream on the lane thread, then has another thread send every
// event and end it -- and waits for that thread before returning, so all
// of its writes are queued while the lane's own handler still runs.
class StartHereFinishThere : public swh::http::RequestHandler {
  public:
    void handle(swh::http::Request, std::shared_ptr<swh::http::Exchange> exchange) override {
        exchange->start_stream();
        std::thread other([exchange] {
            for (int i = 0; i < kEvents; ++i)
                exchange->send_event("n", std::to_string(i));
            exchange->end_stream();
        });
        other.join();
    }
};

std::string request_once(unsigned short port) {
    net::io_context io;
    tcp::socket socket(io);
    socket.connect({net::ip::make_address("127.0.0.1"), port});
    const std::string request = "GET /stream HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    net::write(socket, net::buffer(request));
    std::string reply;
    boost::system::error_code ec;
    net::read(socket, net::dynamic_buffer(reply), ec); // to the server's close
    return reply;
}

} // namespace

TEST_CASE("a stream started on its lane and continued from another thread arrives in order") {
    net::io_context io;
    StartHereFinishThere handler;
    swh::http::ServerLimits limits;
    limits.io_lanes = 1;
    swh::http::Server server(io, {net::ip::make_address("127.0.0.1"), 0}, handler, limits);
    server.start();
    std::thread main_loop([&io] { io.run(); });
    const unsigned short port = server.local_endpoint().port();

    for (int attempt = 0; attempt < 20; ++attempt) {
        const std::string reply = request_once(port);
        INFO("attempt " << attempt << ", reply:\n" << reply.substr(0, 300));
        REQUIRE(reply.rfind("HTTP/1.1 200 OK\r\n", 0) == 0);
        std::size_t at = reply.find("\r\n\r\n");
        REQUIRE(at != std::string::npos);
        for (int i = 0; i < kEvents; ++i) {
            const std::string line = "data: " + std::to_string(i) + "\n";
            const std::size_t next = reply.find(line, at);
            REQUIRE(next != std::string::npos);
            at = next + line.size();
        }
        REQUIRE(reply.find("\r\n0\r\n\r\n", at) != std::string::npos);
    }
    server.stop_accepting();
    server.stop_serving();
    io.stop();
    main_loop.join();
}
