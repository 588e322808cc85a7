#include "device/asg_device_transport.h"

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "device/device_test_access.h"
#include "device/ping_info.h"
#include "device/registers.h"
#include "hw/context_types.h"

namespace gf::device::testing {

Result<std::unique_ptr<DeviceAsgTransport>> DeviceAsgTransport::open(AddressSpaceDevice& device,
                                                                     RamGuestMemory& ram,
                                                                     uint64_t ping_gpa,
                                                                     uint64_t bar1_base,
                                                                     uint32_t* destroy_status) {
    device.write32(Reg::COMMAND, static_cast<uint32_t>(Command::GEN_HANDLE));
    if (device.read32(Reg::STATUS) != 0) {
        return fail(ENOMEM);
    }
    const uint32_t handle = device.read32(Reg::HANDLE);
    auto transport = std::make_unique<DeviceAsgTransport>(device, ram, handle, ping_gpa, bar1_base,
                                                          destroy_status);
    device.write32(Reg::PING_INFO_ADDR_LOW, static_cast<uint32_t>(ping_gpa));
    device.write32(Reg::PING_INFO_ADDR_HIGH, static_cast<uint32_t>(ping_gpa >> 32));
    if (transport->command_register(Command::TELL_PING_INFO_ADDR) != 0) {
        return fail(EFAULT);
    }
    return transport;
}

uint32_t DeviceAsgTransport::command_register(Command c) {
    device_.write32(Reg::HANDLE, handle_);
    device_.write32(Reg::COMMAND, static_cast<uint32_t>(c));
    return device_.read32(Reg::STATUS);
}

namespace {

// A PING ioctl as the driver does it: the struct into the ping page, PING = handle, the
// struct back. The version word (the u32 at 24) carries the struct's size, 40.
PingInfo ping(AddressSpaceDevice& device, RamGuestMemory& ram, uint32_t handle, uint64_t gpa,
              PingInfo in) {
    in.wait_phys_addr = 40;
    const auto bytes = in.encode();
    std::memcpy(ram.host_pointer(gpa, bytes.size()), bytes.data(), bytes.size());
    device.write32(Reg::PING, handle);
    PingInfo::Bytes out;
    std::memcpy(out.data(), ram.host_pointer(gpa, out.size()), out.size());
    return PingInfo::decode(out);
}

}  // namespace

Result<void> DeviceAsgTransport::create_context() {
    PingInfo in;
    in.metadata = static_cast<uint64_t>(hw::ContextType::Graphics);
    if (ping(device_, ram_, handle_, ping_gpa_, in).metadata != kPingOk) {
        return fail(EPROTO);
    }
    return {};
}

Result<client::Ping> DeviceAsgTransport::command(uint64_t metadata, uint64_t size) {
    if (closed_) {
        return fail(EBADF);
    }
    PingInfo in;
    in.metadata = metadata;
    in.size = size;
    in.phys_addr = bar1_base_;  // offset 0, as the driver translates it
    const PingInfo out = ping(device_, ram_, handle_, ping_gpa_, in);
    client::Ping reply{};
    reply.offset = out.phys_addr - bar1_base_;
    reply.size = out.size;
    reply.metadata = out.metadata;
    return reply;
}

Result<void> DeviceAsgTransport::claim_shared(uint64_t offset, uint64_t size) {
    if (size == 0 || offset + size < offset) {
        return fail(EINVAL);
    }
    for (const Claim& c : claims_) {
        if (offset < c.offset + c.size && c.offset < offset + size) {
            return fail(EEXIST);
        }
    }
    claims_.push_back({offset, size});
    return {};
}

Result<void> DeviceAsgTransport::unclaim_shared(uint64_t offset) {
    auto it = std::find_if(claims_.begin(), claims_.end(),
                           [&](const Claim& c) { return c.offset == offset; });
    if (it == claims_.end()) {
        return fail(EINVAL);
    }
    claims_.erase(it);
    return {};
}

Result<std::byte*> DeviceAsgTransport::map(uint64_t offset, uint64_t size) {
    const bool claimed = std::any_of(claims_.begin(), claims_.end(), [&](const Claim& c) {
        return offset >= c.offset && size <= c.size && offset - c.offset <= c.size - size;
    });
    if (!claimed) {
        return fail(EPERM);
    }
    // The one place the in-process guest reaches the host's memory: the span stays valid
    // until the device removes the mapping, which DESTROY_HANDLE (close()) does.
    std::span<std::byte> memory = GF_TRY(testing::host_memory(device_, bar1_base_ + offset, size));
    return memory.data();
}

Result<void> DeviceAsgTransport::close() {
    if (std::exchange(closed_, true)) {
        return fail(EBADF);
    }
    claims_.clear();
    const uint32_t status = command_register(Command::DESTROY_HANDLE);
    if (destroy_status_ != nullptr) {
        *destroy_status_ = status;
    }
    return status == 0 ? Result<void>{} : fail(EIO);
}

}  // namespace gf::device::testing
