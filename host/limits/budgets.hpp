// Token and cost budgets per API key, per user and per session (manifest
// `budgets:`, docs/budgets.md). Before a provider is called, `check` refuses
// (ApiError 429 budget_exceeded) when a payer has spent its budget; after
// the reply, `charge` adds the tokens the provider reported, and their cost
// at the model's price, to each payer. A request in flight is not counted
// until its reply: the slack is what the requests in flight at once spend.
//
// Spend is counted per window (total, or the UTC day or month). With
// `limits: { shared: storage }` it lives in the store (counter_add through
// SharedLimits), so a fleet shares one budget and a restart keeps it;
// otherwise in this daemon, and a restart forgets it. When the store
// fails, the daemon's own counts decide (as the other shared limits do).
#pragma once

#include "manifest/manifest.hpp"
#include "model/errors.hpp"

#include "model/model.hpp"

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <utility>

namespace swh {

class SharedLimits;

namespace budgets {

// Whose budget a request spends: "" = not this scope (no key with
// `auth: none`; a stateless completion has no session).
struct Payer {
    std::string key, user, session;
};

struct Spend {
    int64_t tokens = 0;
    int64_t micro_usd = 0; // cost in millionths of a dollar (integers add up exactly in any store)
};

enum class Scope { Key, User, Session };
const char *scope_name(Scope scope);

// ---- the arithmetic (unit-tested in tests/unit/budgets_test.cpp)

// Cost of a reply at `price`, rounded to the nearest micro-dollar.
int64_t cost_micro_usd(const manifest::ModelPrice &price, int64_t input_tokens, int64_t output_tokens);
// The price of `model`, else of the provider instance; nullptr = free.
const manifest::ModelPrice *price_for(const manifest::BudgetSettings &settings, const std::string &model,
                                      const std::string &provider);
// The window `unix_seconds` falls in: "total", "2026-12-07" (day), "2026-12" (month), UTC.
std::string window_id(const std::string &window, int64_t unix_seconds);
// Seconds until that window ends; -1 for total (never).
int64_t seconds_left(const std::string &window, int64_t unix_seconds);
// The limit that applies to `name` (its own entry, else `default`); none() = no limit.
manifest::BudgetLimit limit_for(const std::map<std::string, manifest::BudgetLimit> &limits,
                                const std::string &name);
// Spent up to (or past) the limit: the next request is refused.
bool exhausted(const manifest::BudgetLimit &limit, const Spend &spent);

class Ledger {
  public:
    // Count in the store from now on (limits: { shared: storage }); set before serving.
    void share(SharedLimits *shared) { shared_ = shared; }

    // ApiError BudgetExceeded (429, with the budget and the spend as
    // details) when one of the payer's budgets is spent.
    void check(const manifest::BudgetSettings &settings, const Payer &payer);
    // Adds a reply's tokens (and their cost) to every payer.
    void charge(const manifest::BudgetSettings &settings, const Payer &payer, const std::string &model,
                const std::string &provider, int64_t input_tokens, int64_t output_tokens);

    // {"scope", "name", "window", "spent": {tokens, cost_usd}, "budget": {...} | null}
    Json report(const manifest::BudgetSettings &settings, Scope scope, const std::string &name);
    // Every key and user this daemon charged or the manifest names.
    std::set<std::pair<Scope, std::string>> known(const manifest::BudgetSettings &settings) const;
    // swarmhost_budget_* counters per scope: what this daemon charged and refused.
    std::string render_metrics() const;

  private:
    Spend spent(Scope scope, const std::string &name, const std::string &window, int64_t now_s);
    void add(Scope scope, const std::string &name, const std::string &window, int64_t now_s,
             const Spend &delta);
    static std::string counter_key(Scope scope, const std::string &name, const std::string &window_id,
                                   const char *unit);

    SharedLimits *shared_ = nullptr;
    mutable std::mutex mutex_;
    std::map<std::string, int64_t> local_;            // counter key -> value (this daemon's counts)
    std::string local_window_;                        // the window local_ counts
    std::set<std::pair<Scope, std::string>> charged_; // who has been charged here
    struct PerScope {
        std::atomic<uint64_t> tokens{0}, micro_usd{0}, refused{0};
    };
    std::array<PerScope, 3> metrics_;
};

} // namespace budgets
} // namespace swh
