// Invariants of the driver and the device model together, shared by the fuzzer, the stress
// test and the fault tests. Each check returns the violations it found (empty: all hold),
// so gtest can print them and the fuzzer can trap on them.
//
// Three levels:
//  - always: the device's books are self-consistent (the area tiles BAR1, allocated ranges are
//    exactly the guest blocks plus the host regions, no two overlap, mappings belong to live
//    contexts or slabs, slabs tile into free pieces and type-6 pieces, at most one empty
//    slab), and each file's books are (live, distinct handles, ranges inside BAR1, the
//    driver's counters equal the files' sums);
//  - exact: nobody but the driver issued device commands, so the device holds exactly what
//    the files hold (handles, ping pages, blocks) and the driver's stats equal the device's.
//    Not checked: that a type-5 mapping lies in a block of the file whose context made it.
//    The device cannot know (ALLOCATE_BLOCK carries no handle) and the driver does not read
//    ping contents, so one file may back memory in another file's block
//    (docs/device.md#hardening leaves per-handle ownership open);
//  - quiescent: every file is closed: no handles, contexts, blocks or driver state, ping
//    pages all returned, and the area is free again except at most one empty 64 MiB type-6
//    slab, which the device keeps by design (docs/contexts.md#slabs: the GC keeps one free
//    slab); it is counted as a host region and must be backed by its pool mapping alone.
#pragma once

#include <cstddef>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "device/address_space_device.h"
#include "driver/driver.h"
#include "driver/file.h"
#include "pci/emulated/machine.h"

namespace gf::stress {

using Violations = std::vector<std::string>;

struct CheckOptions {
    // No command reached the device behind the driver's back (no hostile peer so far).
    bool exact = true;
};

// The device's books alone.
Violations check_device(const device::DeviceBooks& books);
// The device's books, the files' books and the driver's counters. `files` are the open
// files the caller holds (each one exactly once); the system must be idle while it runs.
Violations check(pci::emulated::Machine& machine, const driver::Driver& driver,
                 std::span<const std::shared_ptr<driver::File>> files, CheckOptions options = {});
struct QuiescentOptions {
    // clean_up_as_peer() ran: every block is gone, abandoned ones included.
    bool peer_cleaned_up = false;
};
// After every file is closed (and, if a peer meddled, clean_up_as_peer()). Blocks the driver
// abandoned (the device refused to free them at a release) are the only ones allowed.
Violations check_quiescent(pci::emulated::Machine& machine, const driver::Driver& driver,
                           size_t free_dma_pages_at_start, QuiescentOptions options = {});

// What a VMM peer would do to end its own meddling, through the registers only:
// DESTROY_HANDLE every live handle, then DEALLOCATE_BLOCK every guest block.
void clean_up_as_peer(device::AddressSpaceDevice& device);

// One line per violation, for failure messages.
std::string describe(const Violations& violations);

}  // namespace gf::stress
