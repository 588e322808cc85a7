// What an ASG guest needs of the device, and nothing more: the create ping, command pings,
// claims, and mappings of BAR1 ranges (spec asg.md §2.1). AsgStream drives the protocol over
// it, so the same guest runs on a node's file (fd_transport) and, in the tests and the
// fuzzer, on the device model driven through its registers. C++17, like the rest of the
// installed client headers.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

#include "base/result.h"
#include "client/session.h"

namespace gf::client {

class AsgTransport {
  public:
    virtual ~AsgTransport() = default;

    // The create ping for ASG (context type 0). EPROTO if the host refused the type.
    virtual Result<void> create_context() = 0;
    // A ping on the created context with only `metadata` (the command) and `size` set, as
    // the reference sends them; the host's reply.
    virtual Result<Ping> command(uint64_t metadata, uint64_t size = 0) = 0;
    virtual Result<void> claim_shared(uint64_t offset, uint64_t size) = 0;
    virtual Result<void> unclaim_shared(uint64_t offset) = 0;
    // BAR1 [offset, offset + size), claimed before, shared with the host and writable.
    virtual Result<std::byte*> map(uint64_t offset, uint64_t size) = 0;
    virtual void unmap(std::byte* memory, uint64_t size) = 0;
    // Ends the handle (the file's close: DESTROY_HANDLE). Only destruction may follow.
    virtual Result<void> close() = 0;
    // The node's open file, or -1 for a transport without one.
    virtual int fd() const { return -1; }
};

// Over an open file of a node (goldfish-asd's, or a kernel driver's in a real guest).
std::unique_ptr<AsgTransport> fd_transport(Session session);

}  // namespace gf::client
