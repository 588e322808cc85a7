// The ASG (context type 0) shared layout and commands both sides agree on: the ring storage's
// three ring headers, the host state word and the config, the type-1 descriptor, and the
// commands a guest sends in a ping's metadata (spec asg.md §3.1-3.4, docs/contexts.md#asg).
// Offsets are in the ring storage, all fields little-endian u32.
#pragma once

#include <cstdint>

namespace gf::hw::asg {

inline constexpr uint64_t kRingStorageSize = 12288;
// The three ring headers (struct ring_buffer).
inline constexpr uint64_t kToHost = 0;                // guest -> host, descriptors in its buf[]
inline constexpr uint64_t kToHostLargeXfer = 4096;    // guest -> host, data in the buffer
inline constexpr uint64_t kFromHostLargeXfer = 8192;  // host -> guest, data in the buffer
// Fields of a ring header, relative to its start.
inline constexpr uint64_t kHostVersion = 0;
inline constexpr uint64_t kGuestVersion = 4;
inline constexpr uint64_t kWritePos = 8;
inline constexpr uint64_t kReadPos = 64;
inline constexpr uint64_t kReadLiveCount = 68;  // diagnostics, zeroed by ring_buffer_init
inline constexpr uint64_t kReadYieldCount = 72;
inline constexpr uint64_t kReadSleepUsCount = 76;
inline constexpr uint64_t kBuf = 128;
inline constexpr uint32_t kBufSize = 2048;  // to_host's own buf[]
inline constexpr uint64_t kState = 2176;    // to_host's: the host state (every header has one)
// The config (struct asg_ring_config), in to_host.
inline constexpr uint64_t kBufferSize = 2180;
inline constexpr uint64_t kFlushInterval = 2184;
inline constexpr uint64_t kHostConsumedPos = 2188;
inline constexpr uint64_t kGuestWritePos = 2192;
inline constexpr uint64_t kTransferMode = 2196;
inline constexpr uint64_t kTransferSize = 2200;
inline constexpr uint64_t kInError = 2204;

// The host state at kState.
enum State : uint32_t { NeedNotify = 0, CanConsume = 1, Exit = 2, Error = 3, Rendering = 4 };
// transfer_mode: 1 type-1 descriptors, 2 physical-address descriptors (refused), 3 large.
inline constexpr uint32_t kModeDescriptors = 1;
inline constexpr uint32_t kModePhysical = 2;
inline constexpr uint32_t kModeLarge = 3;
// Commands: a ping's metadata on a created type-0 handle.
enum Command : uint64_t {
    GetRing = 0,
    GetBuffer = 1,
    SetVersion = 2,
    NotifyAvailable = 3,
    GetConfig = 4,
};
inline constexpr uint64_t kHostVersionNumber = 1;
inline constexpr uint32_t kType1DescriptorSize = 8;  // {u32 offset, u32 size}

}  // namespace gf::hw::asg
