// Session templates of the "templated" session type: the YAML files of a
// folder, validated and turned into immutable values at create time.
#pragma once

#include <nlohmann/json.hpp>

#include <filesystem>
#include <map>
#include <string>
#include <vector>

namespace swh::templated {

using Json = nlohmann::json;

struct Step {
    std::string name;
    std::string prompt;
    std::vector<std::string> suggested_responses;
};

struct Template {
    std::string name;
    std::string description;
    std::string system_prompt;
    std::vector<Step> steps; // never empty
    std::vector<std::string> suggested_responses;
    Json extras = Json::object(); // every other top-level key, e.g. code_standards
    std::string file;             // where it was loaded from (for messages)
    std::string origin;           // "<file>:<line>:<col>" of its name (or of the document)

    const Step *find_step(const std::string &step_name) const;
};

// Template name -> template. Read-only after loading, so any thread may use it.
using TemplateSet = std::map<std::string, Template>;

// Loads every *.yaml / *.yml file of `dir` (in name order). Throws
// swh::edge::Failure(SWH_E_INVALID) with "<file>:<line>:<col>: <what was
// expected>" for a malformed file, a duplicate template name, or no template.
TemplateSet load_templates(const std::filesystem::path &dir);

// One template file; exposed on its own so a single file can be checked.
Template load_template_file(const std::filesystem::path &file);

// The template as GET /v1/sessions/{id}/template shows it.
Json to_json(const Template &t);

// "a, b, c": the names of a set, for error messages.
std::string names_of(const TemplateSet &set);

} // namespace swh::templated
