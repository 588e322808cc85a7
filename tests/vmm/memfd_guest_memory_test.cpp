// Guest RAM from SYNC_SYSMEM regions: bounds, regions side by side, all-or-nothing writes,
// a failed replace keeping the old set, and replaces racing with reads.
#include "vmm/memfd_guest_memory.h"

#include <gtest/gtest.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <thread>

#include "vmm/fake_qemu_peer.h"

namespace gf::vmm {
namespace {

using testing::Memfd;

RamRegion region(uint64_t gpa, uint64_t size, int64_t offset, const Memfd& file) {
    return RamRegion{gpa, size, offset, UniqueFd(::dup(file.fd()))};
}

std::vector<RamRegion> regions(RamRegion a) {
    std::vector<RamRegion> v;
    v.push_back(std::move(a));
    return v;
}
std::vector<RamRegion> regions(RamRegion a, RamRegion b) {
    std::vector<RamRegion> v;
    v.push_back(std::move(a));
    v.push_back(std::move(b));
    return v;
}

TEST(MemfdGuestMemory, EmptyRefusesEverything) {
    MemfdGuestMemory memory;
    std::array<std::byte, 8> buf{};
    EXPECT_EQ(memory.read(0, buf).error().value(), EFAULT);
    EXPECT_EQ(memory.write(0, buf).error().value(), EFAULT);
}

TEST(MemfdGuestMemory, ReadsAndWritesTheSharedFileAtItsGuestAddress) {
    Memfd file(0x4000);
    MemfdGuestMemory memory;
    // The region starts one page into the file.
    ASSERT_TRUE(memory.replace(regions(region(0x10000, 0x3000, 0x1000, file))));
    file.store<uint64_t>(0x1000 + 0x10, 0x1122334455667788);
    std::array<std::byte, 8> buf{};
    ASSERT_TRUE(memory.read(0x10010, buf));
    uint64_t v;
    std::memcpy(&v, buf.data(), 8);
    EXPECT_EQ(v, 0x1122334455667788u);

    const std::array<std::byte, 2> two{std::byte{0xAB}, std::byte{0xCD}};
    ASSERT_TRUE(memory.write(0x12FFE, two));  // the region's last two bytes
    EXPECT_EQ(file.load<uint16_t>(0x3FFE), 0xCDABu);
}

TEST(MemfdGuestMemory, BoundsAreCheckedWithoutWrapping) {
    Memfd file(0x2000);
    MemfdGuestMemory memory;
    ASSERT_TRUE(memory.replace(regions(region(0x10000, 0x2000, 0, file))));
    std::array<std::byte, 8> buf{};
    EXPECT_EQ(memory.read(0xFFF8, buf).error().value(), EFAULT);   // starts before
    EXPECT_EQ(memory.read(0x11FFC, buf).error().value(), EFAULT);  // runs past the end
    EXPECT_EQ(memory.read(0x12000, buf).error().value(), EFAULT);
    EXPECT_EQ(memory.read(~uint64_t{0} - 3, buf).error().value(), EFAULT);  // gpa + 8 wraps
    EXPECT_TRUE(memory.read(0x11FF8, buf));
}

TEST(MemfdGuestMemory, AccessesMaySpanAdjacentRegionsButNotAGap) {
    Memfd low(0x1000), high(0x1000);
    MemfdGuestMemory memory;
    ASSERT_TRUE(
        memory.replace(regions(region(0x1000, 0x1000, 0, high), region(0, 0x1000, 0, low))));
    std::array<std::byte, 8> pattern;
    for (size_t i = 0; i < pattern.size(); ++i) {
        pattern[i] = static_cast<std::byte>(i + 1);
    }
    ASSERT_TRUE(memory.write(0xFFC, pattern));
    EXPECT_EQ(low.load<uint32_t>(0xFFC), 0x04030201u);
    EXPECT_EQ(high.load<uint32_t>(0), 0x08070605u);
    std::array<std::byte, 8> back{};
    ASSERT_TRUE(memory.read(0xFFC, back));
    EXPECT_EQ(back, pattern);

    // With a hole at [0x1000, 0x2000): a write across it changes nothing at all.
    ASSERT_TRUE(
        memory.replace(regions(region(0, 0x1000, 0, low), region(0x2000, 0x1000, 0, high))));
    const std::vector<std::byte> big(0x1008, std::byte{0xEE});
    EXPECT_EQ(memory.write(0xFFC, big).error().value(), EFAULT);
    EXPECT_EQ(low.load<uint32_t>(0xFFC), 0x04030201u);
}

TEST(MemfdGuestMemory, AFailedReplaceKeepsTheCurrentSet) {
    Memfd file(0x2000);
    MemfdGuestMemory memory;
    ASSERT_TRUE(memory.replace(regions(region(0, 0x2000, 0, file))));
    size_t failed = 99;
    // The second region runs past the end of its file.
    auto r = memory.replace(
        regions(region(0x100000, 0x1000, 0, file), region(0x200000, 0x2000, 0x1000, file)),
        &failed);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().value(), ENXIO);
    EXPECT_EQ(failed, 1u);
    ASSERT_EQ(memory.regions().size(), 1u);
    EXPECT_EQ(memory.regions()[0].gpa, 0u);

    UniqueFd not_a_file(::eventfd(0, EFD_CLOEXEC));
    EXPECT_EQ(
        memory.replace(regions(RamRegion{0, 0x1000, 0, std::move(not_a_file)})).error().value(),
        EBADF);
    EXPECT_EQ(memory.replace(regions(region(0, 0, 0, file))).error().value(), EINVAL);
    EXPECT_EQ(memory.replace(regions(region(0, 0x1000, -1, file))).error().value(), EINVAL);
    EXPECT_EQ(
        memory.replace(regions(region(~uint64_t{0} - 0xFFF, 0x2000, 0, file))).error().value(),
        EOVERFLOW);
    EXPECT_EQ(memory.replace(regions(region(0, 0x2000, 0, file), region(0x1000, 0x1000, 0, file)))
                  .error()
                  .value(),
              EINVAL);  // overlap
    EXPECT_EQ(memory.regions().size(), 1u);
}

// The failed index is the peer's slot number (the proxy's message prints that slot), not a
// position in some sorted order.
TEST(MemfdGuestMemory, AnOverlapNamesTheSlotThePeerSent) {
    Memfd file(0x2000);
    MemfdGuestMemory memory;
    size_t failed = 99;
    EXPECT_EQ(
        memory
            .replace(regions(region(0x1000, 0x1000, 0, file), region(0, 0x2000, 0, file)), &failed)
            .error()
            .value(),
        EINVAL);
    EXPECT_EQ(failed, 1u);
    failed = 99;
    EXPECT_EQ(
        memory.replace(regions(region(0, 0x1000, 0, file), region(0, 0x1000, 0, file)), &failed)
            .error()
            .value(),
        EINVAL);  // the same start twice
    EXPECT_EQ(failed, 1u);
    EXPECT_TRUE(memory.regions().empty());
}

// A misaligned file offset still maps the right bytes (QEMU's are page-aligned, but the
// protocol does not promise it).
TEST(MemfdGuestMemory, MisalignedFileOffset) {
    Memfd file(0x3000);
    file.store<uint32_t>(0x1234, 0xC0FFEE);
    MemfdGuestMemory memory;
    ASSERT_TRUE(memory.replace(regions(region(0x8000, 0x100, 0x1234, file))));
    std::array<std::byte, 4> buf{};
    ASSERT_TRUE(memory.read(0x8000, buf));
    uint32_t v;
    std::memcpy(&v, buf.data(), 4);
    EXPECT_EQ(v, 0xC0FFEEu);
}

// Reads race with replaces between two layouts whose files hold different patterns at the
// same guest address: every read succeeds and sees one whole pattern, never a mix or a
// dangling mapping.
TEST(MemfdGuestMemory, ReplaceIsSafeAgainstConcurrentReads) {
    Memfd a(0x2000), b(0x2000);
    for (size_t i = 0; i < 0x2000; i += 8) {
        a.store<uint64_t>(i, 0xAAAAAAAAAAAAAAAA);
        b.store<uint64_t>(i, 0xBBBBBBBBBBBBBBBB);
    }
    MemfdGuestMemory memory;
    ASSERT_TRUE(memory.replace(regions(region(0x10000, 0x2000, 0, a))));
    std::atomic<bool> stop{false};
    std::atomic<int> bad{0};
    std::atomic<int> reads{0};
    std::thread reader([&] {
        std::array<std::byte, 0x1000> buf;
        while (!stop.load()) {
            if (!memory.read(0x10800, buf)) {
                ++bad;
                continue;
            }
            uint64_t first;
            std::memcpy(&first, buf.data(), 8);
            if (first != 0xAAAAAAAAAAAAAAAA && first != 0xBBBBBBBBBBBBBBBB) {
                ++bad;
            }
            for (size_t i = 0; i < buf.size(); i += 8) {
                uint64_t v;
                std::memcpy(&v, buf.data() + i, 8);
                if (v != first) {
                    ++bad;
                    break;
                }
            }
            ++reads;
        }
    });
    for (int i = 0; i < 300; ++i) {
        const Memfd& next = i % 2 == 0 ? b : a;
        // Split differently each time so the mappings really change.
        ASSERT_TRUE(memory.replace(
            regions(region(0x10000, 0x1000, 0, next), region(0x11000, 0x1000, 0x1000, next))));
    }
    while (reads.load() < 10) {
        std::this_thread::yield();
    }
    stop = true;
    reader.join();
    EXPECT_EQ(bad.load(), 0);
}

}  // namespace
}  // namespace gf::vmm
