#include "device/asg_consumer.h"

#include <algorithm>
#include <array>
#include <bit>
#include <cstring>

#include "base/checked.h"

namespace gf::device {

using namespace hw::asg;

AsgConsumer::AsgConsumer(const Bar1Access& bar1, AsgStreamLayout layout, AsgSink& sink,
                         AsgCounters counters, size_t reply_capacity)
    : bar1_(bar1),
      layout_(layout),
      view_mask_(std::bit_floor(layout.buffer_size) - 1),
      sink_(sink),
      counters_(counters),
      reply_(reply_capacity, counters.reply_refused),
      // A large-transfer read is at most kMaxChunk and one view; a type-1 chunk one step.
      chunk_(std::max<size_t>(std::min(kMaxChunk, view_mask_ + 1), layout.step_size)) {}

Result<uint32_t> AsgConsumer::load(uint64_t ring_offset) const {
    return bar1_.load32(layout_.ring + ring_offset);
}

Result<void> AsgConsumer::store(uint64_t ring_offset, uint32_t value) const {
    return bar1_.store32(layout_.ring + ring_offset, value);
}

Result<void> AsgConsumer::publish(uint32_t state) const {
    return store(kState, state);
}

bool AsgConsumer::taking_input() const {
    return reply_.room() >= chunk_.size();
}

Result<AsgConsumer::Outcome> AsgConsumer::step() {
    // Positions first, then the fields they make meaningful (the guest sets transfer_size and
    // the mode before it pushes).
    const uint32_t write_pos = GF_TRY(load(kToHost + kWritePos));
    const uint32_t read_pos = GF_TRY(load(kToHost + kReadPos));
    const uint32_t large_write = GF_TRY(load(kToHostLargeXfer + kWritePos));
    const uint32_t large_read = GF_TRY(load(kToHostLargeXfer + kReadPos));
    if (taking_input()) {
        if (write_pos != read_pos) {
            return step_type1(write_pos, read_pos);
        }
        if (large_write != large_read) {
            return step_large(large_write, large_read);
        }
    }
    // Input that waits for room in the reply queue, or a transfer the guest has not finished
    // sending: the guest owes the host something, and may not ping again (writeFully pings at
    // most once while it pushes). Replies wait too: the guest's data shares their buffer.
    if (write_pos != read_pos || large_write != large_read || GF_TRY(load(kTransferSize)) != 0) {
        return Outcome::kWaiting;
    }
    if (!reply_.empty()) {
        return step_reply();
    }
    return Outcome::kIdle;
}

Result<AsgConsumer::Outcome> AsgConsumer::step_type1(uint32_t write_pos, uint32_t read_pos) {
    const uint32_t available = write_pos - read_pos;
    // Read after the position that shows the descriptor: the guest set it before pushing,
    // and changes it only once to_host is empty.
    const uint32_t mode = GF_TRY(load(kTransferMode));
    // A position that jumped past the ring, descriptors while not in mode 1 (mode 2's
    // physical addresses are not supported; anything else is garbage), or a torn descriptor:
    // refused, and the ring is drained so that the guest is not stuck on it.
    if (available >= kBufSize || mode != kModeDescriptors || available < kType1DescriptorSize) {
        protocol_error();
        GF_TRY(store(kToHost + kReadPos, write_pos));
        return Outcome::kProgress;
    }
    std::array<std::byte, kType1DescriptorSize> raw;
    // The descriptor may wrap around buf[]: then it is two reads.
    const uint32_t start = read_pos & (kBufSize - 1);
    const uint32_t first = std::min<uint32_t>(kType1DescriptorSize, kBufSize - start);
    GF_TRY(bar1_.read(layout_.ring + kToHost + kBuf + start, std::span(raw).first(first)));
    if (first < raw.size()) {
        GF_TRY(bar1_.read(layout_.ring + kToHost + kBuf, std::span(raw).subspan(first)));
    }
    uint32_t offset;
    uint32_t size;
    std::memcpy(&offset, raw.data(), sizeof(offset));
    std::memcpy(&size, raw.data() + sizeof(offset), sizeof(size));
    const bool valid = size <= layout_.step_size && range_within(offset, size, layout_.buffer_size);
    std::span<std::byte> bytes;
    if (valid && size != 0) {
        bytes = std::span(chunk_).first(size);  // chunk_ holds at least a step
        GF_TRY(bar1_.read(layout_.buffer + offset, bytes));
    }
    // Consumed: the guest may reuse the chunk once it sees this.
    GF_TRY(store(kToHost + kReadPos, read_pos + kType1DescriptorSize));
    if (!valid) {
        protocol_error();
        return Outcome::kProgress;
    }
    const uint32_t consumed = GF_TRY(load(kHostConsumedPos));
    GF_TRY(store(kHostConsumedPos, consumed + size));
    if (!bytes.empty()) {
        deliver(bytes);
    }
    return Outcome::kProgress;
}

Result<AsgConsumer::Outcome> AsgConsumer::step_large(uint32_t write_pos, uint32_t read_pos) {
    const uint32_t available = write_pos - read_pos;
    const uint32_t remaining = GF_TRY(load(kTransferSize));
    // Whatever transfer_mode says (writeFullyAsync is back at 1 before the ring drained); but
    // data past the view, or more than the guest announced, is refused.
    if (available > view_mask_ || remaining == 0) {
        protocol_error();
        GF_TRY(store(kToHostLargeXfer + kReadPos, write_pos));
        return Outcome::kProgress;
    }
    // taking_input() made sure the reply queue has room for a whole chunk.
    const uint32_t n = std::min({available, remaining, static_cast<uint32_t>(chunk_.size())});
    // Before reading, so that the guest cannot race it: it sets the next transfer's size only
    // once it sees the ring empty.
    GF_TRY(store(kTransferSize, remaining - n));
    std::span<std::byte> bytes(chunk_.data(), n);
    GF_TRY(read_view(read_pos, bytes));
    GF_TRY(store(kToHostLargeXfer + kReadPos, read_pos + n));
    deliver(bytes);
    return Outcome::kProgress;
}

Result<AsgConsumer::Outcome> AsgConsumer::step_reply() {
    const uint32_t write_pos = GF_TRY(load(kFromHostLargeXfer + kWritePos));
    const uint32_t read_pos = GF_TRY(load(kFromHostLargeXfer + kReadPos));
    const uint32_t used = write_pos - read_pos;
    if (used > view_mask_) {
        // The guest's read position jumped: the reply cannot be placed. Dropped, and counted
        // as the guest's error.
        protocol_error();
        reply_.clear();
        return Outcome::kProgress;
    }
    const uint32_t room = view_mask_ - used;  // a ring holds at most size - 1 bytes
    if (room == 0) {
        return Outcome::kWaiting;  // the guest reads without pinging: poll
    }
    const std::span<const std::byte> piece = reply_.front();
    const size_t n = std::min<size_t>(room, piece.size());
    GF_TRY(write_view(write_pos, piece.first(n)));
    GF_TRY(store(kFromHostLargeXfer + kWritePos, write_pos + static_cast<uint32_t>(n)));
    counters_.bytes_out.fetch_add(n, std::memory_order_relaxed);
    reply_.pop(n);
    return Outcome::kProgress;
}

void AsgConsumer::deliver(std::span<const std::byte> bytes) {
    sink_.consume(bytes, reply_);
    counters_.bytes_in.fetch_add(bytes.size(), std::memory_order_relaxed);
}

Result<void> AsgConsumer::read_view(uint32_t pos, std::span<std::byte> out) const {
    const uint32_t start = pos & view_mask_;
    const size_t first = std::min<size_t>(out.size(), view_mask_ + 1 - start);
    GF_TRY(bar1_.read(layout_.buffer + start, out.first(first)));
    if (first < out.size()) {
        GF_TRY(bar1_.read(layout_.buffer, out.subspan(first)));
    }
    return {};
}

Result<void> AsgConsumer::write_view(uint32_t pos, std::span<const std::byte> in) const {
    const uint32_t start = pos & view_mask_;
    const size_t first = std::min<size_t>(in.size(), view_mask_ + 1 - start);
    GF_TRY(bar1_.write(layout_.buffer + start, in.first(first)));
    if (first < in.size()) {
        GF_TRY(bar1_.write(layout_.buffer, in.subspan(first)));
    }
    return {};
}

AsgPacing::Action AsgPacing::next(AsgConsumer::Outcome outcome) {
    using Outcome = AsgConsumer::Outcome;
    if (outcome == Outcome::kProgress) {
        unproductive_ = 0;
        pauses_ = 0;
        pause_ = std::chrono::microseconds{0};
        return {Action::kStep};
    }
    if (unproductive_ < kYieldsBeforeRest) {
        ++unproductive_;
        return {Action::kYield};
    }
    if (outcome == Outcome::kIdle) {
        unproductive_ = 0;
        pauses_ = 0;
        pause_ = std::chrono::microseconds{0};
        return {Action::kSleep};
    }
    // Owed something: never sleep. Short pauses while the guest is plausibly just slow, then
    // longer ones, up to the longest.
    ++pauses_;
    pause_ = pauses_ <= kPatientPauses ? kFirstPause : std::min(pause_ * 2, kLongestPause);
    return {Action::kPause, pause_};
}

}  // namespace gf::device
