// pci::BarFile: one user's private window onto a memory BAR, as a file the user can map.
// It is what a kernel driver's mmap does with remap_pfn_range of BAR pages, turned around
// for a platform where users map files: the range of the BAR a user may see is bound into
// the user's own file, so a mapping of any offset of it only ever shows that user's memory.
// Destroying it unbinds everything and closes the file.
#pragma once

#include <cstdint>

#include "base/result.h"
#include "pci/backend.h"

namespace gf::pci {

class Device;
class SharedMemoryBar;

class BarFile {
  public:
    // ENODEV where the platform cannot give each user a view of its own (a real device).
    static Result<BarFile> open(Device& device, const SharedMemoryBar& bar);
    BarFile(BarFile&& other) noexcept;
    BarFile& operator=(BarFile&&) = delete;
    BarFile(const BarFile&) = delete;
    BarFile& operator=(const BarFile&) = delete;
    ~BarFile();

    // The file to map (the node registers it for passthrough). Owned by the BarFile.
    int fd() const { return handle_.fd; }
    // [offset, offset + size) of the BAR becomes part of this file; see Backend for errors.
    Result<void> bind(uint64_t offset, uint64_t size, BarBinding how);
    void unbind(uint64_t offset, uint64_t size);
    // True once no user maps the file writably: everything is then taken out of it.
    Result<bool> retire();

  private:
    BarFile(Device& device, BarFileHandle handle) : device_(&device), handle_(handle) {}

    Device* device_;
    BarFileHandle handle_;
};

}  // namespace gf::pci
