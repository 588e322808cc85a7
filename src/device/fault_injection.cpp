#include "device/fault_injection.h"

#include <cerrno>

namespace gf::device {

void FaultInjector::arm(DeviceFault fault, FaultSchedule schedule) {
    if (schedule.every == 0) {
        schedule.every = 1;
    }
    faults_[static_cast<size_t>(fault)] =
        ArmedFault{schedule, std::mt19937_64(schedule.seed), 0, 0, true};
    any_armed_ = true;
}

bool FaultInjector::fires_for(DeviceFault fault, uint64_t subject) {
    if (!any_armed_) [[likely]] {
        return false;
    }
    const ArmedFault& armed = faults_[static_cast<size_t>(fault)];
    return armed.armed && armed.schedule.value == subject && fires(fault);
}

uint64_t FaultInjector::value(DeviceFault fault) const {
    // Kept after the last firing disarmed the fault: that firing still needs its value.
    return faults_[static_cast<size_t>(fault)].schedule.value;
}

bool FaultInjector::fires(DeviceFault fault) {
    if (!any_armed_) [[likely]] {
        return false;
    }
    ArmedFault& armed = faults_[static_cast<size_t>(fault)];
    if (!armed.armed) {
        return false;
    }
    const uint64_t seen = armed.seen++;
    const FaultSchedule& schedule = armed.schedule;
    if (seen < schedule.skip) {
        return false;
    }
    if (schedule.probability > 0) {
        // 53 random bits as a double in [0, 1): the same on every platform for one seed.
        const double draw = static_cast<double>(armed.random() >> 11) * 0x1p-53;
        if (draw >= schedule.probability) {
            return false;
        }
    } else if ((seen - schedule.skip) % schedule.every != 0) {
        return false;
    }
    ++armed.fired;
    ++fired_;
    if (schedule.times != 0 && armed.fired >= schedule.times) {
        armed.armed = false;
    }
    return true;
}

void FaultInjector::refuse_guest_memory(uint64_t gpa, uint64_t size) {
    refused_guest_range_ = std::pair{gpa, size};
}

bool FaultInjector::refuses(uint64_t gpa, uint64_t size) const {
    if (!refused_guest_range_) {
        return false;
    }
    const auto [start, length] = *refused_guest_range_;
    // Overlap of [gpa, gpa + size) and [start, start + length), without wrapping sums.
    const bool before = gpa < start && start - gpa >= size;
    const bool after = gpa >= start && gpa - start >= length;
    return size != 0 && length != 0 && !before && !after;
}

void FaultInjector::disarm() {
    faults_ = {};
    any_armed_ = false;
    refused_guest_range_.reset();
}

Result<void> FaultyGuestMemory::read(uint64_t gpa, std::span<std::byte> out) {
    if (faults_.refuses(gpa, out.size())) {
        faults_.count_refusal();
        return fail(EFAULT);
    }
    return memory_.read(gpa, out);
}

Result<void> FaultyGuestMemory::write(uint64_t gpa, std::span<const std::byte> in) {
    if (faults_.refuses(gpa, in.size())) {
        faults_.count_refusal();
        return fail(EFAULT);
    }
    return memory_.write(gpa, in);
}

}  // namespace gf::device
