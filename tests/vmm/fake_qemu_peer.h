// QEMU's side of the proxy protocol, for tests: sends what x-pci-proxy-dev sends and reads
// the device's RET replies. Raw sends let tests break the protocol on purpose.
#pragma once

#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

#include "base/unique_fd.h"
#include "vmm/proxy_protocol.h"

namespace gf::vmm::testing {

// Sends bytes with optional fds in one sendmsg; throws on failure (tests only).
inline void send_with_fds(int socket, std::span<const std::byte> bytes, std::span<const int> fds) {
    iovec iov{const_cast<std::byte*>(bytes.data()), bytes.size()};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    std::vector<char> control;
    if (!fds.empty()) {
        control.resize(CMSG_SPACE(fds.size() * sizeof(int)));
        msg.msg_control = control.data();
        msg.msg_controllen = control.size();
        cmsghdr* c = CMSG_FIRSTHDR(&msg);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(fds.size() * sizeof(int));
        std::memcpy(CMSG_DATA(c), fds.data(), fds.size() * sizeof(int));
    }
    if (::sendmsg(socket, &msg, MSG_NOSIGNAL) != static_cast<ssize_t>(bytes.size())) {
        throw std::runtime_error("sendmsg failed");
    }
}

// A header (with any size field) followed by a payload.
inline std::vector<std::byte> frame(int32_t cmd, uint64_t size,
                                    std::span<const std::byte> payload) {
    const auto header = Header{cmd, size}.encode();
    std::vector<std::byte> bytes(kHeaderSize + payload.size());
    std::memcpy(bytes.data(), header.data(), kHeaderSize);
    if (!payload.empty()) {
        std::memcpy(bytes.data() + kHeaderSize, payload.data(), payload.size());
    }
    return bytes;
}

inline std::vector<std::byte> frame(ProxyCommand cmd, std::span<const std::byte> payload) {
    return frame(static_cast<int32_t>(cmd), payload.size(), payload);
}

// A memfd of `size` bytes, also mapped here so tests can see what the device wrote.
class Memfd {
  public:
    explicit Memfd(size_t size) : size_(size) {
        fd_ = UniqueFd(::memfd_create("test-guest-ram", MFD_CLOEXEC));
        if (!fd_ || ::ftruncate(fd_.get(), static_cast<off_t>(size)) != 0) {
            throw std::runtime_error("memfd");
        }
        void* p = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd_.get(), 0);
        if (p == MAP_FAILED) {
            throw std::runtime_error("mmap");
        }
        data_ = static_cast<std::byte*>(p);
    }
    ~Memfd() { ::munmap(data_, size_); }
    Memfd(const Memfd&) = delete;
    Memfd& operator=(const Memfd&) = delete;

    int fd() const { return fd_.get(); }
    std::byte* data() { return data_; }
    size_t size() const { return size_; }
    template <typename T>
    T load(size_t offset) const {
        T v;
        std::memcpy(&v, data_ + offset, sizeof v);
        return v;
    }
    template <typename T>
    void store(size_t offset, T v) {
        std::memcpy(data_ + offset, &v, sizeof v);
    }

  private:
    UniqueFd fd_;
    size_t size_;
    std::byte* data_ = nullptr;
};

struct SysmemSlot {
    uint64_t gpa;
    uint64_t size;
    int64_t offset;
    int fd;
};

class FakeQemu {
  public:
    explicit FakeQemu(UniqueFd socket) : socket_(std::move(socket)) {}

    int fd() const { return socket_.get(); }
    void close() { socket_.reset(); }
    void shutdown_write() { ::shutdown(socket_.get(), SHUT_WR); }

    void send_raw(std::span<const std::byte> bytes, std::span<const int> fds = {}) {
        send_with_fds(socket_.get(), bytes, fds);
    }
    void send(ProxyCommand cmd, std::span<const std::byte> payload, std::span<const int> fds = {}) {
        send_raw(frame(cmd, payload), fds);
    }

    // The value of the next RET, or nullopt if the device closed the connection or sent
    // anything else.
    std::optional<uint64_t> receive_ret() {
        std::array<std::byte, kHeaderSize + kRetPayloadSize> bytes{};
        size_t got = 0;
        while (got < bytes.size()) {
            const ssize_t n = ::recv(socket_.get(), bytes.data() + got, bytes.size() - got, 0);
            if (n <= 0) {
                return std::nullopt;
            }
            got += static_cast<size_t>(n);
        }
        const Header h = Header::decode(std::span(bytes).first<kHeaderSize>());
        if (h.cmd != static_cast<int32_t>(ProxyCommand::RET) || h.size != kRetPayloadSize) {
            return std::nullopt;
        }
        uint64_t v;
        std::memcpy(&v, bytes.data() + kHeaderSize, sizeof v);
        return v;
    }

    // True once the device has closed its end (and sent nothing more).
    bool closed_by_device() {
        std::byte b;
        return ::recv(socket_.get(), &b, 1, 0) == 0;
    }

    uint64_t call(ProxyCommand cmd, std::span<const std::byte> payload) {
        send(cmd, payload);
        auto ret = receive_ret();
        if (!ret) {
            throw std::runtime_error("no RET for " + command_name(static_cast<int32_t>(cmd)));
        }
        return *ret;
    }

    uint32_t config_read(uint32_t address, int length) {
        const auto payload = ConfigAccess{address, 0, length}.encode();
        return static_cast<uint32_t>(call(ProxyCommand::PCI_CFGREAD, payload));
    }
    uint64_t config_write(uint32_t address, uint32_t value, int length) {
        const auto payload = ConfigAccess{address, value, length}.encode();
        return call(ProxyCommand::PCI_CFGWRITE, payload);
    }
    uint64_t bar_read(uint64_t address, uint32_t size, bool memory = true) {
        const auto payload = BarAccess{address, 0, size, memory}.encode();
        return call(ProxyCommand::BAR_READ, payload);
    }
    uint64_t bar_write(uint64_t address, uint64_t value, uint32_t size, bool memory = true) {
        const auto payload = BarAccess{address, value, size, memory}.encode();
        return call(ProxyCommand::BAR_WRITE, payload);
    }
    uint64_t device_reset() { return call(ProxyCommand::DEVICE_RESET, {}); }

    // No reply comes for these two: follow with a call to know they were handled.
    void sync_sysmem(const std::vector<SysmemSlot>& slots) {
        SyncSysmem m;
        std::vector<int> fds;
        for (size_t i = 0; i < slots.size(); ++i) {
            m.gpas[i] = slots[i].gpa;
            m.sizes[i] = slots[i].size;
            m.offsets[i] = slots[i].offset;
            fds.push_back(slots[i].fd);
        }
        send(ProxyCommand::SYNC_SYSMEM, m.encode(), fds);
    }
    void set_irqfd(int irq, int resample) {
        const int fds[] = {irq, resample};
        send(ProxyCommand::SET_IRQFD, {}, fds);
    }

  private:
    UniqueFd socket_;
};

}  // namespace gf::vmm::testing
