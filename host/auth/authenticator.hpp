// API keys (docs/security.md): who is calling, what they may reach, and how
// fast. Keys are stored and compared as SHA-256 hashes; the key text is
// never kept, logged or echoed. Each key has a token bucket (requests per
// second, burst) and a cap on concurrent streams.
#pragma once

#include "manifest/manifest.hpp"
#include "model/errors.hpp"

#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

namespace swh {
class SharedLimits;
}

namespace swh::auth {

struct Principal {
    bool authenticated = false; // false with `auth: none`
    bool admin = false;         // may use admin routes (always, with `auth: none`)
    std::string key_id;         // "" with `auth: none`
    std::string user;           // whom requests act as ("" = anonymous)
    // A user key: sees only its own sessions (others' are 404).
    bool tenant() const { return authenticated && !admin; }
};

class Authenticator {
  public:
    // Reads auth.keys_file too. Throws manifest::ManifestError.
    explicit Authenticator(const manifest::AuthSettings &settings);
    bool enabled() const { return enabled_.load(std::memory_order_acquire); }

    // `authorization`: the Authorization header ("Bearer <key>"); `api_key`:
    // X-API-Key, used when there is no Authorization header;
    // `user_header`: X-Swarmhost-User, trusted only without auth;
    // `client_address`: the peer, whose failed attempts are counted. Throws
    // ApiError 401 (missing or unknown key) or 429 (rate limit, or too many
    // failed attempts from the address; with retry_after_seconds).
    Principal authenticate(std::string_view authorization, std::string_view api_key,
                           std::string_view user_header, std::string_view client_address = {});

    // New keys from a reloaded manifest (and its keys file), and the mode:
    // `auth: none` turns key checks off, `api_keys` on (the daemon refuses
    // `none` on a listener that is not loopback before it gets here).
    // Throws manifest::ManifestError and keeps the old keys and mode when
    // the keys are bad.
    void reload(const manifest::AuthSettings &settings);
    std::size_t key_count() const;

    // A concurrent-stream slot of the caller's key, held until the returned
    // token is destroyed. Throws ApiError 429 when the key has
    // auth.max_streams_per_key open. Never limits `auth: none`.
    std::shared_ptr<void> acquire_stream(const Principal &principal);

    // Count the rate limits, failed guesses and streams in the store, for
    // the whole fleet (manifest `limits: { shared: storage }`); set before
    // serving. The per-daemon rules stay for when the store fails.
    void share(SharedLimits *shared) { shared_ = shared; }
    // True when authenticate and acquire_stream may wait on the store (call
    // them off the I/O threads then).
    bool uses_store() const { return enabled() && shared_ != nullptr; }

    // Prometheus lines: unknown keys, and 429s by reason. Empty without auth.
    std::string render_metrics() const;

  private:
    struct KeySet;
    struct Bucket {
        double tokens = 0;
        std::chrono::steady_clock::time_point last;
        bool started = false;
        // Refills by the time elapsed; true when full (nothing to remember).
        bool refill(std::chrono::steady_clock::time_point now, double rate, int burst);
        // Seconds until a token is free; 0 = taken now.
        int take(std::chrono::steady_clock::time_point now, double rate, int burst);
        // Seconds until a token is there (0 = one is), without taking it.
        int wait(double rate) const;
    };
    std::shared_ptr<const KeySet> keys() const;
    int take_token(const manifest::ApiKey &key, double default_rate, int default_burst);
    // The fleet's answers (seconds to wait, 0 = go on); nullopt = the store
    // failed, apply the daemon's own rule.
    std::optional<int> shared_token(const manifest::ApiKey &key, double rate, int burst);
    std::optional<int> shared_failures(const std::string &address, int64_t delta);
    // Seconds the address must wait because of its failed attempts (0 = none).
    int failure_wait(const std::string &address, std::chrono::steady_clock::time_point now);
    double failure_rate() const { return max_failures_per_minute_ / 60.0; } // tokens per second
    // Counts one failed attempt of the address; throws 429 once it has used
    // up its allowance, 401 `refusal` otherwise.
    [[noreturn]] void fail(const std::string &address, ApiError refusal);

    std::atomic<bool> enabled_{false};
    mutable std::mutex mutex_;
    std::shared_ptr<const KeySet> keys_;
    std::map<std::string, Bucket> buckets_;       // by key hash (ids may change on reload)
    std::atomic<int> max_failures_per_minute_{0}; // read without the mutex by the shared path
    std::atomic<uint64_t> unknown_keys_{0}, key_rate_limited_{0}, address_cut_off_{0}, streams_refused_{0};
    std::map<std::string, Bucket> failures_; // by client address; only those not refilled
    std::map<std::string, int> open_streams_;
    SharedLimits *shared_ = nullptr;
};

// The request's key: "Bearer abc" (the scheme in any case) -> "abc" from
// Authorization, else X-API-Key as is; "" if neither. Any other
// Authorization value (a bare key, another scheme) is ApiError 401 saying
// how to send a key: a bare key there is not taken (docs/security.md).
std::string_view key_from_headers(std::string_view authorization, std::string_view api_key);

} // namespace swh::auth
