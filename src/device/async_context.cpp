#include "device/async_context.h"

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <system_error>

namespace gf::device {

AsyncContext::AsyncContext(DeviceServices& services)
    : Context(services), bar1_(services.bar1_memory()) {}

AsyncContext::~AsyncContext() {
    if (!thread_.joinable()) {
        return;  // never started, joined by wait_stopped, or abandoned
    }
    bool finished = false;
    {
        MutexLock lock(handshake_);
        finished = finished_;
    }
    if (!finished) {
        // run() may be using the subclass, already destroyed: no way to go on soundly.
        std::fprintf(stderr, "goldfish: a context was destroyed while its thread runs\n");
        std::abort();
    }
    thread_.join();  // it returned from run(); what is left of thread_main uses only this base
}

Result<void> AsyncContext::start_locked() {
    try {
        thread_ = std::thread([this] { thread_main(); });
    } catch (const std::system_error& error) {
        return fail(error.code().value() != 0 ? error.code().value() : EAGAIN);
    }
    return {};
}

void AsyncContext::stop_locked() {
    // First: once this returns the thread cannot reach BAR1, so the device may release the
    // memory right away, before the thread has noticed the stop.
    bar1_.revoke();
    {
        MutexLock lock(handshake_);
        stop_ = true;
    }
    changed_.notify_all();
}

bool AsyncContext::wait_stopped(std::chrono::steady_clock::time_point deadline) {
    if (!thread_.joinable()) {
        return true;
    }
    {
        MutexLock lock(handshake_);
        while (!finished_) {
            if (!changed_.wait_until(handshake_, deadline) && !finished_) {
                return false;
            }
        }
    }
    thread_.join();  // it has returned from run(): this is immediate
    return true;
}

void AsyncContext::abandon() {
    if (thread_.joinable()) {
        thread_.detach();
    }
}

void AsyncContext::wake() {
    {
        MutexLock lock(handshake_);
        work_pending_ = true;
    }
    changed_.notify_all();
}

bool AsyncContext::wait_for_work() {
    MutexLock lock(handshake_);
    while (!work_pending_ && !stop_) {
        changed_.wait(handshake_);
    }
    work_pending_ = false;
    return !stop_;
}

bool AsyncContext::wait_for_work_until(std::chrono::steady_clock::time_point deadline) {
    MutexLock lock(handshake_);
    while (!work_pending_ && !stop_) {
        if (!changed_.wait_until(handshake_, deadline)) {
            break;
        }
    }
    work_pending_ = false;
    return !stop_;
}

bool AsyncContext::stop_requested() {
    MutexLock lock(handshake_);
    return stop_;
}

void AsyncContext::thread_main() {
    run();
    MutexLock lock(handshake_);
    finished_ = true;
    changed_.notify_all();
}

}  // namespace gf::device
