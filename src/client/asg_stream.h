// The guest side of an ASG (context type 0) stream, as gfxstream's AddressSpaceStream drives
// it (spec asg.md §2.1, §3.3-3.4; docs/contexts.md#the-guest-side). C++17, like the rest of
// the installed client headers: the same calls in the same
// order, the same write cursor and chunking, the same notify rules. It works on any node:
// goldfish-asd's, or a kernel driver's in a real guest (where a renderer consumes the
// stream).
//
// Unlike the reference, every wait is bounded (AsgStreamOptions::patience, then ETIMEDOUT),
// and a host that ended the stream (state EXIT: the file was revoked, the daemon stopped)
// gives EPIPE instead of a spin forever. One stream is used by one thread at a time.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "base/result.h"
#include "base/unique_fd.h"
#include "client/session.h"

namespace gf::client {

struct AsgStreamOptions {
    // How long one wait for the host (room in a ring, a reply) may take.
    std::chrono::milliseconds patience{std::chrono::seconds(30)};
};

// How write() sends its bytes.
enum class AsgTransfer {
    kAuto,         // the reference's choice: one type-1 chunk if it fits a step, else mode 3
    kDescriptors,  // type-1 chunks of at most one step each (transfer mode 1)
    kLarge,        // one mode-3 large transfer of the whole span
};

class AsgStream {
  public:
    struct Stats {
        uint64_t notifies = 0;       // NOTIFY_AVAILABLE pings sent
        uint64_t bytes_written = 0;  // handed to the host
        uint64_t bytes_read = 0;     // replies taken
    };

    // Opens the node and connects (the whole of spec §2.1, steps 1-9).
    static Result<AsgStream> open(const std::string& path = kDefaultNodePath,
                                  AsgStreamOptions options = {});
    // Connects over a session that has no context yet. On failure, what was claimed or
    // mapped is undone (the reference's order) and the session is closed.
    static Result<AsgStream> connect(Session session, AsgStreamOptions options = {});

    AsgStream(AsgStream&&) noexcept;
    AsgStream& operator=(AsgStream&&) noexcept;
    AsgStream(const AsgStream&) = delete;
    AsgStream& operator=(const AsgStream&) = delete;
    // close(), its result ignored.
    ~AsgStream();

    uint64_t ring_offset() const;  // BAR1 offsets the host returned (GET_RING, GET_BUFFER)
    uint64_t buffer_offset() const;
    uint32_t buffer_size() const;  // from the shared config, after SET_VERSION
    uint32_t write_step() const;   // flush_interval: the most one type-1 chunk carries
    uint64_t version() const;      // SET_VERSION's reply
    uint32_t host_state() const;   // the shared host state word (hw/asg_layout.h State)
    const Stats& stats() const;
    int fd() const;  // the node's open file (-1 once closed or moved from)

    // Zero-copy type 1: the write_step() bytes of the shared buffer at the write cursor (after
    // any mode-3 transfer has drained), then commit_chunk(n) sends the first n of them.
    Result<std::byte*> alloc_chunk();
    Result<void> commit_chunk(size_t size);

    // Sends `size` bytes (EINVAL if a mode-3 transfer would exceed 4 GiB - 1).
    Result<void> write(const void* data, size_t size, AsgTransfer how = AsgTransfer::kAuto);
    // Waits until the host has taken everything written (both rings empty).
    Result<void> flush();
    // Drains what was written, then waits for at least one reply byte and takes as many as
    // are there, up to `size` (the reference's speculativeRead).
    Result<size_t> read(void* out, size_t size);
    // Exactly `size` reply bytes.
    Result<void> read_fully(void* out, size_t size);

    // The reference's teardown: drain, unmap the ring and the buffer, unclaim both, close.
    // Reports the first failure; everything is undone either way. Later calls: EBADF.
    Result<void> close();

  private:
    struct State;
    explicit AsgStream(std::unique_ptr<State> state);
    std::unique_ptr<State> state_;
};

// One round trip against a host whose sink echoes (goldfish-asd --asg-sink echo): sends `size`
// bytes of `in` and reads as many bytes back into `out`. With kDescriptors it goes a step at a
// time, each step read back before the next is written, because the host's replies share the buffer
// with the guest's chunks (spec §3.3); kLarge and kAuto send it whole as write() would, then read
// it all.
Result<void> asg_echo(AsgStream& stream, const void* in, void* out, size_t size,
                      AsgTransfer how = AsgTransfer::kAuto);

}  // namespace gf::client
