#include "driver/driver.h"

#include <algorithm>
#include <climits>
#include <utility>

#include "base/checked.h"
#include "driver/file.h"
#include "driver/hardware.h"
#include "driver/runtime.h"

namespace gf::driver {

namespace {

// ENODEV unless the function is in the match table. Runs before enabling, as
// the Rust driver checks the revision first.
Result<void> match(pci::Device& device) {
    const uint16_t vendor = GF_TRY(device.vendor_id());
    const uint16_t device_id = GF_TRY(device.device_id());
    const uint8_t revision = GF_TRY(device.revision());
    const bool matched = std::ranges::any_of(kMatchTable, [&](const DeviceMatch& entry) {
        return entry.vendor == vendor && entry.device == device_id && entry.revision == revision;
    });
    if (!matched) {
        return fail(ENODEV);
    }
    return {};
}

}  // namespace

Result<std::unique_ptr<Driver>> Driver::probe(pci::Device& device, const DriverConfig& config) {
    GF_TRY(match(device));
    // Each owner undoes its step if a later one fails: no unwind ladder.
    pci::ScopedEnable enabled = GF_TRY(pci::ScopedEnable::create(device));
    ControlBar control =
        GF_TRY(ControlBar::create(device, kControlBar, "goldfish_address_space/control"));
    pci::SharedMemoryBar area =
        GF_TRY(pci::SharedMemoryBar::create(device, kAreaBar, "goldfish_address_space/area"));
    // Platform-supplied: block addresses are start + offset, so the whole BAR
    // must be addressable.
    if (!checked_add(area.phys_start(), area.size())) {
        return fail(EOVERFLOW);
    }
    const size_t page_size = device.page_size();
    if (page_size == 0 || page_size > UINT32_MAX) {
        return fail(EINVAL);
    }

    auto runtime = std::make_shared<Runtime>(device, std::move(control), area.phys_start(),
                                             area.size(), config);
    GF_TRY(runtime->controller.set_guest_page_size(static_cast<uint32_t>(page_size)));
    GF_TRY(runtime->controller.set_phys_start(area.phys_start()));
    // Published last: open() can only run once everything above is in place.
    return std::make_unique<Driver>(PrivateTag{}, std::move(runtime), std::move(enabled),
                                    std::move(area));
}

Driver::Driver(PrivateTag, std::shared_ptr<Runtime> runtime, pci::ScopedEnable enabled,
               pci::SharedMemoryBar area)
    : runtime_(std::move(runtime)),
      bar1_phys_start_(area.phys_start()),
      bar1_size_(area.size()),
      enabled_(std::move(enabled)),
      area_(std::move(area)) {}

Driver::~Driver() {
    remove();
}

Result<std::shared_ptr<File>> Driver::open(const OpenOptions& options) {
    // area_ outlives the open: remove() waits for running operations before resetting it.
    return File::open(runtime_, options.memory && area_ ? &*area_ : nullptr);
}

void Driver::remove() {
    std::call_once(removed_, [this] {
        runtime_->gate.close_and_wait();
        runtime_->revoke_all_files();
        enabled_.reset();                 // disable the device,
        runtime_->controller.shutdown();  // then drop BAR0
        area_.reset();                    // and BAR1.
    });
}

DriverStats Driver::stats() const {
    return runtime_->stats();
}

}  // namespace gf::driver
