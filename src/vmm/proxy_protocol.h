// The wire format of QEMU's multi-process protocol (`x-pci-proxy-dev`, docs/vm.md#proxy-protocol):
// a 16-byte header {int32 cmd; 4 bytes padding; uint64 size}, then `size` payload bytes;
// file descriptors travel with the header as SCM_RIGHTS. Everything is little-endian.
//
// This file only encodes and decodes bytes. Both sides use it: the device server, and the
// tests' fake QEMU peer.
#pragma once

#include <array>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>

namespace gf::vmm {

static_assert(std::endian::native == std::endian::little,
              "the protocol is little-endian and decoded with memcpy");

enum class ProxyCommand : int32_t {
    SYNC_SYSMEM = 0,
    RET = 1,
    PCI_CFGWRITE = 2,
    PCI_CFGREAD = 3,
    BAR_WRITE = 4,
    BAR_READ = 5,
    SET_IRQFD = 6,
    DEVICE_RESET = 7,
};

inline constexpr size_t kHeaderSize = 16;
// At most this many fds per message (QEMU's REMOTE_MAX_FDS), and as many RAM slots.
inline constexpr size_t kMaxFds = 8;
inline constexpr size_t kSyncSysmemPayloadSize = 3 * 8 * kMaxFds;  // gpas, sizes, offsets
inline constexpr size_t kRetPayloadSize = 8;
inline constexpr size_t kConfigAccessPayloadSize = 12;
inline constexpr size_t kBarAccessPayloadSize = 24;
// The largest payload of any command; anything bigger is never read.
inline constexpr size_t kMaxPayloadSize = kSyncSysmemPayloadSize;

struct Header {
    int32_t cmd = 0;
    uint64_t size = 0;

    static Header decode(std::span<const std::byte, kHeaderSize> bytes);
    std::array<std::byte, kHeaderSize> encode() const;
};

// The command's name ("BAR_READ"), or "command N" for an unknown one.
std::string command_name(int32_t cmd);

// Why a header cannot start a valid message from QEMU to the device, given how many fds
// came with it; nullopt if it can. Checks the command, the payload size it implies and
// the fd count. RET is refused: the device never asks QEMU anything.
std::optional<std::string> check_header(const Header& header, size_t fd_count);

// SYNC_SYSMEM: slot i describes guest RAM [gpas[i], gpas[i] + sizes[i]) backed by the
// i-th fd at file offset offsets[i]; slots past the fd count are unused.
struct SyncSysmem {
    std::array<uint64_t, kMaxFds> gpas{};
    std::array<uint64_t, kMaxFds> sizes{};
    std::array<int64_t, kMaxFds> offsets{};

    static SyncSysmem decode(std::span<const std::byte, kSyncSysmemPayloadSize> bytes);
    std::array<std::byte, kSyncSysmemPayloadSize> encode() const;
};

// PCI_CFGWRITE / PCI_CFGREAD: `value` is unused for a read.
struct ConfigAccess {
    uint32_t address = 0;
    uint32_t value = 0;
    int32_t length = 0;

    static ConfigAccess decode(std::span<const std::byte, kConfigAccessPayloadSize> bytes);
    std::array<std::byte, kConfigAccessPayloadSize> encode() const;
};

// BAR_WRITE / BAR_READ: an absolute guest-physical (or I/O port) address.
struct BarAccess {
    uint64_t address = 0;
    uint64_t value = 0;
    uint32_t size = 0;
    bool memory = false;

    static BarAccess decode(std::span<const std::byte, kBarAccessPayloadSize> bytes);
    std::array<std::byte, kBarAccessPayloadSize> encode() const;
};

// The payload size each known command must carry.
std::optional<size_t> expected_payload_size(ProxyCommand cmd);

}  // namespace gf::vmm
