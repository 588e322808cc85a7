// The mechanism for a context that works on its own host thread (the rule is in context.h):
// a worker thread, a wake-up from perform_locked, and a stop that DESTROY_HANDLE, reset and
// the device's destruction trigger and wait for within a bound. A subclass writes run() and
// calls wake() from perform_locked(); the device does the rest through the Context interface.
#pragma once

#include <chrono>
#include <thread>

#include "base/mutex.h"
#include "base/result.h"
#include "device/bar1_access.h"
#include "device/context.h"

namespace gf::device {

class AsyncContext : public Context {
  public:
    // Its owner destroys it only once wait_stopped() returned true: run() may use the
    // subclass, which is gone by the time this runs. A context whose thread may still run
    // is never destroyed (the process aborts rather than let it run on freed memory).
    ~AsyncContext() override;

    // Starts the thread.
    Result<void> start_locked() override GF_REQUIRES(device_lock());
    // Revokes BAR1 access, then asks the thread to stop; waits only for a BAR1 access in
    // flight. Subclasses that override it call it first.
    void stop_locked() override GF_REQUIRES(device_lock());
    bool wait_stopped(std::chrono::steady_clock::time_point deadline) override
        GF_EXCLUDES(device_lock());
    // Detaches the thread: it runs on in the leaked context.
    void abandon() override;

  protected:
    explicit AsyncContext(DeviceServices& services);

    // The thread's body, typically `while (wait_for_work()) { ...bar1()... }`. Returns soon
    // after stop_requested() becomes true. Runs without the device lock, and never takes it.
    virtual void run() = 0;

    // There is work: the thread leaves (or skips) its next wait_for_work(). From perform_locked;
    // never blocks (it takes this context's handshake lock, which nobody holds for long).
    void wake() GF_EXCLUDES(handshake_);
    // On the thread: sleeps until wake() (true; several wakes may come as one) or a stop
    // request (false).
    bool wait_for_work() GF_EXCLUDES(handshake_);
    // As wait_for_work(), but also returns (true) once `deadline` has passed; a wake() that
    // came meanwhile is taken.
    bool wait_for_work_until(std::chrono::steady_clock::time_point deadline)
        GF_EXCLUDES(handshake_);
    // On the thread, between steps of a long job.
    bool stop_requested() GF_EXCLUDES(handshake_);

    // BAR1, for the thread.
    const Bar1Access& bar1() const { return bar1_; }

  private:
    void thread_main() GF_EXCLUDES(handshake_);

    Bar1Access bar1_;
    Mutex handshake_;
    CondVar changed_;  // work_pending_, stop_ or finished_
    bool work_pending_ GF_GUARDED_BY(handshake_) = false;
    bool stop_ GF_GUARDED_BY(handshake_) = false;
    bool finished_ GF_GUARDED_BY(handshake_) = false;
    // Started under the device lock; joined by wait_stopped once run() returned, or detached
    // by abandon().
    std::thread thread_;
};

}  // namespace gf::device
