// The seam between the driver's view of a PCI function (pci::Device and the
// owners built on it) and whatever provides the function: the in-process
// emulated machine, a real function through sysfs, or a test double.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

#include "base/result.h"

namespace gf::pci {

inline constexpr unsigned kNumBars = 6;

// Resource flag bits, as in linux/ioport.h and the sysfs `resource` file.
inline constexpr uint32_t kResourceIo = 0x100;
inline constexpr uint32_t kResourceMem = 0x200;
inline constexpr uint32_t kResourcePrefetch = 0x2000;
inline constexpr uint32_t kResourceMem64 = 0x100000;

// One BAR as the platform assigned it: CPU-physical start, length, flags.
// An unused BAR has length 0.
struct BarResource {
    uint64_t start = 0;
    uint64_t length = 0;
    uint32_t flags = 0;

    bool is_memory() const { return (flags & kResourceMem) != 0; }
    bool is_64bit() const { return (flags & kResourceMem64) != 0; }
};

// A mapping of a whole BAR, as handed out by Backend::map_bar. `cookie` is the
// backend's own (a mapped address for sysfs, a slot number for the emulator).
struct BarMapping {
    unsigned bar = 0;
    uint64_t length = 0;
    std::uintptr_t cookie = 0;
};

// One page of memory the device can reach by physical address.
struct DmaBuffer {
    std::byte* data = nullptr;
    size_t size = 0;
    uint64_t phys = 0;
    std::uintptr_t cookie = 0;
};

// One user's private view of a memory BAR (pci::BarFile): a file whose pages at BAR offset N
// are the BAR's memory at N wherever the view is bound, and nothing anyone else holds.
struct BarFileHandle {
    int fd = -1;                // owned by the backend until close_bar_file
    std::uintptr_t cookie = 0;  // the backend's own
};

// How a range comes into a view.
enum class BarBinding : uint8_t {
    kFresh,  // a block just given to this user: it starts zeroed
    kHeld,   // memory the host holds (a claim): what the host put there moves into the view
};

// What a platform must provide. pci::Device serializes every call except
// read32/write32, the DMA calls and the BAR-file calls; those may arrive from several
// threads at once (the driver orders register sequences under its own lock).
class Backend {
  public:
    virtual ~Backend() = default;

    // Configuration space, little-endian as on the bus.
    virtual Result<void> config_read(uint32_t offset, std::span<std::byte> out) = 0;
    virtual Result<void> config_write(uint32_t offset, std::span<const std::byte> in) = 0;

    // Memory decode (and bus mastering) on and off.
    virtual Result<void> enable() = 0;
    virtual void disable() = 0;

    virtual BarResource bar_resource(unsigned bar) = 0;

    // Platform-level reservation of a BAR beyond this process's own bookkeeping
    // (a lock file for sysfs); most backends have none.
    virtual Result<void> request_region(unsigned /*bar*/, std::string_view /*name*/) { return {}; }
    virtual void release_region(unsigned /*bar*/) {}

    virtual Result<BarMapping> map_bar(unsigned bar) = 0;
    virtual void unmap_bar(const BarMapping& mapping) = 0;

    // Aligned 32-bit register access inside a mapping; the caller has checked
    // the offset against mapping.length.
    virtual uint32_t read32(const BarMapping& mapping, uint64_t offset) = 0;
    virtual void write32(const BarMapping& mapping, uint64_t offset, uint32_t value) = 0;

    // One page of RAM with a stable physical address (page_size() bytes).
    virtual Result<DmaBuffer> allocate_dma_page() = 0;
    virtual void free_dma_page(const DmaBuffer& buffer) = 0;
    // Confirms that the page still sits at buffer.phys before the device is
    // told to read it: a userspace page can be migrated. EIO if it moved.
    virtual Result<void> verify_dma_page(const DmaBuffer& /*buffer*/) { return {}; }
    virtual size_t page_size() const = 0;

    // Private views of a memory BAR, for users that map BAR memory (a kernel driver's mmap).
    // ENODEV where the platform cannot give every user a view of its own.
    virtual Result<BarFileHandle> open_bar_file(unsigned /*bar*/) { return fail(ENODEV); }
    // EPERM: the range is not the user's to bind (not a block of the device's, or, for
    // kHeld, not memory the host holds); EBUSY: another view has it; ENOMEM: no room.
    virtual Result<void> bind_bar_file(const BarFileHandle& /*file*/, uint64_t /*offset*/,
                                       uint64_t /*size*/, BarBinding /*how*/) {
        return fail(ENODEV);
    }
    // Takes a range bound to this view out of it (a kHeld range's contents go back to the
    // host); a range it does not hold is left alone.
    virtual void unbind_bar_file(const BarFileHandle& /*file*/, uint64_t /*offset*/,
                                 uint64_t /*size*/) {}
    // If no user maps the view writably any more, takes everything out of it and returns
    // true; otherwise changes nothing and returns false.
    virtual Result<bool> retire_bar_file(const BarFileHandle& /*file*/) { return true; }
    virtual void close_bar_file(const BarFileHandle& /*file*/) {}
};

}  // namespace gf::pci
