// Type 0, Graphics: ASG, the gfxstream transport (spec asg.md §3, docs/contexts.md#asg). The
// create ping takes ring storage (12288 bytes) and a transfer buffer from the device's ASG
// block pools and lays out the three ring headers and the config; the guest claims and maps
// both. SET_VERSION lets the consumer run: a thread of this context that steps an AsgConsumer
// (asg_consumer.h: the guest's type-1 descriptors and large transfers into a sink, the sink's
// replies back through from_host_large_xfer) at the pace AsgPacing sets, sleeping until a ping
// only when the guest owes it nothing.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>

#include "base/mutex.h"
#include "device/asg_consumer.h"
#include "device/asg_sink.h"
#include "device/async_context.h"
#include "device/bar1_access.h"
#include "hw/asg_layout.h"

namespace gf::device {

// The shared layout and commands (hw/asg_layout.h), by their short names in the device.
namespace asg {
using namespace hw::asg;
}  // namespace asg

class AsgContext final : public AsyncContext {
  public:
    static Result<std::unique_ptr<Context>> create(const ContextParams& params);

    hw::ContextType type() const override { return hw::ContextType::Graphics; }
    // Takes the ring storage and the buffer, lays them out, then starts the thread.
    Result<void> start_locked() override GF_REQUIRES(device_lock());
    void perform_locked(PingInfo& info) override GF_REQUIRES(device_lock());
    std::map<uint64_t, uint64_t> allocations_locked() const override GF_REQUIRES(device_lock());
    // Revokes the thread's BAR1 access and stops it, then sets EXIT in the shared state.
    void stop_locked() override GF_REQUIRES(device_lock());
    // Gives the ring storage and the buffer back to the pools (an empty block goes).
    void release_locked() override GF_REQUIRES(device_lock());

  private:
    AsgContext(DeviceServices& services, std::unique_ptr<AsgSink> sink);

    void free_memory_locked() GF_REQUIRES(device_lock());
    // The host's part of the config: at create, SET_VERSION and GET_CONFIG.
    void write_host_config_locked(bool initial) GF_REQUIRES(device_lock());

    // The consumer's thread: steps the consumer as AsgPacing says.
    void run() override;
    // Consumes until the guest is idle (NEED_NOTIFY published, nothing left): true; false
    // once BAR1 is out of reach (stopped) and the thread should end.
    bool consume_until_idle();
    bool consuming() GF_EXCLUDES(mutex_);

    // Set in start_locked before the thread starts; fixed afterwards.
    uint64_t ring_ = 0;    // BAR1 offset of the ring storage
    uint64_t buffer_ = 0;  // BAR1 offset of the transfer buffer
    bool has_ring_ = false;
    bool has_buffer_ = false;
    const uint32_t buffer_size_;
    const uint32_t step_size_;
    // For perform_locked and stop_locked (the thread's own access is revoked at stop).
    Bar1Access host_access_;

    Mutex mutex_;
    bool consuming_ GF_GUARDED_BY(mutex_) = false;  // SET_VERSION came
    bool stopped_ GF_GUARDED_BY(mutex_) = false;    // stop_locked ran

    // The thread's own (the consumer is made in start_locked, before the thread starts).
    std::unique_ptr<AsgSink> sink_;
    std::optional<AsgConsumer> consumer_;
};

}  // namespace gf::device
