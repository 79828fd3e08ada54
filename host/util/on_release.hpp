// A handle that runs an action when its last copy is released: for work that
// must follow something whose end is decided elsewhere (a send answered once
// its events have been handed on, on whichever thread lets go last).
#pragma once

#include <functional>
#include <memory>

#include <spdlog/spdlog.h>

namespace swh {

namespace detail {
struct ReleaseAction {
    std::function<void()> action;
    ReleaseAction(const ReleaseAction &) = delete;
    ReleaseAction &operator=(const ReleaseAction &) = delete;
    explicit ReleaseAction(std::function<void()> a) : action(std::move(a)) {}
    // It runs in a destructor, perhaps while a stack unwinds: nothing may
    // escape.
    ~ReleaseAction() {
        try {
            if (action) action();
        } catch (const std::exception &e) {
            spdlog::error("deferred action failed: {}", e.what());
        } catch (...) {
            spdlog::error("deferred action failed");
        }
    }
};
} // namespace detail

inline std::shared_ptr<void> on_release(std::function<void()> action) {
    return std::make_shared<detail::ReleaseAction>(std::move(action));
}

} // namespace swh
