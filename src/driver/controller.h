// The driver's side of the control BAR: one method per device command, each
// running its whole register sequence under the register lock, since the
// registers are one set shared by every open file.
#pragma once

#include <cstdint>
#include <optional>

#include "base/mutex.h"
#include "base/result.h"
#include "driver/hardware.h"
#include "pci/bar.h"

namespace gf::driver {

using ControlBar = pci::Bar<kControlBarMinSize>;

// A block as the device reported it; not yet validated.
struct HostBlock {
    uint64_t offset = 0;
    uint64_t size = 0;
};

class Controller {
  public:
    explicit Controller(ControlBar bar);
    Controller(const Controller&) = delete;
    Controller& operator=(const Controller&) = delete;

    // Every command fails with ENXIO once shutdown() has dropped the BAR.
    Result<void> set_guest_page_size(uint32_t page_size);
    Result<void> set_phys_start(uint64_t phys_start);
    // STATUS errors as positive errno; a STATUS above INT_MAX is EIO.
    Result<HostBlock> allocate_block(uint64_t size);
    Result<void> deallocate_block(uint64_t offset);
    // STATUS is not meaningful for these three (old hosts report ENOSYS on
    // success): GEN_HANDLE is checked by HANDLE, TELL by reading the address back.
    Result<uint32_t> gen_handle();  // EINVAL: the device gave the invalid handle
    Result<void> destroy_handle(uint32_t handle);
    Result<void> tell_ping_info_addr(uint32_t handle, uint64_t phys);  // EINVAL: read-back differs
    Result<void> ping(uint32_t handle);

    // Unmaps BAR0 and releases its region (unbind); later commands are ENXIO.
    void shutdown();

  private:
    Result<ControlBar*> bar_locked() GF_REQUIRES(registers_lock_);
    Result<void> status_locked(const ControlBar& bar) GF_REQUIRES(registers_lock_);

    Mutex registers_lock_;
    std::optional<ControlBar> bar_ GF_GUARDED_BY(registers_lock_);
};

}  // namespace gf::driver
