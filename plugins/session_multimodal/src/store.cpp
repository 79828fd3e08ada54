#include "store.hpp"

#include <swarmhost/cpp/edge.hpp>

#include <openssl/evp.h>

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <fstream>
#include <memory>
#include <sys/stat.h>
#include <system_error>
#include <unistd.h>

namespace swh::multimodal {

namespace {

using edge::Failure;

Failure io_error(const std::string &what, const std::filesystem::path &path, int err) {
    return Failure(SWH_E_UNAVAILABLE,
                   "multimodal: " + what + " " + path.string() + ": " + std::strerror(err));
}

// Owns one file descriptor.
class Fd {
  public:
    explicit Fd(int fd) noexcept : fd_(fd) {}
    Fd(const Fd &) = delete;
    Fd &operator=(const Fd &) = delete;
    ~Fd() {
        if (fd_ >= 0) ::close(fd_);
    }
    int get() const noexcept { return fd_; }
    // Closes now, reporting the result (close can report a delayed write error).
    int close() noexcept {
        const int rc = ::close(fd_);
        fd_ = -1;
        return rc;
    }

  private:
    int fd_;
};

void write_all(int fd, std::string_view bytes, const std::filesystem::path &path) {
    while (!bytes.empty()) {
        const ssize_t n = ::write(fd, bytes.data(), bytes.size());
        if (n < 0) {
            if (errno == EINTR) continue;
            throw io_error("write", path, errno);
        }
        bytes.remove_prefix(static_cast<std::size_t>(n));
    }
}

} // namespace

std::string sha256_hex(std::string_view bytes) {
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int length = 0;
    if (EVP_Digest(bytes.data(), bytes.size(), digest, &length, EVP_sha256(), nullptr) != 1)
        throw Failure(SWH_E_INTERNAL, "multimodal: sha256 is unavailable");
    static constexpr char kHex[] = "0123456789abcdef";
    std::string out;
    for (unsigned int i = 0; i < length; ++i) {
        out.push_back(kHex[digest[i] >> 4]);
        out.push_back(kHex[digest[i] & 15]);
    }
    return out;
}

bool is_attachment_id(std::string_view id) {
    if (id.size() != 64) return false;
    for (char c : id)
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
    return true;
}

Store::Store(const std::filesystem::path &dir) : dir_(std::filesystem::absolute(dir).lexically_normal()) {
    std::error_code ec;
    std::filesystem::create_directories(dir_, ec);
    if (ec || !std::filesystem::is_directory(dir_))
        throw Failure(SWH_E_INVALID, "multimodal: attachments_dir " + dir_.string() +
                                         " cannot be created: " + (ec ? ec.message() : "not a folder"));
}

std::string Store::put(std::string_view bytes) {
    std::string id = sha256_hex(bytes);
    const std::filesystem::path target = path_of(id);
    struct stat st {};
    if (::stat(target.c_str(), &st) == 0 && S_ISREG(st.st_mode) &&
        static_cast<std::uint64_t>(st.st_size) == bytes.size())
        return id; // the same content is already there: its name is its hash
    write_atomically(target, bytes);
    return id;
}

std::optional<std::string> Store::get(std::string_view id) const {
    if (!is_attachment_id(id)) return std::nullopt;
    std::ifstream in(path_of(id), std::ios::binary);
    if (!in) return std::nullopt;
    return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

void Store::write_atomically(const std::filesystem::path &target, std::string_view bytes) {
    // Unique per process and call, so concurrent uploads never share a temp file.
    const std::filesystem::path tmp =
        dir_ / ("." + target.filename().string() + ".tmp-" + std::to_string(::getpid()) + "-" +
                std::to_string(serial_.fetch_add(1)));
    Fd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644));
    if (fd.get() < 0) throw io_error("create", tmp, errno);
    try {
        write_all(fd.get(), bytes, tmp);
        if (::fsync(fd.get()) != 0) throw io_error("fsync", tmp, errno);
        if (fd.close() != 0) throw io_error("close", tmp, errno);
        if (::rename(tmp.c_str(), target.c_str()) != 0) throw io_error("rename to", target, errno);
    } catch (...) {
        ::unlink(tmp.c_str());
        throw;
    }
    // The rename is durable only once the folder itself is synced.
    Fd folder(::open(dir_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (folder.get() >= 0) ::fsync(folder.get());
}

} // namespace swh::multimodal
