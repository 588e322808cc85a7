// The 40-byte ping struct at the start of a handle's ping page, as the host reads it
// (docs/device.md#ping-page): little-endian, copied in and out so the guest cannot change it
// while a context works on it.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>

namespace gf::device {

struct PingInfo {
    uint64_t phys_addr = 0;  // a GPA: the kernel adds BAR1's base to the user's offset
    uint64_t size = 0;
    uint64_t metadata = 0;  // in: type or command; out: result
    uint64_t wait_phys_addr = 0;
    uint32_t wait_flags = 0;
    uint32_t direction = 0;

    static constexpr size_t kSize = 40;
    using Bytes = std::array<std::byte, kSize>;

    static PingInfo decode(const Bytes& bytes);
    Bytes encode() const;
};

// `metadata` for "done".
inline constexpr uint64_t kPingOk = 0;

}  // namespace gf::device
