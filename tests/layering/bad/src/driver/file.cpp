// The driver reaching past pci/ into the device model.
#include "driver/file.h"

#include <linux/goldfish_address_space.h>

#include "base/result.h"
#include "device/bar1_memory.h"
#include "pci/bar.h"
