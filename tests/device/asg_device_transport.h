// The ASG guest's transport in-process: client::AsgStream drives the device model through
// its registers, as the guest driver would for an open file (a handle, its ping page in guest
// RAM), and reaches BAR1 memory where the device backs it. The device tests and the fuzzer
// run the project's one guest over it; the node tests run it over a node's file.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "client/asg_transport.h"
#include "device/address_space_device.h"
#include "device/guest_memory.h"

namespace gf::device::testing {

class DeviceAsgTransport final : public client::AsgTransport {
  public:
    // A handle of its own: GEN_HANDLE, and TELL_PING_INFO_ADDR with its ping page at
    // ping_gpa (a 40-byte page in `ram` that nothing else uses); destroy_status as below.
    static Result<std::unique_ptr<DeviceAsgTransport>> open(AddressSpaceDevice& device,
                                                            RamGuestMemory& ram, uint64_t ping_gpa,
                                                            uint64_t bar1_base,
                                                            uint32_t* destroy_status = nullptr);
    // A handle the caller made (its ping page told already); close() destroys it and, if
    // `destroy_status` is given, stores DESTROY_HANDLE's status there (the stream that owns
    // this transport may be gone by the time a test looks).
    DeviceAsgTransport(AddressSpaceDevice& device, RamGuestMemory& ram, uint32_t handle,
                       uint64_t ping_gpa, uint64_t bar1_base, uint32_t* destroy_status = nullptr)
        : device_(device),
          ram_(ram),
          handle_(handle),
          ping_gpa_(ping_gpa),
          bar1_base_(bar1_base),
          destroy_status_(destroy_status) {}

    Result<void> create_context() override;
    Result<client::Ping> command(uint64_t metadata, uint64_t size = 0) override;
    // Claims are the driver's bookkeeping: the device never sees them. As the kernel driver
    // does, a range overlapping a claim is refused, and only claimed memory maps.
    Result<void> claim_shared(uint64_t offset, uint64_t size) override;
    Result<void> unclaim_shared(uint64_t offset) override;
    Result<std::byte*> map(uint64_t offset, uint64_t size) override;
    void unmap(std::byte*, uint64_t) override {}
    // DESTROY_HANDLE; EIO if its status is not 0.
    Result<void> close() override;

    uint32_t handle() const { return handle_; }

  private:
    struct Claim {
        uint64_t offset;
        uint64_t size;
    };
    uint32_t command_register(Command c);

    AddressSpaceDevice& device_;
    RamGuestMemory& ram_;
    uint32_t handle_;
    uint64_t ping_gpa_;
    uint64_t bar1_base_;
    std::vector<Claim> claims_;
    uint32_t* destroy_status_;
    bool closed_ = false;
};

}  // namespace gf::device::testing
