// Where the sysfs backend finds things; every path is a parameter so the whole
// backend runs against a fake tree in tests.
#pragma once

#include <string>

namespace gf::pci::sysfs {

struct SysfsConfig {
    std::string sysfs_root = "/sys";
    std::string pagemap_path = "/proc/self/pagemap";
    // Holds goldfish-asd-pci-<BDF>.lock, the one-owner-per-device lock.
    std::string lock_dir = "/var/tmp";
    // Refuse to start without CAP_SYS_ADMIN (enable, config writes, BAR maps
    // and pagemap frame numbers all need it), with a message saying so.
    bool require_root = true;
    // Ping pages: try a 2 MiB hugetlb page first, then a locked normal page.
    bool prefer_hugetlb = true;
    // At open, lock one page and translate it through the pagemap, so a
    // daemon that cannot learn physical addresses fails at start with a clear
    // message rather than at the first open() of the node.
    bool check_pagemap = true;
};

}  // namespace gf::pci::sysfs
