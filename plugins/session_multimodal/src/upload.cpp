#include "upload.hpp"

#include "sniff.hpp"

#include <nlohmann/json.hpp>

#include <vector>

namespace swh::multimodal {

namespace {

using Json = nlohmann::json;

HttpError bad_request(const std::string &message) {
    return HttpError(400, "invalid_request", message);
}

HttpError too_large(std::uint64_t max_bytes) {
    return HttpError(413, "payload_too_large",
                     "the attachment is larger than max_bytes (" + std::to_string(max_bytes) + " bytes)");
}

char lower(char c) {
    return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
}

bool iequals(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i)
        if (lower(a[i]) != lower(b[i])) return false;
    return true;
}

std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t'))
        s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t'))
        s.remove_suffix(1);
    return s;
}

int base64_value(char c) {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
}

// One part of a multipart body: its headers (name -> value) and content.
struct Part {
    std::string disposition, content_type;
    std::string_view content;
};

Part parse_part(std::string_view raw) {
    const std::size_t end = raw.find("\r\n\r\n");
    if (end == std::string_view::npos) throw bad_request("multipart: a part has no header/body separator");
    Part part;
    part.content = raw.substr(end + 4);
    std::string_view headers = raw.substr(0, end);
    while (!headers.empty()) {
        const std::size_t eol = headers.find("\r\n");
        const std::string_view line = headers.substr(0, eol);
        headers = eol == std::string_view::npos ? std::string_view{} : headers.substr(eol + 2);
        const std::size_t colon = line.find(':');
        if (colon == std::string_view::npos) throw bad_request("multipart: a part header has no ':'");
        const std::string_view name = trim(line.substr(0, colon));
        const std::string_view value = trim(line.substr(colon + 1));
        if (iequals(name, "Content-Disposition")) part.disposition = std::string(value);
        if (iequals(name, "Content-Type")) part.content_type = std::string(value);
    }
    return part;
}

// The parts between the delimiters; a body without its closing delimiter is broken.
std::vector<Part> split_parts(std::string_view body, const std::string &boundary) {
    const std::string delimiter = "--" + boundary;
    std::size_t at = 0;
    if (body.substr(0, delimiter.size()) == delimiter) {
        at = delimiter.size();
    } else { // a preamble before the first delimiter
        at = body.find("\r\n" + delimiter);
        if (at == std::string_view::npos)
            throw bad_request("multipart: the boundary does not occur in the body");
        at += 2 + delimiter.size();
    }
    std::vector<Part> parts;
    for (;;) {
        if (body.substr(at, 2) == "--") return parts; // closing delimiter
        while (at < body.size() && (body[at] == ' ' || body[at] == '\t'))
            ++at; // transport padding
        if (body.substr(at, 2) != "\r\n") throw bad_request("multipart: a delimiter is not followed by CRLF");
        at += 2;
        const std::size_t next = body.find("\r\n" + delimiter, at);
        if (next == std::string_view::npos) throw bad_request("multipart: the closing boundary is missing");
        parts.push_back(parse_part(body.substr(at, next - at)));
        at = next + 2 + delimiter.size();
    }
}

std::string printable_name(std::string_view name) {
    std::string out;
    for (char c : name.substr(0, 255))
        if (static_cast<unsigned char>(c) >= 0x20 && c != 0x7f) out.push_back(c);
    return out.empty() ? "attachment" : out;
}

} // namespace

std::optional<std::string> header_param(std::string_view header, std::string_view name) {
    constexpr auto npos = std::string_view::npos;
    std::size_t i = header.find(';'); // skip the value itself ("form-data", "multipart/form-data")
    while (i != npos && i < header.size()) {
        ++i; // past ';'
        const std::size_t eq = header.find('=', i), semi = header.find(';', i);
        if (eq == npos || (semi != npos && semi < eq)) { // a parameter without a value
            i = semi;
            continue;
        }
        const std::string_view key = trim(header.substr(i, eq - i));
        i = eq + 1;
        while (i < header.size() && (header[i] == ' ' || header[i] == '\t'))
            ++i;
        std::string value;
        if (i < header.size() && header[i] == '"') { // quoted-string with \-escapes
            for (++i; i < header.size() && header[i] != '"'; ++i) {
                if (header[i] == '\\' && i + 1 < header.size()) ++i;
                value.push_back(header[i]);
            }
            i = header.find(';', i);
        } else {
            const std::size_t stop = header.find(';', i);
            value = std::string(trim(header.substr(i, stop == npos ? npos : stop - i)));
            i = stop;
        }
        if (iequals(key, name)) return value;
    }
    return std::nullopt;
}

std::optional<std::string> base64_decode(std::string_view text) {
    std::string out;
    out.reserve(text.size() / 4 * 3);
    std::uint32_t acc = 0;
    int bits = 0;
    std::size_t padding = 0, symbols = 0;
    for (char c : text) {
        if (c == ' ' || c == '\n' || c == '\r' || c == '\t') continue;
        if (c == '=') {
            ++padding;
            continue;
        }
        const int v = base64_value(c);
        if (v < 0 || padding > 0) return std::nullopt; // bad character, or data after padding
        acc = (acc << 6) | static_cast<std::uint32_t>(v);
        bits += 6;
        ++symbols;
        if (bits >= 8) {
            bits -= 8;
            out.push_back(static_cast<char>((acc >> bits) & 0xFF));
        }
    }
    // A lone symbol in the last group cannot encode a byte; padding, when
    // present, must complete the last group of four.
    if (symbols % 4 == 1 || padding > 2) return std::nullopt;
    if (padding > 0 && (symbols + padding) % 4 != 0) return std::nullopt;
    return out;
}

Upload parse_multipart(std::string_view content_type, std::string_view body) {
    const auto boundary = header_param(content_type, "boundary");
    if (!boundary || boundary->empty() || boundary->size() > 200)
        throw bad_request("multipart/form-data without a usable boundary parameter");
    std::optional<Upload> file;
    for (const Part &part : split_parts(body, *boundary)) {
        if (header_param(part.disposition, "name").value_or("") != "file" &&
            !header_param(part.disposition, "filename"))
            continue; // an ordinary form field
        if (file) throw bad_request("multipart: send exactly one file part");
        file = Upload{printable_name(header_param(part.disposition, "filename").value_or("")),
                      normalize_type(part.content_type), std::string(part.content)};
    }
    if (!file) throw bad_request("multipart: no file part (a part with a filename, or named \"file\")");
    return std::move(*file);
}

Upload parse_json_upload(std::string_view body, std::uint64_t max_bytes) {
    const Json j = Json::parse(body, nullptr, false);
    if (!j.is_object()) throw bad_request("the body is not a JSON object");
    for (const auto &[key, value] : j.items()) {
        if (key != "name" && key != "mime_type" && key != "data_base64")
            throw bad_request("unknown field '" + key + "' (expected name, mime_type, data_base64)");
        if (!value.is_string()) throw bad_request("'" + key + "' must be a string");
    }
    if (!j.contains("data_base64")) throw bad_request("'data_base64' is required");
    const std::string &encoded = j["data_base64"].get_ref<const std::string &>();
    if (encoded.size() / 4 * 3 > max_bytes + 3) throw too_large(max_bytes); // before decoding it
    auto bytes = base64_decode(encoded);
    if (!bytes) throw bad_request("'data_base64' is not valid base64");
    return Upload{printable_name(j.value("name", "")), normalize_type(j.value("mime_type", "")),
                  std::move(*bytes)};
}

Upload parse_upload(std::string_view content_type, std::string_view body, std::uint64_t max_bytes) {
    const std::string type = normalize_type(content_type);
    Upload upload;
    if (type == "multipart/form-data")
        upload = parse_multipart(content_type, body);
    else if (type == "application/json")
        upload = parse_json_upload(body, max_bytes);
    else
        throw HttpError(415, "unsupported_media_type",
                        "send the attachment as multipart/form-data or application/json, not '" + type + "'");
    if (upload.bytes.size() > max_bytes) throw too_large(max_bytes);
    if (upload.bytes.empty()) throw bad_request("the attachment is empty");
    return upload;
}

} // namespace swh::multimodal
