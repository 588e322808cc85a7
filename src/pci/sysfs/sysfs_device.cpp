#include "pci/sysfs/sysfs_device.h"

#include <fcntl.h>
#include <linux/capability.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <vector>

#include "hw/pci_identity.h"
#include "pci/sysfs/bdf.h"
#include "pci/sysfs/diagnostic.h"
#include "pci/sysfs/sysfs_file.h"

namespace gf::pci::sysfs {

namespace {

// User-supplied or sysfs-supplied text inside a one-line message: control
// characters become '?', and it is cut short.
std::string printable(std::string_view text) {
    std::string out(text.substr(0, 64));
    std::ranges::replace_if(
        out, [](char c) { return c < 0x20 || c == 0x7f; }, '?');
    return out;
}

std::string hex(uint64_t value, int digits) {
    char text[24];
    std::snprintf(text, sizeof(text), "%0*llx", digits, static_cast<unsigned long long>(value));
    return text;
}

std::string devices_dir(const SysfsConfig& config) {
    return join(config.sysfs_root, "bus/pci/devices");
}

// CAP_SYS_ADMIN in the effective set (root has it unless it was dropped).
bool has_cap_sys_admin() {
    __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
    __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3] = {};
    if (::syscall(SYS_capget, &header, data) != 0) {
        return ::geteuid() == 0;
    }
    static_assert(CAP_SYS_ADMIN < 32);
    return (data[0].effective & (1u << CAP_SYS_ADMIN)) != 0;
}

// A one-value hex attribute (vendor, device, revision) no larger than `max`.
Result<uint64_t> read_id(const std::string& dir, const char* name, uint64_t max,
                         std::string* message) {
    const std::string file = join(dir, name);
    auto text = read_file(file, 64);
    if (!text) {
        return fail_with(message, text.error().value(),
                         "cannot read " + file + ": " + std::strerror(text.error().value()));
    }
    const auto value = parse_hex_attribute(*text);
    if (!value || *value > max) {
        return fail_with(message, EINVAL,
                         file + " holds \"" + printable(*text) + "\", not a 0x-hex id");
    }
    return *value;
}

bool is_goldfish(const std::string& dir) {
    const auto vendor = read_id(dir, "vendor", 0xFFFF, nullptr);
    const auto device = read_id(dir, "device", 0xFFFF, nullptr);
    return vendor && device && *vendor == hw::kVendorId && *device == hw::kDeviceId;
}

Result<std::string> checked_bdf(std::string_view text, std::string* message) {
    auto bdf = canonical_bdf(text);
    if (!bdf) {
        return fail_with(message, EINVAL,
                         "invalid PCI address \"" + printable(text) +
                             "\": expected DDDD:BB:DD.F (such as 0000:00:0b.0) or auto");
    }
    return bdf;
}

// EBUSY naming the kernel driver bound to the device, if there is one: its
// regions may be claimed and it would fight us over the registers.
Result<void> check_no_driver(const SysfsConfig& config, const std::string& dir,
                             const std::string& bdf, std::string* message) {
    std::error_code error;
    const std::filesystem::path link = join(dir, "driver");
    const auto target = std::filesystem::read_symlink(link, error);
    if (error) {
        if (error.value() == ENOENT) {
            return {};
        }
        return fail_with(message, error.value(),
                         "cannot read " + link.string() + ": " + error.message());
    }
    const std::string name = printable(target.filename().string());
    return fail_with(message, EBUSY,
                     "PCI device " + bdf + " is bound to the kernel driver " + name +
                         "; unbind it first: echo " + bdf + " > " + config.sysfs_root +
                         "/bus/pci/drivers/" + name + "/unbind");
}

Result<void> check_identity(const std::string& dir, const std::string& bdf, std::string* message) {
    const uint64_t vendor = GF_TRY(read_id(dir, "vendor", 0xFFFF, message));
    const uint64_t device = GF_TRY(read_id(dir, "device", 0xFFFF, message));
    const uint64_t revision = GF_TRY(read_id(dir, "revision", 0xFF, message));
    if (vendor != hw::kVendorId || device != hw::kDeviceId) {
        return fail_with(message, ENODEV,
                         "PCI device " + bdf + " is " + hex(vendor, 4) + ":" + hex(device, 4) +
                             ", not a goldfish address space device (" + hex(hw::kVendorId, 4) +
                             ":" + hex(hw::kDeviceId, 4) + ")");
    }
    if (revision != hw::kRevision) {
        return fail_with(message, ENODEV,
                         "goldfish address space device " + bdf + " has revision " +
                             std::to_string(revision) + "; only revision " +
                             std::to_string(hw::kRevision) + " is supported");
    }
    return {};
}

Result<BarResources> read_resources(const std::string& dir, const std::string& bdf,
                                    std::string* message) {
    const std::string file = join(dir, "resource");
    auto text = read_file(file);
    if (!text) {
        return fail_with(message, text.error().value(),
                         "cannot read " + file + ": " + std::strerror(text.error().value()));
    }
    std::string problem;
    auto bars = parse_resource_file(*text, &problem);
    if (!bars) {
        return fail_with(message, bars.error().value(), file + ": " + problem);
    }
    // The driver needs both BARs; say which one is missing here rather than
    // let probe fail with a bare ENXIO.
    for (const unsigned bar : {0u, 1u}) {
        if ((*bars)[bar].length == 0 || !(*bars)[bar].is_memory()) {
            return fail_with(message, ENXIO,
                             "BAR" + std::to_string(bar) + " of PCI device " + bdf +
                                 " is not an assigned memory BAR (" + file + ")");
        }
    }
    return bars;
}

// Opens `name` in the device directory read-write, as mapping it (resourceN)
// or writing the command register (config) will.
Result<UniqueFd> open_device_file(const std::string& dir, const char* name, std::string* message) {
    const std::string file = join(dir, name);
    UniqueFd fd(::open(file.c_str(), O_RDWR | O_CLOEXEC));
    if (fd.valid()) {
        return fd;
    }
    const int error = errno;
    std::string text = "cannot open " + file + ": " + std::strerror(error);
    if (error == ENOENT && std::string_view(name).starts_with("resource")) {
        text +=
            " (this kernel does not let userspace map the device's BARs: it needs PCI mmap "
            "support in sysfs and no kernel lockdown)";
    } else if (error == EACCES || error == EPERM) {
        text += " (run goldfish-asd as root)";
    }
    return fail_with(message, error, std::move(text));
}

// Locks and translates one page now, so a daemon that cannot learn physical
// addresses says so at start.
Result<void> check_pagemap(const SysfsConfig& config, const Pagemap& pagemap, size_t page_size,
                           std::string* message) {
    const LockedPage page = GF_TRY(LockedPage::allocate(page_size, config.prefer_hugetlb, message));
    GF_TRY(pagemap.physical_address(page.data(), message));
    return {};
}

}  // namespace

Result<std::string> find_device(const SysfsConfig& config, std::string_view bdf_or_auto,
                                std::string* message) {
    const std::string dir = devices_dir(config);
    if (bdf_or_auto != "auto") {
        std::string bdf = GF_TRY(checked_bdf(bdf_or_auto, message));
        std::error_code error;
        if (!std::filesystem::is_directory(join(dir, bdf), error)) {
            return fail_with(message, ENODEV,
                             "no PCI device " + bdf + " (" + join(dir, bdf) + " does not exist)");
        }
        return bdf;
    }
    std::error_code error;
    std::filesystem::directory_iterator entries(dir, error);
    if (error) {
        return fail_with(message, ENODEV, "cannot list " + dir + ": " + error.message());
    }
    std::vector<std::string> found;
    for (const auto& entry : entries) {
        // Names that are not canonical addresses are not PCI functions.
        const std::string name = entry.path().filename().string();
        const auto bdf = canonical_bdf(name);
        if (bdf && *bdf == name && is_goldfish(entry.path().string())) {
            found.push_back(name);
        }
    }
    std::ranges::sort(found);
    if (found.empty()) {
        return fail_with(message, ENODEV,
                         "no goldfish address space device (" + hex(hw::kVendorId, 4) + ":" +
                             hex(hw::kDeviceId, 4) + ") under " + dir);
    }
    if (found.size() > 1) {
        std::string list;
        for (const auto& bdf : found) {
            list += (list.empty() ? "" : ", ") + bdf;
        }
        return fail_with(message, EINVAL,
                         "found " + std::to_string(found.size()) +
                             " goldfish address space devices (" + list +
                             "): choose one with --pci BDF");
    }
    return found.front();
}

Result<std::unique_ptr<SysfsBackend>> open_backend(const SysfsConfig& config,
                                                   const std::string& bdf_text,
                                                   std::string* message) {
    std::string bdf = GF_TRY(checked_bdf(bdf_text, message));
    if (config.require_root && !has_cap_sys_admin()) {
        return fail_with(message, EPERM,
                         "goldfish-asd --pci must run as root (it needs CAP_SYS_ADMIN to enable "
                         "the device, map its BARs and read physical addresses)");
    }
    std::string dir = join(devices_dir(config), bdf);
    struct stat status {};
    if (::stat(dir.c_str(), &status) != 0 || !S_ISDIR(status.st_mode)) {
        return fail_with(message, ENODEV, "no PCI device " + bdf + " (" + dir + " does not exist)");
    }
    GF_TRY(check_no_driver(config, dir, bdf, message));
    GF_TRY(check_identity(dir, bdf, message));
    // Taken before anything touches the device, so a second daemon changes
    // nothing.
    PidLockFile lock = GF_TRY(lock_device(config.lock_dir, bdf, message));
    const BarResources bars = GF_TRY(read_resources(dir, bdf, message));
    GF_TRY(open_device_file(dir, "resource0", message));
    GF_TRY(open_device_file(dir, "resource1", message));
    UniqueFd config_fd = GF_TRY(open_device_file(dir, "config", message));
    const long page_size = ::sysconf(_SC_PAGESIZE);
    if (page_size <= 0) {
        return fail_with(message, EINVAL, "sysconf(_SC_PAGESIZE) failed");
    }
    Pagemap pagemap =
        GF_TRY(Pagemap::open(config.pagemap_path, static_cast<size_t>(page_size), message));
    if (config.check_pagemap) {
        GF_TRY(check_pagemap(config, pagemap, static_cast<size_t>(page_size), message));
    }
    return std::make_unique<SysfsBackend>(SysfsBackend::Parts{
        .bdf = std::move(bdf),
        .device_dir = std::move(dir),
        .lock = std::move(lock),
        .config = std::move(config_fd),
        .bars = bars,
        .pagemap = std::move(pagemap),
        .page_size = static_cast<size_t>(page_size),
        .prefer_hugetlb = config.prefer_hugetlb,
    });
}

Result<std::unique_ptr<pci::Device>> open_device(const SysfsConfig& config, const std::string& bdf,
                                                 std::string* message) {
    return std::make_unique<pci::Device>(GF_TRY(open_backend(config, bdf, message)));
}

}  // namespace gf::pci::sysfs
