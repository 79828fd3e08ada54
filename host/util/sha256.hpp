// SHA-256 over OpenSSL's EVP interface, as lowercase hex.
#pragma once

#include <memory>
#include <string>
#include <string_view>

namespace swh {

class Sha256 {
  public:
    Sha256();
    ~Sha256();
    Sha256(const Sha256 &) = delete;
    Sha256 &operator=(const Sha256 &) = delete;
    void update(const void *data, std::size_t size);
    std::string hex(); // finishes the digest

  private:
    struct Context;
    std::unique_ptr<Context> context_;
};

std::string sha256_hex(std::string_view data);

} // namespace swh
