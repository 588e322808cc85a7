// The node reaching past the driver into pci/.
#include "node/status.h"
#include "driver/driver.h"
  #  include "pci/device.h"
