// The attachment convention shared by session types that store files and the
// providers that send them (header-only, part of the optional C++ layer of the
// SDK; no ABI): a user message whose metadata has
//   "attachments": [{"id","name","mime_type","size","path"}, ...]
// carries files that a provider sends upstream in its vendor's own format.
// Only a session type can set metadata.attachments (the host drops a
// client-sent one), so a "path" here was written by the plugin that stored
// the file, never by a client.
#pragma once

#include <swarmhost/cpp/edge.hpp>
#include <swarmhost/cpp/json_text.hpp>

#include <nlohmann/json.hpp>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <string>
#include <string_view>
#include <sys/stat.h>
#include <vector>

namespace swh::cpp::attachments {

// Providers refuse to inline a file larger than this (a vendor takes at most
// ~32 MB per request anyway); the session type's own max_bytes is smaller.
inline constexpr std::uint64_t kProviderMaxAttachmentBytes = 32ull << 20;

struct AttachmentRef {
    std::string id, name, mime_type, path;
    std::uint64_t size = 0; // as recorded by the session type
};

// A file read for sending, with its type as recorded by the session type.
struct LoadedAttachment {
    AttachmentRef ref;
    std::string bytes;
};

inline bool is_image(std::string_view mime) {
    return mime == "image/png" || mime == "image/jpeg" || mime == "image/gif" || mime == "image/webp";
}

// The attachments of one message's metadata: entries that are objects with a
// non-empty string "path". Anything else (no metadata, no key, entries
// without a path) yields nothing.
inline std::vector<AttachmentRef> attachments_of(std::string_view metadata_json) {
    std::vector<AttachmentRef> out;
    if (!json_text::may_hold_key(metadata_json, "attachments")) return out;
    const nlohmann::json meta = nlohmann::json::parse(metadata_json, nullptr, false);
    if (!meta.is_object() || !meta.contains("attachments") || !meta["attachments"].is_array()) return out;
    auto text = [](const nlohmann::json &o, const char *key) {
        return o.contains(key) && o[key].is_string() ? o[key].get<std::string>() : std::string();
    };
    for (const auto &a : meta["attachments"]) {
        if (!a.is_object() || text(a, "path").empty()) continue;
        const std::uint64_t size =
            a.contains("size") && a["size"].is_number_unsigned() ? a["size"].get<std::uint64_t>() : 0;
        out.push_back({text(a, "id"), text(a, "name"), text(a, "mime_type"), text(a, "path"), size});
    }
    return out;
}

// Reads a regular file of at most `max_bytes`. A missing, unreadable or
// oversized file is an error naming the file: the call fails rather than
// silently sending the message without it.
inline std::string read_attachment(const AttachmentRef &ref, std::string_view who,
                                   std::uint64_t max_bytes = kProviderMaxAttachmentBytes) {
    auto fail = [&](const std::string &why) -> edge::Failure {
        return edge::Failure(SWH_E_INVALID, std::string(who) + ": attachment '" + ref.name + "' (" +
                                                ref.path + ") cannot be sent: " + why);
    };
    struct stat st {};
    if (::stat(ref.path.c_str(), &st) != 0) throw fail(std::strerror(errno));
    if (!S_ISREG(st.st_mode)) throw fail("not a regular file");
    if (static_cast<std::uint64_t>(st.st_size) > max_bytes)
        throw fail("larger than " + std::to_string(max_bytes) + " bytes");
    std::ifstream in(ref.path, std::ios::binary);
    if (!in) throw fail("cannot open it");
    std::string bytes(static_cast<std::size_t>(st.st_size), '\0');
    in.read(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    if (static_cast<std::size_t>(in.gcount()) != bytes.size()) throw fail("short read");
    return bytes;
}

// Every attachment of one message's metadata, read.
inline std::vector<LoadedAttachment> load_attachments(std::string_view metadata_json, std::string_view who) {
    std::vector<LoadedAttachment> out;
    for (auto &ref : attachments_of(metadata_json)) {
        std::string bytes = read_attachment(ref, who);
        out.push_back({std::move(ref), std::move(bytes)});
    }
    return out;
}

// The attachments of each turn of a conversation, read (index = turn index);
// only user turns carry them. `Turns`: items with `role` and `metadata_json`.
// Throws like read_attachment: a missing, unreadable or too large file fails
// the call, nothing is dropped.
template <class Turns>
std::vector<std::vector<LoadedAttachment>> load_turn_attachments(const Turns &turns, std::string_view who) {
    std::vector<std::vector<LoadedAttachment>> out;
    out.reserve(turns.size());
    for (const auto &t : turns)
        out.push_back(t.role == "user" ? load_attachments(t.metadata_json, who)
                                       : std::vector<LoadedAttachment>{});
    return out;
}

// Standard base64 (RFC 4648, with padding), as every vendor expects.
inline std::string base64_encode(std::string_view in) {
    static constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    std::string out;
    out.reserve((in.size() + 2) / 3 * 4);
    std::size_t i = 0;
    for (; i + 3 <= in.size(); i += 3) {
        const std::uint32_t v = (std::uint32_t(std::uint8_t(in[i])) << 16) |
                                (std::uint32_t(std::uint8_t(in[i + 1])) << 8) | std::uint8_t(in[i + 2]);
        out += {kAlphabet[v >> 18], kAlphabet[(v >> 12) & 63], kAlphabet[(v >> 6) & 63], kAlphabet[v & 63]};
    }
    const std::size_t rest = in.size() - i;
    if (rest > 0) {
        std::uint32_t v = std::uint32_t(std::uint8_t(in[i])) << 16;
        if (rest == 2) v |= std::uint32_t(std::uint8_t(in[i + 1])) << 8;
        out += kAlphabet[v >> 18];
        out += kAlphabet[(v >> 12) & 63];
        out += rest == 2 ? kAlphabet[(v >> 6) & 63] : '=';
        out += '=';
    }
    return out;
}

} // namespace swh::cpp::attachments
