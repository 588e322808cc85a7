// The node reaching past the driver into pci/ (visible to it through the driver's roots).
#include "node/status.h"
#include "driver/driver.h"
  #  include "pci/device.h"
