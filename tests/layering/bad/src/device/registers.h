// The device model speaking the guest's UAPI.
#pragma once
#include <linux/goldfish_address_space.h>
#include "hw/registers.h"
