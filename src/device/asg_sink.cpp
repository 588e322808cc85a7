#include "device/asg_sink.h"

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace gf::device {

size_t AsgReply::write(std::span<const std::byte> bytes) {
    const size_t take = std::min(room(), bytes.size());
    if (take < bytes.size()) {
        refused_.fetch_add(bytes.size() - take, std::memory_order_relaxed);
    }
    size_t done = 0;
    while (done < take) {
        // Where the byte after the last queued one goes: the end of the last block, or a new one.
        const size_t end = head_ + size_;
        const size_t in_block = end % kBlockSize;
        if (end == blocks_.size() * kBlockSize) {
            blocks_.push_back(std::make_unique_for_overwrite<std::byte[]>(kBlockSize));
        }
        const size_t n = std::min(take - done, kBlockSize - in_block);
        std::memcpy(blocks_.back().get() + in_block, bytes.data() + done, n);
        done += n;
        size_ += n;
    }
    return take;
}

std::span<const std::byte> AsgReplyQueue::front() const {
    if (size_ == 0) {
        return {};
    }
    return {blocks_.front().get() + head_, std::min(size_, kBlockSize - head_)};
}

void AsgReplyQueue::pop(size_t n) {
    n = std::min(n, size_);
    size_ -= n;
    head_ += n;
    while (head_ >= kBlockSize) {
        blocks_.pop_front();
        head_ -= kBlockSize;
    }
    if (size_ == 0) {
        clear();  // nothing queued: no memory held
    }
}

void AsgReplyQueue::clear() {
    blocks_.clear();
    head_ = 0;
    size_ = 0;
}

void EchoAsgSink::consume(std::span<const std::byte> in, AsgReply& reply) {
    (void)reply.write(in);  // whatever does not fit is counted by the queue
}

void DiscardAsgSink::consume(std::span<const std::byte> in, AsgReply&) {
    bytes_ += in.size();
}

Result<AsgSinkFactory> builtin_asg_sink(std::string_view name) {
    if (name == "echo") {
        return AsgSinkFactory([] { return std::make_unique<EchoAsgSink>(); });
    }
    if (name == "discard") {
        return AsgSinkFactory([] { return std::make_unique<DiscardAsgSink>(); });
    }
    return fail(EINVAL);
}

}  // namespace gf::device
