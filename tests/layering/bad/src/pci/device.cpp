// pci/ including its own backend: the pci root holds no pci/emulated/.
#include "pci/device.h"
#include "pci/emulated/machine.h"
#include "pci/sysfs/bdf.h"
