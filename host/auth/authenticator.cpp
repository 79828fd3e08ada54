#include "auth/authenticator.hpp"

#include "limits/shared_limits.hpp"
#include "metrics/registry.hpp"
#include "util/sha256.hpp"
#include "util/text.hpp"

#include <cctype>
#include <cmath>
#include <spdlog/spdlog.h>

namespace swh::auth {

struct Authenticator::KeySet {
    std::map<std::string, manifest::ApiKey> by_hash;
    double rate_per_second = 0;
    int burst = 0;
    int max_streams = 0;
};

namespace {

std::vector<manifest::ApiKey> all_keys(const manifest::AuthSettings &settings) {
    std::vector<manifest::ApiKey> keys = settings.keys;
    if (!settings.keys_file.empty()) {
        auto from_file = manifest::load_keys_file(settings.keys_file);
        keys.insert(keys.end(), from_file.begin(), from_file.end());
    }
    return keys;
}

ApiError too_many_failures(int wait) {
    return ApiError(ErrorKind::RateLimited,
                    "too many unknown API keys from this address (auth.max_failures_per_minute); retry in " +
                        std::to_string(wait) + " s",
                    wait);
}

// Addresses remembered at most; beyond it those whose allowance has refilled
// are forgotten (an address with a full bucket is the same as a new one).
constexpr std::size_t kMaxTrackedAddresses = 65536;

// "Bearer" in any case, then a space or nothing (RFC 9110 11.1: schemes are
// case-insensitive).
bool is_bearer(std::string_view value) {
    constexpr std::string_view kScheme = "bearer";
    if (value.size() < kScheme.size() || (value.size() > kScheme.size() && value[kScheme.size()] != ' '))
        return false;
    for (std::size_t i = 0; i < kScheme.size(); ++i)
        if (std::tolower(static_cast<unsigned char>(value[i])) != kScheme[i]) return false;
    return true;
}

} // namespace

std::string_view key_from_headers(std::string_view authorization, std::string_view api_key) {
    if (authorization.empty()) return trim_blanks(api_key);
    const std::string_view value = trim_blanks(authorization);
    if (!is_bearer(value))
        throw ApiError(ErrorKind::Unauthorized,
                       "the Authorization header must be 'Bearer <key>'; or send the "
                       "key as X-API-Key: <key> (docs/security.md)");
    return trim_blanks(value.substr(6));
}

Authenticator::Authenticator(const manifest::AuthSettings &settings) {
    reload(settings);
}

void Authenticator::reload(const manifest::AuthSettings &settings) {
    if (settings.mode != "api_keys") {
        enabled_.store(false, std::memory_order_release);
        std::lock_guard lock(mutex_);
        keys_.reset();
        return;
    }
    auto set = std::make_shared<KeySet>();
    set->rate_per_second = settings.rate_per_second;
    set->burst = settings.burst;
    set->max_streams = settings.max_streams_per_key;
    // The manifest's keys and the keys file's are one set: a key or an id
    // may appear once (stream slots are counted per id).
    std::vector<manifest::Diagnostic> duplicates;
    std::map<std::string, const manifest::ApiKey *> by_id;
    std::vector<manifest::ApiKey> keys = all_keys(settings);
    for (const auto &key : keys) {
        if (auto [it, fresh] = by_id.try_emplace(key.id, &key); !fresh)
            duplicates.push_back(
                {key.mark, "duplicate key id '" + key.id + "' (first at " + it->second->mark.str() + ")"});
        if (auto [it, fresh] = set->by_hash.try_emplace(key.sha256, key); !fresh)
            duplicates.push_back({key.mark, "the same key appears twice (first as '" + it->second.id +
                                                "' at " + it->second.mark.str() + ")"});
    }
    if (!duplicates.empty()) throw manifest::ManifestError(std::move(duplicates));
    std::lock_guard lock(mutex_);
    keys_ = std::move(set);
    max_failures_per_minute_ = settings.max_failures_per_minute;
    enabled_.store(true, std::memory_order_release); // after the keys: never on without them
}

std::size_t Authenticator::key_count() const {
    auto set = keys();
    return set ? set->by_hash.size() : 0;
}

std::shared_ptr<const Authenticator::KeySet> Authenticator::keys() const {
    std::lock_guard lock(mutex_);
    return keys_;
}

Principal Authenticator::authenticate(std::string_view authorization, std::string_view api_key,
                                      std::string_view user_header, std::string_view client_address) {
    Principal principal;
    if (!enabled()) {
        principal.admin = true;
        principal.user = std::string(user_header);
        return principal;
    }
    // No key is no guess: a plain 401 that counts for nothing (a load
    // balancer probing /healthz must not lock its own address out).
    const std::string_view key = key_from_headers(authorization, api_key);
    if (key.empty())
        throw ApiError(ErrorKind::Unauthorized,
                       "an API key is required (Authorization: Bearer <key>, or X-API-Key: <key>)");
    // An address that used up its wrong guesses waits, whatever key it sends
    // now: answering a right guess would make the wait pointless.
    const std::string address(client_address);
    if (const int wait = failure_wait(address, std::chrono::steady_clock::now()); wait > 0) {
        ++address_cut_off_;
        throw too_many_failures(wait);
    }
    const auto set = keys();
    if (!set) { // a reload turned keys off meanwhile: this request is the last under the old mode
        principal.admin = true;
        principal.user = std::string(user_header);
        return principal;
    }
    const auto it = set->by_hash.find(sha256_hex(key));
    if (it == set->by_hash.end()) {
        ++unknown_keys_;
        fail(address, ApiError(ErrorKind::Unauthorized, "unknown API key"));
    }
    const manifest::ApiKey &entry = it->second;
    if (int wait = take_token(entry, set->rate_per_second, set->burst); wait > 0) {
        ++key_rate_limited_;
        throw ApiError(
            ErrorKind::RateLimited,
            "rate limit of key '" + entry.id + "' reached; retry in " + std::to_string(wait) + " s", wait);
    }
    principal.authenticated = true;
    principal.admin = entry.role == "admin";
    principal.key_id = entry.id;
    principal.user = entry.user;
    return principal;
}

int Authenticator::take_token(const manifest::ApiKey &key, double default_rate, int default_burst) {
    const double rate = key.rate_per_second >= 0 ? key.rate_per_second : default_rate;
    if (rate <= 0) return 0; // unlimited
    int burst = key.burst >= 0 ? key.burst : default_burst;
    if (burst <= 0) burst = std::max(1, static_cast<int>(std::ceil(rate)));
    if (shared_)
        if (const auto wait = shared_token(key, rate, burst)) return *wait;
    const auto now = std::chrono::steady_clock::now();
    std::lock_guard lock(mutex_);
    return buckets_[key.sha256].take(now, rate, burst);
}

// Fleet-wide, the bucket becomes a fixed window of the time a full bucket
// takes to refill (at least 1 s) that lets `burst` requests through: the same
// long-run rate, and at most 2 x burst in any span of one window (docs/fleet.md).
std::optional<int> Authenticator::shared_token(const manifest::ApiKey &key, double rate, int burst) {
    const double window_s = std::max(1.0, burst / rate);
    const auto window = std::chrono::milliseconds(static_cast<int64_t>(window_s * 1000));
    const auto used = shared_->add("auth/rate/" + key.sha256, 1, window);
    if (!used) return std::nullopt;
    return *used > burst ? static_cast<int>(std::ceil(window_s)) : 0;
}

// Failed guesses of an address in a fixed window of one minute; `delta` 0
// only looks. Waits are the window's length (the store does not say how much
// of it is left).
std::optional<int> Authenticator::shared_failures(const std::string &address, int64_t delta) {
    const auto failures = shared_->add("auth/failures/" + address, delta, std::chrono::minutes(1));
    if (!failures) return std::nullopt;
    const int64_t allowed = max_failures_per_minute_;
    return (delta == 0 ? *failures >= allowed : *failures > allowed) ? 60 : 0;
}

bool Authenticator::Bucket::refill(std::chrono::steady_clock::time_point now, double rate, int burst) {
    if (!started) {
        *this = {static_cast<double>(burst), now, true};
    } else {
        const double elapsed = std::chrono::duration<double>(now - last).count();
        tokens = std::min<double>(burst, tokens + elapsed * rate);
        last = now;
    }
    return tokens >= burst;
}

int Authenticator::Bucket::wait(double rate) const {
    return tokens >= 1 ? 0 : std::max(1, static_cast<int>(std::ceil((1 - tokens) / rate)));
}

int Authenticator::Bucket::take(std::chrono::steady_clock::time_point now, double rate, int burst) {
    refill(now, rate, burst);
    if (const int seconds = wait(rate); seconds > 0) return seconds;
    tokens -= 1;
    return 0;
}

int Authenticator::failure_wait(const std::string &address, std::chrono::steady_clock::time_point now) {
    if (shared_ && max_failures_per_minute_ > 0)
        if (const auto wait = shared_failures(address, 0)) return *wait;
    std::lock_guard lock(mutex_);
    if (max_failures_per_minute_ <= 0) return 0;
    const auto it = failures_.find(address);
    if (it == failures_.end()) return 0;
    if (it->second.refill(now, failure_rate(), max_failures_per_minute_)) {
        failures_.erase(it);
        return 0;
    }
    return it->second.wait(failure_rate());
}

void Authenticator::fail(const std::string &address, ApiError refusal) {
    std::optional<int> wait_shared;
    if (shared_ && max_failures_per_minute_ > 0) wait_shared = shared_failures(address, 1);
    int wait = wait_shared.value_or(0);
    if (!wait_shared) {
        std::lock_guard lock(mutex_);
        if (max_failures_per_minute_ > 0) {
            const auto now = std::chrono::steady_clock::now();
            const double rate = failure_rate();
            if (failures_.size() >= kMaxTrackedAddresses)
                for (auto it = failures_.begin(); it != failures_.end();)
                    it = it->second.refill(now, rate, max_failures_per_minute_) ? failures_.erase(it) : ++it;
            wait = failures_[address].take(now, rate, max_failures_per_minute_);
        }
    }
    if (wait > 0) {
        ++address_cut_off_;
        throw too_many_failures(wait);
    }
    throw refusal;
}

std::shared_ptr<void> Authenticator::acquire_stream(const Principal &principal) {
    if (!enabled() || !principal.authenticated) return nullptr;
    const auto set = keys();
    if (!set || set->max_streams <= 0) return nullptr;
    if (shared_)
        if (auto lease = shared_->take("auth/streams/" + principal.key_id, 1,
                                       static_cast<uint64_t>(set->max_streams))) {
            if (lease->taken) return lease->hold;
            ++streams_refused_;
            throw ApiError(ErrorKind::RateLimited,
                           "key '" + principal.key_id + "' has " + std::to_string(lease->held) +
                               " streams open across the fleet, the most auth.max_streams_per_key allows; "
                               "close one first",
                           1);
        }
    std::lock_guard lock(mutex_);
    int &open = open_streams_[principal.key_id];
    if (open >= set->max_streams) {
        ++streams_refused_;
        throw ApiError(ErrorKind::RateLimited,
                       "key '" + principal.key_id + "' has " + std::to_string(open) +
                           " streams open, the most auth.max_streams_per_key allows; close one first",
                       1);
    }
    ++open;
    // The slot frees itself when the stream's last owner lets go.
    struct Slot {
        Authenticator &owner;
        std::string key_id;
        ~Slot() {
            std::lock_guard release(owner.mutex_);
            if (--owner.open_streams_[key_id] <= 0) owner.open_streams_.erase(key_id);
        }
    };
    return std::make_shared<Slot>(*this, principal.key_id);
}

std::string Authenticator::render_metrics() const {
    if (!enabled()) return {};
    return prometheus_series("swarmhost_auth_unknown_keys_total", "counter", {{"", unknown_keys_}}) +
           prometheus_series("swarmhost_auth_rate_limited_total", "counter",
                             {{R"({reason="key_rate"})", key_rate_limited_},
                              {R"({reason="unknown_keys_from_address"})", address_cut_off_},
                              {R"({reason="streams_per_key"})", streams_refused_}});
}

} // namespace swh::auth
