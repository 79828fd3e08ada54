// Loading and validating template files with yaml-cpp. Every error names the
// file and the 1-based line:column of the offending node (yaml-cpp marks are
// 0-based), so a bad template is fixed from the daemon's log alone.
#include "templates.hpp"

#include <swarmhost/cpp/edge.hpp>

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <charconv>
#include <cstdlib>
#include <regex>
#include <set>

namespace swh::templated {

namespace {

using edge::Failure;
namespace fs = std::filesystem;

// "<file>:<line>:<col>: <what>" with 1-based line and column.
std::string place(const std::string &file, const YAML::Mark &mark) {
    // A null mark (empty document) still points at the start of the file.
    if (mark.is_null()) return file + ":1:1";
    return file + ":" + std::to_string(mark.line + 1) + ":" + std::to_string(mark.column + 1);
}

[[noreturn]] void fail_at(const std::string &file, const YAML::Mark &mark, const std::string &what) {
    throw Failure(SWH_E_INVALID, place(file, mark) + ": " + what);
}

// The reader of one file: knows the file name for every error it raises.
class FileReader {
  public:
    explicit FileReader(std::string file) : file_(std::move(file)) {}

    [[noreturn]] void fail(const YAML::Node &node, const std::string &what) const {
        fail_at(file_, node.Mark(), what);
    }

    std::string text(const YAML::Node &node, const std::string &key) const {
        if (!node.IsScalar()) fail(node, "expected '" + key + "' to be a string");
        return node.Scalar();
    }

    std::vector<std::string> text_list(const YAML::Node &node, const std::string &key) const {
        if (node.IsNull()) return {};
        if (!node.IsSequence()) fail(node, "expected '" + key + "' to be a list of strings");
        std::vector<std::string> out;
        for (const YAML::Node &item : node) {
            if (!item.IsScalar()) fail(item, "expected every item of '" + key + "' to be a string");
            out.push_back(item.Scalar());
        }
        return out;
    }

    Step step(const YAML::Node &node) const {
        if (!node.IsMap()) fail(node, "expected a step: a map with name, prompt, suggested_responses");
        Step out;
        bool named = false;
        for (const auto &entry : node) {
            const std::string key = entry.first.Scalar();
            if (key == "name") {
                out.name = text(entry.second, "name");
                named = true;
            } else if (key == "prompt") {
                out.prompt = entry.second.IsNull() ? "" : text(entry.second, "prompt");
            } else if (key == "suggested_responses") {
                out.suggested_responses = text_list(entry.second, "suggested_responses");
            } else {
                fail(entry.first,
                     "unknown step key '" + key + "' (expected name, prompt, suggested_responses)");
            }
        }
        if (!named || out.name.empty()) fail(node, "expected the step to have a non-empty 'name'");
        return out;
    }

    std::vector<Step> steps(const YAML::Node &node) const {
        if (!node.IsSequence() || node.size() == 0)
            fail(node, "expected 'steps' to be a non-empty list of steps");
        std::vector<Step> out;
        std::set<std::string> seen;
        for (const YAML::Node &item : node) {
            Step s = step(item);
            // Steps are looked up by name (message metadata, stored state).
            if (!seen.insert(s.name).second) fail(item, "duplicate step name '" + s.name + "'");
            out.push_back(std::move(s));
        }
        return out;
    }

    const std::string &file() const { return file_; }

  private:
    std::string file_;
};

// A plain (unquoted) YAML scalar as the JSON value YAML's core schema means:
// true/false, integers, floats, null; anything else (and every quoted
// scalar) stays a string.
Json scalar_json(const YAML::Node &node) {
    const std::string &s = node.Scalar();
    if (node.Tag() != "?") return s; // quoted or explicitly tagged: a string
    static const std::regex kTrue("true|True|TRUE"), kFalse("false|False|FALSE");
    static const std::regex kInt("[-+]?[0-9]+"),
        kFloat("[-+]?([0-9]+\\.[0-9]*|\\.[0-9]+|[0-9]+)([eE][-+]?[0-9]+)?");
    if (std::regex_match(s, kTrue)) return true;
    if (std::regex_match(s, kFalse)) return false;
    if (std::regex_match(s, kInt)) {
        int64_t value = 0;
        const char *begin = s.data() + (s[0] == '+' ? 1 : 0);
        if (std::from_chars(begin, s.data() + s.size(), value).ec == std::errc{}) return value;
        return s; // too big for an int64: keep the text rather than lose digits
    }
    if (std::regex_match(s, kFloat)) return std::strtod(s.c_str(), nullptr);
    return s;
}

Json to_json_value(const YAML::Node &node) {
    switch (node.Type()) {
    case YAML::NodeType::Scalar:
        return scalar_json(node);
    case YAML::NodeType::Sequence: {
        Json out = Json::array();
        for (const YAML::Node &item : node)
            out.push_back(to_json_value(item));
        return out;
    }
    case YAML::NodeType::Map: {
        Json out = Json::object();
        for (const auto &entry : node)
            out[entry.first.Scalar()] = to_json_value(entry.second);
        return out;
    }
    default:
        return nullptr;
    }
}

bool valid_name(const std::string &name) {
    static const std::regex kName("[A-Za-z0-9_.-]+");
    return std::regex_match(name, kName);
}

// Parses the file; yaml-cpp syntax errors carry their own mark.
YAML::Node parse_file(const fs::path &file) {
    try {
        return YAML::LoadFile(file.string());
    } catch (const YAML::BadFile &) {
        throw Failure(SWH_E_INVALID, file.string() + ": cannot read the template file");
    } catch (const YAML::ParserException &e) {
        fail_at(file.string(), e.mark, "invalid YAML: " + e.msg);
    }
}

void read_top_level_key(const FileReader &in, const std::string &key, const YAML::Node &value,
                        Template &out) {
    if (key == "name") {
        out.name = in.text(value, "name");
        out.origin = place(in.file(), value.Mark());
        if (!valid_name(out.name))
            in.fail(value, "expected 'name' to be letters, digits, '_', '-' or '.' (got '" + out.name + "')");
    } else if (key == "description") {
        out.description = value.IsNull() ? "" : in.text(value, "description");
    } else if (key == "system_prompt") {
        out.system_prompt = value.IsNull() ? "" : in.text(value, "system_prompt");
    } else if (key == "steps") {
        out.steps = in.steps(value);
    } else if (key == "suggested_responses") {
        out.suggested_responses = in.text_list(value, "suggested_responses");
    } else {
        out.extras[key] = to_json_value(value); // e.g. code_standards, difficulty_levels
    }
}

} // namespace

const Step *Template::find_step(const std::string &step_name) const {
    const auto it =
        std::find_if(steps.begin(), steps.end(), [&](const Step &s) { return s.name == step_name; });
    return it == steps.end() ? nullptr : &*it;
}

Template load_template_file(const fs::path &file) {
    const YAML::Node root = parse_file(file);
    const FileReader in(file.string());
    if (!root.IsMap())
        fail_at(file.string(), root.Mark(),
                "expected a template: a map with name, description, system_prompt, steps");
    Template out;
    out.file = file.string();
    out.name = file.stem().string();
    out.origin = place(file.string(), root.Mark());
    bool has_steps = false;
    for (const auto &entry : root) {
        if (!entry.first.IsScalar()) in.fail(entry.first, "expected a string key");
        const std::string key = entry.first.Scalar();
        has_steps = has_steps || key == "steps";
        read_top_level_key(in, key, entry.second, out);
    }
    if (!has_steps) fail_at(file.string(), root.Mark(), "expected a 'steps' list in the template");
    if (!valid_name(out.name))
        fail_at(file.string(), root.Mark(),
                "the file name '" + out.name + "' is not a valid template name; set 'name'");
    return out;
}

TemplateSet load_templates(const fs::path &dir) {
    std::error_code ec;
    if (!fs::is_directory(dir, ec))
        throw Failure(SWH_E_INVALID, "templates_dir '" + dir.string() + "' is not a readable folder");
    std::vector<fs::path> files;
    for (const fs::directory_entry &entry : fs::directory_iterator(dir, ec)) {
        const std::string ext = entry.path().extension().string();
        if (entry.is_regular_file() && (ext == ".yaml" || ext == ".yml")) files.push_back(entry.path());
    }
    if (ec) throw Failure(SWH_E_INVALID, "templates_dir '" + dir.string() + "': " + ec.message());
    std::sort(files.begin(), files.end()); // deterministic order for messages
    TemplateSet out;
    for (const fs::path &file : files) {
        Template t = load_template_file(file);
        if (const auto it = out.find(t.name); it != out.end())
            throw Failure(SWH_E_INVALID, t.origin + ": duplicate template name '" + t.name +
                                             "' (also defined at " + it->second.origin + ")");
        std::string name = t.name;
        out.emplace(std::move(name), std::move(t));
    }
    if (out.empty())
        throw Failure(SWH_E_INVALID,
                      "templates_dir '" + dir.string() + "' holds no *.yaml or *.yml template");
    return out;
}

Json to_json(const Template &t) {
    Json steps = Json::array();
    for (const Step &s : t.steps)
        steps.push_back(
            {{"name", s.name}, {"prompt", s.prompt}, {"suggested_responses", s.suggested_responses}});
    return {{"name", t.name},
            {"description", t.description},
            {"system_prompt", t.system_prompt},
            {"steps", std::move(steps)},
            {"suggested_responses", t.suggested_responses},
            {"extras", t.extras}};
}

std::string names_of(const TemplateSet &set) {
    std::string out;
    for (const auto &[name, _] : set)
        out += (out.empty() ? "" : ", ") + name;
    return out;
}

} // namespace swh::templated
