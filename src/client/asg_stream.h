// The guest side of an ASG (context type 0) stream, as gfxstream's AddressSpaceStream drives
// it (spec asg.md §2.1, §3.3-3.4; docs/contexts.md#the-guest-side), call for call: the
// connect sequence and its undo order, asg_context_create's header writes, type1Write,
// writeFully, writeFullyAsync, readFully with its 512 KiB read buffer, allocBuffer and
// commitBuffer with the temporary buffer, the notify rules and the teardown. The project's
// one guest: the node tests, goldfish-as and the benchmarks run it on a node's file, the
// device tests and the fuzzer on the device model (AsgTransport). C++17, like the rest of
// the installed client headers.
//
// Where it differs from the reference, it is for safety: every wait is bounded
// (AsgStreamOptions::patience, then ETIMEDOUT) and, while it lasts, checks every 20 ms that
// the file still answers (a GET_RING ping, which wakes no consumer); a host that ended the
// stream (state EXIT: the file was revoked, the daemon stopped) gives EPIPE, and in_error
// gives EIO, where the reference spins forever or carries on. One stream is used by one
// thread at a time.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "base/result.h"
#include "base/unique_fd.h"
#include "client/asg_transport.h"
#include "client/session.h"

namespace gf::client {

struct AsgStreamOptions {
    // How long one wait for the host (room in a ring, a reply) may take.
    std::chrono::milliseconds patience{std::chrono::seconds(30)};
    // Test hook: runs on the stream's thread right after each NOTIFY_AVAILABLE ping the stream
    // sends, with the number sent so far (this one included). A test holds the guest there
    // (as a preempted guest thread) or blocks until the host reached some state.
    std::function<void(uint64_t notifies)> after_notify;
};

// How write() sends its bytes.
enum class AsgTransfer {
    kAuto,         // the reference's choice: one type-1 chunk if it fits a step, else mode 3
    kDescriptors,  // type-1 chunks of at most one step each (transfer mode 1)
    kLarge,        // one mode-3 large transfer of the whole span (writeFully)
    kLargeAsync,   // the same without waiting for the drain (writeFullyAsync)
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
    // Connects over any transport (a node's file, or the device model in the tests).
    static Result<AsgStream> connect(std::unique_ptr<AsgTransport> transport,
                                     AsgStreamOptions options = {});

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

    // The reference's allocBuffer: at least `min_size` bytes to fill, after any mode-3
    // transfer has drained. Up to write_step() it is the shared buffer at the write cursor;
    // past it, a private temporary buffer that commit_buffer() sends with write_fully().
    Result<std::byte*> alloc_buffer(size_t min_size);
    // The reference's commitBuffer: sends the first `size` bytes of what alloc_buffer() gave
    // (type1Write and the cursor's step, or write_fully() of the temporary buffer).
    Result<void> commit_buffer(size_t size);
    // alloc_buffer(0), and commit_buffer() of at most write_step() bytes (else EINVAL).
    Result<std::byte*> alloc_chunk();
    Result<void> commit_chunk(size_t size);

    // Sends `size` bytes (EINVAL if a mode-3 transfer would exceed 4 GiB - 1). kAuto is what
    // an encoder does: alloc_buffer(size), copy, commit_buffer(size).
    Result<void> write(const void* data, size_t size, AsgTransfer how = AsgTransfer::kAuto);
    // The reference's writeFully: a mode-3 transfer in quarter-buffer chunks, pinging at most
    // once while it pushes them, then once more unless the host is RENDERING; it waits for
    // the drain (re-pinging a sleeping host) and sets transfer_mode back to 1.
    Result<void> write_fully(const void* data, size_t size);
    // The reference's writeFullyAsync: half-buffer chunks, and transfer_mode back to 1 as soon
    // as the last chunk is in the ring, without waiting for the host to take it.
    Result<void> write_fully_async(const void* data, size_t size);
    // Waits until the host has taken everything written (both rings empty): what the
    // reference does before it reads and when it is destroyed.
    Result<void> flush();
    // Reply bytes not yet taken: first what read_fully() buffered, else the reference's
    // speculativeRead (drain what was written, then wait for at least one reply byte and
    // take as many as are there, up to `size`).
    Result<size_t> read(void* out, size_t size);
    // Exactly `size` reply bytes, the reference's readFully: through a private 512 KiB read
    // buffer, so it may take more of the reply ring than it returns.
    Result<void> read_fully(void* out, size_t size);

    // The reference's teardown: drain, unmap the ring and the buffer, unclaim both, close.
    // Reports the first failure; everything is undone either way. Later calls: EBADF.
    Result<void> close();
    // As a killed guest: unmap, unclaim and close without draining.
    Result<void> close_abruptly();

    // For tests that play a hostile guest beside this one: the shared memory as mapped, the
    // size of the ring views over the buffer (a power of two), and the transport, for pings
    // of their own. Null or 0 once closed.
    std::byte* ring_memory() const;
    std::byte* buffer_memory() const;
    uint32_t view_size() const;
    AsgTransport* transport() const;

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
