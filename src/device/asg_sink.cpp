#include "device/asg_sink.h"

#include <algorithm>
#include <cerrno>

namespace gf::device {

void EchoAsgSink::consume(std::span<const std::byte> in, std::vector<std::byte>& reply) {
    const size_t room = reply.size() < kMaxPending ? kMaxPending - reply.size() : 0;
    const size_t take = std::min(room, in.size());
    reply.insert(reply.end(), in.begin(), in.begin() + static_cast<std::ptrdiff_t>(take));
    dropped_ += in.size() - take;
}

void DiscardAsgSink::consume(std::span<const std::byte> in, std::vector<std::byte>&) {
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
