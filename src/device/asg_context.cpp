#include "device/asg_context.h"

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <thread>

#include "base/checked.h"
#include "base/page.h"
#include "base/scope_guard.h"
#include "device/asg_block_pool.h"
#include "device/registers.h"

namespace gf::device {
using namespace asg;

Result<std::unique_ptr<Context>> AsgContext::create(const ContextParams& params) {
    const DeviceConfig& config = params.services.config();
    AsgSinkFactory factory = config.asg_sink_factory;
    if (!factory) {
        factory = GF_TRY(builtin_asg_sink(config.asg_sink));
    }
    std::unique_ptr<AsgSink> sink = factory();
    if (!sink) {
        return fail(EINVAL);
    }
    return std::unique_ptr<Context>(new AsgContext(params.services, std::move(sink)));
}

AsgContext::AsgContext(DeviceServices& services, std::unique_ptr<AsgSink> sink)
    : AsyncContext(services),
      buffer_size_(services.config().asg_buffer_size),
      step_size_(services.config().asg_write_step),
      host_access_(services.bar1_memory()),
      sink_(std::move(sink)) {}

Result<void> AsgContext::start_locked() {
    ScopeGuard undo([&] {
        device_lock().assert_held();  // the guard runs inside this function
        free_memory_locked();
    });
    // Ring first, then buffer: the emulator's order, which places the first ring block at
    // the top of BAR1 and the first buffer block right below it.
    AsgPools& pools = services_.asg_pools_locked();
    ring_ = GF_TRY(pools.rings.allocate_locked(kRingStorageSize, services_));
    has_ring_ = true;
    buffer_ = GF_TRY(pools.buffers.allocate_locked(buffer_size_, services_));
    has_buffer_ = true;
    // ring_buffer_init of each header (the memory is zero: positions and state 0).
    for (uint64_t header : {kToHost, kToHostLargeXfer, kFromHostLargeXfer}) {
        (void)host_access_.store32(ring_ + header + kHostVersion, 1);
    }
    write_host_config_locked(/*initial=*/true);
    consumer_.emplace(bar1(), AsgStreamLayout{ring_, buffer_, buffer_size_, step_size_}, *sink_,
                      AsgCounters{services_.asg_protocol_errors(), services_.asg_bytes_in(),
                                  services_.asg_bytes_out(), services_.asg_reply_refused()});
    GF_TRY(AsyncContext::start_locked());
    undo.dismiss();
    return {};
}

void AsgContext::write_host_config_locked(bool initial) {
    (void)host_access_.store32(ring_ + kBufferSize, buffer_size_);
    (void)host_access_.store32(ring_ + kFlushInterval, step_size_);
    if (initial) {
        for (uint64_t field : {kHostConsumedPos, kGuestWritePos, kTransferSize, kInError}) {
            (void)host_access_.store32(ring_ + field, 0);
        }
        (void)host_access_.store32(ring_ + kTransferMode, 1);
    }
}

void AsgContext::perform_locked(PingInfo& info) {
    switch (info.metadata) {
        case GetRing:
            info.metadata = ring_;
            info.size = kRingStorageSize;
            break;
        case GetBuffer:
            info.metadata = buffer_;
            info.size = buffer_size_;
            break;
        case SetVersion: {
            // Idempotent: a second one re-asserts the config and wakes the one consumer.
            info.size = std::min(info.size, kHostVersionNumber);
            write_host_config_locked(/*initial=*/false);
            {
                MutexLock lock(mutex_);
                consuming_ = true;
                if (!stopped_) {
                    // The consumer exists and will look at the rings (it then says RENDERING).
                    (void)host_access_.store32(ring_ + kState, CanConsume);
                }
            }
            wake();
            break;
        }
        case NotifyAvailable: {
            // The consumer will look at the rings before it sleeps again, so the guest may
            // skip its ping at the end of this write (it skips it on RENDERING only).
            MutexLock lock(mutex_);
            if (consuming_ && !stopped_) {
                (void)host_access_.store32(ring_ + kState, Rendering);
            }
            wake();  // coalesces; never blocks
            info.metadata = kPingOk;
            break;
        }
        case GetConfig:
            write_host_config_locked(/*initial=*/false);
            info.metadata = kPingOk;
            break;
        default:
            break;  // the struct goes back as it came
    }
}

std::map<uint64_t, uint64_t> AsgContext::allocations_locked() const {
    std::map<uint64_t, uint64_t> out;
    if (has_ring_) {
        out.emplace(ring_, kRingStorageSize);
    }
    if (has_buffer_) {
        out.emplace(buffer_, round_up_to_page(buffer_size_, services_.host_page_size()).value());
    }
    return out;
}

void AsgContext::stop_locked() {
    {
        MutexLock lock(mutex_);
        stopped_ = true;  // no ping writes the state from here on
    }
    AsyncContext::stop_locked();  // the thread cannot write the state any more
    if (has_ring_) {
        (void)host_access_.store32(ring_ + kState, Exit);
    }
}

void AsgContext::release_locked() {
    free_memory_locked();
}

void AsgContext::free_memory_locked() {
    AsgPools& pools = services_.asg_pools_locked();
    if (has_buffer_) {
        pools.buffers.free_locked(buffer_, services_);
        has_buffer_ = false;
    }
    if (has_ring_) {
        pools.rings.free_locked(ring_, services_);
        has_ring_ = false;
    }
}

bool AsgContext::consuming() {
    MutexLock lock(mutex_);
    return consuming_;
}

// --- The consumer ----------------------------------------------------------------------

void AsgContext::run() {
    while (wait_for_work()) {
        if (!consuming()) {
            continue;  // a notify before SET_VERSION
        }
        if (!consume_until_idle()) {
            return;
        }
    }
}

bool AsgContext::consume_until_idle() {
    // RENDERING for as long as the consumer is awake: it looks at the rings again before it
    // sleeps (the re-check below), so a guest needs no ping, and the reference guest pings
    // after every write unless it reads RENDERING (docs/contexts.md#asg-host-state).
    AsgConsumer& consumer = *consumer_;
    if (!consumer.publish(Rendering)) {
        return false;
    }
    AsgPacing pacing;
    while (!stop_requested()) {
        Result<AsgConsumer::Outcome> outcome = consumer.step();
        if (!outcome) {
            return false;  // revoked (stopping) or not backed: BAR1 is out of reach
        }
        const AsgPacing::Action action = pacing.next(*outcome);
        switch (action.kind) {
            case AsgPacing::Action::kStep:
                continue;
            case AsgPacing::Action::kYield:
                std::this_thread::yield();
                continue;
            case AsgPacing::Action::kSleep:
            case AsgPacing::Action::kPause:
                break;
        }
        // NEED_NOTIFY, then one more step: a guest that saw RENDERING just before the store
        // pushed data without pinging (the reference lacks this re-check). A guest that
        // pushes after it sees NEED_NOTIFY pings.
        if (!consumer.publish(NeedNotify)) {
            return false;
        }
        Result<AsgConsumer::Outcome> again = consumer.step();
        if (!again) {
            return false;
        }
        if (*again == AsgConsumer::Outcome::kIdle && action.kind == AsgPacing::Action::kSleep) {
            return true;  // sleep until a ping
        }
        if (*again == AsgConsumer::Outcome::kProgress) {
            (void)pacing.next(*again);  // back to looking after every yield
        } else {
            // Owed something (or just idle again): a pause that a ping ends.
            (void)wait_for_work_until(std::chrono::steady_clock::now() + action.pause);
        }
        if (!consumer.publish(Rendering)) {
            return false;
        }
    }
    return true;  // the stop request ends the thread at its next wait
}

}  // namespace gf::device
