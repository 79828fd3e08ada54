#include "store.hpp"

#include <swarmhost/cpp/atomic_file.hpp>
#include <swarmhost/cpp/edge.hpp>

#include <openssl/evp.h>

#include <fstream>
#include <sys/stat.h>
#include <system_error>

namespace swh::multimodal {

using edge::Failure;

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
        static_cast<std::uint64_t>(st.st_size) == bytes.size()) {
        // The same content is already there (its name is its hash). Its
        // folder is synced again: an earlier put may have renamed it in and
        // then failed to sync the folder, and success must mean durable.
        cpp::files::sync_folder(dir_, "multimodal");
        return id;
    }
    cpp::files::write_atomically(target, bytes, true, serial_.fetch_add(1), "multimodal");
    return id;
}

std::optional<std::string> Store::get(std::string_view id) const {
    if (!is_attachment_id(id)) return std::nullopt;
    std::ifstream in(path_of(id), std::ios::binary);
    if (!in) return std::nullopt;
    return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

} // namespace swh::multimodal
