#include "util/logging.hpp"

#include "util/clock.hpp"

#include <cstdio>
#include <mutex>
#include <nlohmann/json.hpp>
#include <spdlog/sinks/base_sink.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

namespace swh {

namespace {

// One JSON object per line; nlohmann does the escaping of messages.
class JsonLinesSink : public spdlog::sinks::base_sink<std::mutex> {
  protected:
    void sink_it_(const spdlog::details::log_msg &msg) override {
        const auto micros =
            std::chrono::duration_cast<std::chrono::microseconds>(msg.time.time_since_epoch()).count();
        nlohmann::json line = {{"time", format_iso8601(micros)},
                               {"level", spdlog::level::to_string_view(msg.level).data()},
                               {"msg", std::string(msg.payload.data(), msg.payload.size())}};
        const std::string text = line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
        std::fwrite(text.data(), 1, text.size(), stderr);
    }
    void flush_() override { std::fflush(stderr); }
};

} // namespace

void setup_logging(bool json, const std::string &level) {
    std::shared_ptr<spdlog::logger> logger;
    if (json)
        logger = std::make_shared<spdlog::logger>("swarmhost", std::make_shared<JsonLinesSink>());
    else
        logger = std::make_shared<spdlog::logger>("swarmhost",
                                                  std::make_shared<spdlog::sinks::stderr_color_sink_mt>());
    logger->set_level(spdlog::level::from_str(level));
    logger->flush_on(spdlog::level::info);
    if (!json) logger->set_pattern("%Y-%m-%dT%H:%M:%S.%f %^%l%$ %v");
    spdlog::set_default_logger(std::move(logger));
}

} // namespace swh
