// Counters that plugins add to through host->metric_add (and the host's own),
// rendered in the Prometheus text format on GET /metrics.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

namespace swh {

class MetricsRegistry {
  public:
    // `labels_json` is a JSON object of string values ("" = no labels).
    // Invalid names are sanitised to [a-zA-Z0-9_:]; malformed labels dropped.
    void add(std::string_view name, std::string_view labels_json, double value);
    // Every counter as "# TYPE name counter" + "name{labels} value" lines.
    std::string render() const;

  private:
    mutable std::mutex mutex_;
    std::map<std::string, std::map<std::string, double>> counters_; // name -> rendered labels -> value
    // labels_json -> rendered labels: plugins add with a few label sets over
    // and over (analytics: three per message), so each is parsed once.
    // Emptied when it reaches kLabelCache entries (label sets that never
    // repeat must not grow it without bound).
    std::map<std::string, std::string, std::less<>> rendered_;
    static constexpr std::size_t kLabelCache = 4096;
};

// Prometheus label value escaping (backslash, quote, newline).
std::string prometheus_escape(std::string_view value);

// One series in the text format: "# TYPE name type", then a line per sample.
// A sample's labels are already rendered (`{hook="x"}`), "" for none.
struct PrometheusSample {
    std::string labels;
    uint64_t value = 0;
};
std::string prometheus_series(std::string_view name, std::string_view type,
                              const std::vector<PrometheusSample> &samples);

} // namespace swh
