// libFuzzer harness: the ASG consumer (device/asg_context.h) against a hostile guest. Each
// input builds a device with a 64 KiB buffer and a 16 KiB step, a guest block, and two ASG
// contexts made through the registers by the project's one guest (client::AsgStream over the
// in-process transport of tests/device/asg_device_transport.h: create ping, GET_RING,
// GET_BUFFER, claims, maps, asg_context_create, SET_VERSION, mode 1). The second context, the
// guest block (backed by a type-5 context) and the free bottom of the ring block (right above
// the first buffer) are filled with sentinel bytes, all >= 0x80. The input is then a program
// of operations on the first context's shared memory (format below, seeds in
// fuzz/corpus/asg_consumer/, made by fuzz/make_asg_corpus.py) while its consumer runs on its
// own thread. Every byte the harness puts into that buffer is below 0x80, so a sink (wrapped
// in a check) that sees a byte >= 0x80 was handed memory from outside the context.
//
// After the program: the guest goes quiet (reading replies, as a client would), and the
// consumer must publish NEED_NOTIFY within a bound (it never spins on a quiet guest); a valid
// descriptor must then be consumed (the context recovers from anything it was fed); the
// handle's destruction must stop the thread within the device's bound (no stalled context);
// the sentinels must be unchanged; and once everything is closed no ASG block, host region
// or mapping may be left. A violation traps, so libFuzzer reports it.
//
// Input format: the first byte picks the sink (bit 0: echo or discard); then a stream of
// operations, each an opcode byte (taken modulo kOpCount) and its operands; every multi-byte
// operand is little-endian and reads as zero past the input's end.
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>
#include <optional>
#include <span>
#include <thread>
#include <vector>

#include "base/shared_memory.h"
#include "client/asg_stream.h"
#include "device/address_space_device.h"
#include "device/asg_context.h"
#include "device/asg_device_transport.h"
#include "device/asg_sink.h"
#include "device/device_test_access.h"
#include "device/guest_memory.h"
#include "device/ping_info.h"
#include "device/registers.h"

namespace {

using namespace gf::device;
using namespace gf::device::asg;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

constexpr uint64_t kBar1Size = 256ull << 20;
constexpr uint64_t kBar1Base = 0x8'0000'0000;
constexpr uint64_t kRamBase = 0x4000'0000;
constexpr uint64_t kRamSize = 64u << 10;
constexpr uint32_t kBufferSize = 64u << 10;
constexpr uint32_t kStep = 16u << 10;
constexpr uint32_t kView = kBufferSize;  // a power of two already
constexpr uint64_t kGuestBlockSize = 64u << 10;
constexpr uint64_t kGuardSize = 64u << 10;  // sentinel at the ring block's bottom
constexpr size_t kMaxOps = 256;
// How long the harness lets a guest-visible wait run: per kWaitIdle, and in all per input.
constexpr auto kWaitBound = 20ms;
constexpr auto kWaitBudget = 60ms;
// The invariants' patience: far above anything a working consumer needs.
constexpr auto kPatience = 5s;

enum Op : uint8_t {
    kStoreField,      // field, value
    kStoreRaw,        // u16 ring-storage offset, u32 value
    kPushDescriptor,  // offset value, size value, notify?
    kWriteRingBuf,    // u16 position in to_host buf[], length, bytes
    kWriteBuffer,     // u32 offset, u16 length, seed
    kSmallWrite,      // u16 length, seed: a well-formed type-1 chunk at the guest's cursor
    kLargeWrite,      // u16 length, flags, seed[, u16]: a piece of a mode-3 transfer (below)
    kNotify,          // -
    kWaitIdle,        // -: until the consumer publishes NEED_NOTIFY or kWaitBound
    kDrainReplies,    // -: the guest reads every reply byte there is
    kPing,            // command, size: any ASG command
    kPause,           // u8: that many 10 us
    kScribble,        // count, seed: a burst of random words over the ring storage
    kDestroy,         // -: DESTROY_HANDLE in the middle of it all; the program ends
    kOpCount,
};
// A "value" operand is a selector byte (modulo 4) and then: a raw u32; an i8 added to the
// field's current value; an index into kSpecials; or a field index and an i16 added to that
// field's value. kLargeWrite's flags: bit 0 starts a transfer (transfer_size = the length,
// or with bit 1 clear the length plus the u16 that follows, and mode 3), bit 2 writes length
// modulo the view whatever room the ring has, bit 3 leaves out the notify.

// The fields a guest can write, by kStoreField's selector.
constexpr uint64_t kFields[] = {
    kToHost + kWritePos,
    kToHost + kReadPos,
    kToHostLargeXfer + kWritePos,
    kToHostLargeXfer + kReadPos,
    kFromHostLargeXfer + kWritePos,
    kFromHostLargeXfer + kReadPos,
    kState,
    asg::kBufferSize,
    kFlushInterval,
    kHostConsumedPos,
    kGuestWritePos,
    kTransferMode,
    kTransferSize,
    kInError,
    kToHost + kHostVersion,
    kToHost + kGuestVersion,
};
constexpr size_t kFieldCount = sizeof(kFields) / sizeof(kFields[0]);

constexpr uint32_t kSpecials[] = {
    0,
    1,
    2,
    3,
    4,
    7,
    8,
    16,
    kBufSize - 1,
    kBufSize,
    kBufSize + 8,
    kStep - 1,
    kStep,
    kStep + 1,
    kBufferSize - 8,
    kBufferSize - 1,
    kBufferSize,
    kBufferSize + 1,
    kView - 1,
    kView + 1,
    1u << 20,
    0x7FFF'FFFF,
    0x8000'0000,
    0xFFFF'FFF8,
    0xFFFF'FFFF,
};
constexpr size_t kSpecialCount = sizeof(kSpecials) / sizeof(kSpecials[0]);

class Input {
  public:
    explicit Input(std::span<const uint8_t> data) : data_(data) {}
    bool done() const { return pos_ >= data_.size(); }
    uint8_t u8() { return pos_ < data_.size() ? data_[pos_++] : 0; }
    uint16_t u16() { return static_cast<uint16_t>(u8() | u8() << 8); }
    uint32_t u32() { return u16() | static_cast<uint32_t>(u16()) << 16; }

  private:
    std::span<const uint8_t> data_;
    size_t pos_ = 0;
};

[[noreturn]] void violated(const char* what) {
    std::fprintf(stderr, "invariant violated: %s\n", what);
    __builtin_trap();
}

// Sentinel bytes: always >= 0x80, varying with the position.
std::byte sentinel(size_t i, uint32_t seed) {
    return static_cast<std::byte>(0x80 | (((i * 131) + seed * 7919) >> 3 & 0x7F));
}

// A built-in sink behind a check that every byte it is handed came from the context's own
// buffer (the harness writes only bytes below 0x80 there; the echo sink's replies are those).
class CheckingSink final : public AsgSink {
  public:
    explicit CheckingSink(std::unique_ptr<AsgSink> inner) : inner_(std::move(inner)) {}
    void consume(std::span<const std::byte> in, AsgReply& reply) override {
        for (std::byte b : in) {
            if ((static_cast<uint8_t>(b) & 0x80) != 0) {
                violated("the sink was handed a byte from outside the context's buffer");
            }
        }
        inner_->consume(in, reply);
    }

  private:
    std::unique_ptr<AsgSink> inner_;
};

// The type-5 context behind the guest block: its registers, one handle and its ping page.
class Client {
  public:
    Client(AddressSpaceDevice& device, RamGuestMemory& ram, uint64_t ping_gpa)
        : device_(device), ram_(ram), ping_gpa_(ping_gpa) {
        command(gf::hw::Command::GEN_HANDLE);
        handle_ = device_.read32(Reg::HANDLE);
        device_.write32(Reg::HANDLE, handle_);
        write64(Reg::PING_INFO_ADDR_LOW, ping_gpa_);
        if (command(gf::hw::Command::TELL_PING_INFO_ADDR) != 0) {
            violated("TELL_PING_INFO_ADDR failed on a fresh device");
        }
    }

    PingInfo ping(uint64_t metadata, uint64_t size = 0, uint64_t phys_addr = 0) {
        PingInfo in;
        in.metadata = metadata;
        in.size = size;
        in.phys_addr = phys_addr;
        in.wait_phys_addr = 40;  // the struct's version, as the kernel driver sends it
        const auto bytes = in.encode();
        std::memcpy(ram_.host_pointer(ping_gpa_, bytes.size()), bytes.data(), bytes.size());
        device_.write32(Reg::PING, handle_);
        PingInfo::Bytes out;
        std::memcpy(out.data(), ram_.host_pointer(ping_gpa_, out.size()), out.size());
        return PingInfo::decode(out);
    }
    uint32_t destroy() {
        device_.write32(Reg::HANDLE, handle_);
        return command(gf::hw::Command::DESTROY_HANDLE);
    }

  private:
    uint32_t command(gf::hw::Command c) {
        device_.write32(Reg::COMMAND, static_cast<uint32_t>(c));
        return device_.read32(Reg::STATUS);
    }
    void write64(Reg low, uint64_t value) {
        device_.write32(low, static_cast<uint32_t>(value));
        device_.write32(static_cast<Reg>(static_cast<uint32_t>(low) + 4),
                        static_cast<uint32_t>(value >> 32));
    }

    AddressSpaceDevice& device_;
    RamGuestMemory& ram_;
    uint64_t ping_gpa_;
    uint32_t handle_ = 0;
};

// One ASG context: the guest's stream, and its memory as the stream mapped it, which the
// program then plays with.
struct Stream {
    std::optional<gf::client::AsgStream> stream;
    gf::client::AsgTransport* transport = nullptr;  // the stream's
    uint32_t destroy_status = ~0u;                  // DESTROY_HANDLE's, once closed
    std::span<std::byte> ring;
    std::span<std::byte> buffer;
    uint64_t ring_offset = 0;

    void ping(uint64_t command, uint64_t size = 0) const {
        (void)transport->command(command, size);
    }

    uint32_t load(uint64_t at) const {
        // The ring storage is mapped, page-aligned memory: its words are u32 objects.
        return std::atomic_ref<uint32_t>(*reinterpret_cast<uint32_t*>(&ring[at])).load();
    }
    void store(uint64_t at, uint32_t value) const {
        std::atomic_ref<uint32_t>(*reinterpret_cast<uint32_t*>(&ring[at])).store(value);
    }
};

// A region whose bytes must stay as they were put.
struct Sentinel {
    const char* name;
    std::span<std::byte> memory;
    const std::vector<std::byte>& expected;
};

// The sentinels' contents, made once (per input they would cost more than the input).
std::vector<std::byte> pattern(size_t n, uint32_t seed) {
    std::vector<std::byte> bytes(n);
    for (size_t i = 0; i < n; ++i) {
        bytes[i] = sentinel(i, seed);
    }
    return bytes;
}
// The second context's ring storage: its positions and state keep the values it sleeps on
// (all 0), so that, were it woken, it would find nothing to do and write nothing.
const std::vector<std::byte> kRingImage = [] {
    std::vector<std::byte> bytes = pattern(kRingStorageSize, 1);
    for (uint64_t header : {kToHost, kToHostLargeXfer, kFromHostLargeXfer}) {
        std::memset(&bytes[header + kWritePos], 0, 4);
        std::memset(&bytes[header + kReadPos], 0, 4);
    }
    std::memset(&bytes[kState], 0, 4);
    return bytes;
}();
const std::vector<std::byte> kBufferImage = pattern(kBufferSize, 2);
const std::vector<std::byte> kBlockImage = pattern(kGuestBlockSize, 3);
const std::vector<std::byte> kGuardImage = pattern(kGuardSize, 4);

class World {
  public:
    bool start(bool echo) {
        ram_ = RamGuestMemory::create(kRamBase, kRamSize).value();
        DeviceConfig config;
        config.bar1_size = kBar1Size;
        config.asg_buffer_size = kBufferSize;
        config.asg_write_step = kStep;
        config.asg_sink_factory = [echo]() -> std::unique_ptr<AsgSink> {
            std::unique_ptr<AsgSink> inner;
            if (echo) {
                inner = std::make_unique<EchoAsgSink>();
            } else {
                inner = std::make_unique<DiscardAsgSink>();
            }
            return std::make_unique<CheckingSink>(std::move(inner));
        };
        auto device = AddressSpaceDevice::create(config, *ram_);
        if (!device) {
            return false;
        }
        device_ = std::move(*device);
        device_->write32(Reg::GUEST_PAGE_SIZE, 4096);
        device_->write32(Reg::PHYS_START_LOW, static_cast<uint32_t>(kBar1Base));
        device_->write32(Reg::PHYS_START_HIGH, static_cast<uint32_t>(kBar1Base >> 32));

        // The guest block first: it takes BAR1's top, right above the first ring storage.
        device_->write32(Reg::BLOCK_SIZE_LOW, static_cast<uint32_t>(kGuestBlockSize));
        device_->write32(Reg::BLOCK_SIZE_HIGH, 0);
        device_->write32(Reg::COMMAND, static_cast<uint32_t>(gf::hw::Command::ALLOCATE_BLOCK));
        if (device_->read32(Reg::STATUS) != 0) {
            return false;
        }
        guest_block_ = device_->read32(Reg::BLOCK_OFFSET_LOW) |
                       static_cast<uint64_t>(device_->read32(Reg::BLOCK_OFFSET_HIGH)) << 32;

        if (!connect(a_, kRamBase) || !connect(b_, kRamBase + 4096)) {
            return false;
        }
        // Host memory behind the guest block (a type-5 context), so that it can hold a
        // sentinel too.
        host_memory_client_ = std::make_unique<Client>(*device_, *ram_, kRamBase + 8192);
        if (host_memory_client_->ping(5).metadata != kPingOk ||
            host_memory_client_->ping(/*Allocate*/ 1, kGuestBlockSize, kBar1Base + guest_block_)
                    .metadata != kPingOk) {
            return false;
        }
        // The second consumer must be asleep before its memory becomes a sentinel.
        if (!wait_need_notify(b_, kPatience)) {
            violated("a fresh consumer never published NEED_NOTIFY");
        }
        add_sentinel({"second context's ring storage", b_.ring, kRingImage});
        add_sentinel({"second context's buffer", b_.buffer, kBufferImage});
        add_sentinel({"guest block", host_memory(guest_block_, kGuestBlockSize), kBlockImage});
        // The free bottom of the ring block, which begins right above the first buffer.
        const DeviceBooks books = device_->books();
        for (const auto& [offset, size] : books.asg_blocks) {
            if (a_.ring_offset >= offset && a_.ring_offset - offset < size) {
                add_sentinel({"free bottom of the ring block", host_memory(offset, kGuardSize),
                              kGuardImage});
            }
        }
        if (sentinels_.size() != 4) {
            violated("the ring block is not where the books say");
        }
        return true;
    }

    void run(Input& in) {
        bool destroyed = false;
        for (size_t ops = 0; !in.done() && ops < kMaxOps && !destroyed; ++ops) {
            destroyed = step(in);
        }
        if (!destroyed) {
            quiesce_and_recover();
            destroy(a_);
        }
        check_sentinels();
        destroy(b_);
        if (host_memory_client_->destroy() != 0) {
            violated("DESTROY_HANDLE of the type-5 context failed");
        }
        device_->write32(Reg::BLOCK_OFFSET_LOW, static_cast<uint32_t>(guest_block_));
        device_->write32(Reg::BLOCK_OFFSET_HIGH, static_cast<uint32_t>(guest_block_ >> 32));
        device_->write32(Reg::COMMAND, static_cast<uint32_t>(gf::hw::Command::DEALLOCATE_BLOCK));
        const DeviceStats stats = device_->stats();
        if (stats.asg_blocks != 0 || stats.host_regions != 0 || stats.memory_mappings != 0 ||
            stats.handles != 0 || !stats.contexts_by_type.empty()) {
            violated("something was left behind after every handle and block was gone");
        }
    }

  private:
    std::span<std::byte> host_memory(uint64_t offset, uint64_t size) {
        auto memory = gf::device::testing::host_memory(*device_, kBar1Base + offset, size);
        if (!memory) {
            violated("ASG memory is not backed");
        }
        return *memory;
    }

    bool connect(Stream& s, uint64_t ping_gpa) {
        // The stream owns the transport; DESTROY_HANDLE's status is kept outside it.
        auto transport = gf::device::testing::DeviceAsgTransport::open(
            *device_, *ram_, ping_gpa, kBar1Base, &s.destroy_status);
        if (!transport) {
            violated("GEN_HANDLE or TELL_PING_INFO_ADDR failed on a fresh device");
        }
        s.transport = transport->get();
        auto stream = gf::client::AsgStream::connect(std::move(*transport));
        if (!stream) {
            return false;
        }
        s.stream.emplace(std::move(*stream));
        if (s.stream->buffer_size() != kBufferSize || s.stream->write_step() != kStep ||
            s.stream->version() != 1) {
            violated("the stream connected with a wrong config or version");
        }
        s.ring_offset = s.stream->ring_offset();
        s.ring = {s.stream->ring_memory(), kRingStorageSize};
        s.buffer = {s.stream->buffer_memory(), kBufferSize};
        // The guest's ring init wrote state 0 (NEED_NOTIFY) before SET_VERSION: a value the
        // host never writes instead, and a ping, so that NEED_NOTIFY seen later is the
        // consumer's, published after it woke.
        s.store(kState, 0xFFFF'FFFF);
        s.ping(NotifyAvailable);
        return true;
    }

    void add_sentinel(const Sentinel& s) {
        gf::copy_to_shared(s.memory, s.expected);
        sentinels_.push_back(s);
    }

    void check_sentinels() {
        static std::vector<std::byte> now;
        for (const Sentinel& s : sentinels_) {
            now.resize(s.memory.size());
            gf::copy_from_shared(now, s.memory);
            if (std::memcmp(now.data(), s.expected.data(), now.size()) != 0) {
                std::fprintf(stderr, "changed: %s\n", s.name);
                violated("memory outside the fuzzed context changed");
            }
        }
    }

    void destroy(Stream& s) {
        // A killed guest's teardown: no drain (the program may have left anything in the
        // rings); DESTROY_HANDLE last.
        (void)s.stream->close_abruptly();
        s.stream.reset();
        if (s.destroy_status != 0) {
            violated("DESTROY_HANDLE failed");
        }
        if (device_->stats().stalled_contexts != 0) {
            violated("a consumer outlived DESTROY_HANDLE's bound");
        }
    }

    bool wait_need_notify(Stream& s, Clock::duration bound) {
        const auto deadline = Clock::now() + bound;
        while (s.load(kState) != NeedNotify) {
            if (Clock::now() > deadline) {
                return false;
            }
            std::this_thread::yield();
        }
        return true;
    }

    void notify_if_needed() {
        const uint32_t state = a_.load(kState);
        if (state != CanConsume && state != Rendering) {
            a_.ping(NotifyAvailable);
        }
    }

    uint32_t value(Input& in, uint64_t field) {
        const uint8_t selector = in.u8();
        switch (selector % 4) {
            case 0:
                return in.u32();
            case 1:
                return a_.load(field) + static_cast<uint32_t>(static_cast<int8_t>(in.u8()));
            case 2:
                return kSpecials[in.u8() % kSpecialCount];
            default: {
                const uint64_t other = kFields[in.u8() % kFieldCount];
                return a_.load(other) + static_cast<uint32_t>(static_cast<int16_t>(in.u16()));
            }
        }
    }

    // Guest bytes for the buffer: below 0x80 (see CheckingSink).
    static std::byte guest_byte(size_t i, uint8_t seed) {
        return static_cast<std::byte>((seed + i * 37) & 0x7F);
    }

    void put_descriptor(uint32_t offset, uint32_t size) {
        std::byte raw[kType1DescriptorSize];
        std::memcpy(raw, &offset, 4);
        std::memcpy(raw + 4, &size, 4);
        const uint32_t pos = a_.load(kToHost + kWritePos);
        for (uint32_t i = 0; i < sizeof(raw); ++i) {
            gf::copy_to_shared(a_.ring.subspan(kToHost + kBuf + ((pos + i) & (kBufSize - 1)), 1),
                               std::span(raw + i, 1));
        }
        a_.store(kToHost + kWritePos, pos + kType1DescriptorSize);
    }

    void put_view(uint32_t pos, size_t n, uint8_t seed) {
        for (size_t i = 0; i < n; ++i) {
            const std::byte b = guest_byte(i, seed);
            gf::copy_to_shared(a_.buffer.subspan((pos + i) & (kView - 1), 1), std::span(&b, 1));
        }
    }

    // True once the program ends (the handle is gone).
    bool step(Input& in) {
        switch (in.u8() % kOpCount) {
            case kStoreField: {
                const uint64_t field = kFields[in.u8() % kFieldCount];
                a_.store(field, value(in, field));
                break;
            }
            case kStoreRaw:
                a_.store((in.u16() % kRingStorageSize) & ~uint64_t{3}, in.u32());
                break;
            case kPushDescriptor: {
                const uint32_t offset = value(in, kToHost + kWritePos);
                const uint32_t size = value(in, kToHost + kWritePos);
                put_descriptor(offset, size);
                if (in.u8() & 1) {
                    notify_if_needed();
                }
                break;
            }
            case kWriteRingBuf: {
                const uint16_t pos = in.u16();
                const uint8_t n = in.u8();
                for (unsigned i = 0; i < n; ++i) {
                    const auto b = static_cast<std::byte>(in.u8());
                    gf::copy_to_shared(
                        a_.ring.subspan(kToHost + kBuf + ((pos + i) & (kBufSize - 1)), 1),
                        std::span(&b, 1));
                }
                break;
            }
            case kWriteBuffer: {
                const uint32_t offset = in.u32() % kBufferSize;
                const size_t n = std::min<size_t>(in.u16() % 4097, kBufferSize - offset);
                const uint8_t seed = in.u8();
                std::vector<std::byte> bytes(n);
                for (size_t i = 0; i < n; ++i) {
                    bytes[i] = guest_byte(i, seed);
                }
                gf::copy_to_shared(a_.buffer.subspan(offset, n), bytes);
                break;
            }
            case kSmallWrite: {
                // gfxstream's guest: a chunk of at most the step at its cursor, one descriptor.
                const uint32_t n = in.u16() % (kStep + 1);
                const uint8_t seed = in.u8();
                std::vector<std::byte> bytes(n);
                for (size_t i = 0; i < n; ++i) {
                    bytes[i] = guest_byte(i, seed);
                }
                gf::copy_to_shared(a_.buffer.subspan(cursor_, n), bytes);
                put_descriptor(cursor_, n);
                cursor_ = (cursor_ + kStep) % kBufferSize;
                notify_if_needed();
                break;
            }
            case kLargeWrite: {
                const uint32_t n = in.u16();
                const uint8_t flags = in.u8();
                const uint8_t seed = in.u8();
                if (flags & 1) {  // the start of a transfer: its size and mode 3
                    a_.store(kTransferSize, (flags & 2) ? n : n + in.u16());
                    a_.store(kTransferMode, 3);
                }
                const uint32_t pos = a_.load(kToHostLargeXfer + kWritePos);
                const uint32_t room =
                    (a_.load(kToHostLargeXfer + kReadPos) - pos - 1) & (kView - 1);
                const uint32_t take = (flags & 4) ? n % kView : std::min(n, room);
                put_view(pos, take, seed);
                a_.store(kToHostLargeXfer + kWritePos, pos + take);
                if (!(flags & 8)) {
                    notify_if_needed();
                }
                break;
            }
            case kNotify:
                a_.ping(NotifyAvailable);
                break;
            case kWaitIdle: {
                if (waited_ >= kWaitBudget) {
                    break;
                }
                const auto start = Clock::now();
                notify_if_needed();
                wait_need_notify(a_, kWaitBound);
                waited_ += Clock::now() - start;
                break;
            }
            case kDrainReplies:
                a_.store(kFromHostLargeXfer + kReadPos, a_.load(kFromHostLargeXfer + kWritePos));
                break;
            case kPing: {
                const uint8_t command = in.u8() % 8;
                const uint8_t size = in.u8();
                a_.ping(command, size);
                break;
            }
            case kPause:
                std::this_thread::sleep_for(std::chrono::microseconds(10 * (in.u8() % 32)));
                break;
            case kScribble: {
                const unsigned n = in.u8();
                uint32_t x = in.u32() | 1;
                for (unsigned i = 0; i < n; ++i) {
                    x ^= x << 13;
                    x ^= x >> 17;
                    x ^= x << 5;
                    a_.store((x % kRingStorageSize) & ~uint32_t{3}, x * 2654435761u);
                }
                a_.ping(NotifyAvailable);
                break;
            }
            case kDestroy:
                destroy(a_);
                return true;
        }
        return false;
    }

    // The guest goes quiet, reading what replies come; the consumer must fall asleep. Then a
    // well-formed descriptor must be consumed.
    void quiesce_and_recover() {
        a_.store(kState, 0xFFFF'FFFF);  // not a host state: NEED_NOTIFY is the consumer's
        a_.ping(NotifyAvailable);
        const auto deadline = Clock::now() + kPatience;
        while (a_.load(kState) != NeedNotify) {
            if (Clock::now() > deadline) {
                violated("the consumer never published NEED_NOTIFY on a quiet guest");
            }
            a_.store(kFromHostLargeXfer + kReadPos, a_.load(kFromHostLargeXfer + kWritePos));
            std::this_thread::yield();
        }
        // The guest resumes in mode 1 (as after a finished transfer) and sends one byte.
        a_.store(kTransferSize, 0);
        a_.store(kTransferMode, 1);
        const uint32_t consumed = a_.load(kHostConsumedPos);
        put_descriptor(0, 1);
        const uint32_t target = a_.load(kToHost + kWritePos);
        const auto recover_deadline = Clock::now() + kPatience;
        while (a_.load(kToHost + kReadPos) != target || a_.load(kHostConsumedPos) == consumed) {
            if (Clock::now() > recover_deadline) {
                violated("the consumer did not consume a valid descriptor after the program");
            }
            notify_if_needed();
            a_.store(kFromHostLargeXfer + kReadPos, a_.load(kFromHostLargeXfer + kWritePos));
            std::this_thread::yield();
        }
    }

    std::unique_ptr<RamGuestMemory> ram_;
    std::unique_ptr<AddressSpaceDevice> device_;
    uint64_t guest_block_ = 0;
    std::unique_ptr<Client> host_memory_client_;  // backs the guest block
    Stream a_;                                    // fuzzed
    Stream b_;                                    // sentinel
    std::vector<Sentinel> sentinels_;
    uint32_t cursor_ = 0;
    Clock::duration waited_{};
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    Input in({data, size});
    World world;
    if (!world.start(/*echo=*/(in.u8() & 1) == 0)) {
        std::fprintf(stderr, "cannot build the device and its ASG contexts\n");
        __builtin_trap();
    }
    world.run(in);
    return 0;
}
