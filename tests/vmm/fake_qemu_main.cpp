// A stand-in for qemu-system-x86_64 in the launcher test: finds the proxy device that
// goldfish-vmm-device appended (`-device x-pci-proxy-dev,id=..,fd=N`), probes it the way
// the proxy's realize does, pokes one register, and prints what it saw.
//
// Test switches: `-fake-exit N` exits with N; `-fake-wait-signal FILE` then writes its pid
// to FILE and waits for SIGTERM (printing that it got it) before exiting with 7.
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "vmm/fake_qemu_peer.h"

int main(int argc, char** argv) {
    int fd = -1;
    std::string id;
    std::string passed;  // the arguments before the appended device
    int exit_code = 0;
    std::string wait_file;
    for (int i = 1; i < argc; ++i) {
        const std::string arg = argv[i];
        if (arg == "-fake-exit" && i + 1 < argc) {
            exit_code = std::atoi(argv[++i]);
            continue;
        }
        if (arg == "-fake-wait-signal" && i + 1 < argc) {
            wait_file = argv[++i];
            continue;
        }
        if (arg.rfind("x-pci-proxy-dev,", 0) == 0) {
            const auto at = arg.find(",fd=");
            const auto id_at = arg.find("id=");
            if (at == std::string::npos || id_at == std::string::npos) {
                return 10;
            }
            fd = std::atoi(arg.c_str() + at + 4);
            id = arg.substr(id_at + 3, arg.find(',', id_at) - id_at - 3);
        } else if (arg != "-device") {
            passed += " " + arg;
        }
    }
    if (fd < 0) {
        std::fprintf(stderr, "fake-qemu: no x-pci-proxy-dev\n");
        return 11;
    }
    using namespace gf::vmm;
    testing::FakeQemu q{gf::UniqueFd(fd)};
    const uint32_t ids = q.config_read(0x00, 4);
    const uint32_t klass = q.config_read(0x08, 4);
    const uint32_t pin = q.config_read(0x3D, 1);
    uint32_t sizes[2];
    for (uint32_t i = 0; i < 2; ++i) {
        const uint32_t at = 0x10 + 4 * i;
        const uint32_t original = q.config_read(at, 4);
        q.config_write(at, 0xFFFFFFFF, 4);
        sizes[i] = ~(q.config_read(at, 4) & 0xFFFFFFF0u) + 1;
        q.config_write(at, original, 4);
    }
    q.config_write(0x10, 0xFEBF0000, 4);
    q.config_write(0x04, 0x2, 2);
    q.bar_write(0xFEBF0008, 8192, 4);  // GUEST_PAGE_SIZE
    const uint64_t page = q.bar_read(0xFEBF0008, 4);
    std::printf("fake-qemu: id %s args%s\n", id.c_str(), passed.c_str());
    std::printf("fake-qemu: %04x:%04x rev %u class %04x pin %u bar0 0x%x bar1 0x%x page %llu\n",
                ids & 0xFFFF, ids >> 16, klass & 0xFF, klass >> 16, pin, sizes[0], sizes[1],
                static_cast<unsigned long long>(page));
    std::fflush(stdout);
    if (!wait_file.empty()) {
        sigset_t set;
        sigemptyset(&set);
        sigaddset(&set, SIGTERM);
        sigprocmask(SIG_BLOCK, &set, nullptr);
        const std::string tmp = wait_file + ".tmp";
        if (FILE* f = std::fopen(tmp.c_str(), "w")) {
            std::fprintf(f, "%d\n", static_cast<int>(getpid()));
            std::fclose(f);
            std::rename(tmp.c_str(), wait_file.c_str());
        }
        int got = 0;
        sigwait(&set, &got);
        std::printf("fake-qemu: got signal %d\n", got);
        return 7;
    }
    return exit_code;
}
