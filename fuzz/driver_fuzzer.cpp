// libFuzzer harness: one driver on the emulated device, up to kSlots open files, and a
// hostile VMM peer writing BAR0 registers behind the driver's back. Each input is a
// sequence of operations (format below, seeds in fuzz/corpus/driver/, made by
// fuzz/make_corpus.py); after every one the invariants of tests/stress/invariants.h are
// checked, exactly while no peer command has reached the device and in their weaker form
// after one. Each input ends by disarming faults and closing every file (then, if the peer
// meddled, undoing its leftovers as a peer would) and checking that nothing is held but the
// one empty type-6 slab the device keeps. A violation traps, so libFuzzer reports it.
//
// Input format: a stream of operations, each an opcode byte (taken modulo kOpCount) and its
// operands; every multi-byte operand is little-endian and reads as zero past the input's end.
// A "slot" operand is a byte modulo kSlots. Operands of the shaped kinds (size, offset,
// metadata) start with a selector byte; see the readers below.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>
#include <span>
#include <vector>

#include "device/address_space_device.h"
#include "device/registers.h"
#include "driver/driver.h"
#include "driver/file.h"
#include "pci/emulated/machine.h"
#include "stress/invariants.h"

namespace {

using gf::device::AddressSpaceDevice;
using gf::device::DeviceFault;
using gf::device::FaultSchedule;
using gf::device::Reg;
using gf::driver::File;

constexpr size_t kSlots = 8;
constexpr uint64_t kPage = 4096;
// Small enough to exhaust: four 64 MiB type-6 slabs fill it.
constexpr uint64_t kBar1Size = 256ull << 20;
constexpr uint64_t kRamBase = 0x4000'0000;
constexpr uint64_t kRamSize = 1ull << 20;  // 256 pages: ping pages for every slot
constexpr size_t kMaxOps = 256;            // keeps slow inputs from dominating

constexpr uint32_t kIoctls[] = {
    GOLDFISH_ADDRESS_SPACE_IOCTL_ALLOCATE_BLOCK,
    GOLDFISH_ADDRESS_SPACE_IOCTL_DEALLOCATE_BLOCK,
    GOLDFISH_ADDRESS_SPACE_IOCTL_PING,
    GOLDFISH_ADDRESS_SPACE_IOCTL_CLAIM_SHARED,
    GOLDFISH_ADDRESS_SPACE_IOCTL_UNCLAIM_SHARED,
    0xC038470F,  // PING_WITH_DATA: not part of the RFC subset, so ENOTTY
};

enum Op : uint8_t {
    kOpen,         // -
    kClose,        // slot
    kIoctlRaw,     // slot, cmd selector [u32], length, bytes
    kAllocate,     // slot, size
    kDeallocate,   // slot, offset
    kPing,         // slot, metadata, offset, size, version byte
    kClaim,        // slot, offset, size
    kUnclaim,      // slot, offset
    kRawWrite,     // register, value, access size
    kRawRead,      // register, access size
    kPeer,         // peer command kind, operands
    kFault,        // fault kind, schedule
    kHostMalloc,   // slot, shared?, size: the AOSP library's hostMalloc sequence
    kHostFree,     // slot, shared?, index: its hostFree sequence
    kRebind,       // -: unbind the driver (files revoked and closed), probe a new one
    kDeviceReset,  // -: the VMM resets the device under the bound driver
    kOpCount,
};

class Input {
  public:
    explicit Input(std::span<const uint8_t> data) : data_(data) {}
    bool done() const { return pos_ >= data_.size(); }
    uint8_t u8() { return pos_ < data_.size() ? data_[pos_++] : 0; }
    uint16_t u16() { return static_cast<uint16_t>(u8() | u8() << 8); }
    uint32_t u32() { return u16() | static_cast<uint32_t>(u16()) << 16; }
    uint64_t u64() { return u32() | static_cast<uint64_t>(u32()) << 32; }
    // A small signed nudge: bytes or pages either side of a real address or size.
    uint64_t delta() {
        const auto steps = static_cast<int8_t>(u8());
        const uint64_t unit = (u8() & 1) ? kPage : 1;
        return static_cast<uint64_t>(static_cast<int64_t>(steps)) * unit;
    }

  private:
    std::span<const uint8_t> data_;
    size_t pos_ = 0;
};

[[noreturn]] void report(const char* where, const gf::stress::Violations& violations) {
    std::fprintf(stderr, "invariant violated (%s):\n%s", where,
                 gf::stress::describe(violations).c_str());
    __builtin_trap();
}

class World {
  public:
    bool start() {
        gf::pci::emulated::MachineConfig config;
        config.device.bar1_size = kBar1Size;
        config.ram_base = kRamBase;
        config.ram_size = kRamSize;
        auto machine = gf::pci::emulated::Machine::create(config);
        if (!machine) {
            return false;
        }
        machine_ = std::move(*machine);
        free_pages_at_start_ = machine_->free_dma_pages();
        auto driver = gf::driver::Driver::probe(machine_->pci_device());
        if (!driver) {
            return false;
        }
        driver_ = std::move(*driver);
        return true;
    }

    void run(Input& in) {
        for (size_t ops = 0; !in.done() && ops < kMaxOps; ++ops) {
            step(in);
            check("after operation");
        }
        finish();
    }

  private:
    AddressSpaceDevice& device() { return machine_->device(); }

    void step(Input& in) {
        switch (in.u8() % kOpCount) {
            case kOpen:
                open();
                break;
            case kClose:
                files_[in.u8() % kSlots].reset();
                break;
            case kIoctlRaw:
                ioctl_raw(in);
                break;
            // Operands are read before looking at the slot, so an input's layout never
            // depends on state (seeds stay meaningful under mutation).
            case kAllocate: {
                File* file = slot(in);
                const uint64_t want = size(in);
                if (file) {
                    (void)file->allocate_block(want);
                }
                break;
            }
            case kDeallocate: {
                const size_t s = in.u8() % kSlots;
                const uint64_t at = offset(in, s);
                if (files_[s]) {
                    (void)files_[s]->deallocate_block(at);
                }
                break;
            }
            case kPing:
                ping(in);
                break;
            case kClaim: {
                const size_t s = in.u8() % kSlots;
                const uint64_t at = offset(in, s);
                const uint64_t length = size(in);
                if (files_[s]) {
                    (void)files_[s]->claim_shared(at, length);
                }
                break;
            }
            case kUnclaim: {
                const size_t s = in.u8() % kSlots;
                const uint64_t at = offset(in, s);
                if (files_[s]) {
                    (void)files_[s]->unclaim_shared(at);
                }
                break;
            }
            case kRawWrite:
                raw_write(in);
                break;
            case kRawRead: {
                const uint64_t reg = register_offset(in);
                (void)device().mmio_read(reg, access_size(in));
                break;
            }
            case kPeer:
                peer(in);
                break;
            case kFault:
                fault(in);
                break;
            case kHostMalloc:
                host_malloc(in);
                break;
            case kHostFree:
                host_free(in);
                break;
            case kRebind:
                rebind();
                break;
            case kDeviceReset:
                // The device forgets everything the driver's files hold.
                device().reset();
                stale_ = true;
                break;
            default:
                break;
        }
    }

    File* slot(Input& in) { return files_[in.u8() % kSlots].get(); }

    void open() {
        for (auto& file : files_) {
            if (!file) {
                if (auto opened = driver_->open()) {
                    file = std::move(*opened);
                }
                return;
            }
        }
    }

    // Sizes: whole pages, odd byte counts, anything, near a slab, near BAR1's size.
    uint64_t size(Input& in) {
        switch (in.u8() % 5) {
            case 0:
                return (uint64_t{in.u8()} + 1) * kPage;
            case 1:
                return in.u16();
            case 2:
                return in.u64();
            case 3:
                return (64ull << 20) + in.delta();
            default:
                return (kBar1Size >> (in.u8() % 16)) + in.delta();
        }
    }

    // BAR1 offsets: anything, or near something real (this file's blocks or claims, any
    // file's blocks, the device's blocks, slabs and type-6 pieces), nudged a little.
    uint64_t offset(Input& in, size_t self) {
        const uint8_t kind = in.u8() % 7;
        if (kind == 0) {
            return in.u64();
        }
        const uint8_t index = in.u8();
        const uint64_t fallback = uint64_t{in.u16()} * kPage;  // read always: fixed layout
        std::vector<uint64_t> near;
        switch (kind) {
            case 1:
            case 2: {
                const size_t owner = kind == 1 ? self : index % kSlots;
                if (files_[owner]) {
                    const auto f = files_[owner]->books();
                    for (const auto& [at, length] : f.blocks) {
                        near.push_back(at);
                    }
                    for (const auto& [at, length] : f.claims) {
                        near.push_back(at);
                    }
                }
                break;
            }
            case 3:
                for (const auto& [at, length] : device().books().guest_blocks) {
                    near.push_back(at);
                }
                break;
            case 4: {
                const auto s = device().books();
                for (const auto& slab : s.slabs) {
                    near.push_back(slab.offset);
                }
                for (const auto& handle : s.handles) {
                    for (const auto& [at, length] : handle.allocations) {
                        near.push_back(at);
                    }
                }
                break;
            }
            default:
                break;
        }
        const uint64_t base = near.empty() ? fallback : near[index % near.size()];
        return base + in.delta();
    }

    // Create-ping types and context commands, or anything.
    static uint64_t metadata(Input& in) {
        constexpr uint64_t kChoices[] = {5, 6, 1, 2, 3, 0, ~uint64_t{0}};
        const uint8_t kind = in.u8();
        return kind < 0xF0 ? kChoices[kind % std::size(kChoices)] : in.u64();
    }

    void ioctl_raw(Input& in) {
        File* file = slot(in);
        const uint8_t which = in.u8();
        const uint32_t cmd = which % 8 < std::size(kIoctls) ? kIoctls[which % 8] : in.u32();
        // Right or wrong sizes: every struct is at most 40 bytes, PING_WITH_DATA 56.
        std::vector<std::byte> arg(in.u8() % 72);
        for (auto& byte : arg) {
            byte = std::byte{in.u8()};
        }
        if (file) {
            (void)file->ioctl(cmd, arg);
        }
    }

    void ping(Input& in) {
        const size_t s = in.u8() % kSlots;
        goldfish_address_space_ping request{};
        request.metadata = metadata(in);
        request.offset = offset(in, s);
        request.size = size(in);
        request.version = in.u8() == 0 ? in.u32() : sizeof(request);
        if (files_[s]) {
            (void)files_[s]->ping(request);
        }
    }

    // The AOSP library's hostMalloc: type 6 pings Allocate and claims what it got; type 5
    // allocates a block and backs it.
    void host_malloc(Input& in) {
        const size_t s = in.u8() % kSlots;
        const bool shared = in.u8() & 1;
        const uint64_t want = size(in);
        File* file = files_[s].get();
        if (!file) {
            return;
        }
        goldfish_address_space_ping request{};
        request.version = sizeof(request);
        request.metadata = 1;  // Allocate
        if (shared) {
            request.size = want;
            auto reply = file->ping(request);
            if (reply && reply->metadata == 0) {
                (void)file->claim_shared(reply->offset, reply->size);
            }
            return;
        }
        auto block = file->allocate_block(want);
        if (block) {
            request.offset = block->offset;
            request.size = block->size;
            (void)file->ping(request);
        }
    }

    // hostFree: Unallocate, then unclaim (type 6) or deallocate (type 5).
    void host_free(Input& in) {
        const size_t s = in.u8() % kSlots;
        const bool shared = in.u8() & 1;
        const uint8_t index = in.u8();
        File* file = files_[s].get();
        if (!file) {
            return;
        }
        const auto f = file->books();
        const auto& ranges = shared ? f.claims : f.blocks;
        if (ranges.empty()) {
            return;
        }
        auto it = ranges.begin();
        std::advance(it, index % ranges.size());
        goldfish_address_space_ping request{};
        request.version = sizeof(request);
        request.metadata = 2;  // Unallocate
        request.offset = it->first;
        (void)file->ping(request);
        if (shared) {
            (void)file->unclaim_shared(it->first);
        } else {
            (void)file->deallocate_block(it->first);
        }
    }

    // Mostly the real registers, sometimes any offset in (or past) BAR0.
    static uint64_t register_offset(Input& in) {
        const uint8_t which = in.u8();
        return which < 0xF0 ? uint64_t{which % 14u} * 4 : in.u16();
    }
    static unsigned access_size(Input& in) {
        const uint8_t size = in.u8();
        return size < 0xF0 ? 4 : size % 9;
    }

    void raw_write(Input& in) {
        const uint64_t reg = register_offset(in);
        const uint32_t value = peer_value(in);
        const unsigned access = access_size(in);
        note_peer_write(reg, value, access);
        device().mmio_write(reg, value, access);
    }

    // Values a peer would write: anything, a live handle, or half of a real offset.
    uint32_t peer_value(Input& in) {
        const uint8_t kind = in.u8() % 4;
        const uint8_t index = in.u8();
        const uint32_t raw = in.u32();
        const auto s = device().books();
        if (kind == 1 && !s.handles.empty()) {
            return s.handles[index % s.handles.size()].handle;
        }
        if (kind == 2 && !s.guest_blocks.empty()) {
            auto it = s.guest_blocks.begin();
            std::advance(it, index % s.guest_blocks.size());
            return static_cast<uint32_t>(it->first >> ((index & 0x80) ? 32 : 0));
        }
        if (kind == 3) {
            return static_cast<uint32_t>(index % 8);  // a command id, or a small value
        }
        return raw;
    }

    void note_peer_write(uint64_t reg, uint32_t value, unsigned access) {
        if (access != 4) {
            return;  // ignored by the device
        }
        if (reg == static_cast<uint64_t>(Reg::COMMAND) && value >= 1 && value <= 5) {
            peer_commanded_ = true;
        }
    }

    void command(gf::device::Command cmd) {
        peer_commanded_ = true;
        device().write32(Reg::COMMAND, static_cast<uint32_t>(cmd));
    }

    void write64(Reg low, uint64_t value) {
        device().write32(low, static_cast<uint32_t>(value));
        device().write32(static_cast<Reg>(static_cast<uint32_t>(low) + 4),
                         static_cast<uint32_t>(value >> 32));
    }

    // Whole commands as a hostile peer would issue them.
    void peer(Input& in) {
        using gf::device::Command;
        const uint8_t kind = in.u8() % 7;
        const size_t s = in.u8() % kSlots;
        const auto f = files_[s] ? files_[s]->books() : gf::driver::FileBooks{};
        switch (kind) {
            case 0:  // DESTROY_HANDLE of a file's handle (or of whatever HANDLE holds)
                if (files_[s]) {
                    device().write32(Reg::HANDLE, f.handle);
                }
                command(Command::DESTROY_HANDLE);
                break;
            case 1:  // DEALLOCATE_BLOCK of a file's block, or near one
                write64(Reg::BLOCK_OFFSET_LOW, offset(in, s));
                command(Command::DEALLOCATE_BLOCK);
                break;
            case 2:  // GEN_HANDLE flood (bounded: thousands of handles only slow the checks)
                for (unsigned n = in.u8() % 16 + 1; n > 0 && device().stats().handles < 64; --n) {
                    command(Command::GEN_HANDLE);
                }
                break;
            case 3: {  // PHYS_START rewrite
                const uint64_t phys =
                    in.u8() & 1 ? in.u64() : driver_->bar1_phys_start() + in.delta();
                write64(Reg::PHYS_START_LOW, phys);
                break;
            }
            case 4: {  // TELL_PING_INFO_ADDR: a file's handle pointed at another page
                const size_t other = in.u8() % kSlots;
                const uint64_t fallback = kRamBase + uint64_t{in.u16()} * 16;
                const uint64_t page = files_[other] && files_[other]->books().ping_page_phys
                                          ? *files_[other]->books().ping_page_phys
                                          : fallback;
                device().write32(Reg::HANDLE, f.handle);
                write64(Reg::PING_INFO_ADDR_LOW, page);
                command(Command::TELL_PING_INFO_ADDR);
                break;
            }
            case 5: {  // PING a file's handle: replays whatever its page holds
                const uint32_t raw = in.u32();
                device().write32(Reg::PING, files_[s] ? f.handle : raw);
                break;
            }
            default:  // ALLOCATE_BLOCK for nobody
                write64(Reg::BLOCK_SIZE_LOW, size(in));
                command(Command::ALLOCATE_BLOCK);
                break;
        }
    }

    void fault(Input& in) {
        const uint8_t kind = in.u8() % 8;
        if (kind < gf::device::kDeviceFaultCount) {
            FaultSchedule schedule;
            schedule.skip = in.u8() % 8;
            schedule.every = in.u8() % 4;
            schedule.times = in.u8() % 4;
            device().inject(static_cast<DeviceFault>(kind), schedule);
            return;
        }
        switch (kind) {
            case gf::device::kDeviceFaultCount: {  // a file's ping page becomes unreadable
                const size_t s = in.u8() % kSlots;
                if (files_[s]) {
                    if (auto page = files_[s]->books().ping_page_phys) {
                        device().refuse_guest_memory(*page, kPage);
                    }
                }
                break;
            }
            case gf::device::kDeviceFaultCount + 1:  // all of guest RAM (opens fail too)
                device().refuse_guest_memory(kRamBase, kRamSize);
                break;
            default:
                device().clear_faults();
                break;
        }
    }

    // Unbind: every open file is revoked (nothing of it left on the device), then closed;
    // a new driver binds to the same device.
    void rebind() {
        driver_->remove();
        for (auto& file : files_) {
            if (file && file->books().live) {
                report("after unbind", {"a file is still live after unbind"});
            }
            file.reset();
        }
        check("after unbind");
        // Blocks the old driver abandoned stay on the device, known to no driver now.
        stale_ = stale_ || driver_->stats().abandoned_blocks != 0;
        driver_.reset();
        auto driver = gf::driver::Driver::probe(machine_->pci_device());
        if (!driver) {
            report("rebind", {"probe failed after unbind"});
        }
        driver_ = std::move(*driver);
    }

    // Whether the device holds exactly what the files hold: no peer command reached it,
    // it was not reset under the driver, and no earlier binding left blocks behind.
    bool exact() const { return !peer_commanded_ && !stale_; }

    void check(const char* where) {
        std::vector<std::shared_ptr<File>> open;
        for (const auto& file : files_) {
            if (file) {
                open.push_back(file);
            }
        }
        gf::stress::CheckOptions options;
        options.exact = exact();
        const auto violations = gf::stress::check(*machine_, *driver_, open, options);
        if (!violations.empty()) {
            report(where, violations);
        }
    }

    void finish() {
        device().clear_faults();
        for (auto& file : files_) {
            file.reset();
        }
        if (!exact()) {
            gf::stress::clean_up_as_peer(device());
        }
        const auto violations =
            gf::stress::check_quiescent(*machine_, *driver_, free_pages_at_start_,
                                        gf::stress::QuiescentOptions{.peer_cleaned_up = !exact()});
        if (!violations.empty()) {
            report("after closing every file", violations);
        }
    }

    // Declared first so it is destroyed last: the driver and files must go before it.
    std::unique_ptr<gf::pci::emulated::Machine> machine_;
    std::unique_ptr<gf::driver::Driver> driver_;
    std::shared_ptr<File> files_[kSlots];
    size_t free_pages_at_start_ = 0;
    bool peer_commanded_ = false;
    bool stale_ = false;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    World world;
    if (!world.start()) {
        std::fprintf(stderr, "cannot build the emulated machine\n");
        __builtin_trap();
    }
    Input in({data, size});
    world.run(in);
    return 0;
}
