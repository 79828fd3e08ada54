// Source marks, node descriptions and ManifestError: the vocabulary every
// manifest and config-schema message is built from.
#include "manifest/manifest.hpp"

namespace swh::manifest {

namespace {

std::string join_lines(const std::vector<Diagnostic> &diagnostics) {
    std::string text;
    for (const auto &diagnostic : diagnostics) {
        if (!text.empty()) text += '\n';
        text += diagnostic.str();
    }
    return text;
}

} // namespace

std::string SourceMark::str() const {
    // Errors about the file as a whole (cannot open it) have no position.
    if (line <= 0) return file;
    return file + ":" + std::to_string(line) + ":" + std::to_string(column);
}

SourceMark mark_of(const YAML::Node &node, const SourceMark &fallback) {
    // Undefined nodes throw on Mark(); empty documents report -1/-1.
    if (!node.IsDefined()) return fallback;
    const YAML::Mark mark = node.Mark();
    if (mark.is_null() || mark.line < 0 || mark.column < 0) return fallback;
    return SourceMark{fallback.file, mark.line + 1, mark.column + 1};
}

std::string describe(const YAML::Node &node) {
    if (!node.IsDefined()) return "nothing";
    switch (node.Type()) {
    case YAML::NodeType::Map:
        return "a map";
    case YAML::NodeType::Sequence:
        return node.size() == 0 ? "an empty list" : "a list";
    case YAML::NodeType::Scalar:
        // Say "quoted" so `port: "80"` failing an integer check is not a puzzle.
        return (node.Tag() == "!" ? "the quoted string '" : "'") + node.Scalar() + "'";
    default:
        return "null";
    }
}

ManifestError::ManifestError(std::vector<Diagnostic> diagnostics)
    : std::runtime_error(join_lines(diagnostics)), diagnostics_(std::move(diagnostics)) {}

} // namespace swh::manifest
