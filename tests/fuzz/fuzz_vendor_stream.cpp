// libFuzzer target: the vendor wires the provider plugins read, as their
// Decoders see them (plugins/provider_openai/src/openai_wire.cpp,
// plugins/provider_anthropic/src/anthropic_wire.cpp): a 2xx body, streamed
// (SSE: chat.completion.chunk / message_start ... message_stop) or whole,
// and an error answer's body.
//
// Input layout: byte 0 picks the vendor (bit 0), streamed or not (bit 1),
// and whether the client goes away after a few pieces of text (bits 2-3);
// bytes 1..4 seed the split points; the rest is the body. The body is fed
// three ways - whole, byte by byte, and in pseudo-random pieces - as the
// host's HTTP client hands over whatever the socket gave it. Findings: a
// crash, a sanitizer report, an exception out of a decoder (the plugin's
// callbacks run on the host's I/O thread, where nothing catches), metadata
// that is not a JSON object, or different outcomes for the same body (text,
// tool calls, reasoning, finish reason, usage, metadata, the Problem).
#include "anthropic_wire.hpp"
#include "openai_wire.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace upstream = swh::cpp::upstream;
namespace provider = swh::cpp::provider;

namespace {

// What a decoder reported. Pieces of one kind that follow each other are
// joined: where a vendor's text is cut is the network's business, not the
// decoder's.
struct Outcome {
    std::vector<std::string> records;
    std::string problem = "-";
    std::string error_message;
    bool operator==(const Outcome &o) const = default;
};

class Recorder : public upstream::Emitter {
  public:
    Recorder(Outcome &out, std::size_t stop_after_text) : out_(out), stop_after_text_(stop_after_text) {}

    bool text(std::string_view piece) override {
        append("text", piece);
        return stop_after_text_ == 0 || ++text_calls_ < stop_after_text_;
    }
    void metadata(std::string_view provider_message_id, std::string_view metadata_json) override {
        const auto parsed = nlohmann::json::parse(metadata_json, nullptr, false);
        if (parsed.is_discarded() || !parsed.is_object()) {
            std::fprintf(stderr, "fuzz_vendor_stream: metadata is not a JSON object: %.*s\n",
                         static_cast<int>(metadata_json.size()), metadata_json.data());
            std::abort();
        }
        out_.records.push_back("metadata\x1f" + std::string(provider_message_id) + '\x1f' + parsed.dump());
        last_kind_.clear();
    }
    bool event(const provider::ReplyEvent &e) override {
        switch (e.type) {
        case SWH_REPLY_TOOL_CALL:
            if (e.id.empty() && e.name.empty() && last_kind_ == "tool" + std::to_string(e.index)) {
                out_.records.back() += e.text;
            } else {
                out_.records.push_back("tool\x1f" + std::to_string(e.index) + '\x1f' + std::string(e.id) +
                                       '\x1f' + std::string(e.name) + '\x1f' + std::string(e.text));
                last_kind_ = "tool" + std::to_string(e.index);
            }
            return true;
        case SWH_REPLY_REASONING:
            append("reasoning", e.text);
            return true;
        case SWH_REPLY_REASONING_SIGNATURE:
            append("signature", e.text);
            return true;
        case SWH_REPLY_USAGE:
            out_.records.push_back("usage\x1f" + std::to_string(e.usage.input_tokens) + ',' +
                                   std::to_string(e.usage.output_tokens) + ',' +
                                   std::to_string(e.usage.cached_input_tokens) + ',' +
                                   std::to_string(e.usage.reasoning_tokens));
            last_kind_.clear();
            return true;
        default:
            out_.records.push_back("event" + std::to_string(e.type) + '\x1f' + std::string(e.text));
            last_kind_.clear();
            return true;
        }
    }

  private:
    void append(const char *kind, std::string_view piece) {
        if (last_kind_ == kind) {
            out_.records.back() += piece;
        } else {
            out_.records.push_back(std::string(kind) + '\x1f' + std::string(piece));
            last_kind_ = kind;
        }
    }

    Outcome &out_;
    std::size_t stop_after_text_, text_calls_ = 0;
    std::string last_kind_;
};

std::unique_ptr<upstream::Decoder> make(bool anthropic, bool stream) {
    if (anthropic) return swh::anthropic::make_decoder(stream, "claude-test", "");
    return swh::openai::make_decoder(stream, "gpt-test");
}

std::string describe(const std::optional<upstream::Problem> &p) {
    return p ? std::to_string(p->status) + ' ' + p->message : "-";
}

// The host stops feeding once the decoder reports a Problem or the client is
// gone, and calls end() only after a body that was read to its end.
template <class NextPiece>
Outcome decode(bool anthropic, bool stream, std::size_t stop_after_text, std::string_view body,
               NextPiece next_piece) {
    Outcome out;
    Recorder recorder(out, stop_after_text);
    auto decoder = make(anthropic, stream);
    try {
        std::size_t pos = 0;
        std::optional<upstream::Problem> problem;
        while (pos < body.size() && !problem) {
            const std::size_t n = next_piece(body.size() - pos);
            problem = decoder->body(body.substr(pos, n), recorder);
            pos += n;
        }
        if (!problem) problem = decoder->end(recorder);
        out.problem = describe(problem);
        out.error_message = make(anthropic, stream)->error_message(400, body);
    } catch (const std::exception &e) {
        std::fprintf(stderr, "fuzz_vendor_stream: a decoder threw: %s\n", e.what());
        std::abort();
    }
    return out;
}

void dump(const char *name, const Outcome &o) {
    std::fprintf(stderr, "%s: problem=%s, %zu records\n", name, o.problem.c_str(), o.records.size());
    for (const auto &r : o.records)
        std::fprintf(stderr, "  [%s]\n", r.c_str());
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 5) return 0;
    const uint8_t mode = data[0];
    const bool anthropic = mode & 1, stream = mode & 2;
    const std::size_t stop_after_text = (mode >> 2) & 3; // 0 = the client stays
    uint32_t seed =
        uint32_t(data[1]) | uint32_t(data[2]) << 8 | uint32_t(data[3]) << 16 | uint32_t(data[4]) << 24;
    const std::string_view body(reinterpret_cast<const char *>(data + 5), size - 5);

    const Outcome whole =
        decode(anthropic, stream, stop_after_text, body, [](std::size_t left) { return left; });
    const Outcome bytes = decode(anthropic, stream, stop_after_text, body, [](std::size_t) { return 1; });
    const Outcome pieces = decode(anthropic, stream, stop_after_text, body, [&](std::size_t left) {
        seed = seed * 1103515245u + 12345u;
        return std::min<std::size_t>(left, 1 + (seed >> 16) % 64);
    });
    if (!(whole == bytes) || !(whole == pieces)) {
        dump("whole", whole);
        dump("bytes", bytes);
        dump("pieces", pieces);
        std::fprintf(stderr, "fuzz_vendor_stream: the same body decoded differently when cut differently\n");
        std::abort();
    }
    return 0;
}
