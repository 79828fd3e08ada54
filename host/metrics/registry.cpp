#include "metrics/registry.hpp"

#include <cmath>
#include <nlohmann/json.hpp>
#include <sstream>

namespace swh {

namespace {

std::string sanitise_name(std::string_view name) {
    std::string out;
    for (char c : name) {
        const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                        c == '_' || c == ':';
        out.push_back(ok ? c : '_');
    }
    if (out.empty() || (out[0] >= '0' && out[0] <= '9')) out.insert(out.begin(), '_');
    return out;
}

std::string render_labels(std::string_view labels_json) {
    if (labels_json.empty()) return "";
    auto labels = nlohmann::json::parse(labels_json, nullptr, false);
    if (!labels.is_object() || labels.empty()) return "";
    std::string out = "{";
    bool first = true;
    for (const auto &[key, value] : labels.items()) { // nlohmann orders keys: stable series identity
        if (!first) out += ",";
        first = false;
        out += sanitise_name(key) + "=\"" +
               prometheus_escape(value.is_string() ? value.get<std::string>() : value.dump()) + "\"";
    }
    return out + "}";
}

} // namespace

std::string prometheus_escape(std::string_view value) {
    std::string out;
    for (char c : value) {
        if (c == '\\')
            out += "\\\\";
        else if (c == '"')
            out += "\\\"";
        else if (c == '\n')
            out += "\\n";
        else
            out.push_back(c);
    }
    return out;
}

void MetricsRegistry::add(std::string_view name, std::string_view labels_json, double value) {
    if (!std::isfinite(value)) return;
    const std::string key = sanitise_name(name);
    std::lock_guard lock(mutex_);
    auto labels = rendered_.find(labels_json);
    if (labels == rendered_.end()) {
        if (rendered_.size() >= kLabelCache) rendered_.clear();
        labels = rendered_.emplace(std::string(labels_json), render_labels(labels_json)).first;
    }
    counters_[key][labels->second] += value;
}

std::string MetricsRegistry::render() const {
    std::ostringstream out;
    std::lock_guard lock(mutex_);
    for (const auto &[name, series] : counters_) {
        out << "# TYPE " << name << " counter\n";
        for (const auto &[labels, value] : series)
            out << name << labels << " " << value << "\n";
    }
    return out.str();
}

std::string prometheus_series(std::string_view name, std::string_view type,
                              const std::vector<PrometheusSample> &samples) {
    std::string text = "# TYPE " + std::string(name) + " " + std::string(type) + "\n";
    for (const auto &sample : samples)
        text += std::string(name) + sample.labels + " " + std::to_string(sample.value) + "\n";
    return text;
}

} // namespace swh
