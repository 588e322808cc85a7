// How the device reaches guest RAM (the ping pages): by guest-physical address, with every
// range checked against what the VMM says is RAM. Nothing outside it is ever dereferenced.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <utility>

#include "base/result.h"
#include "base/unique_fd.h"

namespace gf::device {

class GuestMemory {
  public:
    virtual ~GuestMemory();
    // Copies guest RAM at [gpa, gpa + out.size()) into out; EFAULT unless wholly inside RAM.
    virtual Result<void> read(uint64_t gpa, std::span<std::byte> out) = 0;
    // Copies in to guest RAM at [gpa, gpa + in.size()); EFAULT unless wholly inside RAM.
    virtual Result<void> write(uint64_t gpa, std::span<const std::byte> in) = 0;
};

// Guest RAM as one anonymous host mapping placed at a guest-physical base.
class RamGuestMemory : public GuestMemory {
  public:
    // size bytes of zeroed RAM at guest-physical [base, base + size); EINVAL for size 0 or a
    // range that wraps, ENOMEM if the host mapping fails.
    static Result<std::unique_ptr<RamGuestMemory>> create(uint64_t base, uint64_t size);
    RamGuestMemory(const RamGuestMemory&) = delete;
    RamGuestMemory& operator=(const RamGuestMemory&) = delete;

    Result<void> read(uint64_t gpa, std::span<std::byte> out) override;
    Result<void> write(uint64_t gpa, std::span<const std::byte> in) override;

    uint64_t base() const { return base_; }
    uint64_t size() const { return host_.length(); }
    // Host view of [gpa, gpa + len), or nullptr if that is not wholly inside RAM.
    std::byte* host_pointer(uint64_t gpa, uint64_t len);

  private:
    RamGuestMemory(uint64_t base, Mapping host) : base_(base), host_(std::move(host)) {}

    uint64_t base_;
    Mapping host_;
};

}  // namespace gf::device
