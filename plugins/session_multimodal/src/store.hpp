// Content-addressed attachment files: <dir>/<sha256 hex of the bytes>,
// written atomically (temp file in the same folder, fsync, rename, fsync
// the folder), so a reader sees a whole file or none.
#pragma once

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

namespace swh::multimodal {

std::string sha256_hex(std::string_view bytes);

// True for 64 lower-case hex digits (an attachment id, safe as a file name).
bool is_attachment_id(std::string_view id);

class Store {
  public:
    // Creates `dir` when missing; throws Failure(SWH_E_INVALID) when it cannot.
    explicit Store(const std::filesystem::path &dir);

    const std::filesystem::path &dir() const noexcept { return dir_; }
    std::filesystem::path path_of(std::string_view id) const { return dir_ / std::string(id); }

    // Stores `bytes` under their hash and returns it. Content already stored
    // (same hash, same size) is not written again.
    std::string put(std::string_view bytes);

    // The bytes of `id`, nullopt when no such file exists.
    std::optional<std::string> get(std::string_view id) const;

  private:
    std::filesystem::path dir_;
    std::atomic<std::uint64_t> serial_{0};
};

} // namespace swh::multimodal
