// A fake sysfs tree in a temporary directory: bus/pci/devices/<BDF>/ with the
// files the sysfs backend reads, as regular files (resourceN can be mmapped
// like a BAR), plus a lock directory and a fake pagemap.
#pragma once

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "pci/sysfs/sysfs_config.h"

namespace gf::pci::sysfs::testing {

inline constexpr uint64_t kBar0Start = 0xfe00'0000;
inline constexpr uint64_t kBar0Size = 0x1000;
inline constexpr uint64_t kBar1Start = 0x12'3456'7000;  // distinct low and high halves
inline constexpr uint64_t kBar1Size = uint64_t{16} << 30;
inline constexpr uint64_t kMem32Flags = 0x40200;       // MEM | SIZEALIGN
inline constexpr uint64_t kMem64PrefFlags = 0x14220c;  // MEM | PREFETCH | MEM_64 | ...
inline constexpr const char* kBdf = "0000:00:0b.0";

struct FakeBar {
    uint64_t start = 0;
    uint64_t size = 0;
    uint64_t flags = 0;
};

struct FakeDeviceSpec {
    uint16_t vendor = 0x607d;
    uint16_t device = 0xf153;
    uint8_t revision = 1;
    std::vector<FakeBar> bars = {{kBar0Start, kBar0Size, kMem32Flags},
                                 {kBar1Start, kBar1Size, kMem64PrefFlags}};
    uint64_t resource0_bytes = kBar0Size;  // size of the fake resource0 file
    uint64_t resource1_bytes = 4096;       // far below the BAR: never mapped whole
    uint16_t command = 0;                  // initial command register
};

inline std::string line(uint64_t start, uint64_t end, uint64_t flags) {
    char text[80];
    std::snprintf(text, sizeof(text), "0x%016llx 0x%016llx 0x%016llx\n",
                  static_cast<unsigned long long>(start), static_cast<unsigned long long>(end),
                  static_cast<unsigned long long>(flags));
    return text;
}

class FakeSysfs {
  public:
    FakeSysfs() {
        std::string pattern = (std::filesystem::temp_directory_path() / "gf-sysfs-XXXXXX").string();
        if (::mkdtemp(pattern.data()) == nullptr) {
            throw std::runtime_error("mkdtemp failed");
        }
        root_ = pattern;
        std::filesystem::create_directories(devices());
        std::filesystem::create_directories(root_ / "lock");
        // All zeros, as large as any pagemap: every entry reads frame 0.
        write_file(root_ / "pagemap", "");
        std::filesystem::resize_file(root_ / "pagemap", uint64_t{1} << 40);
    }
    FakeSysfs(const FakeSysfs&) = delete;
    FakeSysfs& operator=(const FakeSysfs&) = delete;
    ~FakeSysfs() {
        std::error_code ignored;
        std::filesystem::remove_all(root_, ignored);
    }

    std::filesystem::path root() const { return root_; }
    std::filesystem::path devices() const { return root_ / "bus/pci/devices"; }
    std::filesystem::path dir(const std::string& bdf = kBdf) const { return devices() / bdf; }
    std::filesystem::path file(const std::string& name, const std::string& bdf = kBdf) const {
        return dir(bdf) / name;
    }

    // For tests: no root needed, the fake pagemap, no start-up pagemap check.
    SysfsConfig config() const {
        SysfsConfig config;
        config.sysfs_root = root_.string();
        config.pagemap_path = (root_ / "pagemap").string();
        config.lock_dir = (root_ / "lock").string();
        config.require_root = false;
        config.prefer_hugetlb = false;
        config.check_pagemap = false;
        return config;
    }

    void add_device(const std::string& bdf = kBdf, const FakeDeviceSpec& spec = {}) {
        std::filesystem::create_directories(dir(bdf));
        write_file(file("vendor", bdf), hex(spec.vendor, 4) + "\n");
        write_file(file("device", bdf), hex(spec.device, 4) + "\n");
        write_file(file("revision", bdf), hex(spec.revision, 2) + "\n");
        write_file(file("enable", bdf), "0\n");
        std::string resource;
        for (unsigned i = 0; i < 13; ++i) {
            const FakeBar bar = i < spec.bars.size() ? spec.bars[i] : FakeBar{};
            resource += bar.size == 0 ? line(0, 0, bar.flags)
                                      : line(bar.start, bar.start + bar.size - 1, bar.flags);
        }
        write_file(file("resource", bdf), resource);
        std::string config(256, '\0');
        put16(config, 0, spec.vendor);
        put16(config, 2, spec.device);
        put16(config, 4, spec.command);
        config[8] = static_cast<char>(spec.revision);
        write_file(file("config", bdf), config);
        write_file(file("resource0", bdf), std::string(spec.resource0_bytes, '\0'));
        write_file(file("resource1", bdf), std::string(spec.resource1_bytes, '\0'));
    }

    static std::string read(const std::filesystem::path& path) {
        std::ifstream in(path, std::ios::binary);
        std::ostringstream out;
        out << in.rdbuf();
        return out.str();
    }
    static void write_file(const std::filesystem::path& path, const std::string& text) {
        std::ofstream out(path, std::ios::binary | std::ios::trunc);
        out << text;
    }
    uint32_t read32(const std::string& name, uint64_t offset, const std::string& bdf = kBdf) const {
        const std::string bytes = read(file(name, bdf));
        uint32_t value = 0;
        if (offset + 4 <= bytes.size()) {
            std::memcpy(&value, bytes.data() + offset, 4);
        }
        return value;
    }
    uint16_t command(const std::string& bdf = kBdf) const {
        return static_cast<uint16_t>(read32("config", 4, bdf) & 0xFFFF);
    }
    std::string enable_state(const std::string& bdf = kBdf) const {
        return read(file("enable", bdf));
    }

    static std::string hex(uint64_t value, int digits) {
        char text[24];
        std::snprintf(text, sizeof(text), "0x%0*llx", digits,
                      static_cast<unsigned long long>(value));
        return text;
    }

  private:
    static void put16(std::string& bytes, size_t offset, uint16_t value) {
        bytes[offset] = static_cast<char>(value & 0xFF);
        bytes[offset + 1] = static_cast<char>(value >> 8);
    }

    std::filesystem::path root_;
};

}  // namespace gf::pci::sysfs::testing
