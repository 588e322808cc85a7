#include "pci/shared_memory_bar.h"

#include <utility>

namespace gf::pci {

Result<SharedMemoryBar> SharedMemoryBar::create(Device& device, unsigned bar,
                                                std::string_view name) {
    return SharedMemoryBar(GF_TRY(MappedBar::create(device, bar, name, /*min_length=*/1)));
}

SharedMemoryBar::SharedMemoryBar(MappedBar region) : region_(std::move(region)) {}

}  // namespace gf::pci
