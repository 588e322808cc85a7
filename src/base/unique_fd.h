// UniqueFd and Mapping: move-only owners of a file descriptor and of an
// mmap'ed range, so no code pairs close/munmap by hand.
#pragma once

#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <utility>

#include "base/result.h"

namespace gf {

// An owned file descriptor: closed exactly once, by its destructor or reset().
class UniqueFd {
  public:
    UniqueFd() = default;
    explicit UniqueFd(int fd) : fd_(fd) {}
    UniqueFd(UniqueFd&& other) noexcept : fd_(other.release()) {}
    UniqueFd& operator=(UniqueFd&& other) noexcept {
        if (this != &other) {
            reset(other.release());
        }
        return *this;
    }
    UniqueFd(const UniqueFd&) = delete;
    UniqueFd& operator=(const UniqueFd&) = delete;
    ~UniqueFd() { reset(); }

    int get() const { return fd_; }
    bool valid() const { return fd_ >= 0; }
    explicit operator bool() const { return valid(); }

    // Gives up ownership without closing.
    int release() { return std::exchange(fd_, -1); }
    void reset(int fd = -1) {
        if (fd_ >= 0) {
            ::close(fd_);
        }
        fd_ = fd;
    }

  private:
    int fd_ = -1;
};

// An mmap'ed range; unmapped when destroyed. An empty Mapping owns nothing.
class Mapping {
  public:
    Mapping() = default;
    Mapping(void* address, size_t length) : address_(address), length_(length) {}
    // An owned mmap(nullptr, length, prot, flags, fd, offset), or mmap's errno.
    static Result<Mapping> map(size_t length, int prot, int flags, int fd, off_t offset) {
        void* address = ::mmap(nullptr, length, prot, flags, fd, offset);
        if (address == MAP_FAILED) {
            return fail(errno);
        }
        return Mapping(address, length);
    }
    Mapping(Mapping&& other) noexcept
        : address_(std::exchange(other.address_, nullptr)),
          length_(std::exchange(other.length_, 0)) {}
    Mapping& operator=(Mapping&& other) noexcept {
        if (this != &other) {
            reset();
            address_ = std::exchange(other.address_, nullptr);
            length_ = std::exchange(other.length_, 0);
        }
        return *this;
    }
    Mapping(const Mapping&) = delete;
    Mapping& operator=(const Mapping&) = delete;
    ~Mapping() { reset(); }

    std::byte* data() const { return static_cast<std::byte*>(address_); }
    size_t length() const { return length_; }
    bool empty() const { return address_ == nullptr; }
    void reset() {
        if (address_ != nullptr) {
            ::munmap(std::exchange(address_, nullptr), std::exchange(length_, 0));
        }
    }

  private:
    void* address_ = nullptr;
    size_t length_ = 0;
};

}  // namespace gf
