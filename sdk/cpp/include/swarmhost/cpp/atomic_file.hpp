// Writing a file so that a reader sees the old content or the new, never half
// of one, and so that success means it is on disk (POSIX; header-only, part
// of the optional C++ layer of the SDK, no ABI of its own). Used by plugins
// that keep files beside the store: the backup hook's snapshots, the
// multimodal session type's attachments.
//
// The steps: a temporary file in the target's folder -> write -> fsync ->
// close -> rename over the target -> fsync the folder. Every step's failure
// is reported (the temporary file removed), the folder's fsync included: a
// rename is durable only once its folder is, and a failed fsync must never
// be reported as success (the lesson of PostgreSQL's "fsyncgate": after a
// failed fsync the kernel may have dropped the dirty pages, so a retry that
// succeeds proves nothing; the caller writes the whole file again).
#pragma once

#include <swarmhost/cpp/edge.hpp>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <string>
#include <string_view>

#include <fcntl.h>
#include <unistd.h>

namespace swh::cpp::files {

namespace detail {

// Owns one file descriptor; close() reports the close's own result.
class Fd {
  public:
    explicit Fd(int fd) : fd_(fd) {}
    ~Fd() {
        if (fd_ >= 0) ::close(fd_);
    }
    Fd(const Fd &) = delete;
    Fd &operator=(const Fd &) = delete;
    int get() const { return fd_; }
    int close() {
        const int rc = ::close(fd_);
        fd_ = -1;
        return rc;
    }

  private:
    int fd_;
};

inline edge::Failure io_failure(std::string_view who, const char *step, const std::filesystem::path &path,
                                int err) {
    return edge::Failure(SWH_E_UNAVAILABLE,
                         std::string(who) + ": " + step + " " + path.string() + ": " + std::strerror(err));
}

} // namespace detail

// Writes all of `bytes` to `fd`, retrying on EINTR and short writes.
// Throws Failure(SWH_E_UNAVAILABLE, "<who>: write <path>: <reason>").
inline void write_all(int fd, std::string_view bytes, const std::filesystem::path &path,
                      std::string_view who) {
    while (!bytes.empty()) {
        const ssize_t n = ::write(fd, bytes.data(), bytes.size());
        if (n < 0) {
            if (errno == EINTR) continue;
            throw detail::io_failure(who, "write", path, errno);
        }
        bytes.remove_prefix(static_cast<std::size_t>(n));
    }
}

// fsyncs a folder, so that the names created or renamed in it are durable.
// Throws Failure(SWH_E_UNAVAILABLE, "<who>: fsync folder <path>: <reason>").
inline void sync_folder(const std::filesystem::path &folder, std::string_view who) {
    const std::filesystem::path path = folder.empty() ? "." : folder;
    detail::Fd dir(::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (dir.get() < 0) throw detail::io_failure(who, "open folder", path, errno);
    if (::fsync(dir.get()) != 0) throw detail::io_failure(who, "fsync folder", path, errno);
}

// Replaces `target` with `bytes` atomically. `unique` makes the temporary
// file's name unique among concurrent writers of this process (a counter);
// `sync` false skips both fsyncs (faster, not durable against power loss).
// Throws Failure(SWH_E_UNAVAILABLE, "<who>: <step> <path>: <reason>"); on a
// failure before the rename the target is untouched and no temporary file is
// left. A failure of the folder's fsync comes after the rename: the new file
// may be in place, but it is not known to be durable, so it is reported.
inline void write_atomically(const std::filesystem::path &target, std::string_view bytes, bool sync,
                             uint64_t unique, std::string_view who) {
    const std::filesystem::path tmp =
        target.parent_path() / ("." + target.filename().string() + ".tmp-" + std::to_string(::getpid()) +
                                "-" + std::to_string(unique));
    detail::Fd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644));
    if (fd.get() < 0) throw detail::io_failure(who, "create", tmp, errno);
    try {
        write_all(fd.get(), bytes, tmp, who);
        if (sync && ::fsync(fd.get()) != 0) throw detail::io_failure(who, "fsync", tmp, errno);
        if (fd.close() != 0) throw detail::io_failure(who, "close", tmp, errno);
        if (::rename(tmp.c_str(), target.c_str()) != 0)
            throw detail::io_failure(who, "rename to", target, errno);
    } catch (...) {
        ::unlink(tmp.c_str());
        throw;
    }
    if (sync) sync_folder(target.parent_path(), who);
}

} // namespace swh::cpp::files
