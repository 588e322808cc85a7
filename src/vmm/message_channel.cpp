#include "vmm/message_channel.h"

#include <sys/socket.h>

#include <cerrno>
#include <cstring>

namespace gf::vmm {
namespace {

// Room for one more fd than allowed, so that "too many fds" is seen, not silently cut.
constexpr size_t kFdRoom = kMaxFds + 1;

// Takes ownership of every fd in a received control message.
void collect_fds(msghdr& msg, std::vector<UniqueFd>& out) {
    for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) {
            continue;
        }
        const size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (size_t i = 0; i < count; ++i) {
            int fd;
            // The kernel wrote `count` ints after the header; memcpy avoids misaligned reads.
            std::memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof fd);
            out.emplace_back(fd);
        }
    }
}

}  // namespace

ConnectionResult<void> MessageChannel::read_exact(std::span<std::byte> out,
                                                  std::vector<UniqueFd>* fds, const char* what) {
    size_t got = 0;
    while (got < out.size()) {
        alignas(cmsghdr) char control[CMSG_SPACE(kFdRoom * sizeof(int))];
        iovec iov{out.data() + got, out.size() - got};
        msghdr msg{};
        msg.msg_iov = &iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control;
        msg.msg_controllen = sizeof control;
        const ssize_t n = ::recvmsg(socket_.get(), &msg, MSG_CMSG_CLOEXEC);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            return tl::unexpected(
                ConnectionEnd::io(std::string("reading the socket: ") + std::strerror(errno)));
        }
        // Own whatever fds arrived before judging anything, so none leaks.
        std::vector<UniqueFd> arrived;
        collect_fds(msg, arrived);
        if ((msg.msg_flags & MSG_CTRUNC) != 0) {
            return tl::unexpected(ConnectionEnd::protocol(
                std::string("more than ") + std::to_string(kMaxFds) + " fds with a message"));
        }
        if (!arrived.empty()) {
            // QEMU sends fds with the first bytes of a message; later ones belong to nothing.
            if (fds == nullptr || got != 0) {
                return tl::unexpected(ConnectionEnd::protocol(std::string("fds arrived with the ") +
                                                              what + " after its first bytes"));
            }
            for (auto& fd : arrived) {
                fds->push_back(std::move(fd));
            }
        }
        if (n == 0) {
            if (got == 0 && fds != nullptr && fds->empty()) {
                return tl::unexpected(ConnectionEnd::closed("peer closed the connection"));
            }
            return tl::unexpected(ConnectionEnd::protocol(
                std::string("truncated message: connection closed after ") + std::to_string(got) +
                " of " + std::to_string(out.size()) + " " + what + " bytes"));
        }
        got += static_cast<size_t>(n);
    }
    return {};
}

ConnectionResult<Message> MessageChannel::receive() {
    Message message;
    std::array<std::byte, kHeaderSize> header{};
    if (auto r = read_exact(header, &message.fds, "header"); !r) {
        return tl::unexpected(r.error());
    }
    message.header = Header::decode(header);
    if (auto problem = check_header(message.header, message.fds.size())) {
        return tl::unexpected(ConnectionEnd::protocol(*problem));
    }
    // check_header bounded the size by kMaxPayloadSize, the size of the buffer.
    const auto payload = std::span(message.payload).first(message.header.size);
    if (auto r = read_exact(payload, nullptr, "payload"); !r) {
        return tl::unexpected(r.error());
    }
    return message;
}

ConnectionResult<void> MessageChannel::send_ret(uint64_t value) {
    std::array<std::byte, kHeaderSize + kRetPayloadSize> bytes{};
    const auto header = Header{static_cast<int32_t>(ProxyCommand::RET), kRetPayloadSize}.encode();
    std::memcpy(bytes.data(), header.data(), header.size());
    std::memcpy(bytes.data() + kHeaderSize, &value, sizeof value);
    size_t sent = 0;
    while (sent < bytes.size()) {
        // MSG_NOSIGNAL: a peer that went away is an error value here, not SIGPIPE.
        const ssize_t n =
            ::send(socket_.get(), bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            return tl::unexpected(
                ConnectionEnd::io(std::string("sending a reply: ") + std::strerror(errno)));
        }
        sent += static_cast<size_t>(n);
    }
    return {};
}

}  // namespace gf::vmm
