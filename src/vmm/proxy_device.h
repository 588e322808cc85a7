// One goldfish address space device served to QEMU's `x-pci-proxy-dev` (docs/vm.md#proxy-protocol).
//
// It owns the device model (src/device), the guest RAM that QEMU shares with it, and the
// PCI config space the guest sees. serve() answers one connection's messages in order:
// config accesses go to the config space, BAR accesses are turned from absolute addresses
// into BAR offsets and BAR0's go to the device model's registers, SYNC_SYSMEM replaces the
// guest RAM the device reads ping pages from, DEVICE_RESET resets both.
//
// BAR1 is a 32-bit memory BAR here, because the proxy registers nothing else. Every BAR1
// access is a message too: inside a block the guest allocated or a host region it reaches
// the device model's BAR1 memory, the memory the host contexts see; elsewhere it reads 0
// and is dropped.
//
// With a tracer, every BAR0 access, config write, placement and reset is an event, decoded
// (trace.h); with faults, the device model's fault injection is armed at start and after
// every reset.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string_view>
#include <unordered_set>
#include <vector>

#include "base/mutex.h"
#include "base/result.h"
#include "base/unique_fd.h"
#include "device/address_space_device.h"
#include "hw/pci_config_space.h"
#include "vmm/fault_spec.h"
#include "vmm/memfd_guest_memory.h"
#include "vmm/message_channel.h"
#include "vmm/trace.h"

namespace gf::vmm {

struct ProxyDeviceConfig {
    static constexpr uint64_t kDefaultBar1Size = 256ull << 20;
    static constexpr uint64_t kMaxBar1Size = 2ull << 30;

    // A power of two from one host page to 2 GiB.
    uint64_t bar1_size = kDefaultBar1Size;
    uint32_t host_page_size = 4096;
    // Gets every event (trace.h) when set; the device says nothing otherwise.
    std::shared_ptr<Tracer> tracer;
    // Armed in the device model at start and again after each reset.
    std::vector<FaultSpec> faults;
};

struct ProxyStats {
    uint64_t messages = 0;
    uint64_t config_reads = 0;
    uint64_t config_writes = 0;
    uint64_t bar_reads = 0;
    uint64_t bar_writes = 0;
    uint64_t stray_bar_accesses = 0;      // not inside a placed BAR0/BAR1, or decoding off
    uint64_t bar1_accesses = 0;           // inside BAR1
    uint64_t unbacked_bar1_accesses = 0;  // of those, where nothing backs BAR1: 0, dropped
    uint64_t sysmem_syncs = 0;
    uint64_t irqfd_updates = 0;
    uint64_t resets = 0;
};

// The config space the proxied function powers on with: our identity (docs/device.md#pci-identity),
// BAR0 and a BAR1 of `bar1_size` as 32-bit memory BARs for the guest to size and place, and
// the fields a real function lets software write. EINVAL for a BAR1 no BAR can be.
Result<hw::PciConfigSpace> proxy_config_space(uint64_t bar1_size);

class ProxyDevice {
  public:
    // EINVAL for a BAR1 size or page size the device cannot have.
    static Result<std::unique_ptr<ProxyDevice>> create(ProxyDeviceConfig config);
    ~ProxyDevice();
    ProxyDevice(const ProxyDevice&) = delete;
    ProxyDevice& operator=(const ProxyDevice&) = delete;

    // Serves one connection until the peer closes it (peer_closed) or breaks the protocol
    // (protocol_error, io_error); the socket is closed on return. A broken message changes
    // nothing in the device, so another connection may be served afterwards. One
    // connection at a time.
    ConnectionEnd serve(UniqueFd socket);

    device::AddressSpaceDevice& device() { return *device_; }
    MemfdGuestMemory& guest_memory() { return *memory_; }
    ProxyStats stats() const GF_EXCLUDES(mutex_);
    uint32_t config_read(uint32_t address, int length) const GF_EXCLUDES(mutex_);

  private:
    ProxyDevice(ProxyDeviceConfig config, std::unique_ptr<MemfdGuestMemory> memory,
                std::unique_ptr<device::AddressSpaceDevice> device,
                hw::PciConfigSpace config_space);

    // The reply to send, if the command has one.
    ConnectionResult<std::optional<uint64_t>> handle(Message& message) GF_EXCLUDES(mutex_);
    ConnectionResult<void> sync_sysmem(Message& message) GF_EXCLUDES(mutex_);
    void config_write(const ConfigAccess& access) GF_EXCLUDES(mutex_);
    uint64_t bar_access(const BarAccess& access, bool write) GF_EXCLUDES(mutex_);
    uint64_t bar0_access(uint64_t offset, const BarAccess& access, bool write);
    uint64_t bar1_access(uint64_t offset, const BarAccess& access, bool write) GF_EXCLUDES(mutex_);
    void reset() GF_EXCLUDES(mutex_);
    void arm_faults();
    bool tracing() const { return config_.tracer != nullptr; }
    void trace(const TraceEvent& event) const;
    // The ping struct in the page at `gpa`, for the trace; empty without a readable page.
    std::optional<std::array<uint64_t, 6>> ping_fields(std::optional<uint64_t> gpa) const;

    const ProxyDeviceConfig config_;
    // Declared before device_: the device reads guest RAM until it is destroyed.
    std::unique_ptr<MemfdGuestMemory> memory_;
    std::unique_ptr<device::AddressSpaceDevice> device_;

    mutable Mutex mutex_;
    hw::PciConfigSpace config_space_ GF_GUARDED_BY(mutex_);
    ProxyStats stats_ GF_GUARDED_BY(mutex_);
    // Held so QEMU's eventfds stay valid; the device raises no interrupts (drivers poll
    // STATUS right after each synchronous command).
    UniqueFd irq_fd_ GF_GUARDED_BY(mutex_);
    UniqueFd irq_resample_fd_ GF_GUARDED_BY(mutex_);
    // The trace's memory: the last RAM layout shown, and the BAR1 pages whose unbacked
    // accesses were shown (each once, up to a bound).
    std::string last_layout_ GF_GUARDED_BY(mutex_);
    std::unordered_set<uint64_t> unbacked_pages_shown_ GF_GUARDED_BY(mutex_);
};

}  // namespace gf::vmm
