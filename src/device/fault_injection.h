// Failures the device can be told to produce, as a failing or hostile host would, and when
// they fire. Each leaves the device's books as they were: the operation does nothing but
// report failure. The device keeps one FaultInjector under its lock.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <random>
#include <span>
#include <utility>

#include "base/result.h"
#include "device/guest_memory.h"

namespace gf::device {

enum class DeviceFault : uint8_t {
    kBlockAllocation,    // ALLOCATE_BLOCK (size > 0): STATUS `value` (0: ENOMEM), BLOCK_OFFSET
                         // all-ones
    kHostMemory,         // type-5/6 Allocate cannot get host memory or a host region: ~0
    kGenHandle,          // GEN_HANDLE issues nothing; HANDLE reads 0xFFFFFFFF
    kPingInfoReadBack,   // TELL_PING_INFO_ADDR (live handle) records the page, but
                         // PING_INFO_ADDR then reads back a different address
    kStatusAboveIntMax,  // ALLOCATE_BLOCK / DEALLOCATE_BLOCK do nothing; STATUS 0x8000000C
    kBlockDeallocation,  // DEALLOCATE_BLOCK does nothing; STATUS `value` (0: EINVAL)
    kContextRefused,     // a create ping of context type `value` answers ~0, as for a type
                         // the device does not know (its opportunities: those pings only)
    kCommandDelay,       // a COMMAND or PING write takes `value` microseconds longer (the
                         // device is slow, its lock held): races in a driver show
};
inline constexpr size_t kDeviceFaultCount = 8;
// The longest kCommandDelay a schedule may ask for: 10 s.
inline constexpr uint64_t kMaxCommandDelayUs = 10'000'000;

// When an injected fault fires, counted in its opportunities (the operations it applies to,
// listed above): it skips `skip` of them, then fires on every `every`-th one (0 counts as 1),
// `times` times in all (0: until clear_faults()).
struct FaultSchedule {
    uint32_t skip = 0;
    uint32_t every = 1;
    uint32_t times = 1;
    // Above 0 (at most 1): after `skip`, each opportunity fires with this probability instead
    // of every `every`-th, drawn from a generator seeded with `seed`: a seed replays the same
    // firings.
    double probability = 0;
    uint64_t seed = 0;
    // What the fault produces, for those that take a value (listed above).
    uint64_t value = 0;
};

class FaultInjector {
  public:
    void arm(DeviceFault fault, FaultSchedule schedule);
    // Whether an armed fault fires at this opportunity (and counts it). Cheap when nothing is
    // armed.
    bool fires(DeviceFault fault);
    // The same for a fault aimed at one subject (kContextRefused: a context type): only an
    // opportunity whose subject is the schedule's value counts.
    bool fires_for(DeviceFault fault, uint64_t subject);
    // The value of the schedule last armed (0 if none was, or after disarm()).
    uint64_t value(DeviceFault fault) const;

    // Guest memory refuses [gpa, gpa + size) to the device until disarm().
    void refuse_guest_memory(uint64_t gpa, uint64_t size);
    bool refuses(uint64_t gpa, uint64_t size) const;
    // A refused guest access took effect.
    void count_refusal() { ++fired_; }

    // Disarms every fault and the refused range; the count of fired faults stays.
    void disarm();
    uint64_t fired() const { return fired_; }

  private:
    struct ArmedFault {
        FaultSchedule schedule;
        std::mt19937_64 random;  // for a schedule with a probability
        uint64_t seen = 0;       // opportunities since arm()
        uint32_t fired = 0;      // firings since arm()
        bool armed = false;
    };
    std::array<ArmedFault, kDeviceFaultCount> faults_{};
    bool any_armed_ = false;
    std::optional<std::pair<uint64_t, uint64_t>> refused_guest_range_;
    uint64_t fired_ = 0;
};

// Guest RAM as the device sees it: the VMM's, with the refused range (if any) EFAULT.
// Lives for one locked operation of the device.
class FaultyGuestMemory final : public GuestMemory {
  public:
    FaultyGuestMemory(GuestMemory& memory, FaultInjector& faults)
        : memory_(memory), faults_(faults) {}
    Result<void> read(uint64_t gpa, std::span<std::byte> out) override;
    Result<void> write(uint64_t gpa, std::span<const std::byte> in) override;

  private:
    GuestMemory& memory_;
    FaultInjector& faults_;
};

}  // namespace gf::device
