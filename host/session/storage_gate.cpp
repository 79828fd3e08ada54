#include "session/storage_gate.hpp"

#include "tracing/span.hpp"

#include <spdlog/spdlog.h>

namespace swh {

// One call, shared by its caller and the gate thread that runs it; guarded
// by the gate's mutex.
struct StorageGate::Task {
    std::function<void()> body;
    std::condition_variable done_cv;
    std::exception_ptr error;
    bool started = false, done = false;
    bool abandoned = false; // the caller gave up: drop the result (and the call, if not started)
};

StorageGate::StorageGate(int threads, std::chrono::milliseconds timeout)
    : threads_(threads < 1 ? 1 : threads), timeout_(timeout) {
    pool_.reserve(static_cast<size_t>(threads_));
    for (int i = 0; i < threads_; ++i)
        pool_.emplace_back([this] { serve(); });
}

StorageGate::~StorageGate() {
    {
        std::lock_guard lock(mutex_);
        stopping_ = true;
    }
    work_.notify_all();
    for (auto &t : pool_)
        t.join();
}

StorageGate::Stats StorageGate::stats() const {
    std::lock_guard lock(mutex_);
    return {waiting_, overdue_, timed_out_};
}

// Each storage call of a traced request is a span of that request (the
// caller's wait, queueing in the gate included: what the request paid).
void StorageGate::wait_for(const char *what, std::function<void()> body) {
    if (!tracing::current().active()) return wait_untraced(what, std::move(body));
    tracing::Span span = tracing::start_span(std::string("storage ") + what, tracing::SpanKind::client);
    span.set("db.operation.name", what);
    try {
        wait_untraced(what, std::move(body));
    } catch (const std::exception &e) {
        span.set_error(e.what());
        throw;
    }
}

void StorageGate::wait_untraced(const char *what, std::function<void()> body) {
    auto task = std::make_shared<Task>();
    task->body = std::move(body);
    std::unique_lock lock(mutex_);
    // Every thread holds a call nobody waits for any more: the store is not
    // answering, and a new call would only queue behind them.
    if (overdue_ >= static_cast<uint64_t>(threads_))
        throw ApiError(ErrorKind::Unavailable,
                       "storage is not answering: " + std::to_string(overdue_) +
                           " calls still running past " + std::to_string(timeout_.count()) +
                           " ms (server.storage_timeout_ms); " + what + " not attempted");
    queue_.push_back(task);
    ++waiting_;
    // A gate thread that has just finished a call looks at the queue before
    // it sleeps: wake one only for the calls those will not take. And wake
    // it outside the mutex: woken while we hold it, it would only run into
    // it and sleep again (two thread switches more a call).
    const bool wake = queue_.size() > looking_;
    lock.unlock();
    if (wake) work_.notify_one();
    lock.lock();
    const auto finished = [&task] { return task->done; };
    if (timeout_.count() <= 0)
        task->done_cv.wait(lock, finished);
    else
        task->done_cv.wait_for(lock, timeout_, finished);
    --waiting_;
    if (!task->done) {
        abandon(*task);
        throw ApiError(ErrorKind::Unavailable, "storage did not answer " + std::string(what) + " within " +
                                                   std::to_string(timeout_.count()) +
                                                   " ms (server.storage_timeout_ms)");
    }
    if (task->error) std::rethrow_exception(task->error);
}

// Called with the mutex held, when the deadline passed without an answer.
void StorageGate::abandon(Task &task) {
    task.abandoned = true;
    ++timed_out_;
    if (task.started) ++overdue_; // it holds a gate thread until the plugin returns
}

void StorageGate::serve() {
    std::unique_lock lock(mutex_);
    for (;;) {
        work_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
        if (queue_.empty()) return; // stopping, and nothing left to run
        std::shared_ptr<Task> task = std::move(queue_.front());
        queue_.pop_front();
        if (task->abandoned) continue; // its caller answered 503 already: do not start it late
        task->started = true;
        lock.unlock();
        std::exception_ptr error;
        try {
            task->body();
        } catch (...) {
            error = std::current_exception();
        }
        lock.lock();
        task->error = error;
        task->done = true;
        if (task->abandoned) {
            --overdue_;
            spdlog::warn("storage: a call abandoned after {} ms returned at last ({} still overdue)",
                         timeout_.count(), overdue_);
        }
        // The caller is woken outside the mutex, for the reason given in
        // wait_untraced; `task` keeps its condition variable alive.
        ++looking_;
        lock.unlock();
        task->done_cv.notify_one();
        lock.lock();
        --looking_; // looks (the wait's condition) under this same lock
    }
}

} // namespace swh
