// Type 0, Graphics: ASG, the gfxstream transport (spec asg.md §3, docs/contexts.md#asg). The
// create ping takes ring storage (12288 bytes) and a transfer buffer from the device's ASG
// block pools and lays out the three ring headers and the config; the guest claims and maps
// both. SET_VERSION lets the consumer run: a thread of this context that reads the guest's
// type-1 descriptors and mode-3 large transfers, hands the bytes to a sink (asg_sink.h) and
// writes the sink's replies through from_host_large_xfer. Everything it reads from the shared
// memory is untrusted: what it refuses is counted in DeviceStats::asg_protocol_errors.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <span>
#include <vector>

#include "base/mutex.h"
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
    // The most reply bytes a context holds for a guest that has not read them: past this the
    // consumer takes no input until the guest reads (as a renderer blocks on a full reply
    // ring), so a guest that writes and never reads cannot grow the host's memory. It is what
    // an echo of a 64 MiB mode-3 transfer needs: replies wait until the transfer ends.
    static constexpr size_t kMaxReplyBacklog = size_t{64} << 20;
    // The most a large-transfer read takes at once (so the backlog exceeds its bound by less).
    static constexpr uint32_t kMaxChunk = 256u << 10;

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

    // The consumer (its thread only).
    void run() override;
    // Consumes until the guest is idle (NEED_NOTIFY published, nothing left): true; false
    // once BAR1 is out of reach (stopped) and the thread should end.
    bool consume_until_idle();
    // One unit of work: a descriptor, a large-transfer chunk or a piece of reply. True if it
    // did something (or refused something), false if there was nothing to do.
    Result<bool> step();
    Result<bool> step_type1(uint32_t write_pos, uint32_t read_pos, uint32_t mode);
    Result<bool> step_large(uint32_t write_pos, uint32_t read_pos, uint32_t mode);
    Result<bool> step_reply();
    // Whether any guest input is waiting (the re-check after publishing NEED_NOTIFY).
    Result<bool> has_input();
    // Data in to_host or to_host_large_xfer that the consumer would take now.
    Result<bool> input_pending();
    // A reply is waiting and the guest is not in the middle of a transfer.
    Result<bool> reply_ready();
    // Whether the consumer takes more input: not while kMaxReplyBacklog reply bytes wait.
    bool taking_input() const;
    void deliver(std::span<const std::byte> bytes);
    // Copies `out.size()` bytes of the buffer's view starting at position `pos` (wrapping at
    // the view's end), or into it.
    Result<void> read_view(uint32_t pos, std::span<std::byte> out);
    Result<void> write_view(uint32_t pos, std::span<const std::byte> in);
    Result<uint32_t> load(uint64_t ring_offset) const { return bar1().load32(ring_ + ring_offset); }
    Result<void> store(uint64_t ring_offset, uint32_t value) const {
        return bar1().store32(ring_ + ring_offset, value);
    }
    void protocol_error() { protocol_errors_.fetch_add(1, std::memory_order_relaxed); }
    bool consuming() GF_EXCLUDES(mutex_);

    // Set in start_locked before the thread starts; fixed afterwards.
    uint64_t ring_ = 0;    // BAR1 offset of the ring storage
    uint64_t buffer_ = 0;  // BAR1 offset of the transfer buffer
    bool has_ring_ = false;
    bool has_buffer_ = false;
    const uint32_t buffer_size_;
    const uint32_t step_size_;
    const uint32_t view_mask_;  // largest power of two <= buffer_size_, minus 1
    std::atomic<uint64_t>& protocol_errors_;
    std::atomic<uint64_t>& bytes_in_;   // DeviceStats::asg_bytes_in
    std::atomic<uint64_t>& bytes_out_;  // DeviceStats::asg_bytes_out
    // For perform_locked and stop_locked (the thread's own access is revoked at stop).
    Bar1Access host_access_;

    Mutex mutex_;
    bool consuming_ GF_GUARDED_BY(mutex_) = false;  // SET_VERSION came
    bool stopped_ GF_GUARDED_BY(mutex_) = false;    // stop_locked ran

    // The thread's own.
    std::unique_ptr<AsgSink> sink_;
    std::vector<std::byte> chunk_;  // a large-transfer read
    std::vector<std::byte> type1_;  // a type-1 chunk (one step)
    std::vector<std::byte> reply_;  // not yet written to the guest, from reply_sent_ on
    size_t reply_sent_ = 0;
    unsigned reply_backoff_us_ = 0;
    unsigned reply_full_polls_ = 0;  // since from_host_large_xfer was last not full
};

}  // namespace gf::device
