// Load client of bench/streams/run.sh: holds N streamed
// POST /v1/chat/completions open at once on one epoll thread, and measures
// each stream from its request's send to its `data: [DONE]`.
//
//   stream_client PORT N BODY_FILE [OPEN_PER_SECOND]
//
// Prints one line: RESULT streams=N ok=.. errors=.. chunks=.. p50_s=.. p99_s=..
// max_s=.. cpu_s=.. wall_s=.. (chunks = content chunks received; a stream is
// an error unless it answers 200 and ends with [DONE]).
#include <algorithm>
#include <arpa/inet.h>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <fstream>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sstream>
#include <string>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

struct Stream {
    int fd = -1;
    std::string out; // request bytes not yet written
    std::size_t written = 0;
    std::string line; // incomplete line carried between reads
    bool status_seen = false;
    bool ok_status = false;
    bool done = false;
    long chunks = 0;
    Clock::time_point sent;
    double seconds = 0;
};

double cpu_seconds() {
    rusage ru{};
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_utime.tv_sec + ru.ru_stime.tv_sec + (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

// Looks at one complete line of the response (status line, headers, chunk
// sizes and SSE lines all arrive as lines).
void on_line(Stream &s, std::string_view line) {
    if (!s.status_seen) {
        s.status_seen = true;
        s.ok_status = line.find(" 200 ") != std::string_view::npos;
        static bool told = false; // the first refusal says why, once
        if (!s.ok_status && !told) {
            told = true;
            std::fprintf(stderr, "first non-200 answer: %.*s\n", static_cast<int>(line.size()), line.data());
        }
        return;
    }
    if (!line.starts_with("data: ")) return;
    if (line.starts_with("data: [DONE]")) {
        s.done = true;
        s.seconds = std::chrono::duration<double>(Clock::now() - s.sent).count();
        return;
    }
    // A content delta with text in it (role and finish chunks carry none).
    const auto at = line.find("\"content\":\"");
    if (at != std::string_view::npos && at + 11 < line.size() && line[at + 11] != '"') ++s.chunks;
}

} // namespace

int main(int argc, char **argv) {
    if (argc < 4) {
        std::fprintf(stderr, "usage: %s PORT N BODY_FILE [OPEN_PER_SECOND]\n", argv[0]);
        return 2;
    }
    const int port = std::atoi(argv[1]);
    const int n = std::atoi(argv[2]);
    const double rate = argc > 4 ? std::atof(argv[4]) : 2000.0;
    std::ifstream in(argv[3]);
    std::stringstream body;
    body << in.rdbuf();
    const std::string request = "POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                                "Content-Type: application/json\r\nConnection: close\r\nContent-Length: " +
                                std::to_string(body.str().size()) + "\r\n\r\n" + body.str();

    const int ep = epoll_create1(0);
    std::vector<Stream> streams(n);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);

    const double cpu0 = cpu_seconds();
    const auto t0 = Clock::now();
    int opened = 0, finished = 0, errors = 0;
    int err_connect = 0, err_status = 0, err_cut = 0; // refused or reset before sending; not 200; ended early
    std::vector<epoll_event> events(1024);
    std::vector<char> buf(64 * 1024);
    const auto fail = [&](Stream &s) {
        if (s.fd >= 0) {
            close(s.fd);
            s.fd = -1;
        }
        ++errors;
        ++finished;
    };
    while (finished < n) {
        // Open connections at `rate` per second, so the servers' listen
        // backlogs are not what is measured.
        const double elapsed = std::chrono::duration<double>(Clock::now() - t0).count();
        const int due = std::min(n, static_cast<int>(elapsed * rate) + 1);
        for (; opened < due; ++opened) {
            Stream &s = streams[opened];
            s.fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
            if (s.fd < 0) {
                std::perror("socket");
                fail(s);
                continue;
            }
            int one = 1;
            setsockopt(s.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
            if (connect(s.fd, reinterpret_cast<sockaddr *>(&addr), sizeof addr) != 0 &&
                errno != EINPROGRESS) {
                fail(s);
                continue;
            }
            s.out = request;
            epoll_event ev{};
            ev.events = EPOLLOUT | EPOLLIN;
            ev.data.u32 = static_cast<uint32_t>(opened);
            epoll_ctl(ep, EPOLL_CTL_ADD, s.fd, &ev);
        }
        const int k = epoll_wait(ep, events.data(), static_cast<int>(events.size()), opened < n ? 1 : 1000);
        for (int i = 0; i < k; ++i) {
            Stream &s = streams[events[i].data.u32];
            if (s.fd < 0) continue;
            if ((events[i].events & EPOLLOUT) && s.written < s.out.size()) {
                const ssize_t w = write(s.fd, s.out.data() + s.written, s.out.size() - s.written);
                if (w < 0 && errno != EAGAIN) {
                    ++err_connect;
                    fail(s);
                    continue;
                }
                if (w > 0) s.written += static_cast<std::size_t>(w);
                if (s.written == s.out.size()) {
                    s.sent = Clock::now();
                    s.out.clear();
                    s.out.shrink_to_fit();
                    epoll_event ev{};
                    ev.events = EPOLLIN;
                    ev.data.u32 = events[i].data.u32;
                    epoll_ctl(ep, EPOLL_CTL_MOD, s.fd, &ev);
                }
            }
            if (!(events[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR))) continue;
            while (true) {
                const ssize_t r = read(s.fd, buf.data(), buf.size());
                if (r < 0 && errno == EAGAIN) break;
                if (r <= 0) { // closed (or failed) before [DONE]
                    ++(s.status_seen && !s.ok_status ? err_status : s.status_seen ? err_cut : err_connect);
                    fail(s);
                    break;
                }
                std::string_view data(buf.data(), static_cast<std::size_t>(r));
                while (!data.empty()) {
                    const auto nl = data.find('\n');
                    if (nl == std::string_view::npos) {
                        s.line.append(data);
                        break;
                    }
                    if (s.line.empty()) {
                        on_line(s, data.substr(0, nl));
                    } else {
                        s.line.append(data.substr(0, nl));
                        on_line(s, s.line);
                        s.line.clear();
                    }
                    data.remove_prefix(nl + 1);
                }
                if (s.done) {
                    close(s.fd);
                    s.fd = -1;
                    ++finished;
                    if (!s.ok_status) ++errors, ++err_status;
                    break;
                }
            }
        }
    }
    const double wall = std::chrono::duration<double>(Clock::now() - t0).count();
    std::vector<double> durations;
    long chunks = 0;
    for (const auto &s : streams) {
        chunks += s.chunks;
        if (s.done && s.ok_status) durations.push_back(s.seconds);
    }
    std::sort(durations.begin(), durations.end());
    const auto pct = [&](double q) {
        return durations.empty()
                   ? 0.0
                   : durations[std::min(durations.size() - 1,
                                        static_cast<std::size_t>(q * (durations.size() - 1) + 0.5))];
    };
    std::printf("RESULT streams=%d ok=%zu errors=%d err_connect=%d err_status=%d err_cut=%d chunks=%ld "
                "p50_s=%.4f p99_s=%.4f max_s=%.4f cpu_s=%.3f "
                "wall_s=%.2f\n",
                n, durations.size(), errors, err_connect, err_status, err_cut, chunks, pct(0.5), pct(0.99),
                durations.empty() ? 0.0 : durations.back(), cpu_seconds() - cpu0, wall);
    return errors == 0 ? 0 : 1;
}
