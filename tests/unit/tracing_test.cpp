// host/tracing: W3C traceparent parsing and formatting, the span model and
// its context propagation, the OTLP/JSON encoding, the batch exporter's
// bookkeeping against a dead collector, and the manifest's `tracing:`.
#include "manifest/manifest.hpp"
#include "test_support.hpp"
#include "tracing/exporter.hpp"
#include "tracing/otlp_json.hpp"
#include "tracing/span.hpp"
#include "tracing/trace_context.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <catch2/catch.hpp>
#include <chrono>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

using namespace swh::tracing;
using Json = nlohmann::json;
using Lines = std::vector<std::string>;

namespace {

const std::string kValid = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

// A sink that keeps what ends, for checking parent links.
struct Collect : SpanSink {
    std::mutex mutex;
    std::vector<SpanRecord> spans;
    void submit(SpanRecord span) override {
        std::lock_guard lock(mutex);
        spans.push_back(std::move(span));
    }
};

const SpanRecord &named(const std::vector<SpanRecord> &spans, const std::string &name) {
    for (const auto &s : spans)
        if (s.name == name) return s;
    FAIL("no span named " << name);
    return spans.front();
}

} // namespace

TEST_CASE("traceparent: a valid header parses and formats back", "[tracing]") {
    const auto parsed = parse_traceparent(kValid);
    REQUIRE(parsed);
    CHECK(parsed->trace.hex() == "4bf92f3577b34da6a3ce929d0e0e4736");
    CHECK(parsed->span.hex() == "00f067aa0ba902b7");
    CHECK(parsed->sampled);
    CHECK(format_traceparent(*parsed) == kValid);
    const auto unsampled = parse_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00");
    REQUIRE(unsampled);
    CHECK_FALSE(unsampled->sampled);
    CHECK(format_traceparent(*unsampled).substr(53) == "00");
    // Flags other than sampled are kept out of what we send on.
    const auto other_flags = parse_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-03");
    REQUIRE(other_flags);
    CHECK(other_flags->sampled);
    CHECK(format_traceparent(*other_flags) == kValid);
}

TEST_CASE("traceparent: versions", "[tracing]") {
    // A later version may append fields after a '-'; what we know is read.
    const auto future =
        parse_traceparent("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-what-ever");
    REQUIRE(future);
    CHECK(future->trace.hex() == "4bf92f3577b34da6a3ce929d0e0e4736");
    CHECK(parse_traceparent("cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"));
    // Version ff is forbidden; version 00 has no room for more.
    CHECK_FALSE(parse_traceparent("ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"));
    CHECK_FALSE(parse_traceparent(kValid + "-extra"));
    // A later version's extra part must start with '-'.
    CHECK_FALSE(parse_traceparent("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01x"));
}

TEST_CASE("traceparent: invalid headers are ignored", "[tracing]") {
    const std::vector<std::string> bad = {
        "",
        "00",
        kValid.substr(0, 54),                                      // short
        "00-00000000000000000000000000000000-00f067aa0ba902b7-01", // all-zero trace id
        "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01", // all-zero parent id
        "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01", // uppercase hex
        "00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01", // not hex
        "00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", // wrong separator
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0x", // bad flags
        "0-04bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", // one-digit version
    };
    for (const auto &header : bad) {
        INFO(header);
        CHECK_FALSE(parse_traceparent(header));
    }
}

TEST_CASE("trace ids: random, never zero", "[tracing]") {
    const TraceId a = new_trace_id(), b = new_trace_id();
    CHECK(a.valid());
    CHECK(new_span_id().valid());
    CHECK_FALSE(a == b);
    CHECK(a.hex().size() == 32);
    CHECK(new_span_id().hex().size() == 16);
}

TEST_CASE("spans: children of the current span, across threads with bind", "[tracing]") {
    auto sink = std::make_shared<Collect>();
    CHECK_FALSE(current().active());
    CHECK(current_traceparent().empty());
    CHECK_FALSE(start_span("nothing current").active()); // tracing off: nothing happens
    const auto client = parse_traceparent(kValid);
    {
        Span door("door", SpanKind::server, *client, client->sampled, sink);
        ScopedContext scope(door.as_current());
        CHECK(current_traceparent() == format_traceparent(door.context()));
        {
            Span child = start_span("child", SpanKind::client);
            child.set("n", int64_t{7});
            child.set_ok();
        }
        std::function<void()> job = bind([] { Span later = start_span("on another thread"); });
        std::thread(job).join();
    }
    CHECK_FALSE(current().active()); // the scope restored what was
    REQUIRE(sink->spans.size() == 3);
    const auto &door = named(sink->spans, "door");
    CHECK(door.context.trace == client->trace);
    CHECK(door.parent == client->span);
    CHECK(door.kind == SpanKind::server);
    for (const char *name : {"child", "on another thread"}) {
        const auto &span = named(sink->spans, name);
        CHECK(span.context.trace == client->trace);
        CHECK(span.parent == door.context.span);
        CHECK(span.start_ns >= door.start_ns);
        CHECK(span.end_ns >= span.start_ns);
    }
    CHECK(named(sink->spans, "child").status == SpanRecord::Status::ok);
}

TEST_CASE("spans: an unsampled trace records nothing but still propagates", "[tracing]") {
    auto sink = std::make_shared<Collect>();
    auto parent = parse_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00");
    {
        Span door("door", SpanKind::server, *parent, false, sink);
        CHECK(door.active());
        CHECK_FALSE(door.recording());
        ScopedContext scope(door.as_current());
        Span child = start_span("child");
        CHECK(child.active());
        CHECK_FALSE(child.recording());
        const auto sent = parse_traceparent(current_traceparent());
        REQUIRE(sent);
        CHECK(sent->trace == parent->trace);
        CHECK_FALSE(sent->sampled);
    }
    CHECK(sink->spans.empty());
}

TEST_CASE("OTLP/JSON: an ExportTraceServiceRequest as the OTLP JSON mapping says", "[tracing]") {
    SpanRecord span;
    span.name = "chat gpt-x";
    span.kind = SpanKind::client;
    span.context = *parse_traceparent(kValid);
    span.parent = parse_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-1111111111111111-01")->span;
    span.start_ns = 1700000000123456789ull;
    span.end_ns = 1700000000223456789ull;
    span.attributes = {{"gen_ai.request.model", std::string("gpt-x")},
                       {"gen_ai.usage.input_tokens", int64_t{12}},
                       {"gen_ai.request.temperature", 0.5},
                       {"swarmhost.flag", true},
                       {"bad.utf8", std::string("a\xff"
                                                "b")}};
    span.status = SpanRecord::Status::error;
    span.status_message = "upstream 500";
    SpanRecord root;
    root.name = "POST";
    root.kind = SpanKind::server;
    root.context = span.context;
    const Json doc = Json::parse(encode_export_request({"svc", "1.2.3", "swarmhost"}, {span, root}));

    const Json &rs = doc.at("resourceSpans").at(0);
    CHECK(rs.at("resource").at("attributes") ==
          Json::parse(R"([{"key":"service.name","value":{"stringValue":"svc"}},
                          {"key":"service.version","value":{"stringValue":"1.2.3"}}])"));
    const Json &ss = rs.at("scopeSpans").at(0);
    CHECK(ss.at("scope") == Json::parse(R"({"name":"swarmhost","version":"1.2.3"})"));
    const Json &s = ss.at("spans").at(0);
    CHECK(s.at("traceId") == "4bf92f3577b34da6a3ce929d0e0e4736"); // hex, not base64
    CHECK(s.at("spanId") == "00f067aa0ba902b7");
    CHECK(s.at("parentSpanId") == "1111111111111111");
    CHECK(s.at("name") == "chat gpt-x");
    CHECK(s.at("kind") == 3);                                  // SPAN_KIND_CLIENT
    CHECK(s.at("startTimeUnixNano") == "1700000000123456789"); // fixed64 as a string
    CHECK(s.at("endTimeUnixNano") == "1700000000223456789");
    CHECK(s.at("status") == Json::parse(R"({"code":2,"message":"upstream 500"})"));
    const Json &attrs = s.at("attributes");
    CHECK(attrs.at(0) == Json::parse(R"({"key":"gen_ai.request.model","value":{"stringValue":"gpt-x"}})"));
    CHECK(attrs.at(1) == Json::parse(R"({"key":"gen_ai.usage.input_tokens","value":{"intValue":"12"}})"));
    CHECK(attrs.at(2) == Json::parse(R"({"key":"gen_ai.request.temperature","value":{"doubleValue":0.5}})"));
    CHECK(attrs.at(3) == Json::parse(R"({"key":"swarmhost.flag","value":{"boolValue":true}})"));
    CHECK(attrs.at(4).at("value").at("stringValue") == "a\xEF\xBF\xBD"
                                                       "b"); // replaced, still JSON
    const Json &r = ss.at("spans").at(1);
    CHECK_FALSE(r.contains("parentSpanId")); // a root span has none
    CHECK(r.at("kind") == 2);
    CHECK(r.at("status") == Json::parse(R"({"code":0})"));
}

TEST_CASE("exporter: a dead collector and a full queue are counted, never waited on", "[tracing]") {
    // A port that nothing listens on: bound, then closed.
    uint16_t port = 0;
    {
        boost::asio::io_context io;
        boost::asio::ip::tcp::acceptor acceptor(io, {boost::asio::ip::make_address("127.0.0.1"), 0});
        port = acceptor.local_endpoint().port();
    }
    swh::HttpClient http(1);
    ExporterSettings settings;
    settings.endpoint = "http://127.0.0.1:" + std::to_string(port) + "/";
    settings.resource.service_name = "t";
    settings.batch = 2;
    settings.queue = 3;
    settings.flush = std::chrono::milliseconds(50);
    settings.timeout = std::chrono::milliseconds(2000);
    auto exporter = std::make_shared<BatchExporter>(settings, http);
    const auto parent = *parse_traceparent(kValid);
    // Submitted faster than a batch goes out: past `queue` they are dropped.
    for (int i = 0; i < 10; ++i)
        Span("s", SpanKind::internal, parent, true, exporter).end();
    BatchExporter::Stats s = exporter->stats();
    // Ten spans into a queue of three: some were dropped at once (how many
    // depends on how many batches the exporter thread took meanwhile, which
    // a loaded machine decides).
    CHECK(s.dropped_full >= 1);
    // Bounded wait until every span is accounted for: dropped at the queue,
    // or sent and failed (a batch in flight is neither yet).
    auto settled = [&] {
        const auto now = exporter->stats();
        return now.queued == 0 && now.export_failures > 0 && now.dropped_full + now.dropped_failed == 10;
    };
    for (int i = 0; i < 400 && !settled(); ++i)
        std::this_thread::sleep_for(std::chrono::milliseconds(25));
    s = exporter->stats();
    CHECK(s.queued == 0);
    CHECK(s.exported == 0);
    CHECK(s.export_failures >= 1);
    CHECK(s.dropped_full + s.dropped_failed == 10);
    const std::string metrics = exporter->metrics();
    CHECK(metrics.find("swarmhost_trace_spans_dropped_total{reason=\"queue_full\"} " +
                       std::to_string(s.dropped_full)) != std::string::npos);
    CHECK(metrics.find("swarmhost_trace_export_failures_total " + std::to_string(s.export_failures)) !=
          std::string::npos);
}

TEST_CASE("manifest: tracing", "[manifest][tracing]") {
    const std::string required =
        "plugin_dirs: [p]\nstorage: { plugin: sqlite }\nproviders: [ { plugin: echo } ]\n";
    CHECK_FALSE(swh::manifest::parse_manifest(required, "m.yaml").tracing.enabled);
    const auto m = swh::manifest::parse_manifest(
        required +
            "tracing:\n  otlp_endpoint: http://127.0.0.1:4318\n  service_name: gw\n  sample_ratio: 0.25\n"
            "  batch: 64\n  flush_ms: 200\n  queue: 1000\n  timeout_ms: 3000\n"
            "  headers: { x-api-key: abc }\n",
        "m.yaml");
    CHECK(m.tracing.enabled);
    CHECK(m.tracing.otlp_endpoint == "http://127.0.0.1:4318");
    CHECK(m.tracing.service_name == "gw");
    CHECK(m.tracing.sample_ratio == 0.25);
    CHECK(m.tracing.batch == 64);
    CHECK(m.tracing.flush_ms == 200);
    CHECK(m.tracing.queue == 1000);
    CHECK(m.tracing.timeout_ms == 3000);
    CHECK(m.tracing.headers == std::vector<std::pair<std::string, std::string>>{{"x-api-key", "abc"}});

    using swh::test::manifest_errors;
    CHECK(manifest_errors(required + "tracing: { service_name: gw }") ==
          Lines{"m.yaml:4:10: missing required key 'otlp_endpoint' in tracing (the collector's OTLP/HTTP "
                "address, e.g. \"http://127.0.0.1:4318\")"});
    CHECK(
        manifest_errors(required + "tracing: { otlp_endpoint: 127.0.0.1:4318 }") ==
        Lines{
            "m.yaml:4:27: tracing.otlp_endpoint must start with http:// or https://, got '127.0.0.1:4318'"});
    CHECK(manifest_errors(required + "tracing: { otlp_endpoint: http://c, sample_ratio: 2 }") ==
          Lines{"m.yaml:4:51: expected a number from 0 to 1 for 'sample_ratio', got '2'"});
    CHECK(manifest_errors(required + "tracing: { otlp_endpoint: http://c, batch: 0 }") ==
          Lines{"m.yaml:4:44: expected an integer of at least 1 for 'batch', got '0'"});
    CHECK(manifest_errors(required + "tracing: { otlp_endpoint: http://c, endpoint: x }") ==
          Lines{"m.yaml:4:37: unknown key 'endpoint' in tracing (allowed: otlp_endpoint, service_name, "
                "sample_ratio, batch, flush_ms, queue, timeout_ms, headers)"});
    CHECK(manifest_errors(required + "tracing: { otlp_endpoint: http://c, sample_ration: 1 }") ==
          Lines{"m.yaml:4:37: unknown key 'sample_ration' in tracing; did you mean 'sample_ratio'?"});
    CHECK(manifest_errors(required + "tracing: { otlp_endpoint: http://c, headers: { \"a b\": x } }") ==
          Lines{"m.yaml:4:48: expected an HTTP header name in tracing.headers, got the quoted string 'a b'"});
    CHECK(
        manifest_errors(required + "tracing: [ http://c ]") ==
        Lines{"m.yaml:4:10: expected a map like { otlp_endpoint: \"http://127.0.0.1:4318\" } for 'tracing', "
              "got a list"});
}
