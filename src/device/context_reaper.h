// Where ended contexts go to finish (context.h, steps 3 and 4): a thread of the device's that
// waits for each context's own thread within config.context_stop_timeout and destroys the
// context once its thread has returned, without any lock a guest's register access needs.
// DESTROY_HANDLE thus returns once the context is stopped (no BAR1 access) and its memory
// released; a slow or wedged sink delays nobody but its own context's destruction.
//
// A context whose thread overruns the bound is kept (a straggler: logged once, counted in
// DeviceStats::stalled_contexts) and destroyed once its thread returns; never before. At the
// device's end, shut_down waits for everything within one bound and leaks what is still
// running (the context and its thread, logged and counted): the daemon stops within its
// bound even with a wedged sink.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <deque>
#include <memory>
#include <thread>
#include <vector>

#include "base/mutex.h"
#include "base/result.h"
#include "device/context.h"

namespace gf::device {

class ContextReaper {
  public:
    using Clock = std::chrono::steady_clock;

    // Starts the thread; EAGAIN (or the system's errno) if it cannot.
    static Result<std::unique_ptr<ContextReaper>> create(std::chrono::milliseconds bound);
    // Requires shut_down() first.
    ~ContextReaper();
    ContextReaper(const ContextReaper&) = delete;
    ContextReaper& operator=(const ContextReaper&) = delete;

    // Contexts that ended (stop_locked and release_locked ran): each has the bound from now.
    // Never blocks on a context.
    void adopt(std::vector<std::unique_ptr<Context>> ended) GF_EXCLUDES(mutex_);
    // Waits for `ended` here, within the bound, destroying those that stop; the others go to
    // the reaper's thread as stragglers.
    void finish_now(std::vector<std::unique_ptr<Context>> ended) GF_EXCLUDES(mutex_);
    // Ended contexts whose threads overran the bound and still run.
    size_t stalled() const GF_EXCLUDES(mutex_);

    // Stops the thread and waits for every context it holds until `deadline`; destroys those
    // that stopped and leaks the others (Context::abandon), returning how many. Once.
    size_t shut_down(Clock::time_point deadline) GF_EXCLUDES(mutex_);

    // Contexts left running at a device's end, in this process (each also logged).
    static uint64_t abandoned_total();

  private:
    struct Pending {
        std::unique_ptr<Context> context;
        Clock::time_point deadline;
    };
    explicit ContextReaper(std::chrono::milliseconds bound) : bound_(bound) {}

    void run() GF_EXCLUDES(mutex_);
    // Destroys the stragglers whose threads have returned (without waiting for any).
    void collect_stopped_stragglers() GF_EXCLUDES(mutex_);
    static void log_overrun(const Context& context, std::chrono::milliseconds bound);

    const std::chrono::milliseconds bound_;
    mutable Mutex mutex_;
    CondVar changed_;  // queue_ or stop_
    std::deque<Pending> queue_ GF_GUARDED_BY(mutex_);
    std::vector<std::unique_ptr<Context>> stragglers_ GF_GUARDED_BY(mutex_);
    bool stop_ GF_GUARDED_BY(mutex_) = false;
    std::thread thread_;
    static std::atomic<uint64_t> abandoned_;
};

}  // namespace gf::device
