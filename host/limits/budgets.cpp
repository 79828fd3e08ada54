#include "limits/budgets.hpp"

#include "limits/shared_limits.hpp"
#include "util/clock.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <limits>

namespace swh::budgets {

namespace {

constexpr int64_t kDay = 24 * 3600;

std::tm utc(int64_t unix_seconds) {
    const auto t = static_cast<std::time_t>(unix_seconds);
    std::tm out{};
    gmtime_r(&t, &out);
    return out;
}

// How long the store keeps a window's counter: past the window's end (the
// key names the window, so the next one starts from 0 anyway). `total` is
// kept as long as the ABI's uint32 window allows (docs/budgets.md).
std::chrono::milliseconds store_window(const std::string &window) {
    if (window == "day") return std::chrono::hours(26);
    if (window == "month") return std::chrono::hours(24 * 32);
    return std::chrono::milliseconds(std::numeric_limits<uint32_t>::max());
}

const std::map<std::string, manifest::BudgetLimit> &limits_of(const manifest::BudgetSettings &settings,
                                                              Scope scope) {
    switch (scope) {
    case Scope::Key:
        return settings.keys;
    case Scope::User:
        return settings.users;
    case Scope::Session:
        break;
    }
    return settings.sessions;
}

double usd(int64_t micro_usd) {
    return static_cast<double>(micro_usd) / 1e6;
}

Json limit_json(const manifest::BudgetLimit &limit) {
    Json out = Json::object();
    if (limit.tokens > 0) out["tokens"] = limit.tokens;
    if (limit.cost_usd > 0) out["cost_usd"] = limit.cost_usd;
    return out;
}

Json spend_json(const Spend &spent) {
    return {{"tokens", spent.tokens}, {"cost_usd", usd(spent.micro_usd)}};
}

// The payer's names by scope, those it has.
std::array<std::pair<Scope, const std::string *>, 3> scopes_of(const Payer &payer) {
    return {{{Scope::Key, &payer.key}, {Scope::User, &payer.user}, {Scope::Session, &payer.session}}};
}

} // namespace

const char *scope_name(Scope scope) {
    switch (scope) {
    case Scope::Key:
        return "key";
    case Scope::User:
        return "user";
    case Scope::Session:
        break;
    }
    return "session";
}

int64_t cost_micro_usd(const manifest::ModelPrice &price, int64_t input_tokens, int64_t output_tokens) {
    // USD per million tokens = micro-dollars per token.
    const double micro = price.input_per_mtok * static_cast<double>(std::max<int64_t>(0, input_tokens)) +
                         price.output_per_mtok * static_cast<double>(std::max<int64_t>(0, output_tokens));
    return static_cast<int64_t>(std::llround(micro));
}

const manifest::ModelPrice *price_for(const manifest::BudgetSettings &settings, const std::string &model,
                                      const std::string &provider) {
    for (const std::string *name : {&model, &provider})
        if (const auto it = settings.prices.find(*name); !name->empty() && it != settings.prices.end())
            return &it->second;
    return nullptr;
}

std::string window_id(const std::string &window, int64_t unix_seconds) {
    if (window != "day" && window != "month") return "total";
    const std::tm t = utc(unix_seconds);
    char text[48]; // room for any int the format may print (-Wformat-truncation)
    if (window == "day")
        std::snprintf(text, sizeof text, "%04d-%02d-%02d", t.tm_year + 1900, t.tm_mon + 1, t.tm_mday);
    else
        std::snprintf(text, sizeof text, "%04d-%02d", t.tm_year + 1900, t.tm_mon + 1);
    return text;
}

int64_t seconds_left(const std::string &window, int64_t unix_seconds) {
    if (window == "day") return kDay - unix_seconds % kDay;
    if (window != "month") return -1;
    std::tm next = utc(unix_seconds);
    next.tm_mday = 1;
    next.tm_hour = next.tm_min = next.tm_sec = 0;
    if (++next.tm_mon == 12) {
        next.tm_mon = 0;
        ++next.tm_year;
    }
    return static_cast<int64_t>(timegm(&next)) - unix_seconds;
}

manifest::BudgetLimit limit_for(const std::map<std::string, manifest::BudgetLimit> &limits,
                                const std::string &name) {
    if (const auto own = limits.find(name); own != limits.end()) return own->second;
    if (const auto fallback = limits.find("default"); fallback != limits.end()) return fallback->second;
    return {};
}

bool exhausted(const manifest::BudgetLimit &limit, const Spend &spent) {
    return (limit.tokens > 0 && spent.tokens >= limit.tokens) ||
           (limit.cost_usd > 0 && usd(spent.micro_usd) >= limit.cost_usd);
}

void Ledger::check(const manifest::BudgetSettings &settings, const Payer &payer) {
    if (!settings.configured) return;
    const int64_t now_s = now_us() / 1'000'000;
    for (const auto &[scope, name] : scopes_of(payer)) {
        if (name->empty()) continue;
        const manifest::BudgetLimit limit = limit_for(limits_of(settings, scope), *name);
        if (limit.none()) continue;
        const Spend spent = this->spent(scope, *name, settings.window, now_s);
        if (!exhausted(limit, spent)) continue;
        metrics_[static_cast<std::size_t>(scope)].refused += 1;
        const Json details{
            {"type", "budget_exceeded"}, {"scope", scope_name(scope)},  {"name", *name},
            {"window", settings.window}, {"budget", limit_json(limit)}, {"spent", spend_json(spent)}};
        const int64_t left = seconds_left(settings.window, now_s);
        throw ApiError(ErrorKind::BudgetExceeded,
                       std::string("the budget of ") + scope_name(scope) + " '" + *name + "' is spent (" +
                           std::to_string(spent.tokens) + " tokens, $" +
                           std::to_string(usd(spent.micro_usd)) + " of " + limit_json(limit).dump() +
                           ", window: " + settings.window + ")",
                       left < 0 ? -1 : static_cast<int>(left), details.dump());
    }
}

void Ledger::charge(const manifest::BudgetSettings &settings, const Payer &payer, const std::string &model,
                    const std::string &provider, int64_t input_tokens, int64_t output_tokens) {
    if (!settings.configured) return;
    Spend delta;
    delta.tokens = std::max<int64_t>(0, input_tokens) + std::max<int64_t>(0, output_tokens);
    if (const manifest::ModelPrice *price = price_for(settings, model, provider))
        delta.micro_usd = cost_micro_usd(*price, input_tokens, output_tokens);
    if (delta.tokens == 0 && delta.micro_usd == 0) return;
    const int64_t now_s = now_us() / 1'000'000;
    for (const auto &[scope, name] : scopes_of(payer)) {
        if (name->empty()) continue;
        add(scope, *name, settings.window, now_s, delta);
        PerScope &counted = metrics_[static_cast<std::size_t>(scope)];
        counted.tokens += static_cast<uint64_t>(delta.tokens);
        counted.micro_usd += static_cast<uint64_t>(delta.micro_usd);
    }
}

Json Ledger::report(const manifest::BudgetSettings &settings, Scope scope, const std::string &name) {
    const int64_t now_s = now_us() / 1'000'000;
    const manifest::BudgetLimit limit = limit_for(limits_of(settings, scope), name);
    return {{"scope", scope_name(scope)},
            {"name", name},
            {"window", settings.window},
            {"window_id", window_id(settings.window, now_s)},
            {"spent", spend_json(spent(scope, name, settings.window, now_s))},
            {"budget", limit.none() ? Json() : limit_json(limit)}};
}

std::set<std::pair<Scope, std::string>> Ledger::known(const manifest::BudgetSettings &settings) const {
    std::set<std::pair<Scope, std::string>> out;
    {
        std::lock_guard lock(mutex_);
        out = charged_;
    }
    for (const Scope scope : {Scope::Key, Scope::User})
        for (const auto &[name, limit] : limits_of(settings, scope))
            if (name != "default") out.emplace(scope, name);
    return out;
}

std::string Ledger::render_metrics() const {
    std::string tokens, cost, refused;
    for (const Scope scope : {Scope::Key, Scope::User, Scope::Session}) {
        const PerScope &m = metrics_[static_cast<std::size_t>(scope)];
        const std::string labels = std::string("{scope=\"") + scope_name(scope) + "\"} ";
        tokens += "swarmhost_budget_tokens_total" + labels + std::to_string(m.tokens.load()) + "\n";
        cost += "swarmhost_budget_cost_usd_total" + labels +
                std::to_string(usd(static_cast<int64_t>(m.micro_usd.load()))) + "\n";
        refused += "swarmhost_budget_refused_total" + labels + std::to_string(m.refused.load()) + "\n";
    }
    return "# TYPE swarmhost_budget_tokens_total counter\n" + tokens +
           "# TYPE swarmhost_budget_cost_usd_total counter\n" + cost +
           "# TYPE swarmhost_budget_refused_total counter\n" + refused;
}

std::string Ledger::counter_key(Scope scope, const std::string &name, const std::string &window_id,
                                const char *unit) {
    return std::string("budget:") + window_id + ":" + scope_name(scope) + ":" + unit + ":" + name;
}

Spend Ledger::spent(Scope scope, const std::string &name, const std::string &window, int64_t now_s) {
    const std::string id = window_id(window, now_s);
    const std::string tokens_key = counter_key(scope, name, id, "tokens");
    const std::string cost_key = counter_key(scope, name, id, "micro_usd");
    if (shared_) {
        const auto tokens = shared_->add(tokens_key, 0, store_window(window));
        const auto cost = tokens ? shared_->add(cost_key, 0, store_window(window)) : std::nullopt;
        if (tokens && cost) return {*tokens, *cost};
    }
    std::lock_guard lock(mutex_);
    const auto value = [&](const std::string &key) {
        const auto it = local_.find(key);
        return it == local_.end() ? int64_t{0} : it->second;
    };
    return {value(tokens_key), value(cost_key)};
}

void Ledger::add(Scope scope, const std::string &name, const std::string &window, int64_t now_s,
                 const Spend &delta) {
    const std::string id = window_id(window, now_s);
    const std::string tokens_key = counter_key(scope, name, id, "tokens");
    const std::string cost_key = counter_key(scope, name, id, "micro_usd");
    if (shared_) {
        shared_->add(tokens_key, delta.tokens, store_window(window));
        if (delta.micro_usd) shared_->add(cost_key, delta.micro_usd, store_window(window));
    }
    // This daemon's own count too: it decides while the store fails.
    std::lock_guard lock(mutex_);
    charged_.emplace(scope, name);
    if (id != local_window_) { // a new window: the last one's counts are of no more use
        local_.clear();
        local_window_ = id;
    }
    local_[tokens_key] += delta.tokens;
    local_[cost_key] += delta.micro_usd;
}

} // namespace swh::budgets
