#include "device/ping_info.h"

namespace gf::device {
namespace {

// Explicit little-endian (de)serialisation: the guest's byte order, whatever the host's.
template <typename T>
T load_le(const PingInfo::Bytes& bytes, size_t at) {
    T value = 0;
    for (size_t i = 0; i < sizeof(T); ++i) {
        value |= static_cast<T>(std::to_integer<uint8_t>(bytes[at + i])) << (8 * i);
    }
    return value;
}

template <typename T>
void store_le(PingInfo::Bytes& bytes, size_t at, T value) {
    for (size_t i = 0; i < sizeof(T); ++i) {
        bytes[at + i] = static_cast<std::byte>(value >> (8 * i));
    }
}

}  // namespace

PingInfo PingInfo::decode(const Bytes& bytes) {
    PingInfo info;
    info.phys_addr = load_le<uint64_t>(bytes, 0);
    info.size = load_le<uint64_t>(bytes, 8);
    info.metadata = load_le<uint64_t>(bytes, 16);
    info.wait_phys_addr = load_le<uint64_t>(bytes, 24);
    info.wait_flags = load_le<uint32_t>(bytes, 32);
    info.direction = load_le<uint32_t>(bytes, 36);
    return info;
}

PingInfo::Bytes PingInfo::encode() const {
    Bytes bytes{};
    store_le(bytes, 0, phys_addr);
    store_le(bytes, 8, size);
    store_le(bytes, 16, metadata);
    store_le(bytes, 24, wait_phys_addr);
    store_le(bytes, 32, wait_flags);
    store_le(bytes, 36, direction);
    return bytes;
}

}  // namespace gf::device
