// The register map the device decodes is the hardware's one (hw/registers.h,
// docs/device.md#registers); the device's code names it in its own namespace.
#pragma once

#include "hw/registers.h"

namespace gf::device {

using Reg = hw::Register;
using hw::Command;
using hw::kAllOnes;
using hw::kInvalidHandle;

}  // namespace gf::device
