// A handle's context ("subdevice"): created by the first ping on a handle with
// metadata = type, then given every later ping (docs/contexts.md#creating-a-context). New types
// plug in here and in the registry (context_registry.h), without touching the register code.
//
// Locking. The device calls every `_locked` method with its lock held, and the compiler
// checks it: they require device_lock(), the lock of the DeviceServices the context was
// made with, which is the one lock of the device.
//
// Ending. When DESTROY_HANDLE, reset or the device's destruction ends a handle, the device
//   1. calls stop_locked(), right after the handle left the table: it must not block;
//   2. calls release_locked() in the same hold of its lock: the context gives back all it
//      holds, so the books never show a handle gone and its memory still held;
//   3. unlocks and hands it to its reaper (context_reaper.h), which calls
//      wait_stopped(deadline) (config: context_stop_timeout) on a thread of its own, so that
//      the register write that ended it never waits for a context's thread;
//   4. the reaper destroys the context, without any device lock, once wait_stopped returned
//      true; never before. One whose thread is still running when the device ends is leaked
//      (abandon()), with its thread left running.
// A synchronous context (types 5 and 6) does all its work in perform_locked and needs only 2.
//
// The rule for a context that works on its own thread (ASG's consumer; use AsyncContext,
// async_context.h, which implements the mechanism):
//   - The thread never takes the device lock and calls nothing `_locked`: DESTROY_HANDLE
//     and reset wait for it, so a thread that waited for the device lock could deadlock them.
//   - It reaches BAR1 only through its Bar1Access, which holds BAR1's layout lock (not the
//     device lock) for the duration of one access. Everything it reads there is untrusted
//     guest input: check every offset, size and index before use.
//   - It sleeps when idle; perform_locked wakes it (wake() never blocks under the device lock).
//   - It stops within the bound: stop_locked revokes its Bar1Access (after which none of its
//     accesses is in flight and all fail) and asks it to stop; it checks between steps and
//     returns. One that overruns the bound cannot touch BAR1 any more; the reaper destroys
//     it once it returns, or leaks it at the device's end.
//   - State it shares with perform_locked is the context's own, under the context's own lock,
//     held briefly; the device's books are not its business.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>

#include "base/mutex.h"
#include "base/result.h"
#include "device/device_services.h"
#include "device/ping_info.h"
#include "hw/context_types.h"

namespace gf::device {

struct ContextParams {
    uint32_t handle = 0;
    // The device that owns the context; it outlives the context.
    DeviceServices& services;
};

class Context {
  public:
    virtual ~Context();
    Context(const Context&) = delete;
    Context& operator=(const Context&) = delete;

    virtual hw::ContextType type() const = 0;
    // The device's lock, which every `_locked` method requires.
    Mutex& device_lock() const GF_RETURN_CAPABILITY(services_.device_lock()) {
        return services_.device_lock();
    }

    // Once, right after creation, before any ping: a context with a thread starts it here.
    // A failure fails the create ping.
    virtual Result<void> start_locked() GF_REQUIRES(device_lock());
    // Runs one ping: the request is in info; results go back into it (metadata, ~0 on failure).
    virtual void perform_locked(PingInfo& info) GF_REQUIRES(device_lock()) = 0;
    // The guest deallocated the block under this context's mapping at `offset`: forget it.
    // The device removes the mapping itself.
    virtual void on_block_deallocated_locked(uint64_t offset) GF_REQUIRES(device_lock());
    // What the context holds, BAR1 offset -> size (for the device's books).
    virtual std::map<uint64_t, uint64_t> allocations_locked() const GF_REQUIRES(device_lock());

    // Ending, steps 1-3 above.
    virtual void stop_locked() GF_REQUIRES(device_lock());
    virtual void release_locked() GF_REQUIRES(device_lock());
    // True once the context's thread (if any) has finished; false if `deadline` came first.
    virtual bool wait_stopped(std::chrono::steady_clock::time_point deadline)
        GF_EXCLUDES(device_lock());
    // The context is being leaked with its thread still running (the device's end): the
    // thread is left to itself. The object is never destroyed afterwards.
    virtual void abandon();

  protected:
    explicit Context(DeviceServices& services) : services_(services) {}

    DeviceServices& services_;
};

// The analysis cannot see that a context's device lock is the lock its device holds (the
// context reaches it through its DeviceServices); this says so, and checks it.
void assume_device_lock_held(const Context& context, const DeviceServices& services)
    GF_REQUIRES(services.device_lock()) GF_ASSERT_CAPABILITY(context.device_lock());

}  // namespace gf::device
