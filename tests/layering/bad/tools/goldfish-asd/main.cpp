// The daemon's wiring may include anything it wires.
#include "device/address_space_device.h"
#include "driver/driver.h"
#include "pci/emulated/machine.h"
