// One end of the proxy protocol's UNIX stream socket: reads whole messages with their fds
// and sends RET replies. Every message is checked (proxy_protocol.h) before its payload is
// read; any violation ends the connection with a one-line reason.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <tl/expected.hpp>
#include <vector>

#include "base/unique_fd.h"
#include "vmm/proxy_protocol.h"

namespace gf::vmm {

// Why a connection ended. Only protocol_error and io_error are failures of the peer or the
// transport; peer_closed is the normal end (QEMU exited).
struct ConnectionEnd {
    enum class Kind { peer_closed, protocol_error, io_error };
    Kind kind;
    std::string reason;

    static ConnectionEnd closed(std::string reason) {
        return {Kind::peer_closed, std::move(reason)};
    }
    static ConnectionEnd protocol(std::string reason) {
        return {Kind::protocol_error, std::move(reason)};
    }
    static ConnectionEnd io(std::string reason) { return {Kind::io_error, std::move(reason)}; }
};

struct Message {
    Header header;
    std::array<std::byte, kMaxPayloadSize> payload{};  // the first header.size bytes are valid
    std::vector<UniqueFd> fds;

    ProxyCommand command() const { return static_cast<ProxyCommand>(header.cmd); }
    template <size_t N>
    std::span<const std::byte, N> payload_as() const {
        return std::span<const std::byte, N>(payload.data(), N);
    }
};

template <typename T>
using ConnectionResult = tl::expected<T, ConnectionEnd>;

class MessageChannel {
  public:
    explicit MessageChannel(UniqueFd socket) : socket_(std::move(socket)) {}

    // The next whole, well-formed message. Fails with peer_closed on EOF between messages,
    // protocol_error for a malformed or truncated message, io_error for a socket error.
    ConnectionResult<Message> receive();
    // A RET message carrying value.
    ConnectionResult<void> send_ret(uint64_t value);

    int fd() const { return socket_.get(); }

  private:
    // Reads exactly out.size() bytes. fds, if given, receives the fds that come with the
    // first bytes; fds anywhere else end the connection.
    ConnectionResult<void> read_exact(std::span<std::byte> out, std::vector<UniqueFd>* fds,
                                      const char* what);

    UniqueFd socket_;
};

}  // namespace gf::vmm
