// Helpers shared by the unit tests: real temporary files and collecting the
// diagnostics of a ManifestError as "file:line:col: message" lines.
#pragma once

#include "manifest/manifest.hpp"

#include <catch2/catch.hpp>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

namespace swh::test {

// A fresh folder under the system temp dir, removed with everything in it.
class TempDir {
  public:
    TempDir() {
        std::string pattern = (std::filesystem::temp_directory_path() / "swh-unit-XXXXXX").string();
        if (::mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
        path_ = pattern;
    }
    ~TempDir() {
        std::error_code ignored;
        std::filesystem::remove_all(path_, ignored);
    }
    TempDir(const TempDir &) = delete;
    TempDir &operator=(const TempDir &) = delete;

    const std::filesystem::path &path() const { return path_; }

    // Writes `text` to `relative` (creating folders) and returns the full path.
    std::string write(const std::string &relative, const std::string &text) const {
        const auto file = path_ / relative;
        std::filesystem::create_directories(file.parent_path());
        std::ofstream(file, std::ios::binary) << text;
        return file.string();
    }

  private:
    std::filesystem::path path_;
};

inline std::vector<std::string> lines_of(const std::vector<manifest::Diagnostic> &diagnostics) {
    std::vector<std::string> lines;
    for (const auto &diagnostic : diagnostics)
        lines.push_back(diagnostic.str());
    return lines;
}

// The diagnostics `parse_manifest` throws for `text`, labelled "m.yaml";
// fails the test if it does not throw.
inline std::vector<std::string> manifest_errors(const std::string &text) {
    try {
        manifest::parse_manifest(text, "m.yaml");
    } catch (const manifest::ManifestError &error) {
        return lines_of(error.diagnostics());
    }
    FAIL("expected a ManifestError for:\n" << text);
    return {};
}

} // namespace swh::test
