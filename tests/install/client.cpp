// A client built against the installed library alone (pkg-config goldfish-address-space):
// opens what the test names, which serves no node, and prints what the library reports.
#include <client/asg_stream.h>
#include <client/host_memory.h>
#include <client/session.h>
#include <linux/goldfish_address_space.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

int main(int argc, char** argv) {
    if (argc != 2) {
        std::fprintf(stderr, "usage: client PATH\n");
        return 2;
    }
    std::printf("node name %s, PING 0x%lx\n", GOLDFISH_ADDRESS_SPACE_DEVICE_NAME,
                static_cast<unsigned long>(GOLDFISH_ADDRESS_SPACE_IOCTL_PING));
    gf::Result<gf::client::Session> session = gf::client::Session::open(argv[1]);
    if (session) {
        std::printf("open %s: opened\n", argv[1]);
        return 1;
    }
    std::printf("open %s: %s\n", argv[1], std::strerror(session.error().value()));
    auto allocator = gf::client::HostMemoryAllocator::open(argv[1], false, false);
    auto stream = gf::client::AsgStream::open(argv[1]);
    return !allocator && allocator.error().value() == session.error().value() && !stream &&
                   stream.error().value() == session.error().value()
               ? 0
               : 1;
}
