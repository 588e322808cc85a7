#include "vmm/proxy_protocol.h"

#include <cstring>

namespace gf::vmm {
namespace {

template <typename T>
T load(std::span<const std::byte> bytes, size_t offset) {
    T value;
    // Callers pass fixed-size spans; every offset + sizeof(T) is within them by layout.
    std::memcpy(&value, bytes.data() + offset, sizeof(T));
    return value;
}

template <typename T>
void store(std::span<std::byte> bytes, size_t offset, T value) {
    std::memcpy(bytes.data() + offset, &value, sizeof(T));
}

bool is_known(int32_t cmd) {
    return cmd >= static_cast<int32_t>(ProxyCommand::SYNC_SYSMEM) &&
           cmd <= static_cast<int32_t>(ProxyCommand::DEVICE_RESET);
}

}  // namespace

Header Header::decode(std::span<const std::byte, kHeaderSize> bytes) {
    // Bytes 4..7 are padding in QEMU's struct layout and carry nothing.
    return Header{load<int32_t>(bytes, 0), load<uint64_t>(bytes, 8)};
}

std::array<std::byte, kHeaderSize> Header::encode() const {
    std::array<std::byte, kHeaderSize> bytes{};
    store(std::span(bytes), 0, cmd);
    store(std::span(bytes), 8, size);
    return bytes;
}

std::string command_name(int32_t cmd) {
    static constexpr const char* kNames[] = {"SYNC_SYSMEM", "RET",         "PCI_CFGWRITE",
                                             "PCI_CFGREAD", "BAR_WRITE",   "BAR_READ",
                                             "SET_IRQFD",   "DEVICE_RESET"};
    if (is_known(cmd)) {
        return kNames[cmd];
    }
    return "command " + std::to_string(cmd);
}

std::optional<size_t> expected_payload_size(ProxyCommand cmd) {
    switch (cmd) {
        case ProxyCommand::SYNC_SYSMEM:
            return kSyncSysmemPayloadSize;
        case ProxyCommand::RET:
            return kRetPayloadSize;
        case ProxyCommand::PCI_CFGWRITE:
        case ProxyCommand::PCI_CFGREAD:
            return kConfigAccessPayloadSize;
        case ProxyCommand::BAR_WRITE:
        case ProxyCommand::BAR_READ:
            return kBarAccessPayloadSize;
        case ProxyCommand::SET_IRQFD:
        case ProxyCommand::DEVICE_RESET:
            return 0;
    }
    return std::nullopt;
}

std::optional<std::string> check_header(const Header& header, size_t fd_count) {
    if (!is_known(header.cmd)) {
        return "unknown " + command_name(header.cmd);
    }
    const auto cmd = static_cast<ProxyCommand>(header.cmd);
    const std::string name = command_name(header.cmd);
    if (cmd == ProxyCommand::RET) {
        return "unexpected RET: the device never sends requests";
    }
    // Checked before anything else about the size: such a payload is never read.
    if (header.size > kMaxPayloadSize) {
        return name + " with an absurd payload size " + std::to_string(header.size) +
               " (no message is larger than " + std::to_string(kMaxPayloadSize) + ")";
    }
    const size_t expected = *expected_payload_size(cmd);
    if (header.size != expected) {
        return name + " with a " + std::to_string(header.size) + "-byte payload (expected " +
               std::to_string(expected) + ")";
    }
    const auto fd_error = [&](const char* want) {
        return name + " with " + std::to_string(fd_count) + " fds (expected " + want + ")";
    };
    switch (cmd) {
        case ProxyCommand::SYNC_SYSMEM:
            if (fd_count == 0 || fd_count > kMaxFds) {
                return fd_error("1 to 8");
            }
            break;
        case ProxyCommand::SET_IRQFD:
            if (fd_count != 2) {
                return fd_error("2");
            }
            break;
        default:
            if (fd_count != 0) {
                return fd_error("none");
            }
            break;
    }
    return std::nullopt;
}

SyncSysmem SyncSysmem::decode(std::span<const std::byte, kSyncSysmemPayloadSize> bytes) {
    SyncSysmem m;
    for (size_t i = 0; i < kMaxFds; ++i) {
        m.gpas[i] = load<uint64_t>(bytes, 8 * i);
        m.sizes[i] = load<uint64_t>(bytes, 8 * (kMaxFds + i));
        m.offsets[i] = load<int64_t>(bytes, 8 * (2 * kMaxFds + i));
    }
    return m;
}

std::array<std::byte, kSyncSysmemPayloadSize> SyncSysmem::encode() const {
    std::array<std::byte, kSyncSysmemPayloadSize> bytes{};
    for (size_t i = 0; i < kMaxFds; ++i) {
        store(std::span(bytes), 8 * i, gpas[i]);
        store(std::span(bytes), 8 * (kMaxFds + i), sizes[i]);
        store(std::span(bytes), 8 * (2 * kMaxFds + i), offsets[i]);
    }
    return bytes;
}

ConfigAccess ConfigAccess::decode(std::span<const std::byte, kConfigAccessPayloadSize> bytes) {
    return ConfigAccess{load<uint32_t>(bytes, 0), load<uint32_t>(bytes, 4),
                        load<int32_t>(bytes, 8)};
}

std::array<std::byte, kConfigAccessPayloadSize> ConfigAccess::encode() const {
    std::array<std::byte, kConfigAccessPayloadSize> bytes{};
    store(std::span(bytes), 0, address);
    store(std::span(bytes), 4, value);
    store(std::span(bytes), 8, length);
    return bytes;
}

BarAccess BarAccess::decode(std::span<const std::byte, kBarAccessPayloadSize> bytes) {
    // QEMU's C bool is one byte at offset 20; bytes 21..23 are padding.
    return BarAccess{load<uint64_t>(bytes, 0), load<uint64_t>(bytes, 8), load<uint32_t>(bytes, 16),
                     load<uint8_t>(bytes, 20) != 0};
}

std::array<std::byte, kBarAccessPayloadSize> BarAccess::encode() const {
    std::array<std::byte, kBarAccessPayloadSize> bytes{};
    store(std::span(bytes), 0, address);
    store(std::span(bytes), 8, value);
    store(std::span(bytes), 16, size);
    store(std::span(bytes), 20, static_cast<uint8_t>(memory ? 1 : 0));
    return bytes;
}

}  // namespace gf::vmm
