// clang-format off
#include "node/status.h"
#include "driver/driver.h"
  #  include "pci/device.h"  // node reaching past the driver into pci/, spaced oddly on purpose
